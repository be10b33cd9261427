"""The Marketo client against a fake Marketo: one shared token, the instance's limits kept by
all workers together, retries for what is retryable and a clear stop for what is not."""

import threading
import time

import pytest

from marketo_sync import sync
from marketo_sync.client import MarketoClient, MarketoConfig
from marketo_sync.errors import MarketoError
from marketo_sync.limits import Limits
from marketo_sync.models import SyncSettings
from tests.conftest import quick_sleep


def client_for(fake, *, limits=None, redis_url=None, **config) -> MarketoClient:
    from django.conf import settings

    return MarketoClient(
        MarketoConfig(
            base_url=fake.base_url,
            client_id=fake._client_id,
            client_secret="s3cret",
            timeout=config.pop("timeout", 5),
            max_retry_seconds=config.pop("max_retry_seconds", 10),
            limits=limits or Limits(),
            redis_url=settings.REDIS_URL if redis_url is None else redis_url,
            **config,
        ),
        sleep=quick_sleep,
    )


def as_workers(clients, *, calls_each: int) -> None:
    """Each client in its own thread, as separate workers, making `calls_each` calls."""

    def work(client):
        for _ in range(calls_each):
            client.get("/rest/v1/activities/types.json")

    threads = [threading.Thread(target=work, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_workers_share_one_access_token(marketo, marketo_client):
    other_worker = client_for(marketo)
    marketo_client.get("/rest/v1/activities/types.json")
    other_worker.get("/rest/v1/activities/types.json")
    assert marketo.identity_calls == 1


def test_the_token_is_refreshed_before_it_expires(marketo):
    marketo.token_ttl = 3
    client = client_for(marketo, token_margin_seconds=1.5)
    client.sleep = time.sleep  # waiting out the old token must really wait
    first = client.access_token()
    time.sleep(1.6)
    for _ in range(3):
        client.get("/rest/v1/activities/types.json")
    assert client.access_token() != first
    assert not [c for c in marketo.calls if c["code"] in ("601", "602")]


def test_an_expired_token_is_replaced_and_the_call_repeated(marketo, marketo_client):
    marketo_client.get("/rest/v1/activities/types.json")
    marketo.expire_tokens()
    envelope = marketo_client.get("/rest/v1/activities/types.json")
    assert envelope["success"]
    assert marketo.identity_calls == 2


def test_bad_credentials_stop_at_once_and_say_what_to_fix(marketo):
    marketo.set_credentials("another-client", "another-secret")
    client = client_for(marketo)
    with pytest.raises(MarketoError) as stopped:
        client.get("/rest/v1/activities/types.json")
    assert stopped.value.code == "invalid_client"
    assert "MARKETO_CLIENT_SECRET" in stopped.value.explain()
    assert marketo.identity_calls == 1


def test_a_missing_permission_stops_at_once(marketo, marketo_client):
    marketo.deny_permission("/rest/v1/leads/describe.json")
    with pytest.raises(MarketoError) as stopped:
        marketo_client.get("/rest/v1/leads/describe.json")
    assert stopped.value.code == "603"
    assert len(marketo.calls_to("describe.json")) == 1


@pytest.mark.parametrize("code", [604, 606, 608, 611, 615, 713])
def test_retryable_codes_are_retried(marketo, marketo_client, code):
    marketo.fail("types.json", code=code, times=2)
    assert marketo_client.get("/rest/v1/activities/types.json")["success"]
    assert len(marketo.calls_to("types.json")) == 3


def test_it_gives_up_after_the_retry_deadline_with_a_clear_error(marketo):
    client = client_for(marketo, max_retry_seconds=1)
    marketo.http_error("types.json", status=502, times=1000)
    began = time.monotonic()
    with pytest.raises(MarketoError) as stopped:
        client.get("/rest/v1/activities/types.json")
    assert 0.9 < time.monotonic() - began < 5
    assert stopped.value.code == "unavailable"
    assert "http_502" in stopped.value.message
    assert "Nothing was lost" in stopped.value.explain()


def test_long_lookups_go_as_post_with_method_get(marketo, marketo_client):
    emails = [f"someone.with.a.long.address.{i}@example-company.test" for i in range(300)]
    marketo_client.lookup(
        "/rest/v1/leads.json", {"filterType": "email", "filterValues": ",".join(emails)}
    )
    marketo_client.lookup("/rest/v1/leads.json", {"filterType": "id", "filterValues": "1,2"})
    long_call, short_call = marketo.calls_to("/rest/v1/leads.json")
    assert long_call["method"] == "POST"
    assert long_call["query"].get("_method") in ("GET", ["GET"])
    assert short_call["method"] == "GET"
    assert not [c for c in marketo.calls if c["status"] == 414]


@pytest.mark.django_db
def test_lead_lookups_go_in_batches_of_at_most_300(marketo, marketo_client):
    for i in range(650):
        marketo.add_lead(email=f"l{i}@example.test")
    SyncSettings.load()
    written = sync.fetch_leads(marketo_client, SyncSettings.load(), range(1, 651))
    assert written == 650
    batches = [c for c in marketo.calls_to("/rest/v1/leads.json")]
    sizes = [len((c["form"] or c["query"])["filterValues"].split(",")) for c in batches]
    assert sizes == [300, 300, 50]


def test_concurrent_workers_never_exceed_the_concurrency_limit(marketo):
    marketo.concurrency = 3
    marketo.stall("types.json", seconds=0.1, times=1000)
    limits = Limits(concurrency=3)
    as_workers([client_for(marketo, limits=limits) for _ in range(6)], calls_each=3)
    assert marketo.max_in_flight == 3
    assert not [c for c in marketo.calls if c["code"] == "615"]


def test_workers_together_never_trip_the_rate_limit(marketo):
    marketo.rate_limit, marketo.rate_window = 5, 1.0
    limits = Limits(calls=5, window_seconds=1.0)
    as_workers([client_for(marketo, limits=limits) for _ in range(3)], calls_each=4)
    assert len(marketo.calls_to("types.json")) == 12
    assert not [c for c in marketo.calls if c["code"] == "606"]


def test_without_redis_the_limits_are_kept_in_the_process(marketo):
    client = client_for(marketo, redis_url="", limits=Limits(calls=3, window_seconds=0.5))
    client.sleep = time.sleep
    began = time.monotonic()
    for _ in range(6):
        client.get("/rest/v1/activities/types.json")
    assert time.monotonic() - began >= 0.45
