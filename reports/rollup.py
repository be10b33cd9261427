"""Counting chat events into the daily report tables, once each.

Every chat step writes ConversationEvents (widget.services.record_step). A rollup takes the
oldest events not yet counted, adds them into DialogueDay, CardDay and PageDay, and marks them
counted, all in one transaction: a rollup that dies counts nothing, and the next one counts
the same events again from scratch. Two rollups at once take different events (SKIP LOCKED),
and add into the report rows in the same (sorted) order, so they cannot deadlock.

Beat runs a rollup every minute, and each chat step starts one a few seconds after it commits
(kick), so the reports trail the chat by seconds. In the embedded mode (Celery eager, no
worker) the kick rolls up right after the step's commit.
"""

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction

from reports.models import CardDay, DialogueDay, PageDay
from widget.models import ConversationEvent

logger = logging.getLogger(__name__)

Kind = ConversationEvent.Kind
KICK_KEY = "reports:rollup-kick"
KICK_DELAY_SECONDS = 5
PAGE_LENGTH = PageDay._meta.get_field("page").max_length

# Which DialogueDay and PageDay column each kind of event adds one to.
DIALOGUE_COUNTS = {
    Kind.TRIGGERED: "triggered",
    Kind.ENGAGED: "engaged",
    Kind.COMPLETED: "completed",
    Kind.MEETING_BOOKED: "meetings",
    Kind.GOAL_REACHED: "goals",
    Kind.ROUTING_FALLBACK: "fallbacks",
}
PAGE_COUNTS = {Kind.TRIGGERED: "triggered", Kind.ENGAGED: "engaged", Kind.COMPLETED: "completed"}


@dataclass(frozen=True)
class Event:
    """What the rollup reads of an event."""

    site_id: int
    dialogue_id: int
    version_id: int
    kind: str
    card_id: str
    data: dict
    page_url: str
    created_at: datetime
    known: bool


@dataclass
class Tally:
    """Counts to add, keyed like the report tables' unique constraints (site first)."""

    dialogues: dict[tuple, Counter] = field(default_factory=dict)
    cards: dict[tuple, Counter] = field(default_factory=dict)
    pages: dict[tuple, Counter] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        day = report_day(event.created_at)
        version = (event.site_id, event.dialogue_id, event.version_id, day, event.known)
        page = (event.site_id, event.dialogue_id, day, event.known, page_key(event.page_url))
        kind = event.kind
        if kind in DIALOGUE_COUNTS:
            _bump(self.dialogues, version)[DIALOGUE_COUNTS[kind]] += 1
        if kind in PAGE_COUNTS:
            _bump(self.pages, page)[PAGE_COUNTS[kind]] += 1
        if kind == Kind.FIELD_CAPTURED and event.data.get("new_email"):
            _bump(self.dialogues, version)["captured"] += 1
            _bump(self.pages, page)["captured"] += 1
        elif kind == Kind.GOAL_REACHED:
            _bump(self.cards, (*version, event.card_id))["reached"] += 1
        elif kind == Kind.STEP:
            if event.card_id:
                _bump(self.cards, (*version, event.card_id))["answered"] += 1
            for card_id in event.data.get("shown", ()):
                _bump(self.cards, (*version, str(card_id)))["reached"] += 1


def _bump(table: dict[tuple, Counter], key: tuple) -> Counter:
    counter = table.get(key)
    if counter is None:
        counter = table[key] = Counter()
    return counter


@lru_cache(maxsize=1)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def report_day(moment: datetime) -> date:
    """The calendar day (in settings.REPORTS_TIME_ZONE) a moment is counted on."""
    return moment.astimezone(_zone(settings.REPORTS_TIME_ZONE)).date()


def page_key(url: str) -> str:
    """How the reports name a page: host and path, without scheme, query or fragment (a query
    string can carry an email address), e.g. "www.example.com/pricing"."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    host = (parts.hostname or "").lower()
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{host}{parts.path or '/'}"[:PAGE_LENGTH] if host else parts.path[:PAGE_LENGTH]


def roll_up(*, batch: int | None = None, max_batches: int | None = None) -> int:
    """Count every event not counted yet, `batch` per transaction. Returns how many."""
    batch = batch or settings.REPORTS_ROLLUP_BATCH
    total = batches = 0
    while max_batches is None or batches < max_batches:
        counted = _roll_up_batch(batch)
        total += counted
        batches += 1
        if counted < batch:
            break
    return total


def pending() -> int:
    """How many events wait to be counted (the partial index event_not_rolled_up)."""
    return ConversationEvent.objects.filter(rolled_up=False).count()


@transaction.atomic
def _roll_up_batch(size: int) -> int:
    rows = list(
        ConversationEvent.objects.filter(rolled_up=False)
        .order_by("id")
        .select_for_update(skip_locked=True, of=("self",))
        .values_list(
            "id",
            "site_id",
            "dialogue_id",
            "version_id",
            "kind",
            "card_id",
            "data",
            "page_url",
            "created_at",
            "conversation__visitor_known",
        )[:size]
    )
    if not rows:
        return 0
    tally = Tally()
    for row in rows:
        tally.add(Event(*row[1:]))
    write(tally)
    ids = [row[0] for row in rows]
    ConversationEvent.objects.filter(id__in=ids).update(rolled_up=True)
    return len(rows)


def write(tally: Tally) -> None:
    """Add a tally into the report tables (INSERT … ON CONFLICT DO UPDATE, keys sorted)."""
    _upsert(
        DialogueDay,
        ("site_id", "dialogue_id", "version_id", "day", "known"),
        ("version_id", "day", "known"),
        ("triggered", "engaged", "completed", "captured", "meetings", "goals", "fallbacks"),
        tally.dialogues,
    )
    _upsert(
        CardDay,
        ("site_id", "dialogue_id", "version_id", "day", "known", "card_id"),
        ("version_id", "day", "known", "card_id"),
        ("reached", "answered"),
        tally.cards,
    )
    _upsert(
        PageDay,
        ("site_id", "dialogue_id", "day", "known", "page"),
        ("dialogue_id", "day", "known", "page"),
        ("triggered", "engaged", "completed", "captured"),
        tally.pages,
    )


UPSERT_CHUNK = 1000


def _upsert(model, key_columns, conflict_columns, count_columns, counts) -> None:
    if not counts:
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = [*key_columns, *count_columns]
    updates = ", ".join(
        f"{quote(c)} = {table}.{quote(c)} + excluded.{quote(c)}" for c in count_columns
    )
    row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
    keys = sorted(counts)
    with connection.cursor() as cursor:
        for start in range(0, len(keys), UPSERT_CHUNK):
            chunk = keys[start : start + UPSERT_CHUNK]
            params: list = []
            for key in chunk:
                params.extend(key)
                params.extend(counts[key][c] for c in count_columns)
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)})"  # noqa: S608
                f" VALUES {', '.join([row_sql] * len(chunk))}"
                f" ON CONFLICT ({', '.join(quote(c) for c in conflict_columns)})"
                f" DO UPDATE SET {updates}",
                params,
            )


def kick() -> None:
    """Count the events a chat step just wrote, soon: a rollup a few seconds after the commit
    (at most one waiting at a time). In the embedded mode there is no worker: the rollup runs
    right after the commit, in the request (a few milliseconds at demo volumes)."""
    transaction.on_commit(_start)


_last_kick = [0.0]


def _start() -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        try:
            roll_up()
        except Exception:  # the step is saved; beat, the purge or the next step counts it
            logger.exception("The report rollup after a chat step failed")
        return
    # A process that started one moments ago knows one is waiting: no Redis round trip.
    now = time.monotonic()
    if now - _last_kick[0] < KICK_DELAY_SECONDS:
        return
    _last_kick[0] = now
    if cache.add(KICK_KEY, 1, timeout=KICK_DELAY_SECONDS):
        from reports.tasks import roll_up as roll_up_task

        roll_up_task.apply_async(countdown=KICK_DELAY_SECONDS)


def tally_of(events: Iterable[Event]) -> Tally:
    """The tally of some events (tests and the benchmark build expectations with it)."""
    tally = Tally()
    for event in events:
        tally.add(event)
    return tally
