"""The Marketo sync's write paths: starting and running syncs, saving what to sync.

One sync runs at a time per DynChat installation (one Marketo instance). The lock is a
PostgreSQL session advisory lock held by the running worker's connection: if the worker dies,
PostgreSQL frees it, and the next run marks the dead one "interrupted" and resumes its work.
"""

import dataclasses
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from marketo_sync import sync
from marketo_sync.client import MarketoClient, MarketoConfig
from marketo_sync.errors import HINTS, MarketoError, QuotaError
from marketo_sync.models import (
    MAX_SYNCED_FIELDS,
    ExportWindow,
    SyncCursor,
    SyncRun,
    SyncSettings,
)

logger = logging.getLogger(__name__)

# pg_advisory_lock key: "DynChat Marketo sync".
LOCK_KEY = 0x44594E43


class SyncBusy(Exception):
    """Another sync is running (on this or another worker)."""


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        raise MarketoError("requires_postgresql", "The Marketo sync needs PostgreSQL.")


def make_client() -> MarketoClient:
    return MarketoClient(MarketoConfig.from_settings())


def run_sync(
    *, kind: str, started_by: str = "", client: MarketoClient | None = None, fresh: bool = False
) -> SyncRun:
    """Run a full or incremental sync in this process, to the end; returns its SyncRun.

    A full run continues the last full run that did not finish, unless `fresh`. Errors are
    recorded on the run (status "failed", code and message) rather than raised, except SyncBusy.
    """
    require_postgresql()
    with _sync_lock():
        mark_dead_runs_interrupted()
        run = _new_run(kind=kind, started_by=started_by, fresh=fresh)
        own_client = client is None
        try:
            client = client or make_client()
            if kind == SyncRun.Kind.FULL:
                sync.run_full_sync(run, client)
            else:
                full = last_successful_full_run()
                if full is None:
                    raise MarketoError(
                        "no_full_sync",
                        "The incremental sync starts where a full sync ended: run the full sync "
                        "first.",
                        hint="",
                    )
                sync.run_incremental_sync(run, client, since=full.changes_since)
        except MarketoError as exc:
            _finish(run, SyncRun.Status.FAILED, code=exc.code, message=exc.explain())
            _log_failure(run, exc)
        except Exception as exc:
            # A bug or a database error: recorded for the status page, then raised for the logs.
            _finish(run, SyncRun.Status.FAILED, code="internal", message=repr(exc))
            raise
        else:
            _finish(run, SyncRun.Status.SUCCEEDED)
        finally:
            if own_client and client is not None:
                client.close()
    return run


class _sync_lock:
    def __enter__(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
            (locked,) = cursor.fetchone()
        if not locked:
            raise SyncBusy("A Marketo sync is already running.")
        return self

    def __exit__(self, *exc):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])


def lock_is_free() -> bool:
    """Whether no sync holds the lock right now (checked by taking and releasing it)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
        (locked,) = cursor.fetchone()
        if locked:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
    return locked


def mark_dead_runs_interrupted() -> None:
    """Runs still "running" while we hold the lock belong to a worker that died."""
    SyncRun.objects.filter(status=SyncRun.Status.RUNNING).update(
        status=SyncRun.Status.INTERRUPTED,
        finished_at=timezone.now(),
        error_code="interrupted",
        error_message="The worker running this sync stopped before it finished.",
    )


@transaction.atomic
def _new_run(*, kind: str, started_by: str, fresh: bool) -> SyncRun:
    run = SyncRun.objects.create(kind=kind, started_at=timezone.now(), started_by=started_by)
    if kind != SyncRun.Kind.FULL or fresh:
        return run
    unfinished = resumable_full_run()
    if unfinished is not None:
        # Take over its windows: finished ones stay finished, the rest carry on from their job.
        ExportWindow.objects.filter(run=unfinished).update(run=run)
        run.resumed_from = unfinished
        run.changes_since = unfinished.changes_since
        run.first_load = unfinished.first_load
        run.windows_total = unfinished.windows_total
        run.windows_done = unfinished.windows_done
        run.counts = dict(unfinished.counts)
        run.bytes_downloaded = unfinished.bytes_downloaded
        run.save()
    return run


def resumable_full_run() -> SyncRun | None:
    """The last full run, when it stopped before finishing and nothing has replaced it."""
    last = (
        SyncRun.objects.filter(kind=SyncRun.Kind.FULL)
        .exclude(status=SyncRun.Status.RUNNING)
        .first()
    )
    stopped = (SyncRun.Status.FAILED, SyncRun.Status.INTERRUPTED)
    if last and last.status in stopped and last.windows.exists():
        return last
    return None


def last_successful_full_run() -> SyncRun | None:
    return SyncRun.objects.filter(kind=SyncRun.Kind.FULL, status=SyncRun.Status.SUCCEEDED).first()


def _finish(run: SyncRun, status: str, *, code: str = "", message: str = "") -> None:
    run.status = status
    run.finished_at = timezone.now()
    run.error_code = code
    run.error_message = message
    run.save(
        update_fields=[
            "status",
            "finished_at",
            "error_code",
            "error_message",
            "counts",
            "bytes_downloaded",
        ]
    )
    if status == SyncRun.Status.SUCCEEDED and run.kind == SyncRun.Kind.FULL:
        # The incremental streams start again from where this full sync ended.
        SyncCursor.objects.all().delete()


def _log_failure(run: SyncRun, exc: MarketoError) -> None:
    if isinstance(exc, QuotaError):
        logger.warning("Marketo sync %s stopped: %s", run.pk, exc.explain())
    else:
        logger.error("Marketo sync %s failed: %s", run.pk, exc.explain())


# --- settings -------------------------------------------------------------------------------


def save_sync_settings(
    *, person_fields: list[str], company_fields: list[str], activity_type_ids: list[int]
) -> SyncSettings:
    """Save what the sync keeps. Callers validate against Marketo's fields (forms.py)."""
    if len(person_fields) + len(company_fields) > MAX_SYNCED_FIELDS:
        raise ValueError(f"At most {MAX_SYNCED_FIELDS} fields can be synced.")
    sync_settings = SyncSettings.load()
    sync_settings.person_fields = person_fields
    sync_settings.company_fields = company_fields
    sync_settings.activity_type_ids = activity_type_ids
    sync_settings.save()
    return sync_settings


@dataclass
class ConnectionCheck:
    ok: bool
    message: str
    hint: str = ""
    lead_fields: list[dict] | None = None
    company_fields: list[dict] | None = None


def check_connection(client: MarketoClient | None = None) -> ConnectionCheck:
    """Test the credentials and permissions the sync needs; name the problem if any."""
    config = MarketoConfig.from_settings()
    if client is None and not config.configured:
        return ConnectionCheck(False, "Marketo is not configured.", HINTS["not_configured"])
    own = client is None
    try:
        # A person is waiting: a few seconds of retries, not the sync's quarter of an hour.
        client = client or MarketoClient(
            dataclasses.replace(config, timeout=10, max_retry_seconds=10)
        )
        lead_fields = sync.describe_lead_fields(client)
        company_fields = sync.describe_company_fields(client)
        client.get("/rest/v1/activities/types.json")
        client.get("/bulk/v1/leads/export.json", {"status": "Completed"})
    except MarketoError as exc:
        return ConnectionCheck(False, exc.message, exc.hint)
    finally:
        if own and client is not None:
            client.close()
    return ConnectionCheck(
        True,
        f"Connected to {config.base_url or client.config.base_url}: "
        f"{len(lead_fields)} person fields and {len(company_fields)} company fields readable.",
        lead_fields=lead_fields,
        company_fields=company_fields,
    )


def marketo_configured() -> bool:
    return bool(
        settings.MARKETO_BASE_URL and settings.MARKETO_CLIENT_ID and settings.MARKETO_CLIENT_SECRET
    )
