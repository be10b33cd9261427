"""Marketo's per-instance limits, kept for every worker together.

Marketo counts calls per *instance*: 100 in any 20 seconds, 10 in flight, a daily quota, and
500 MB of bulk export a day. Several Celery workers (and the web process's "Test connection")
share them, so the counters live in Redis: a sliding window of call times, a semaphore of leases
(a worker that dies mid-call frees its lease when it expires), and per-day counters keyed by
Marketo's day, which ends at midnight US Central time.

Without Redis (the embedded defaults, one process) the same limits are kept in memory.
"""

import threading
import time
import uuid
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import redis

MARKETO_DAY_ZONE = ZoneInfo("America/Chicago")

# KEYS[1]: sorted set of call times (ms). ARGV: window ms, limit, member.
# Returns 0 when the call may go now, else how many ms to wait. Redis's clock is the only one
# consulted, so workers on machines whose clocks disagree still share one window.
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + window - now + 1
"""

# KEYS[1]: sorted set of leases scored by expiry (ms). ARGV: lease ms, limit, member.
_SEMAPHORE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
  return 1
end
return 0
"""


class QuotaExhausted(Exception):
    """Marketo's daily call quota, or its daily export quota, is spent until `resets_at`."""

    def __init__(self, what: str, resets_at: datetime):
        self.what = what
        self.resets_at = resets_at
        super().__init__(f"{what} is used up until {resets_at:%Y-%m-%d %H:%M} UTC")


def marketo_day(now: datetime | None = None) -> str:
    """Marketo's current day (its quotas reset at midnight US Central), as YYYY-MM-DD."""
    return (now or datetime.now(UTC)).astimezone(MARKETO_DAY_ZONE).strftime("%Y-%m-%d")


def next_reset(now: datetime | None = None) -> datetime:
    """The next midnight in US Central time, in UTC."""
    local = (now or datetime.now(UTC)).astimezone(MARKETO_DAY_ZONE)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time())
    return midnight.replace(tzinfo=MARKETO_DAY_ZONE).astimezone(UTC)


@dataclass(frozen=True)
class Limits:
    calls: int = 100
    window_seconds: float = 20.0
    concurrency: int = 10
    daily_calls: int = 50_000
    export_bytes_per_day: int = 500 * 1024 * 1024
    # A call's lease on a concurrency slot outlives any request timeout, so a worker killed
    # mid-call gives its slot back by itself.
    lease_seconds: float = 330.0


class Limiter:
    """Blocks each call until the instance's limits allow it; raises QuotaExhausted when a daily
    quota is spent. `key` names the Marketo instance (its client id), so two instances configured
    one after the other never share counters."""

    def __init__(self, limits: Limits, *, key: str, redis_url: str = "", sleep=time.sleep):
        self.limits = limits
        self.sleep = sleep
        self._prefix = f"dynchat:marketo:{key}"
        self._store = _RedisStore(redis_url) if redis_url else _LocalStore()

    @contextmanager
    def call(self):
        """Hold one call's place in the rate window and one concurrency slot."""
        used = self._store.incr(f"{self._prefix}:calls:{marketo_day()}", 1, ttl=2 * 86400)
        if used > self.limits.daily_calls:
            raise QuotaExhausted("Marketo's daily API quota", next_reset())
        # Marketo counts a call when it arrives, we when we send it: a margin absorbs the skew
        # (network latency, clocks), at a cost of 2.5% of the throughput.
        window = self.limits.window_seconds
        window_ms = int((window + max(0.1, window * 0.025)) * 1000)
        while wait_ms := self._store.window_slot(
            f"{self._prefix}:window", window_ms, self.limits.calls
        ):
            self.sleep(wait_ms / 1000)
        lease = uuid.uuid4().hex
        lease_ms = int(self.limits.lease_seconds * 1000)
        backoff = 0.01
        while not self._store.acquire(
            f"{self._prefix}:inflight", lease_ms, self.limits.concurrency, lease
        ):
            self.sleep(backoff)
            backoff = min(backoff * 2, 0.5)
        try:
            yield
        finally:
            self._store.release(f"{self._prefix}:inflight", lease)

    def calls_today(self) -> int:
        return self._store.get(f"{self._prefix}:calls:{marketo_day()}")

    def export_bytes_today(self) -> int:
        return self._store.get(f"{self._prefix}:export-bytes:{marketo_day()}")

    def record_export_bytes(self, size: int) -> None:
        self._store.incr(f"{self._prefix}:export-bytes:{marketo_day()}", size, ttl=2 * 86400)

    def check_export_quota(self) -> None:
        if self.export_bytes_today() >= self.limits.export_bytes_per_day:
            raise QuotaExhausted("Marketo's daily bulk export quota", next_reset())

    def reset(self) -> None:
        """Forget every counter of this instance (tests and benchmarks)."""
        self._store.clear(self._prefix)


class _RedisStore:
    def __init__(self, url: str):
        self.client = redis.Redis.from_url(url)
        self._window = self.client.register_script(_SLIDING_WINDOW)
        self._semaphore = self.client.register_script(_SEMAPHORE)

    def incr(self, key, amount, *, ttl):
        pipe = self.client.pipeline()
        pipe.incrby(key, amount)
        pipe.expire(key, ttl)
        return pipe.execute()[0]

    def get(self, key):
        return int(self.client.get(key) or 0)

    def window_slot(self, key, window_ms, limit):
        return int(self._window(keys=[key], args=[window_ms, limit, uuid.uuid4().hex]))

    def acquire(self, key, lease_ms, limit, member):
        return bool(self._semaphore(keys=[key], args=[lease_ms, limit, member]))

    def release(self, key, member):
        self.client.zrem(key, member)

    def clear(self, prefix):
        keys = list(self.client.scan_iter(match=f"{prefix}:*"))
        if keys:
            self.client.delete(*keys)


class _LocalStore:
    """The same counters for a single process (no Redis configured)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counters: dict[str, int] = {}
        self._windows: dict[str, deque] = {}
        self._leases: dict[str, dict[str, float]] = {}

    def incr(self, key, amount, *, ttl):
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + amount
            return self._counters[key]

    def get(self, key):
        return self._counters.get(key, 0)

    def window_slot(self, key, window_ms, limit):
        now = time.monotonic() * 1000
        with self._lock:
            calls = self._windows.setdefault(key, deque())
            while calls and calls[0] <= now - window_ms:
                calls.popleft()
            if len(calls) < limit:
                calls.append(now)
                return 0
            return int(calls[0] + window_ms - now) + 1

    def acquire(self, key, lease_ms, limit, member):
        now = time.monotonic() * 1000
        with self._lock:
            leases = {m: t for m, t in self._leases.get(key, {}).items() if t > now}
            self._leases[key] = leases
            if len(leases) < limit:
                leases[member] = now + lease_ms
                return True
            return False

    def release(self, key, member):
        with self._lock:
            self._leases.get(key, {}).pop(member, None)

    def clear(self, prefix):
        with self._lock:
            for store in (self._counters, self._windows, self._leases):
                for key in [k for k in store if k.startswith(prefix)]:
                    del store[key]
