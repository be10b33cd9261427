"""Marketo's limits are the instance's, so every worker keeps them together through Redis."""

import threading
import time
import uuid

import pytest
from django.conf import settings

from marketo_sync.limits import Limiter, Limits, QuotaExhausted


@pytest.fixture
def limiter_key():
    return f"test-{uuid.uuid4().hex}"


def workers(limits, key, count):
    """Independent Limiter objects, as separate worker processes would each have."""
    return [Limiter(limits, key=key, redis_url=settings.REDIS_URL) for _ in range(count)]


def test_workers_together_stay_inside_the_rate_window(limiter_key):
    limits = Limits(calls=5, window_seconds=0.5, concurrency=10)
    starts: list[float] = []
    lock = threading.Lock()

    def work(limiter):
        for _ in range(5):
            with limiter.call(), lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=work, args=(w,)) for w in workers(limits, limiter_key, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    starts.sort()
    assert len(starts) == 20
    # No half-second holds more than 5 calls (a little slack for clock reading order).
    for i, start in enumerate(starts):
        in_window = [s for s in starts[i:] if s < start + 0.5 - 0.02]
        assert len(in_window) <= 5
    # ...and the 20 calls needed at least three further windows.
    assert starts[-1] - starts[0] >= 1.4


def test_workers_together_stay_inside_the_concurrency_limit(limiter_key):
    limits = Limits(calls=1000, window_seconds=1, concurrency=3)
    in_flight = 0
    highest = 0
    lock = threading.Lock()

    def work(limiter):
        nonlocal in_flight, highest
        for _ in range(3):
            with limiter.call():
                with lock:
                    in_flight += 1
                    highest = max(highest, in_flight)
                time.sleep(0.03)
                with lock:
                    in_flight -= 1

    threads = [threading.Thread(target=work, args=(w,)) for w in workers(limits, limiter_key, 8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert highest == 3


def test_a_dead_workers_slot_comes_back_when_its_lease_expires(limiter_key):
    limits = Limits(calls=1000, window_seconds=1, concurrency=1, lease_seconds=0.3)
    dead, alive = workers(limits, limiter_key, 2)
    held = dead.call()
    held.__enter__()  # acquired and never released, as by a killed process
    began = time.monotonic()
    with alive.call():
        waited = time.monotonic() - began
    assert 0.2 <= waited < 2
    del held


def test_the_daily_quota_is_shared_and_stops_calls(limiter_key):
    limits = Limits(calls=1000, window_seconds=1, daily_calls=3)
    first, second = workers(limits, limiter_key, 2)
    for limiter in (first, second, first):
        with limiter.call():
            pass
    with pytest.raises(QuotaExhausted) as stopped, second.call():
        pass
    assert "daily API quota" in str(stopped.value)
    assert first.calls_today() == 4


def test_export_bytes_are_counted_per_marketo_day(limiter_key):
    limits = Limits(export_bytes_per_day=1000)
    first, second = workers(limits, limiter_key, 2)
    first.record_export_bytes(600)
    second.check_export_quota()
    second.record_export_bytes(400)
    with pytest.raises(QuotaExhausted):
        first.check_export_quota()
