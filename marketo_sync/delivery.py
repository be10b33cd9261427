"""Sends the outbox (models.OutboxRecord) to Marketo: in batches, in order per lead, inside the
instance's shared limits, losing nothing and sending nothing twice.

One delivery runs at a time (a lock). Its thread does all database work: it picks the next
batch, claims its records, applies Marketo's answers. Up to MARKETO_OUTBOX_CONCURRENCY calls are
in flight at once in worker threads, which only talk to Marketo; the client's limiter (shared
with the sync, in Redis) paces them to the instance's 100 calls per 20 s.

Order: a lead's records go in (rank, id) order: its upserts first (its other records need its
Marketo id), then the rest as they happened. A batch takes, from each lead whose earliest
pending record is due and not in flight, the run of its next records that fit the same call
(activities with activities, one program's status with the same status, ...). While one of a
lead's records is in flight or waiting to be retried, none of its later records is sent.

Failures:
- Marketo unreachable, unavailable or rate limited: the client retries for
  MARKETO_OUTBOX_RETRY_SECONDS, then the batch waits (backoff up to
  MARKETO_OUTBOX_MAX_BACKOFF_SECONDS) and the run stops; nothing is parked for it.
- No permission, bad credentials, the daily quota: the run stops and says so on the delivery
  page (DeliveryState); records wait.
- A record Marketo refuses for good (an unknown field, a status not in the program's channel,
  a lead it cannot find) is parked with Marketo's code and message, until someone retries it.
- An answer that never came for a write that must not be repeated (a custom activity, a
  campaign request): the records are marked unconfirmed, and before they are sent again the
  lead's activities are read back from Marketo: those found are delivered, not resent. A
  delivery that dies mid-call leaves its claims, which the next one treats the same way.
"""

import logging
import random
import time
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from itertools import takewhile

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone

from marketo_sync import writeback
from marketo_sync.client import BATCH_SIZE, MarketoClient, MarketoConfig
from marketo_sync.errors import MarketoError, OutcomeUnknown, QuotaError
from marketo_sync.models import (
    CustomActivityType,
    DeliveryState,
    KnownLead,
    Lead,
    LeadFieldMapping,
    OutboxRecord,
)

logger = logging.getLogger(__name__)

Kind = OutboxRecord.Kind
Status = OutboxRecord.Status

# Records per call: Marketo's limits (300 a call; a campaign request names at most 100 leads;
# a cookie is associated with one lead per call).
PER_CALL = {
    Kind.LEAD: BATCH_SIZE,
    Kind.ACTIVITY: BATCH_SIZE,
    Kind.PROGRAM_STATUS: BATCH_SIZE,
    Kind.CAMPAIGN: 100,
    Kind.COOKIE: 1,
}
# Due records read per scheduling round (as tuples): enough to fill a call from leads that are
# not in flight while others are, few enough to read quickly.
WINDOW = 5000
# A claim outlives any call (timeouts and retries included); a delivery that dies leaves its
# claims, which the next delivery takes over at once (it holds the lock).
LEASE = timedelta(minutes=30)
# Failures that stop a run: nothing can be sent until someone (or time) fixes them.
STOP_CODES = frozenset(
    {"invalid_client", "not_configured", "603", "610", "network", "unavailable", "607"}
)
# Marketo-side errors that may be permanent (611 for tokens of a nested program): after this
# many attempts the record is parked instead of being tried again.
MAX_AMBIGUOUS_ATTEMPTS = 5
UNCONFIRMED = "unconfirmed"
LEAD_PARKED = "lead_parked"
LEAD_PARKED_MESSAGE = (
    "The lead does not exist in Marketo yet: its upsert is parked (or was discarded). Retrying "
    "the upsert sends this record after it."
)
# Marketo's Request Campaign activity, written for each lead a campaign is requested for.
REQUEST_CAMPAIGN_TYPE = 47
# pg_advisory_lock key: "DynChat Marketo outbox".
LOCK_KEY = 0x44594E4F


@dataclass
class Report:
    calls: int = 0
    delivered: int = 0
    parked: int = 0
    deferred: int = 0  # sent back to wait: Marketo unavailable, or the run stopped
    confirmed: int = 0  # unconfirmed records found in Marketo, so not sent again
    stopped: str = ""  # the problem code that ended the run early, if any

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Batch:
    kind: str
    records: list[OutboxRecord]
    keys: set[str]
    path: str = ""
    body: dict | None = None
    params: dict | None = None
    # Which records each input row of the call stands for (a lead's upserts are merged).
    rows: list[list[OutboxRecord]] = field(default_factory=list)


# --- the run -------------------------------------------------------------------------------------


def deliver(
    *, client: MarketoClient | None = None, run_seconds: float | None = None
) -> Report | None:
    """Deliver due records until none is left or the run's time is up. None when write-back is
    off, another delivery is running, or the daily quota is spent."""
    if not writeback.enabled():
        return None
    with _delivery_lock() as held:
        if not held:
            return None
        state = DeliveryState.load()
        if state.resume_at and state.resume_at > timezone.now():
            return None
        own_client = client is None
        if own_client:
            client = MarketoClient(client_config())
        try:
            return _Run(client, run_seconds).run()
        finally:
            if own_client:
                client.close()


def client_config() -> MarketoConfig:
    config = MarketoConfig.from_settings()
    # A call keeps retrying only briefly: its records wait in the outbox, not in a thread.
    return MarketoConfig(
        base_url=config.base_url,
        client_id=config.client_id,
        client_secret=config.client_secret,
        timeout=config.timeout,
        max_retry_seconds=settings.MARKETO_OUTBOX_RETRY_SECONDS,
        limits=config.limits,
        redis_url=config.redis_url,
    )


@contextmanager
def _delivery_lock():
    """One delivery at a time: a PostgreSQL session lock (freed if the worker dies), or a cache
    lock for the embedded SQLite mode."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
            (locked,) = cursor.fetchone()
        try:
            yield locked
        finally:
            if locked:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
        return
    key = "marketo_sync:outbox:lock"
    locked = cache.add(key, 1, timeout=settings.MARKETO_OUTBOX_RUN_SECONDS + 300)
    try:
        yield locked
    finally:
        if locked:
            cache.delete(key)


class _Run:
    def __init__(self, client: MarketoClient, run_seconds: float | None):
        self.client = client
        self.report = Report()
        self.deadline = time.monotonic() + (run_seconds or settings.MARKETO_OUTBOX_RUN_SECONDS)
        self.busy: set[str] = set()
        self.type_ids: dict[str, int] | None = None
        self.state = DeliveryState.load()
        self.calls_before = client.calls
        # Records whose call went unanswered may exist (a dead delivery's, or this one's).
        self.check_unconfirmed = True

    def run(self) -> Report:
        self._note_run()
        self._take_over_claims()
        concurrency = settings.MARKETO_OUTBOX_CONCURRENCY
        in_flight: dict[Future, Batch] = {}
        with ThreadPoolExecutor(concurrency, thread_name_prefix="outbox") as pool:
            while True:
                for future in [f for f in in_flight if f.done()]:
                    batch = in_flight.pop(future)
                    self.busy -= batch.keys
                    self._apply(batch, future)
                if not self.report.stopped and time.monotonic() < self.deadline:
                    if self.check_unconfirmed and not in_flight:
                        self._confirm_unconfirmed()
                    if len(in_flight) < concurrency:
                        batch = self._next_batch()
                        if batch is not None:
                            self.busy |= batch.keys
                            in_flight[pool.submit(self._send, batch)] = batch
                            continue
                if not in_flight:
                    break
                wait(in_flight, return_when=FIRST_COMPLETED)
        self.report.calls = self.client.calls - self.calls_before
        DeliveryState.objects.filter(pk=self.state.pk).update(calls=F("calls") + self.report.calls)
        return self.report

    # --- picking a batch ------------------------------------------------------------------------

    def _next_batch(self) -> Batch | None:
        """Claim the next batch: the call group of the oldest sendable record, filled with the
        runs of every lead that can go in it. None when nothing is due.

        Reads the window as plain tuples (id, lead, rank, call group) and only the chosen
        records whole: this runs before every call, and must cost far less than one."""
        while not self.report.stopped:
            now = timezone.now()
            window = list(
                OutboxRecord.objects.filter(
                    status=Status.PENDING, claimed_until__isnull=True, next_attempt_at__lte=now
                )
                .exclude(error_code=UNCONFIRMED)
                .order_by("rank", "id")
                .values_list("id", "lead_key", "rank", "call_group")[:WINDOW]
            )
            if not window:
                return None
            runs = _runs(window, busy=self.busy, blockers=_blockers(now))
            if not runs:
                return None
            ordered = sorted(runs.values(), key=lambda r: (r[0][2], r[0][0]))
            group = ordered[0][0][3]
            kind = group.partition(":")[0]
            chosen: list[list[int]] = []
            size = 0
            for run in ordered:
                ids = [row[0] for row in takewhile(lambda r, g=group: r[3] == g, run)]
                if not ids:
                    continue
                if kind in (Kind.PROGRAM_STATUS, Kind.CAMPAIGN, Kind.COOKIE):
                    ids = ids[:1]  # one per lead in these calls
                if size + len(ids) > PER_CALL[kind]:
                    if chosen:
                        break
                    ids = ids[: PER_CALL[kind]]
                chosen.append(ids)
                size += len(ids)
            loaded = OutboxRecord.objects.in_bulk([pk for ids in chosen for pk in ids])
            batch = self._build(kind, [[loaded[pk] for pk in ids] for ids in chosen])
            if batch is not None:
                return batch
        return None

    def _build(self, kind: str, runs: list[list[OutboxRecord]]) -> Batch | None:
        """Claim the records of `runs` and write the call. Records that cannot be sent (their
        lead has no Marketo id) are parked instead; None if that leaves nothing."""
        records = [r for run in runs for r in run]
        if kind != Kind.LEAD:
            ids = self._lead_ids({r.lead_key for r in records})
            unsendable = [r for r in records if r.lead_key not in ids]
            if unsendable:
                self._park(unsendable, LEAD_PARKED, LEAD_PARKED_MESSAGE)
                runs = [run for run in runs if run[0].lead_key in ids]
                records = [r for run in runs for r in run]
            if not records:
                return None
        else:
            ids = {}
        now = timezone.now()
        OutboxRecord.objects.filter(id__in=[r.id for r in records]).update(
            claimed_until=now + LEASE, attempts=F("attempts") + 1
        )
        for record in records:
            record.attempts += 1
        batch = Batch(kind=kind, records=records, keys={r.lead_key for r in records})
        try:
            _write_call(self, batch, runs, ids)
        except MarketoError as exc:  # creating the activity types failed
            self._release(batch)
            self._failed(batch, exc)
            return None
        return batch

    def _lead_ids(self, keys: set[str]) -> dict[str, int]:
        """Marketo lead ids by lead key: "id:<n>" keys, then ids learnt from upserts, then the
        synced leads (most recently updated first, as Marketo's own lookups by email)."""
        ids = {k: int(k[3:]) for k in keys if k.startswith("id:")}
        emails = keys - ids.keys()
        ids.update(KnownLead.objects.filter(lead_key__in=emails).values_list("lead_key", "lead_id"))
        missing = emails - ids.keys()
        if missing:
            rows = (
                Lead.objects.alias(email_lower=Lower("email"))
                .filter(email_lower__in=missing)
                .order_by(F("updated_at").asc(nulls_first=True), "id")
                .values_list("email", "id")
            )
            ids.update({email.lower(): pk for email, pk in rows})
        return ids

    def activity_type_ids(self) -> dict[str, int]:
        if self.type_ids is None:
            self.type_ids = ensure_activity_types(self.client)
        return self.type_ids

    # --- sending and applying answers ----------------------------------------------------------

    def _send(self, batch: Batch) -> dict:
        """In a worker thread: the call, and nothing else (no database)."""
        repeatable = batch.kind not in (Kind.ACTIVITY, Kind.CAMPAIGN)
        return self.client.post(batch.path, batch.body, params=batch.params, repeatable=repeatable)

    def _apply(self, batch: Batch, future: Future) -> None:
        try:
            answer = future.result()
        except OutcomeUnknown as exc:
            self._unconfirmed(batch, exc)
            return
        except MarketoError as exc:
            self._release(batch)
            self._failed(batch, exc)
            return
        _apply_answer(self, batch, answer)
        self._succeeded()

    def _failed(self, batch: Batch, exc: MarketoError) -> None:
        """A call failed as a whole: stop (and wait) or park, by what Marketo said."""
        if isinstance(exc, QuotaError) or exc.code in STOP_CODES:
            resume_at = getattr(exc, "resets_at", None) if isinstance(exc, QuotaError) else None
            self._defer(batch.records, exc, until=resume_at)
            self._problem(exc, resume_at=resume_at)
            self.report.stopped = exc.code
            return
        self._park(batch.records, exc.code, exc.message)

    def _unconfirmed(self, batch: Batch, exc: MarketoError) -> None:
        """No answer to a write that must not be repeated: check Marketo before sending again,
        unless it keeps happening (then park it with the error)."""
        if batch.records[0].attempts >= MAX_AMBIGUOUS_ATTEMPTS:
            self._park(batch.records, exc.code, exc.message)
            return
        OutboxRecord.objects.filter(id__in=[r.id for r in batch.records]).update(
            claimed_until=None, error_code=UNCONFIRMED, error_message=f"{exc.code}: {exc.message}"
        )
        self.check_unconfirmed = True
        logger.warning(
            "Marketo's answer to %s %s records was lost (%s); checking before resending",
            len(batch.records),
            batch.kind,
            exc.code,
        )

    def _release(self, batch: Batch) -> None:
        OutboxRecord.objects.filter(id__in=[r.id for r in batch.records]).update(claimed_until=None)

    def _defer(self, records, exc: MarketoError, *, until: datetime | None = None) -> None:
        now = timezone.now()
        attempts = max(r.attempts for r in records)
        if until is None:
            until = now + timedelta(seconds=backoff_seconds(attempts))
        OutboxRecord.objects.filter(id__in=[r.id for r in records]).update(
            claimed_until=None,
            next_attempt_at=until,
            error_code=exc.code[:32],
            error_message=exc.explain(),
        )
        self.report.deferred += len(records)

    def _park(self, records, code: str, message: str) -> None:
        OutboxRecord.objects.filter(id__in=[r.id for r in records]).update(
            status=Status.PARKED, claimed_until=None, error_code=code[:32], error_message=message
        )
        self.report.parked += len(records)
        logger.warning("Parked %s outbox records: %s %s", len(records), code, message)

    def _problem(self, exc: MarketoError, *, resume_at: datetime | None) -> None:
        state = self.state
        if state.problem_code != exc.code:
            state.problem_since = timezone.now()
        state.problem_code = exc.code[:32]
        state.problem_message = exc.explain()
        state.resume_at = resume_at
        state.save(update_fields=["problem_code", "problem_message", "problem_since", "resume_at"])

    def _succeeded(self) -> None:
        state = self.state
        state.last_delivered_at = timezone.now()
        state.problem_code = state.problem_message = ""
        state.problem_since = state.resume_at = None
        state.save(
            update_fields=[
                "last_delivered_at",
                "problem_code",
                "problem_message",
                "problem_since",
                "resume_at",
            ]
        )

    def _note_run(self) -> None:
        self.state.last_run_at = timezone.now()
        self.state.save(update_fields=["last_run_at"])

    def _take_over_claims(self) -> None:
        """Claims left by a delivery that died: its calls may or may not have reached Marketo."""
        claimed = OutboxRecord.objects.filter(status=Status.PENDING, claimed_until__isnull=False)
        claimed.filter(kind__in=(Kind.ACTIVITY, Kind.CAMPAIGN)).update(
            claimed_until=None,
            error_code=UNCONFIRMED,
            error_message="The delivery sending it died.",
        )
        claimed.update(claimed_until=None)

    def _confirm_unconfirmed(self) -> None:
        records = list(
            OutboxRecord.objects.filter(
                status=Status.PENDING, error_code=UNCONFIRMED, claimed_until__isnull=True
            ).order_by("id")[:BATCH_SIZE]
        )
        if not records:
            self.check_unconfirmed = False
            return
        try:
            confirmed = confirm(self.client, records, self._lead_ids({r.lead_key for r in records}))
        except MarketoError as exc:
            # Tried again by the next delivery; they stay unconfirmed (and unsent) meanwhile.
            self.check_unconfirmed = False
            if isinstance(exc, QuotaError) or exc.code in STOP_CODES:
                self._problem(exc, resume_at=getattr(exc, "resets_at", None))
                self.report.stopped = exc.code
            return
        found = [r for r in records if r.id in confirmed]
        mark_delivered([(r.id, confirmed[r.id], "") for r in found])
        OutboxRecord.objects.filter(id__in=[r.id for r in records if r.id not in confirmed]).update(
            error_code="", error_message=""
        )
        self.report.confirmed += len(found)
        self.report.delivered += len(found)


def _blockers(now: datetime) -> dict[str, tuple[int, int]]:
    """Per lead, the earliest (rank, id) of its records that were tried before and cannot go
    now: waiting out a backoff, or unconfirmed. None of the lead's later records may go before
    it. (In-flight records need no check: their leads are busy.) Few rows, from a small
    partial index: most pending records have never been tried."""
    blockers: dict[str, tuple[int, int]] = {}
    rows = (
        OutboxRecord.objects.filter(
            status=Status.PENDING, attempts__gt=0, claimed_until__isnull=True
        )
        .filter(Q(next_attempt_at__gt=now) | Q(error_code=UNCONFIRMED))
        .values_list("lead_key", "rank", "id")
    )
    for key, rank, pk in rows:
        if key not in blockers or (rank, pk) < blockers[key]:
            blockers[key] = (rank, pk)
    return blockers


def _runs(window, *, busy: set[str], blockers: dict) -> dict[str, list[tuple]]:
    """For each lead of `window` (rows in (rank, id) order) that is not busy: its records in
    their order, up to the first one that cannot go. The window holds every due record of a
    lead before its last one in it, so a lead's rows in it are the start of its queue."""
    runs: dict[str, list[tuple]] = {}
    for row in window:
        key = row[1]
        if key in busy:
            continue
        blocker = blockers.get(key)
        if blocker is not None and blocker < (row[2], row[0]):
            continue
        runs.setdefault(key, []).append(row)
    return runs


def backoff_seconds(attempts: int, *, rng=random) -> float:
    """Exponential backoff with jitter: about 5 s, 10 s, 20 s ... up to the configured cap."""
    cap = settings.MARKETO_OUTBOX_MAX_BACKOFF_SECONDS
    ceiling = min(cap, 5 * 2 ** max(attempts - 1, 0))
    return rng.uniform(ceiling / 2, ceiling)


# --- what each kind of record becomes ------------------------------------------------------------


def _write_call(run: _Run, batch: Batch, runs: list[list[OutboxRecord]], ids: dict) -> None:
    kind = batch.kind
    if kind == Kind.LEAD:
        mappings = _mappings({r.site_id for r in batch.records})
        inputs = []
        for lead_run in runs:
            merged: dict = {}
            for record in lead_run:
                mapping = mappings[record.site_id]
                merged.update(
                    {
                        mapping[name]: value
                        for name, value in record.payload["attributes"].items()
                        if mapping.get(name)
                    }
                )
            inputs.append({**merged, "email": lead_run[-1].payload["email"]})
            batch.rows.append(lead_run)
        batch.path = "/rest/v1/leads.json"
        batch.body = {"action": "createOrUpdate", "lookupField": "email", "input": inputs}
    elif kind == Kind.COOKIE:
        record = batch.records[0]
        batch.path = f"/rest/v1/leads/{ids[record.lead_key]}/associate.json"
        batch.params = {"cookie": record.payload["cookie"]}
        batch.body = {}
        batch.rows = [[record]]
    elif kind == Kind.ACTIVITY:
        type_ids = run.activity_type_ids()
        meetings = _meetings(batch.records)
        inputs = []
        for record in batch.records:
            payload = record.payload
            attributes = {**payload["attributes"], "dynchatEventId": str(record.id)}
            meeting = meetings.get(payload.get("meeting_id") or "")
            if payload["type"] == "meeting" and meeting:
                attributes["agentName"], attributes["agentEmail"] = meeting
            inputs.append(
                {
                    "leadId": ids[record.lead_key],
                    "activityDate": payload["activityDate"],
                    "activityTypeId": type_ids[payload["type"]],
                    "primaryAttributeValue": payload["primary"],
                    "attributes": [
                        {"apiName": name, "value": value}
                        for name, value in attributes.items()
                        if value not in ("", None)
                    ],
                }
            )
            batch.rows.append([record])
        batch.path = "/rest/v1/activities/external.json"
        batch.body = {"input": inputs}
    elif kind == Kind.PROGRAM_STATUS:
        first = batch.records[0].payload
        batch.path = f"/rest/v1/programs/{first['program_id']}/members/status.json"
        batch.body = {
            "statusName": first["status"],
            "input": [{"leadId": ids[r.lead_key]} for r in batch.records],
        }
        batch.rows = [[r] for r in batch.records]
    elif kind == Kind.CAMPAIGN:
        first = batch.records[0]
        meetings = _meetings([first])
        tokens = _tokens(first.payload["tokens"], meetings.get(first.payload.get("meeting_id", "")))
        body = {"input": {"leads": [{"id": ids[r.lead_key]} for r in batch.records]}}
        if tokens:
            body["input"]["tokens"] = tokens
        batch.path = f"/rest/v1/campaigns/{first.payload['campaign_id']}/trigger.json"
        batch.body = body
        batch.rows = [[r] for r in batch.records]


def _tokens(tokens: list[dict], meeting: tuple[str, str] | None) -> list[dict]:
    bound = {"agent_name": meeting[0], "agent_email": meeting[1]} if meeting else {}
    return [
        {"name": t["name"], "value": t["value"] if "value" in t else bound.get(t["bind"], "")}
        for t in tokens
    ]


def _mappings(site_ids: set[int]) -> dict[int, dict]:
    from marketo_sync.models import DEFAULT_FIELD_MAPPING

    found = dict(
        LeadFieldMapping.objects.filter(site_id__in=site_ids).values_list("site_id", "fields")
    )
    return {site_id: found.get(site_id, DEFAULT_FIELD_MAPPING) for site_id in site_ids}


def _meetings(records) -> dict[str, tuple[str, str]]:
    """The agent (name, email) of the meetings these records mention, by meeting id."""
    from meetings.models import Meeting

    ids = {r.payload.get("meeting_id") for r in records} - {None, ""}
    if not ids:
        return {}
    rows = Meeting.objects.filter(pk__in=ids).values_list("pk", "agent_name", "agent_email")
    return {str(pk): (name, email) for pk, name, email in rows}


def mark_delivered(rows: list[tuple[int, str, str]]) -> None:
    """Mark records delivered: (id, what Marketo answered for it, Marketo's note), in one
    statement on PostgreSQL."""
    if not rows:
        return
    table = connection.ops.quote_name(OutboxRecord._meta.db_table)
    now = timezone.now()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            ids, marketo_ids, notes = (list(column) for column in zip(*rows, strict=True))
            cursor.execute(
                f"UPDATE {table} AS o SET status = %s, delivered_at = %s, claimed_until = NULL,"  # noqa: S608
                " marketo_id = v.marketo_id, error_code = '', error_message = v.note"
                " FROM (SELECT unnest(%s::bigint[]) AS id, unnest(%s::text[]) AS marketo_id,"
                " unnest(%s::text[]) AS note) AS v WHERE o.id = v.id",
                [Status.DELIVERED, now, ids, marketo_ids, notes],
            )
            return
        cursor.executemany(
            f"UPDATE {table} SET status = %s, delivered_at = %s, claimed_until = NULL,"  # noqa: S608
            " marketo_id = %s, error_code = '', error_message = %s WHERE id = %s",
            [(Status.DELIVERED, now, marketo_id, note, pk) for pk, marketo_id, note in rows],
        )


def _apply_answer(run: _Run, batch: Batch, answer: dict) -> None:
    """Mark what Marketo took delivered and park what it refused, record by record."""
    delivered: list[tuple[int, str, str]] = []  # id, Marketo id, Marketo's note
    refused: dict[tuple[str, str], list[OutboxRecord]] = defaultdict(list)
    results = answer.get("result") or []
    learnt: dict[str, int] = {}
    for index, records in enumerate(batch.rows):
        result = results[index] if index < len(results) else {}
        if batch.kind == Kind.PROGRAM_STATUS:
            # Answers carry the input's position in `seq`.
            result = next((r for r in results if r.get("seq") == index), result)
        status = result.get("status")
        if batch.kind in (Kind.COOKIE, Kind.CAMPAIGN):
            status, marketo_id = "done", str(result.get("id", ""))
        else:
            marketo_id = str(result.get("marketoGUID") or result.get("id") or "")
        problems = result.get("reasons") or result.get("errors") or []
        if status == "skipped" and problems and str(problems[0].get("code")) == "1037":
            status = "done"  # already in (or past) that program status
        if status in ("created", "updated", "added", "done"):
            note = str(problems[0].get("message", "")) if problems else ""
            delivered.extend((record.id, marketo_id[:64], note) for record in records)
            if batch.kind == Kind.LEAD and result.get("id"):
                learnt[records[0].lead_key] = int(result["id"])
        else:
            problem = problems[0] if problems else {}
            code = str(problem.get("code") or "skipped")
            message = str(problem.get("message") or f"Marketo answered {result or 'nothing'}")
            refused[(code, message)].extend(records)
    with transaction.atomic():
        KnownLead.objects.bulk_create(
            [KnownLead(lead_key=key, lead_id=lead_id) for key, lead_id in learnt.items()],
            update_conflicts=True,
            unique_fields=["lead_key"],
            update_fields=["lead_id", "updated_at"],
        )
        mark_delivered(delivered)
        for (code, message), records in refused.items():
            run._park(records, code, message)
    run.report.delivered += len(delivered)


# --- reading back what an unanswered call did ----------------------------------------------------


def confirm(client: MarketoClient, records: list[OutboxRecord], lead_ids: dict) -> dict[int, str]:
    """Which of these unconfirmed records Marketo has in fact applied: {record id: Marketo id}.

    Activities are found by their DynChat Event ID attribute, campaign requests by the Request
    Campaign activity Marketo writes for each lead (that campaign, since the record was made)."""
    records = [r for r in records if r.lead_key in lead_ids]
    if not records:
        return {}
    type_ids = set()
    if any(r.kind == Kind.ACTIVITY for r in records):
        type_ids |= set(
            CustomActivityType.objects.exclude(marketo_id=None).values_list("marketo_id", flat=True)
        )
    if any(r.kind == Kind.CAMPAIGN for r in records):
        type_ids.add(REQUEST_CAMPAIGN_TYPE)
    if not type_ids:
        return {}
    since = min(r.created_at for r in records) - timedelta(minutes=5)
    token = client.get(
        "/rest/v1/activities/pagingtoken.json", {"sinceDatetime": since.isoformat()}
    )["nextPageToken"]
    leads = sorted({lead_ids[r.lead_key] for r in records})
    events: dict[str, str] = {}
    requests: list[tuple[int, int, str]] = []  # lead id, campaign id, date
    for start in range(0, len(leads), 30):
        page_token = token
        while True:
            page = client.lookup(
                "/rest/v1/activities.json",
                {
                    "nextPageToken": page_token,
                    "activityTypeIds": ",".join(str(t) for t in sorted(type_ids)),
                    "leadIds": ",".join(str(i) for i in leads[start : start + 30]),
                },
            )
            for activity in page.get("result") or []:
                guid = str(activity.get("marketoGUID") or activity.get("id") or "")
                if activity.get("activityTypeId") == REQUEST_CAMPAIGN_TYPE:
                    requests.append(
                        (
                            activity.get("leadId"),
                            activity.get("campaignId"),
                            activity.get("activityDate", ""),
                        )
                    )
                    continue
                for attribute in activity.get("attributes") or []:
                    if attribute.get("name") in ("DynChat Event ID", "dynchatEventId"):
                        events[str(attribute.get("value"))] = guid
            page_token = page.get("nextPageToken", page_token)
            if not page.get("moreResult"):
                break
    confirmed = {}
    for record in records:
        if record.kind == Kind.ACTIVITY and str(record.id) in events:
            confirmed[record.id] = events[str(record.id)]
        elif record.kind == Kind.CAMPAIGN:
            lead_id = lead_ids[record.lead_key]
            for lead, campaign, date in requests:
                if (
                    lead == lead_id
                    and campaign == record.payload["campaign_id"]
                    and _parse(date) >= record.created_at
                ):
                    confirmed[record.id] = str(campaign)
                    break
    return confirmed


def _parse(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


# --- custom activity types -----------------------------------------------------------------------


def ensure_activity_types(client: MarketoClient) -> dict[str, int]:
    """Make sure DynChat's custom activity types exist in Marketo, approved, with all their
    attributes; create or complete them if not. Returns {event: activity type id}.

    Cheap once done: the types are remembered in CustomActivityType and Marketo is asked only
    when one is missing or lacks an attribute."""
    stored = {t.api_name: t for t in CustomActivityType.objects.all()}
    wanted = writeback.ACTIVITY_TYPES.values()
    if all(
        (t := stored.get(spec.api_name))
        and t.marketo_id
        and t.status == "approved"
        and {a.api_name for a in spec.attributes} <= set(t.attributes)
        for spec in wanted
    ):
        return {spec.event: stored[spec.api_name].marketo_id for spec in wanted}
    listing = {
        t["apiName"]: t
        for t in client.get("/rest/v1/activities/external/types.json").get("result") or []
    }
    ids = {}
    for spec in wanted:
        found = listing.get(spec.api_name)
        base = f"/rest/v1/activities/external/type/{spec.api_name}"
        if found is None:
            created = client.post(
                "/rest/v1/activities/external/type.json",
                {
                    "apiName": spec.api_name,
                    "name": spec.name,
                    "triggerName": spec.trigger_name,
                    "filterName": spec.filter_name,
                    "description": spec.description,
                    "primaryAttribute": {
                        "apiName": writeback.PRIMARY.api_name,
                        "name": writeback.PRIMARY.name,
                        "description": writeback.PRIMARY.description,
                        "dataType": writeback.PRIMARY.data_type,
                    },
                },
            )
            found = (created.get("result") or [{}])[0]
            found.setdefault("attributes", [])
        have = {a.get("apiName") for a in found.get("attributes") or []}
        missing = [a for a in spec.attributes if a.api_name not in have]
        if missing:
            client.post(
                f"{base}/attributes/create.json",
                {
                    "attributes": [
                        {
                            "apiName": a.api_name,
                            "name": a.name,
                            "dataType": a.data_type,
                            "description": a.description,
                        }
                        for a in missing
                    ]
                },
            )
        if missing or found.get("status") != "approved":
            client.post(f"{base}/approve.json", {})
        described = client.get(f"{base}/describe.json").get("result") or [{}]
        type_id = described[0].get("id") or found.get("id")
        CustomActivityType.objects.update_or_create(
            api_name=spec.api_name,
            defaults={
                "marketo_id": type_id,
                "status": "approved",
                "attributes": [a.get("apiName") for a in described[0].get("attributes") or []]
                or [a.api_name for a in spec.attributes],
            },
        )
        ids[spec.event] = type_id
    return ids


# --- housekeeping --------------------------------------------------------------------------------


def purge_delivered(*, now: datetime | None = None) -> int:
    """Delete delivered records older than MARKETO_OUTBOX_KEEP_DAYS."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.MARKETO_OUTBOX_KEEP_DAYS)
    deleted, _ = OutboxRecord.objects.filter(
        status=Status.DELIVERED, delivered_at__lt=cutoff
    ).delete()
    return deleted
