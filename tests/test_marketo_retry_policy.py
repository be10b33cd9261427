"""The Marketo client's retry policy and window arithmetic, without a database or a server."""

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from marketo_sync.errors import (
    BulkQueueFull,
    MarketoError,
    QuotaError,
    RetryLater,
    backoff_delay,
    classify_failure,
    classify_http_status,
)
from marketo_sync.ingest import IngestError, rest_value, split_header
from marketo_sync.limits import marketo_day, next_reset
from marketo_sync.sync import windows_between


@pytest.mark.parametrize("code", ["604", "606", "608", "611", "614", "615", "713"])
def test_it_retries_transient_codes(code):
    assert isinstance(classify_failure(code, "whatever"), RetryLater)


@pytest.mark.parametrize("code", ["601", "602"])
def test_it_retries_token_errors_at_once(code):
    problem = classify_failure(code, "Access token expired")
    assert isinstance(problem, RetryLater)
    assert problem.delay == 0


def test_it_tells_a_full_bulk_queue_from_a_spent_export_quota():
    assert isinstance(classify_failure("1029", "Too many jobs in queue"), BulkQueueFull)
    quota = classify_failure("1029", "Export daily quota 500MB exceeded")
    assert isinstance(quota, QuotaError)
    assert "midnight US Central" in quota.hint


def test_it_stops_on_permission_and_quota_errors_with_a_hint():
    denied = classify_failure("603", "Access denied")
    assert type(denied) is MarketoError
    assert "Read-Only Lead" in denied.explain()
    quota = classify_failure("607", "Daily quota reached")
    assert isinstance(quota, QuotaError)


def test_it_stops_on_unknown_codes():
    problem = classify_failure("1006", "Field 'foo' not found")
    assert type(problem) is MarketoError
    assert problem.code == "1006"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_it_retries_server_errors(status):
    assert isinstance(classify_http_status(status, "Bad Gateway"), RetryLater)


def test_it_treats_401_as_bad_credentials():
    problem = classify_http_status(401, '{"error":"invalid_client"}')
    assert problem.code == "invalid_client"
    assert "MARKETO_CLIENT_ID" in problem.hint
    assert classify_http_status(200, "") is None


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    rng = random.Random(7)
    first = [backoff_delay(1, rng=rng) for _ in range(50)]
    later = [backoff_delay(5, rng=rng) for _ in range(50)]
    capped = [backoff_delay(30, rng=rng) for _ in range(50)]
    assert all(0.5 <= d <= 1.0 for d in first)
    assert all(0.5 <= d <= 16.0 for d in later)
    assert max(later) > 4  # it does grow
    assert len(set(later)) > 40  # jittered, so workers do not retry in step
    assert all(d <= 60.0 for d in capped)


def test_windows_cover_the_range_without_overlap_or_gap():
    start = datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)
    end = datetime(2024, 5, 17, 12, 30, 5, tzinfo=UTC)
    windows = windows_between(start, end)
    assert windows[0][0] == start
    assert windows[-1][1] == end
    for (s, e), (next_start, _) in itertools.pairwise(windows):
        assert e - s == timedelta(days=31) - timedelta(seconds=1)  # inclusive: at most 31 days
        assert next_start == e + timedelta(seconds=1)
    assert len(windows) == 5


def test_marketo_day_ends_at_midnight_central_time():
    # 2024-03-10 05:30 UTC is still 2024-03-09 in Chicago (CST, UTC-6)...
    assert marketo_day(datetime(2024, 3, 10, 5, 30, tzinfo=UTC)) == "2024-03-09"
    # ...and the quota resets at 06:00 UTC that night; after DST starts, at 05:00 UTC.
    assert next_reset(datetime(2024, 3, 10, 5, 30, tzinfo=UTC)) == datetime(
        2024, 3, 10, 6, 0, tzinfo=UTC
    )
    assert next_reset(datetime(2024, 3, 11, 12, 0, tzinfo=UTC)) == datetime(
        2024, 3, 12, 5, 0, tzinfo=UTC
    )


def test_split_header_reads_the_first_line_across_chunks():
    header, rest = split_header(iter([b"id,em", b"ail\n1,a@", b"b.test\n"]))
    assert header == ["id", "email"]
    assert b"".join(rest) == b"1,a@b.test\n"


def test_split_header_refuses_an_empty_file():
    with pytest.raises(IngestError):
        split_header(iter([b""]))


def test_rest_values_become_export_text():
    assert rest_value(None) is None
    assert rest_value(True) == "true"
    assert rest_value(12) == "12"
    assert rest_value("a\x00b") == "ab"
    assert rest_value({"Webpage URL": "/x"}) == '{"Webpage URL": "/x"}'
