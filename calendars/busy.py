"""An agent's busy times from their calendar provider, cached briefly.

Slots shown to visitors use the cached answer (CALENDAR_BUSY_CACHE_SECONDS); a booking asks
live. A provider that fails to answer, or answers with an error for the calendar, makes the
agent's time *unknown* (None), never free: callers offer no slots of that agent.
"""

import logging
from datetime import datetime

from django.conf import settings
from django.core.cache import cache

from calendars.models import CalendarConnection
from calendars.providers import provider
from calendars.providers.base import CalendarError, Interval

log = logging.getLogger(__name__)


def _cache_key(connection: CalendarConnection, start: datetime, end: datetime) -> str:
    # The connection's connected_at is part of the key: a reconnected calendar starts afresh.
    stamp = int(connection.connected_at.timestamp())
    return f"busy:{connection.pk}:{stamp}:{int(start.timestamp())}:{int(end.timestamp())}"


def busy_times(
    connection: CalendarConnection, start: datetime, end: datetime, *, live: bool = False
) -> list[Interval] | None:
    """The agent's busy intervals in [start, end), or None when they cannot be known."""
    if connection.provider == CalendarConnection.Provider.BUILTIN:
        return []
    if not connection.bookable:
        return None
    key = _cache_key(connection, start, end)
    if not live:
        cached = cache.get(key)
        if cached is not None:
            return [Interval(*pair) for pair in cached]
    try:
        intervals = provider(connection.provider).busy(connection.pk, start, end)
    except CalendarError as exc:
        # NeedsReconnect included: the provider has marked the connection already.
        log.warning("busy times of calendar %s unknown: %s", connection.pk, exc)
        return None
    if settings.CALENDAR_BUSY_CACHE_SECONDS:
        cache.set(
            key,
            [(i.start, i.end) for i in intervals],
            timeout=settings.CALENDAR_BUSY_CACHE_SECONDS,
        )
    return intervals


def busy_times_many(
    requests: list[tuple[CalendarConnection, datetime, datetime]], *, live: bool = False
) -> list[list[Interval] | None]:
    """busy_times() for several calendars, in order; the cached ones read in one round trip
    (a page of slots for 20 agents would otherwise pay 20)."""
    cached: dict = {}
    if not live:
        keys = [
            _cache_key(connection, start, end)
            for connection, start, end in requests
            if connection.provider != CalendarConnection.Provider.BUILTIN and connection.bookable
        ]
        cached = cache.get_many(keys) if keys else {}
    answers = []
    for connection, start, end in requests:
        hit = cached.get(_cache_key(connection, start, end)) if cached else None
        if hit is not None and connection.bookable:
            answers.append([Interval(*pair) for pair in hit])
        else:
            answers.append(busy_times(connection, start, end, live=live))
    return answers
