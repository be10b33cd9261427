"""The full and incremental syncs. Each step commits what it finished together with the marker
that says it is finished (a window's status, a stream's cursor), so a run that dies anywhere
is resumed by the next one without losing or repeating work.

Called by services.run_sync, which holds the one-run-at-a-time lock and the SyncRun row.
"""

import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from functools import partial

import psycopg
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from marketo_sync import bulk
from marketo_sync.client import BATCH_SIZE, MarketoClient
from marketo_sync.errors import BulkQueueFull, ExportFileMissing, MarketoError, QuotaError
from marketo_sync.ingest import (
    ACTIVITY_FIELDS,
    IngestError,
    Staging,
    copy_activities,
    insert_activities,
    rest_value,
    split_header,
    upsert_companies,
    upsert_leads,
)
from marketo_sync.limits import QuotaExhausted
from marketo_sync.models import (
    Activity,
    ActivityType,
    Company,
    ExportWindow,
    Lead,
    SyncCursor,
    SyncRun,
    SyncSettings,
)

logger = logging.getLogger(__name__)

WINDOW = timedelta(days=31)
# Bulk filters are inclusive at both ends, to the second: a window ends 1 s before the next.
ONE_SECOND = timedelta(seconds=1)
# How many times a window's job may fail (Failed job, bad checksum) before the run stops.
MAX_WINDOW_ATTEMPTS = 3
# Companies re-read per incremental run (their edits leave no activity to follow).
COMPANY_REFRESH_BATCHES = 3
# Re-read a little before the full sync's end, in case of clock skew; re-reading is harmless.
CHANGES_OVERLAP = timedelta(minutes=5)
# Marketo can answer pages of zero rows with moreResult true; stop after this many per stream
# and carry on from the saved cursor at the next run.
MAX_PAGES_PER_RUN = 2000


class Progress:
    """Counts for the SyncRun row, and live figures (bytes, rate) for the status page."""

    def __init__(self, run: SyncRun):
        self.run = run
        self._live_at = 0.0
        self._started = time.monotonic()
        # Ingest workers report bytes from their threads.
        self._lock = threading.Lock()

    @property
    def live_key(self) -> str:
        return live_key(self.run.pk)

    def phase(self, name: str) -> None:
        self.run.phase = name
        self.run.save(update_fields=["phase"])
        self.live(force=True)

    def add(self, **counts: int) -> None:
        """Add to the run's counts (inside the caller's transaction, so they commit together)."""
        for name, value in counts.items():
            self.run.counts[name] = self.run.counts.get(name, 0) + value
        self.run.save(update_fields=["counts", "bytes_downloaded", "windows_done"])
        self.live(force=True)

    def add_bytes(self, amount: int) -> None:
        with self._lock:
            self.run.bytes_downloaded += amount
        self.live()

    def window_done(self, entity: str, rows: int) -> None:
        self.run.windows_done += 1
        self.add(**{entity: rows})

    def recount(self, run: SyncRun) -> None:
        """Counts and windows from the windows themselves (each committed with its rows), so
        they are right even after a crash between a window's commit and our tally."""
        ingested = run.windows.filter(status=ExportWindow.Status.INGESTED)
        for entity in ExportWindow.Entity.values:
            rows = ingested.filter(entity=entity).aggregate(total=Sum("rows"))["total"]
            self.run.counts[entity] = rows or 0
        self.run.windows_done = ingested.count()
        self.add()

    def live(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._live_at < 1.0:
            return
        self._live_at = now
        elapsed = max(now - self._started, 0.001)
        cache.set(
            self.live_key,
            {
                "phase": self.run.phase,
                "bytes": self.run.bytes_downloaded,
                "bytes_per_second": self.run.bytes_downloaded / elapsed,
                "counts": dict(self.run.counts),
                "windows_done": self.run.windows_done,
            },
            timeout=3600,
        )


def live_key(run_id: int) -> str:
    return f"marketo_sync:live:{run_id}"


# --- shared steps ------------------------------------------------------------------------------


def refresh_catalogue(client: MarketoClient, progress: Progress) -> SyncSettings:
    """Read field types (describe) and the activity types; check the picked fields still exist."""
    progress.phase("Reading Marketo's fields and activity types")
    sync_settings = SyncSettings.load()
    lead_types = {f["name"]: f["dataType"] for f in describe_lead_fields(client)}
    company_types = {f["name"]: f["dataType"] for f in describe_company_fields(client)}
    missing = [f for f in sync_settings.person_fields if f not in lead_types]
    missing += [f for f in sync_settings.company_fields if f not in company_types]
    if missing:
        raise MarketoError("1006", f"Marketo has no field named {', '.join(missing)}.")
    sync_settings.field_types = {**company_types, **lead_types}
    sync_settings.save(update_fields=["field_types", "updated_at"])

    types = client.get("/rest/v1/activities/types.json").get("result") or []
    with transaction.atomic():
        for entry in types:
            ActivityType.objects.update_or_create(
                id=entry["id"],
                defaults={
                    "name": entry.get("name", ""),
                    "description": entry.get("description") or "",
                    "primary_attribute": entry.get("primaryAttribute"),
                    "attributes": entry.get("attributes") or [],
                },
            )
        progress.add(activity_types=len(types))
    return sync_settings


def describe_lead_fields(client: MarketoClient) -> list[dict]:
    """Lead fields usable in REST: [{name, displayName, dataType}]."""
    fields = []
    for entry in client.get("/rest/v1/leads/describe.json").get("result") or []:
        rest = entry.get("rest") or {}
        if rest.get("name"):
            fields.append(
                {
                    "name": rest["name"],
                    "displayName": entry.get("displayName") or rest["name"],
                    "dataType": entry.get("dataType", "string"),
                }
            )
    return fields


def describe_company_fields(client: MarketoClient) -> list[dict]:
    result = client.get("/rest/v1/companies/describe.json").get("result") or [{}]
    return [
        {
            "name": f["name"],
            "displayName": f.get("displayName") or f["name"],
            "dataType": f.get("dataType", "string"),
        }
        for f in result[0].get("fields", [])
    ]


def fetch_leads(client: MarketoClient, sync_settings: SyncSettings, ids: Iterable[int]) -> int:
    """Re-read leads by id, 300 a call, and upsert them; returns rows written."""
    fields = sync_settings.lead_fields()
    ids = sorted(set(ids))
    written = 0
    for start in range(0, len(ids), BATCH_SIZE):
        batch = ids[start : start + BATCH_SIZE]
        records = _paged_lookup(
            client,
            "/rest/v1/leads.json",
            {"filterType": "id", "filterValues": ",".join(map(str, batch)), "fields": fields},
        )
        written += _write_rest_leads(records, fields, sync_settings)
    return written


def fetch_companies(
    client: MarketoClient, sync_settings: SyncSettings, external_ids: list[str]
) -> int:
    """Read companies by externalCompanyId, 300 a call, and upsert them; returns rows written."""
    fields = sync_settings.all_company_fields()
    written = 0
    for start in range(0, len(external_ids), BATCH_SIZE):
        batch = external_ids[start : start + BATCH_SIZE]
        records = _paged_lookup(
            client,
            "/rest/v1/companies.json",
            {"filterType": "externalCompanyId", "filterValues": ",".join(batch), "fields": fields},
        )
        with transaction.atomic(), connection.cursor() as cursor:
            staging = Staging(cursor, fields)
            staging.copy_rows([rest_value(r.get(f)) for f in fields] for r in records)
            written += upsert_companies(
                staging,
                picked=fields,
                types=sync_settings.field_types,
                synced_at=timezone.now(),
            )
    return written


def _paged_lookup(client: MarketoClient, path: str, params: dict) -> list[dict]:
    params = {**params, "fields": ",".join(params["fields"]), "batchSize": BATCH_SIZE}
    records: list[dict] = []
    while True:
        envelope = client.lookup(path, params)
        records.extend(envelope.get("result") or [])
        token = envelope.get("nextPageToken")
        if not token or not envelope.get("result"):
            return records
        params["nextPageToken"] = token


def _write_rest_leads(records: list[dict], fields: list[str], sync_settings: SyncSettings) -> int:
    if not records:
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        staging = Staging(cursor, fields)
        staging.copy_rows([rest_value(r.get(f)) for f in fields] for r in records)
        return upsert_leads(staging, picked=fields, types=sync_settings.field_types)


# --- full sync ---------------------------------------------------------------------------------


def run_full_sync(run: SyncRun, client: MarketoClient, *, sleep=time.sleep) -> None:
    progress = Progress(run)
    sync_settings = refresh_catalogue(client, progress)
    if not run.windows.exists():
        plan_windows(run, client, sync_settings, progress)
        if not Lead.objects.exists() and not Activity.objects.exists():
            # A first load, as pg_restore does it: rows go in without keys or indexes, which
            # are built once, from all the rows, by ensure_lookup_indexes().
            drop_lookup_indexes()
            run.first_load = True
            run.save(update_fields=["first_load"])
    if not run.first_load:
        # Upserts need the primary keys (an earlier first load may have stopped without them).
        ensure_lookup_indexes()
    run_windows(run, client, sync_settings, progress, sleep=sleep)
    progress.phase("Building indexes")
    ensure_lookup_indexes()
    sync_missing_companies(run, client, sync_settings, progress)
    progress.phase("Done")


def plan_windows(
    run: SyncRun, client: MarketoClient, sync_settings: SyncSettings, progress: Progress
) -> None:
    """Cut history into 31-day export windows: leads since the first one, activities over
    the last MARKETO_ACTIVITY_DAYS. Everything after `changes_since` is the incremental's."""
    progress.phase("Planning export windows")
    end = run.changes_since or timezone.now().replace(microsecond=0)
    first_lead = earliest_lead_date(client) or end
    activities_from = end - timedelta(days=settings.MARKETO_ACTIVITY_DAYS)
    windows = [
        ExportWindow(run=run, entity=ExportWindow.Entity.LEADS, start_at=s, end_at=e)
        for s, e in windows_between(first_lead, end)
    ] + [
        ExportWindow(run=run, entity=ExportWindow.Entity.ACTIVITIES, start_at=s, end_at=e)
        for s, e in windows_between(activities_from, end)
    ]
    with transaction.atomic():
        ExportWindow.objects.bulk_create(windows)
        run.changes_since = end
        run.windows_total = len(windows)
        run.save(update_fields=["changes_since", "windows_total"])


def windows_between(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Consecutive windows of at most 31 days covering [start, end], inclusive ends that do not
    overlap (each ends one second before the next starts)."""
    windows = []
    cursor = start.replace(microsecond=0)
    while cursor <= end:
        window_end = min(cursor + WINDOW - ONE_SECOND, end)
        windows.append((cursor, window_end))
        cursor = window_end + ONE_SECOND
    return windows


def earliest_lead_date(client: MarketoClient) -> datetime | None:
    """When the instance's first lead was created: Marketo numbers leads in creation order, so
    the lowest ids tell (there is no "oldest lead" endpoint). MARKETO_LEADS_SINCE overrides."""
    if settings.MARKETO_LEADS_SINCE:
        return datetime.fromisoformat(settings.MARKETO_LEADS_SINCE).replace(tzinfo=UTC)
    for first in range(1, 3001, BATCH_SIZE):
        ids = ",".join(str(i) for i in range(first, first + BATCH_SIZE))
        envelope = client.lookup(
            "/rest/v1/leads.json",
            {"filterType": "id", "filterValues": ids, "fields": "id,createdAt"},
        )
        dates = [r["createdAt"] for r in envelope.get("result") or [] if r.get("createdAt")]
        if dates:
            # A day early: the earliest of these is not necessarily the earliest of all.
            return _parse_time(min(dates)) - timedelta(days=1)
    # No lead among the first 3,000 ids: go back to Marketo's founding, at worst empty windows.
    return datetime(2006, 1, 1, tzinfo=UTC)


def run_windows(
    run: SyncRun,
    client: MarketoClient,
    sync_settings: SyncSettings,
    progress: Progress,
    *,
    sleep=time.sleep,
) -> None:
    """Keep up to MARKETO_BULK_MAX_JOBS export jobs in Marketo's queue and ingest each file as
    its job completes, MARKETO_INGEST_WORKERS at a time, until every window is ingested.

    Ingest workers are threads with their own database connections: one downloads and parses
    while PostgreSQL writes another's rows, which is where the time goes on a small machine.
    Windows never share rows (their dates do not overlap), so their transactions cannot clash.
    """
    progress.phase("Exporting leads and activities")
    # Leads first: targeting needs them more than activities.
    todo = sorted(
        run.windows.exclude(status=ExportWindow.Status.INGESTED),
        key=lambda w: (w.entity != ExportWindow.Entity.LEADS, w.start_at),
    )
    in_flight = [w for w in todo if w.status != ExportWindow.Status.PENDING]
    waiting = [w for w in todo if w.status == ExportWindow.Status.PENDING]
    poll_seconds = settings.MARKETO_BULK_POLL_SECONDS
    workers = settings.MARKETO_INGEST_WORKERS
    queue_full_until = 0.0
    ingesting: dict = {}  # future -> window
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="marketo-ingest") as pool:
        while in_flight or waiting or ingesting:
            # Jobs in Marketo's queue are limited; jobs whose files we are ingesting are no
            # longer Marketo's, so the next ones are already being prepared meanwhile.
            while waiting and len(in_flight) < settings.MARKETO_BULK_MAX_JOBS:
                if time.monotonic() < queue_full_until:
                    break
                window = waiting[0]
                try:
                    start_job(window, client, sync_settings)
                except BulkQueueFull:
                    # Marketo's queue is shared with other integrations: wait for room, as
                    # Marketo's own sample does, while our jobs carry on.
                    queue_full_until = time.monotonic() + max(poll_seconds, 1)
                    break
                waiting.pop(0)
                in_flight.append(window)
            progressed = False
            for window in list(in_flight):
                if len(ingesting) >= workers:
                    break
                job = poll_job(window, client)
                if job == "restart":
                    in_flight.remove(window)
                    waiting.insert(0, window)
                    progressed = True
                elif job is not None:
                    in_flight.remove(window)
                    task = partial(
                        ingest_window,
                        window,
                        job,
                        client,
                        sync_settings,
                        progress,
                        first_load=run.first_load,
                    )
                    if workers > 1:
                        ingesting[pool.submit(_in_own_connection, task)] = window
                    else:
                        ingesting[_done_future(task)] = window
                    progressed = True
            finished = [future for future in ingesting if future.done()]
            for future in finished:
                window = ingesting.pop(future)
                outcome = future.result()  # an ingest error ends the run here
                if outcome == "restart":
                    waiting.insert(0, window)
                else:
                    progress.window_done(window.entity, outcome)
                progressed = True
            if not progressed and (in_flight or waiting or ingesting):
                if ingesting:
                    # A finished ingest frees a worker at once; otherwise poll on schedule.
                    wait(ingesting, timeout=max(poll_seconds, 0.05), return_when=FIRST_COMPLETED)
                else:
                    sleep(max(poll_seconds, 0.05))
    progress.recount(run)


def _in_own_connection(task):
    try:
        return task()
    finally:
        connection.close()


def _done_future(task) -> Future:
    future: Future = Future()
    try:
        future.set_result(task())
    except BaseException as exc:
        future.set_exception(exc)
    return future


def start_job(window: ExportWindow, client: MarketoClient, sync_settings: SyncSettings) -> None:
    now = timezone.now()
    if not window.export_id or bulk.job_is_stale(window.job_created_at, now):
        try:
            client.limiter.check_export_quota()
        except QuotaExhausted as exc:
            raise QuotaError(
                "export_quota",
                f"DynChat has exported {settings.MARKETO_EXPORT_DAILY_MB} MB from Marketo "
                "today (MARKETO_EXPORT_DAILY_MB).",
                resets_at=exc.resets_at,
            ) from None
        leads = window.entity == ExportWindow.Entity.LEADS
        job = bulk.create_job(
            client,
            window.entity,
            start=window.start_at,
            end=window.end_at,
            fields=sync_settings.lead_fields() if leads else ACTIVITY_FIELDS,
            activity_type_ids=None if leads else sync_settings.activity_type_ids,
        )
        window.export_id = job["exportId"]
        window.job_created_at = now
        window.status = ExportWindow.Status.CREATED
        window.save(update_fields=["export_id", "job_created_at", "status"])
    bulk.enqueue_job(client, window.entity, window.export_id)
    window.status = ExportWindow.Status.QUEUED
    window.save(update_fields=["status"])


def poll_job(window: ExportWindow, client: MarketoClient) -> dict | str | None:
    """Poll one job: its status object once Completed, "restart" when it must be exported
    again, None while Marketo is still working on it."""
    if window.status == ExportWindow.Status.CREATED:
        # Created but not queued: the run stopped in between. Queue it now.
        try:
            bulk.enqueue_job(client, window.entity, window.export_id)
        except BulkQueueFull:
            return None
        window.status = ExportWindow.Status.QUEUED
        window.save(update_fields=["status"])
    job = bulk.job_status(client, window.entity, window.export_id)
    status = job.get("status")
    if status in bulk.GONE or not status:
        return restart_window(window, f"Marketo's export job {status or 'vanished'}: {job}")
    if status == "Created":
        with suppress(BulkQueueFull):
            bulk.enqueue_job(client, window.entity, window.export_id)
        return None
    if status != bulk.DONE:
        return None
    if not window.file_size:
        # Count the file against the day's export quota once, however often it is downloaded.
        client.limiter.record_export_bytes(int(job.get("fileSize") or 0))
        window.file_size = int(job.get("fileSize") or 0)
        window.records = int(job.get("numberOfRecords") or 0)
        window.save(update_fields=["file_size", "records"])
    return job


def restart_window(window: ExportWindow, reason: str, *, code: str = "job_failed") -> str:
    """Forget the window's job so a new one is created; after MAX_WINDOW_ATTEMPTS, stop the run
    (a later run starts the window afresh)."""
    giving_up = window.attempts + 1 >= MAX_WINDOW_ATTEMPTS
    window.attempts = 0 if giving_up else window.attempts + 1
    window.status = ExportWindow.Status.PENDING
    window.export_id = ""
    window.file_size = 0
    window.save(update_fields=["attempts", "status", "export_id", "file_size"])
    if giving_up:
        raise MarketoError(code, f"{window}: {reason}")
    logger.warning("Re-creating the export of %s: %s", window, reason)
    return "restart"


def ingest_window(
    window: ExportWindow,
    job: dict,
    client: MarketoClient,
    sync_settings: SyncSettings,
    progress: Progress,
    *,
    first_load: bool = False,
) -> int | str:
    """Download a completed job's file into the database, in one transaction with the window's
    "ingested" mark; returns the rows written. A bad checksum or a missing file is retried,
    then the job is re-created ("restart")."""
    size = int(job.get("fileSize") or 0)
    for attempt in range(1, MAX_WINDOW_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                rows = (
                    _ingest_file(
                        window, job, client, sync_settings, progress, first_load=first_load
                    )
                    if size
                    else 0
                )
                window.status = ExportWindow.Status.INGESTED
                window.ingested_at = timezone.now()
                window.rows = rows
                window.save(update_fields=["status", "ingested_at", "rows"])
            return rows
        except bulk.ChecksumMismatch as exc:
            logger.warning("Export %s failed its checksum (%s); downloading again", window, exc)
            reason, code = f"checksum mismatch: {exc}", "checksum"
        except ExportFileMissing as exc:
            # Marketo can say Completed while the file still answers 404: ask again shortly.
            reason, code = f"Completed, but the file was not found ({exc.message})", "job_failed"
        client.sleep(min(2**attempt, 30))
    return restart_window(window, reason, code=code)


def _ingest_file(window, job, client, sync_settings, progress, *, first_load=False) -> int:
    """Stream one export file into the database (inside the caller's transaction)."""

    def open_file():
        return split_header(
            bulk.download(
                client,
                window.entity,
                window.export_id,
                size=int(job["fileSize"]),
                checksum=job.get("fileChecksum") or "",
                on_bytes=progress.add_bytes,
            )
        )

    activities = window.entity == ExportWindow.Entity.ACTIVITIES
    with connection.cursor() as cursor:
        if first_load and activities:
            try:
                with transaction.atomic():
                    header, body = open_file()
                    return _check_count(window, job, copy_activities(cursor, header, body))
            except (psycopg.IntegrityError, psycopg.DataError, IngestError) as exc:
                # A row the direct COPY cannot take (say a NUL escape in its JSON): read the
                # file again the careful way.
                logger.info("Re-reading %s through staging: %s", window, exc)
        header, body = open_file()
        staging = Staging(cursor, header)
        _check_count(window, job, staging.copy_csv(body))
        if activities:
            return insert_activities(staging, first_load=first_load)
        picked, types = sync_settings.lead_fields(), sync_settings.field_types
        if first_load:
            try:
                with transaction.atomic():
                    return upsert_leads(staging, picked=picked, types=types, first_load=True)
            except psycopg.IntegrityError as exc:
                logger.info("Upserting %s after all: %s", window, exc)
        return upsert_leads(staging, picked=picked, types=types)


def _check_count(window: ExportWindow, job: dict, copied: int) -> int:
    expected = job.get("numberOfRecords")
    if expected is not None and copied != int(expected):
        raise IngestError(f"{window}: Marketo counted {expected} records, the file held {copied}.")
    return copied


def sync_missing_companies(
    run: SyncRun, client: MarketoClient, sync_settings: SyncSettings, progress: Progress
) -> None:
    """Companies have no bulk export: read the ones our leads link to and this run (or the run
    it resumes) has not read yet, 300 a call."""
    progress.phase("Reading companies")
    since = _root(run).started_at
    fresh = Company.objects.filter(synced_at__gte=since).values("external_company_id")
    external_ids = list(
        Lead.objects.exclude(external_company_id="")
        .exclude(external_company_id__in=fresh)
        .values_list("external_company_id", flat=True)
        .distinct()
        .order_by("external_company_id")
    )
    for start in range(0, len(external_ids), BATCH_SIZE * 10):
        written = fetch_companies(client, sync_settings, external_ids[start : start + 3000])
        progress.add(companies=written)


def _root(run: SyncRun) -> SyncRun:
    while run.resumed_from_id:
        run = run.resumed_from
    return run


def drop_lookup_indexes() -> None:
    """Before a first load: drop the primary keys and indexes of leads and activities, so rows
    go in without them; ensure_lookup_indexes() builds them back."""
    with transaction.atomic(), connection.schema_editor() as editor:
        for model in (Lead, Activity):
            existing = _index_names(model)
            for index in model._meta.indexes:
                if index.name in existing:
                    editor.remove_index(model, index)
            if _primary_key_name(model):
                editor.execute(
                    f"ALTER TABLE {model._meta.db_table} DROP CONSTRAINT {_pk_constraint(model)}"
                )


def ensure_lookup_indexes() -> None:
    """Create whatever primary key or index of leads and activities is missing (after a first
    load, or one that stopped and was resumed or started over)."""
    for model in (Lead, Activity):
        if not _primary_key_name(model):
            _restore_primary_key(model)
        with connection.schema_editor() as editor:
            existing = _index_names(model)
            for index in model._meta.indexes:
                if index.name not in existing:
                    editor.add_index(model, index)


def _restore_primary_key(model) -> None:
    table, column = model._meta.db_table, model._meta.pk.column
    add = f"ALTER TABLE {table} ADD CONSTRAINT {_pk_constraint(model)} PRIMARY KEY ({column})"
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(add)
        return
    except IntegrityError:
        logger.warning("Duplicate %s ids after a first load; keeping one of each", table)
    # Keep one row per key: a lead's latest copy; any copy of an activity (they never change).
    order = "updated_at DESC NULLS LAST, ctid" if model is Lead else "ctid"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM (SELECT ctid, row_number() "  # noqa: S608 - fixed names
            f"OVER (PARTITION BY {column} ORDER BY {order}) AS n FROM {table}) AS d WHERE n > 1)"
        )
        cursor.execute(add)


def _pk_constraint(model) -> str:
    return f"{model._meta.db_table}_pkey"


def _primary_key_name(model) -> str | None:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return next((name for name, info in constraints.items() if info["primary_key"]), None)


def _index_names(model) -> set[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return {name for name, info in constraints.items() if info["index"] and not info["primary_key"]}


# --- incremental sync --------------------------------------------------------------------------


def run_incremental_sync(run: SyncRun, client: MarketoClient, *, since: datetime) -> None:
    progress = Progress(run)
    ensure_lookup_indexes()
    sync_settings = refresh_catalogue(client, progress)
    since = since - CHANGES_OVERLAP

    progress.phase("Reading lead changes")
    lead_fields = [f for f in sync_settings.lead_fields() if f != "id"]
    for page in _pages(
        client,
        "leadchanges",
        "/rest/v1/activities/leadchanges.json",
        since,
        {"fields": ",".join(lead_fields)},
    ):
        with transaction.atomic():
            ids = {r["leadId"] for r in page.records if r.get("leadId")}
            written = fetch_leads(client, sync_settings, ids)
            links = set(
                Lead.objects.filter(id__in=ids)
                .exclude(external_company_id="")
                .values_list("external_company_id", flat=True)
            )
            companies = fetch_companies(client, sync_settings, sorted(links))
            page.save_cursor()
            progress.add(leads=written, companies=companies)

    progress.phase("Reading new activities")
    type_ids = sorted(sync_settings.activity_type_ids)
    for start in range(0, len(type_ids), 10):
        group = type_ids[start : start + 10]
        stream = "activities:" + ",".join(map(str, group))
        params = {"activityTypeIds": ",".join(map(str, group))}
        for page in _pages(client, stream, "/rest/v1/activities.json", since, params):
            with transaction.atomic():
                written = write_rest_activities(page.records)
                page.save_cursor()
                progress.add(activities=written)

    progress.phase("Reading deleted leads")
    for page in _pages(client, "deletedleads", "/rest/v1/activities/deletedleads.json", since, {}):
        with transaction.atomic():
            ids = {r["leadId"] for r in page.records if r.get("leadId")}
            Activity.objects.filter(lead_id__in=ids).delete()
            deleted, _ = Lead.objects.filter(id__in=ids).delete()
            page.save_cursor()
            progress.add(deleted_leads=deleted)

    progress.phase("Refreshing companies")
    stale = list(
        Company.objects.exclude(external_company_id="")
        .order_by("synced_at")
        .values_list("external_company_id", flat=True)[: BATCH_SIZE * COMPANY_REFRESH_BATCHES]
    )
    progress.add(companies=fetch_companies(client, sync_settings, stale))

    progress.phase("Dropping activities older than the window")
    cutoff = timezone.now() - timedelta(days=settings.MARKETO_ACTIVITY_DAYS)
    expired, _ = Activity.objects.filter(activity_date__lt=cutoff).delete()
    progress.add(expired_activities=expired)
    progress.phase("Done")


def write_rest_activities(records: list[dict]) -> int:
    if not records:
        return 0
    rows = []
    for r in records:
        # REST gives attributes as [{name, value}]; the bulk file as {name: value}. Keep one.
        attributes = {
            a["name"]: a.get("value")
            for a in r.get("attributes") or []
            if a.get("value") not in (None, "")
        }
        values = {**r, "attributes": attributes}
        rows.append([rest_value(values.get(f)) for f in ACTIVITY_FIELDS])
    with connection.cursor() as cursor:
        staging = Staging(cursor, ACTIVITY_FIELDS)
        staging.copy_rows(rows)
        return insert_activities(staging)


class _Page:
    def __init__(self, stream: str, records: list[dict], token: str):
        self.stream = stream
        self.records = records
        self.token = token

    def save_cursor(self) -> None:
        """Move the stream's cursor past this page (in the caller's transaction)."""
        SyncCursor.objects.update_or_create(name=self.stream, defaults={"token": self.token})


def _pages(client: MarketoClient, stream: str, path: str, since: datetime, params: dict):
    """Yield pages of a paging-token stream from its saved cursor (or from `since`)."""
    cursor = SyncCursor.objects.filter(name=stream).first()
    if cursor:
        token = cursor.token
    else:
        envelope = client.get(
            "/rest/v1/activities/pagingtoken.json",
            {"sinceDatetime": bulk.marketo_time(since)},
            timeout=300,
        )
        token = envelope["nextPageToken"]
    for _ in range(MAX_PAGES_PER_RUN):
        envelope = client.get(path, {**params, "nextPageToken": token, "batchSize": BATCH_SIZE})
        token = envelope.get("nextPageToken") or token
        yield _Page(stream, envelope.get("result") or [], token)
        if not envelope.get("moreResult"):
            return


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
