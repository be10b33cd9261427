"""The one-time full sync, against a fake Marketo speaking real HTTP: it ends with exactly the
source's data whatever Marketo's API does on the way, and resumes where it stopped."""

import pytest

from marketo_sync import services, sync
from marketo_sync.models import ExportWindow, Lead, SyncRun
from tests.marketo_source import assert_matches_source, populate

pytestmark = pytest.mark.django_db


@pytest.fixture
def instance(marketo):
    populate(marketo)
    return marketo


def full_sync(client, **kwargs) -> SyncRun:
    return services.run_sync(kind=SyncRun.Kind.FULL, client=client, **kwargs)


def assert_succeeded(run: SyncRun) -> None:
    assert run.status == SyncRun.Status.SUCCEEDED, (run.error_code, run.error_message)


def test_a_full_sync_copies_the_instance_exactly(instance, marketo_client):
    run = full_sync(marketo_client)
    assert_succeeded(run)
    assert_matches_source(instance)
    assert Lead.objects.count() == 40
    # Leads span about 100 days: four 31-day lead windows, three activity windows.
    windows = run.windows.all()
    assert {w.status for w in windows} == {ExportWindow.Status.INGESTED}
    assert run.windows_done == run.windows_total == len(windows)
    assert run.counts["leads"] == 40
    assert run.bytes_downloaded > 0
    assert run.phase == "Done"


def test_values_marketo_cannot_tell_from_empty_arrive_as_no_value(instance, marketo_client):
    lead_id = instance.add_lead(email="null@example.test", firstName="null")
    assert_succeeded(full_sync(marketo_client))
    assert "firstName" not in Lead.objects.get(id=lead_id).attributes


def test_running_it_twice_leaves_the_same_rows(instance, marketo_client):
    assert_succeeded(full_sync(marketo_client))
    first = sorted(Lead.objects.values_list("id", "email", "attributes", "updated_at"))
    assert_succeeded(full_sync(marketo_client))
    assert sorted(Lead.objects.values_list("id", "email", "attributes", "updated_at")) == first
    assert_matches_source(instance)


def test_a_token_that_expires_mid_run_is_replaced(instance, marketo_client):
    marketo_client.access_token()
    instance.expire_tokens()
    assert_succeeded(full_sync(marketo_client))
    assert_matches_source(instance)
    assert instance.identity_calls == 2
    assert [c["code"] for c in instance.calls if c["code"] in ("601", "602")] == ["602"]


def test_rate_and_concurrency_limit_errors_are_waited_out(instance, marketo_client):
    instance.fail("", code=606, times=3)
    instance.fail("/bulk/", code=615, times=3)
    assert_succeeded(full_sync(marketo_client))
    assert_matches_source(instance)


def test_a_full_bulk_queue_is_waited_out(instance, marketo_client):
    instance.fail("enqueue.json", code=1029, times=3)
    run = full_sync(marketo_client)
    assert_succeeded(run)
    assert_matches_source(instance)
    assert len(instance.calls_to("/export/create.json")) == run.windows_total


def test_a_cut_download_resumes_with_a_range_request(instance, marketo_client):
    instance.cut_next_download(after_bytes=300, times=2)
    run = full_sync(marketo_client)
    assert_succeeded(run)
    assert_matches_source(instance)
    resumed = [c for c in instance.calls_to("file.json") if c["status"] == 206]
    assert resumed, "the download continued from where it broke off"
    # The cut files were not exported again.
    assert len(instance.calls_to("/export/create.json")) == run.windows_total


def test_a_completed_job_whose_file_is_missing_is_retried(instance, marketo_client):
    instance.file_missing_once()
    assert_succeeded(full_sync(marketo_client))
    assert_matches_source(instance)
    assert [c["status"] for c in instance.calls_to("file.json")].count(404) == 1


def test_a_failed_export_job_is_created_again(instance, marketo_client):
    instance.fail_next_job("Internal error while exporting")
    run = full_sync(marketo_client)
    assert_succeeded(run)
    assert_matches_source(instance)
    assert len(instance.calls_to("/export/create.json")) == run.windows_total + 1


def test_a_download_that_fails_its_checksum_is_exported_again(
    instance, marketo_client, monkeypatch
):
    real_status = sync.bulk.job_status
    corrupted = []

    def status_with_a_wrong_checksum_once(client, entity, export_id):
        job = real_status(client, entity, export_id)
        if job.get("status") == "Completed" and not corrupted:
            corrupted.append(export_id)
            job = {**job, "fileChecksum": "sha256:" + "0" * 64}
        return job

    monkeypatch.setattr(sync.bulk, "job_status", status_with_a_wrong_checksum_once)
    run = full_sync(marketo_client)
    assert_succeeded(run)
    assert_matches_source(instance)
    # Three downloads of the file that did not match, then a new job for that window.
    assert len(instance.calls_to(f"{corrupted[0]}/file.json")) == 3
    assert len(instance.calls_to("/export/create.json")) == run.windows_total + 1


def test_bursts_of_server_errors_are_retried(instance, marketo_client):
    instance.http_error("", status=502, times=4)
    instance.http_error("status.json", status=503, times=3)
    assert_succeeded(full_sync(marketo_client))
    assert_matches_source(instance)


def test_an_outage_of_some_seconds_is_waited_out(instance, marketo_client):
    instance.outage(2.0)
    assert_succeeded(full_sync(marketo_client))
    assert_matches_source(instance)


def test_a_call_that_hangs_times_out_and_is_retried(instance, marketo_settings, marketo_client):
    marketo_client.http.timeout = __import__("httpx").Timeout(1.0)
    instance.stall("status.json", seconds=3)
    assert_succeeded(full_sync(marketo_client))
    assert_matches_source(instance)


def test_a_crash_mid_sync_is_resumed_without_redoing_finished_windows(
    instance, marketo_client, monkeypatch
):
    real_upsert = sync.upsert_leads
    ingested = []

    def crash_on_third_window(staging, **kwargs):
        if len(ingested) == 2:
            raise RuntimeError("worker killed while ingesting window 3")
        ingested.append(1)
        return real_upsert(staging, **kwargs)

    monkeypatch.setattr(sync, "upsert_leads", crash_on_third_window)
    with pytest.raises(RuntimeError):
        full_sync(marketo_client)
    crashed = SyncRun.objects.get()
    assert crashed.status == SyncRun.Status.FAILED
    assert crashed.windows.filter(entity="leads", status=ExportWindow.Status.INGESTED).count() == 2

    monkeypatch.setattr(sync, "upsert_leads", real_upsert)
    resumed = full_sync(marketo_client)
    assert_succeeded(resumed)
    assert resumed.resumed_from == crashed
    assert_matches_source(instance)
    # Only the windows not yet exported got a job; the crashed window's file was re-read.
    total_creates = len(instance.calls_to("/export/create.json"))
    assert total_creates == resumed.windows_total
    assert resumed.windows_done == resumed.windows_total


def test_a_run_whose_worker_died_is_marked_interrupted_and_resumed(instance, marketo_client):
    run = full_sync(marketo_client)
    # Pretend the worker died after planning: a running row, windows not started.
    dead = SyncRun.objects.create(kind="full", started_at=run.started_at, status="running")
    ExportWindow.objects.create(
        run=dead, entity="leads", start_at=run.started_at, end_at=run.started_at
    )
    resumed = full_sync(marketo_client)
    dead.refresh_from_db()
    assert dead.status == SyncRun.Status.INTERRUPTED
    assert resumed.resumed_from == dead
    assert_succeeded(resumed)


def test_only_one_sync_runs_at_a_time(instance, marketo_client):
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    with psycopg.connect(
        **{k: v for k, v in params.items() if k in ("dbname", "user", "host", "port", "password")}
    ) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [services.LOCK_KEY])
        with pytest.raises(services.SyncBusy):
            full_sync(marketo_client)
    assert not SyncRun.objects.exists()


@pytest.mark.parametrize(
    ("fault", "code", "words"),
    [
        (lambda fake: fake.set_credentials("someone-else", "x"), "invalid_client", "client id"),
        (lambda fake: fake.deny_permission("/bulk/"), "603", "Read-Only Lead"),
        (lambda fake: fake.fail("", code=607, times=1), "607", "midnight US Central"),
        (
            lambda fake: fake.fail(
                "create.json", code=1029, message="Export daily quota 500MB exceeded"
            ),
            "export_quota",
            "bulk export quota",
        ),
    ],
    ids=["bad-credentials", "no-permission", "daily-quota", "export-quota"],
)
def test_errors_that_cannot_be_retried_stop_the_run_with_a_clear_message(
    instance, marketo_client, fault, code, words
):
    fault(instance)
    run = full_sync(marketo_client)
    assert run.status == SyncRun.Status.FAILED
    assert run.error_code == code
    assert words in run.error_message


def test_a_quota_stop_is_resumed_after_the_reset(instance, marketo_client):
    instance.fail("create.json", code=1029, message="Export daily quota 500MB exceeded")
    stopped = full_sync(marketo_client)
    assert stopped.status == SyncRun.Status.FAILED
    resumed = full_sync(marketo_client)
    assert resumed.resumed_from == stopped
    assert_succeeded(resumed)
    assert_matches_source(instance)


def test_our_own_daily_export_cap_stops_the_run_cleanly(instance, marketo_client, settings):
    marketo_client.limiter.record_export_bytes(marketo_client.limiter.limits.export_bytes_per_day)
    run = full_sync(marketo_client)
    assert run.status == SyncRun.Status.FAILED
    assert run.error_code == "export_quota"
    assert "MARKETO_EXPORT_DAILY_MB" in run.error_message
    assert not instance.calls_to("/export/create.json")


def test_a_window_that_keeps_failing_stops_the_run_and_starts_afresh_next_time(instance):
    from django.utils import timezone

    run = SyncRun.objects.create(kind="full", started_at=timezone.now())
    window = ExportWindow.objects.create(
        run=run,
        entity="leads",
        start_at=run.started_at,
        end_at=run.started_at,
        status=ExportWindow.Status.QUEUED,
        export_id="e-1",
        attempts=2,
    )
    with pytest.raises(sync.MarketoError) as stopped:
        sync.restart_window(window, "Failed: Internal error")
    assert stopped.value.code == "job_failed"
    window.refresh_from_db()
    assert (window.status, window.export_id, window.attempts) == ("pending", "", 0)
