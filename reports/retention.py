"""Deleting raw engagement data once it is older than RETENTION_DAYS (the nightly purge).

What goes: chat events and transcript lines, then the conversations they belonged to once
nothing of them is left, anonymous visitors with no conversation left, outbox records that
waited for an email that never came, and synced Marketo activities. What stays: the daily
report tables (reports.models), which the events were counted into first, meetings (their
conversation becomes NULL), known visitors, and everything newer than the cutoff.

How it stays fast and safe:
- The work is cut into batches, each one short transaction, so row locks are brief and a
  purge that dies (a crash, a deploy, the task's time limit) loses nothing and leaves nothing
  half done: every batch deletes children before their parents and re-checks, in its own
  statements, that a row is still expired. The next run carries on where it stopped.
- Events and transcript lines are found through their conversation (the started_at index,
  then the foreign key indexes), not by scanning them by date: an event is never older than
  its conversation's start. The BRIN indexes on their created_at would do too on a table
  written in time order, but once purged pages are reused by new rows their block ranges
  cover every date and a date scan reads the whole table.
- Rows are deleted with plain `DELETE ... WHERE id IN (...)`: no model is loaded and no
  delete signal is sent (Django's collector would fetch every conversation and visitor first).
- One purge runs at a time (a PostgreSQL advisory lock); a second one reports `busy`.

A conversation, visitor or outbox record that a request holds locked at that moment is
skipped (SKIP LOCKED) and goes the next night.
"""

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from marketo_sync.models import Activity, OutboxRecord
from meetings.models import Meeting
from reports import rollup
from widget.models import Conversation, ConversationEvent, TranscriptEntry, Visitor

logger = logging.getLogger(__name__)

# Ids per statement and transaction: visitors, outbox records and Marketo activities.
BATCH = 5000
# Conversations per transaction: with their events (about 5 each) and transcript lines
# (about 3 each), about 5,000 events, as for the other batches.
CONVERSATION_BATCH = 1000
# pg_advisory_lock key: "DYNP", DynChat purge.
LOCK_KEY = 0x44594E50

WAITING = OutboxRecord.Status.WAITING


@dataclass
class PurgeReport:
    """What a purge deleted (or, for a dry run, would delete), by kind."""

    cutoff: datetime
    dry_run: bool = False
    # Another purge held the lock: this one did nothing.
    busy: bool = False
    # Events counted into the report tables first (a dry run: events not counted yet, which
    # the purge would count before deleting them).
    counted: int = 0
    events: int = 0
    transcript_entries: int = 0
    conversations: int = 0
    # Meetings whose conversation went: the meeting is kept, its conversation set to NULL.
    meetings_kept: int = 0
    visitors: int = 0
    outbox_records: int = 0
    activities: int = 0
    # Events older than the cutoff still not counted into the reports (the rollup failed or
    # skipped them): kept, with their conversation, until a rollup has counted them.
    uncounted_events_kept: int = 0
    seconds: float = 0.0

    # What the purge deletes, as the summary names it (singular, plural).
    DELETED = {
        "events": ("chat event", "chat events"),
        "transcript_entries": ("transcript line", "transcript lines"),
        "conversations": ("conversation", "conversations"),
        "visitors": ("anonymous visitor", "anonymous visitors"),
        "outbox_records": ("waiting outbox record", "waiting outbox records"),
        "activities": ("Marketo activity", "Marketo activities"),
    }

    def as_dict(self) -> dict:
        """JSON-ready (the Celery task's result, `purge_expired --json`)."""
        data = asdict(self)
        data["cutoff"] = self.cutoff.isoformat()
        data["seconds"] = round(self.seconds, 3)
        return data

    def summary(self) -> str:
        """One line for people: "3 chat events, 1 conversation, ..." (kinds with a count)."""
        return counted_list({name: getattr(self, name) for name in self.DELETED}, self.DELETED)


def counted_list(counts: dict[str, int], names: dict[str, tuple[str, str]]) -> str:
    """ "1 conversation, 3 chat events" for the kinds with a count, in `names`' order;
    "nothing" when none has one."""
    parts = [
        f"{counts[kind]:,} {names[kind][0] if counts[kind] == 1 else names[kind][1]}"
        for kind in names
        if counts.get(kind)
    ]
    return ", ".join(parts) or "nothing"


def purge_expired(
    *, now: datetime | None = None, days: int | None = None, dry_run: bool = False
) -> PurgeReport:
    """Delete raw data older than `days` (RETENTION_DAYS) before `now`; with `dry_run`,
    count what would go and change nothing (not even the rollup).

    Returns the report; `busy` set, and nothing done, when another purge is running.
    """
    days = settings.RETENTION_DAYS if days is None else days
    if days < 1:
        raise ValueError("The retention period is at least one day.")
    cutoff = (now or timezone.now()) - timedelta(days=days)
    report = PurgeReport(cutoff=cutoff, dry_run=dry_run)
    started = time.monotonic()
    if dry_run:
        _count_expired(cutoff, report)
    else:
        with _purge_lock() as locked:
            if not locked:
                report.busy = True
                return report
            _purge(cutoff, report)
    report.seconds = time.monotonic() - started
    logger.info("Retention purge before %s: %s", cutoff.isoformat(), report.as_dict())
    return report


def _purge(cutoff: datetime, report: PurgeReport) -> None:
    # Count every event into the daily tables before any of them can go.
    report.counted = rollup.roll_up()
    for ids in _expired_conversation_ids(cutoff):
        _purge_conversations(ids, cutoff, report)
    for ids in _ids_in_batches(_expired_waiting_records(cutoff)):
        _purge_waiting_records(ids, cutoff, report)
    for ids in _expired_visitor_ids(cutoff):
        _purge_visitors(ids, cutoff, report)
    for ids in _ids_in_batches(_expired_activities(cutoff)):
        _purge_activities(ids, cutoff, report)
    # The partial index event_not_rolled_up holds a handful of rows: cheap.
    report.uncounted_events_kept = ConversationEvent.objects.filter(
        rolled_up=False, created_at__lt=cutoff
    ).count()
    if report.uncounted_events_kept:
        logger.warning(
            "Retention purge: %d events older than %s are not counted into the reports yet "
            "and were kept",
            report.uncounted_events_kept,
            cutoff.isoformat(),
        )


# --- the batches ---------------------------------------------------------------------------


@transaction.atomic
def _purge_conversations(ids: Sequence, cutoff: datetime, report: PurgeReport) -> None:
    """One batch of conversations started before the cutoff: delete their expired events
    (counted ones only) and transcript lines, then the conversations whose last activity is
    before the cutoff and that have nothing left; their meetings stay, without them."""
    report.events += delete_rows(
        ConversationEvent.objects.filter(
            conversation_id__in=ids, created_at__lt=cutoff, rolled_up=True
        )
    )
    report.transcript_entries += delete_rows(
        TranscriptEntry.objects.filter(conversation_id__in=ids, created_at__lt=cutoff)
    )
    gone = list(
        _emptied(Conversation.objects.filter(pk__in=ids, updated_at__lt=cutoff))
        .select_for_update(skip_locked=True)
        .values_list("pk", flat=True)
    )
    if not gone:
        return
    report.meetings_kept += Meeting.objects.filter(conversation_id__in=gone).update(
        conversation=None
    )
    OutboxRecord.objects.filter(conversation_id__in=gone).update(conversation=None)
    report.conversations += delete_by_ids(Conversation, gone)


def _emptied(conversations: QuerySet) -> QuerySet:
    """The conversations that have no event and no transcript line left."""
    return conversations.exclude(
        Exists(ConversationEvent.objects.filter(conversation=OuterRef("pk")))
    ).exclude(Exists(TranscriptEntry.objects.filter(conversation=OuterRef("pk"))))


@transaction.atomic
def _purge_waiting_records(ids: Sequence, cutoff: datetime, report: PurgeReport) -> None:
    """Outbox records still waiting for an email, written before the cutoff. The statement
    checks they still wait: a record released meanwhile (the visitor gave an email) stays."""
    report.outbox_records += delete_rows(
        OutboxRecord.objects.filter(pk__in=ids, status=WAITING, created_at__lt=cutoff)
    )


@transaction.atomic
def _purge_visitors(ids: Sequence, cutoff: datetime, report: PurgeReport) -> None:
    """One batch of visitors created before the cutoff: those still anonymous, not seen since
    the cutoff and without conversations go, with their waiting outbox records; their other
    records (sent or parked: Marketo's, no longer theirs) stay without them."""
    gone = list(
        Visitor.objects.filter(pk__in=ids, email="", last_seen_at__lt=cutoff)
        .exclude(Exists(Conversation.objects.filter(visitor=OuterRef("pk"))))
        .select_for_update(skip_locked=True)
        .values_list("pk", flat=True)
    )
    if not gone:
        return
    report.outbox_records += delete_rows(
        OutboxRecord.objects.filter(visitor_id__in=gone, status=WAITING)
    )
    OutboxRecord.objects.filter(visitor_id__in=gone).update(visitor=None)
    report.visitors += delete_by_ids(Visitor, gone)


@transaction.atomic
def _purge_activities(ids: Sequence, cutoff: datetime, report: PurgeReport) -> None:
    report.activities += delete_rows(Activity.objects.filter(pk__in=ids, activity_date__lt=cutoff))


# --- finding what expired ------------------------------------------------------------------


def _expired_conversation_ids(cutoff: datetime) -> Iterator[list]:
    """Ids of conversations started before the cutoff, oldest first, CONVERSATION_BATCH at
    a time (the conversation_started index)."""
    rows = Conversation.objects.filter(started_at__lt=cutoff)
    return _keyset_batches(rows, "started_at", CONVERSATION_BATCH)


def _expired_visitor_ids(cutoff: datetime) -> Iterator[list]:
    """Ids of anonymous visitors created before the cutoff (the visitor_created index; a
    visitor last seen before the cutoff was created before it), BATCH at a time."""
    rows = Visitor.objects.filter(created_at__lt=cutoff, email="")
    return _keyset_batches(rows, "created_at", BATCH)


def _keyset_batches(rows: QuerySet, column: str, size: int) -> Iterator[list]:
    """The ids of `rows` in (`column`, id) order, `size` at a time. Each batch walks on from
    the last row seen, so the rows a batch keeps (a conversation still active or holding
    uncounted events, a visitor with a conversation left) are not read again in this run."""
    rows = rows.order_by(column, "pk")
    after = None
    while True:
        page = rows
        if after is not None:
            page = rows.filter(**{f"{column}__gte": after[0]}).exclude(
                **{column: after[0], "pk__lte": after[1]}
            )
        found = list(page.values_list(column, "pk")[:size])
        if not found:
            return
        yield [pk for _, pk in found]
        if len(found) < size:
            return
        after = found[-1]


def _expired_waiting_records(cutoff: datetime) -> QuerySet:
    return OutboxRecord.objects.filter(status=WAITING, created_at__lt=cutoff)


def _expired_activities(cutoff: datetime) -> QuerySet:
    # The BRIN index on activity_date (marketo_sync migration 0002).
    return Activity.objects.filter(activity_date__lt=cutoff)


def _ids_in_batches(rows: QuerySet) -> Iterator[list]:
    """The primary keys of `rows`, BATCH at a time, read by one query.

    On PostgreSQL outside a transaction this is a cursor WITH HOLD: the query runs once and
    its result is kept by the server while the batches are deleted, each in its own
    transaction (re-running the query per batch would scan the deleted rows again each time).
    """
    batch: list = []
    for pk in rows.order_by().values_list("pk", flat=True).iterator(chunk_size=BATCH):
        batch.append(pk)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


# --- deleting ------------------------------------------------------------------------------


def delete_rows(rows: QuerySet) -> int:
    """DELETE the rows of a queryset in one statement, none of them loaded. Returns how many.
    The caller makes sure nothing refers to them any more (for events, transcript lines,
    outbox records, activities: nothing does).

    QuerySet._raw_delete is what Django's own collector runs when it can "fast delete"; called
    directly it stays fast even if a delete signal receiver is added to a model one day."""
    # None when Django knows no row can match (an empty `__in`): nothing was deleted.
    return rows._raw_delete(rows.db) or 0


def delete_by_ids(model, ids: Sequence) -> int:
    """DELETE rows by primary key in one statement, without Django's collector: the caller
    has already deleted or detached everything that refers to them (the database's foreign
    keys would refuse the transaction otherwise)."""
    if not ids:
        return 0
    return delete_rows(model.objects.filter(pk__in=ids))


# --- the lock ------------------------------------------------------------------------------


class _purge_lock:
    """One purge at a time on PostgreSQL (a session advisory lock, freed by PostgreSQL if the
    worker dies). Yields whether it was taken. Elsewhere (SQLite) there is no lock."""

    def __enter__(self) -> bool:
        self.locked = True
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
                (self.locked,) = cursor.fetchone()
            self.taken = self.locked
        else:
            self.taken = False
        return self.locked

    def __exit__(self, *exc) -> None:
        if self.taken:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])


# --- the dry run ---------------------------------------------------------------------------


def _count_expired(cutoff: datetime, report: PurgeReport) -> None:
    """What a purge would delete now, read only. Events not counted yet are included (the
    purge counts them first) and reported as `counted`."""
    old_events = ConversationEvent.objects.filter(created_at__lt=cutoff)
    report.events = old_events.count()
    report.counted = old_events.filter(rolled_up=False).count()
    report.transcript_entries = TranscriptEntry.objects.filter(created_at__lt=cutoff).count()
    gone = _conversations_that_would_go(cutoff)
    report.conversations = gone.count()
    report.meetings_kept = Meeting.objects.filter(conversation__in=gone).count()
    visitors = (
        Visitor.objects.filter(created_at__lt=cutoff, email="", last_seen_at__lt=cutoff)
        .exclude(
            Exists(
                Conversation.objects.filter(visitor=OuterRef("pk")).exclude(
                    pk__in=gone.values("pk")
                )
            )
        )
        .values("pk")
    )
    report.visitors = visitors.count()
    report.outbox_records = (
        OutboxRecord.objects.filter(status=WAITING)
        .filter(Q(created_at__lt=cutoff) | Q(visitor__in=visitors))
        .count()
    )
    report.activities = _expired_activities(cutoff).count()


def _conversations_that_would_go(cutoff: datetime) -> QuerySet:
    recent_events = ConversationEvent.objects.filter(
        conversation=OuterRef("pk"), created_at__gte=cutoff
    )
    recent_lines = TranscriptEntry.objects.filter(
        conversation=OuterRef("pk"), created_at__gte=cutoff
    )
    return (
        Conversation.objects.filter(started_at__lt=cutoff, updated_at__lt=cutoff)
        .exclude(Exists(recent_events))
        .exclude(Exists(recent_lines))
    )
