"""When agents can be booked: the database side of slot computation (selectors, no writes).
Which agents a visitor may book is routing.routes' question.

The arithmetic is calendars.slots; this module reads what it needs in a fixed number of queries
whatever the number of agents (agents with their availability and calendar in one, their booked
meetings in another), and each agent's provider busy times through calendars.busy, which caches
them: a warm call costs one cache read per agent. For the cache to hit, the busy window asked
for must be the same from one call to the next, so it is aligned to whole hours and days
(busy_window), never to `now` to the microsecond.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import connection as database
from django.db.models import FloatField, Func
from django.utils import timezone

from calendars import busy as provider_busy
from calendars.models import CREDENTIAL_FIELDS, Availability, CalendarConnection
from calendars.providers.base import Interval
from calendars.slots import Rules, RulesInvalid, free_slots, parse_rules
from meetings.models import Meeting

log = logging.getLogger(__name__)

User = get_user_model()

# Not needed for slots, and each one read is a decryption: left in the database. (Providers
# read the credentials themselves, by connection id, under the row's lock.)


# Parsed rules by the row's content (not by updated_at, which a queryset .update() leaves
# alone): parsing 20 agents' hours costs about a millisecond on every page that offers slots,
# and the rows rarely change. Rules are immutable, so threads can share them.
_parsed_rules: dict[str, Rules] = {}
_PARSED_RULES_MAX = 1000


def rules_for(availability: Availability) -> Rules:
    """The slot rules of an Availability row; raises RulesInvalid when its data is unusable."""
    fields = {
        "time_zone": availability.time_zone,
        "weekly_hours": availability.weekly_hours,
        "date_overrides": availability.date_overrides,
        "meeting_minutes": availability.meeting_minutes,
        "buffer_before_minutes": availability.buffer_before_minutes,
        "buffer_after_minutes": availability.buffer_after_minutes,
        "minimum_notice_minutes": availability.minimum_notice_minutes,
        "booking_horizon_days": availability.booking_horizon_days,
    }
    key = repr(fields)
    rules = _parsed_rules.get(key)
    if rules is None:
        rules = parse_rules(**fields)
        if len(_parsed_rules) >= _PARSED_RULES_MAX:
            _parsed_rules.clear()
        _parsed_rules[key] = rules
    return rules


def busy_window(rules: Rules, now: datetime) -> tuple[datetime, datetime]:
    """The span of provider busy times an agent's slots need, widened to whole hours and days.

    From the hour in which the first possible slot's buffer begins (now + notice - buffer
    before) to the end of the UTC day in which the last possible slot's buffer ends. It moves
    once an hour and once a day, so repeated calls between those moments ask calendars.busy for
    the same window and hit its cache. A job that warms that cache must ask for this window.
    """
    first = now + timedelta(minutes=rules.minimum_notice_minutes - rules.buffer_before_minutes)
    last = now + timedelta(
        days=rules.booking_horizon_days,
        minutes=rules.meeting_minutes + rules.buffer_after_minutes,
    )
    start = first.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    end = last.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, end + timedelta(days=1)


def agent_slots(
    agents: Sequence,
    *,
    now: datetime | None = None,
    live: bool = False,
    until: datetime | None = None,
) -> dict[int, list[datetime]]:
    """Each agent's free slot starts (aware UTC, sorted), by user id; every agent given has an
    entry, empty when they cannot be booked (no calendar or a broken one, no availability,
    unusable availability, busy times unknown). Two queries, plus one busy-times call per agent
    (a cache read unless `live`)."""
    ids = [agent.pk for agent in agents]
    users = list(
        User.objects.filter(pk__in=ids)
        .select_related("availability", "calendar_connection")
        .defer(*(f"calendar_connection__{name}" for name in CREDENTIAL_FIELDS))
    )
    found = _slots_of(users, now=_now(now), live=live, until=until)
    return {pk: found.get(pk, []) for pk in ids}


def slots_of(
    users: Sequence, *, now: datetime | None = None, until: datetime | None = None
) -> dict[int, list[datetime]]:
    """agent_slots() for users whose `availability` and `calendar_connection` are already
    loaded (as routing.routes.bookable_queue loads them): one query for all their booked
    meetings, one busy-times cache read each."""
    return _slots_of(users, now=_now(now), live=False, until=until)


def agents_free(users: Sequence, start: datetime, *, now: datetime | None = None) -> dict:
    """Which of `users` (with `availability` and `calendar_connection` loaded, as
    routing.routes.bookable_queue loads them) can take a meeting starting at `start` right now:
    {user id: the meeting's end} (each agent's own meeting length). Checked against DynChat's
    booked meetings and each calendar provider's live busy times (no cache) over just the span
    the slot and its buffers need. For the booking service, just before it books and outside
    any lock: each provider agent costs one API call. The meeting table's exclusion constraint
    still guards the race between this check and the insert. Agents who cannot be booked, or
    whose busy times are unknown, are left out. One query, whatever the number of agents."""
    now = _now(now)
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be an aware datetime")
    plans = []
    for user in users:
        connection, rules = _connection(user), _rules(user)
        if connection is not None and rules is not None:
            end = start + timedelta(minutes=rules.meeting_minutes)
            plans.append((user, connection, rules, end))
    if not plans:
        return {}
    # A booked meeting [a, b) blocks [a - before, b + after); the slot needs [start - before,
    # end + after) clear: these are the meetings that can collide with any agent's slot.
    widest = max(_before(rules) + _after(rules) for _, _, rules, _ in plans)
    latest_end = max(end for *_, end in plans)
    booked: dict[int, list[Interval]] = defaultdict(list)
    meetings = Meeting.objects.filter(
        agent_id__in=[user.pk for user, *_ in plans],
        status=Meeting.Status.BOOKED,
        start__lt=latest_end + widest,
        end__gt=start - widest,
    ).order_by()
    for agent_id, a, b in meetings.values_list("agent_id", "start", "end"):
        booked[agent_id].append(Interval(a, b))
    free = {}
    for user, connection, rules, end in plans:
        # Only the one slot is looked at (since/until): a time weeks ahead costs no more.
        if start not in free_slots(rules, now=now, booked=booked[user.pk], since=start, until=end):
            continue  # no need to ask the provider
        busy = provider_busy.busy_times(
            connection, start - _before(rules), end + _after(rules), live=True
        )
        if busy is None:
            continue
        if start in free_slots(
            rules, now=now, busy=busy, booked=booked[user.pk], since=start, until=end
        ):
            free[user.pk] = end
    return free


def agent_is_free(agent, start: datetime, end: datetime, *, now: datetime | None = None) -> bool:
    """Whether [start, end) is, right now, one of the agent's free slots (agents_free for one
    agent, who must also have meetings of exactly that length)."""
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be an aware datetime")
    users = list(
        User.objects.select_related("availability", "calendar_connection")
        .defer(*(f"calendar_connection__{name}" for name in CREDENTIAL_FIELDS))
        .filter(pk=agent.pk)
    )
    return agents_free(users, start, now=now).get(agent.pk) == end


def _slots_of(
    users: Iterable, *, now: datetime, live: bool, until: datetime | None
) -> dict[int, list[datetime]]:
    """Free slots of users whose `availability` and `calendar_connection` are already loaded:
    one query for all their booked meetings, one busy-times call each."""
    plans = []
    result: dict[int, list[datetime]] = {}
    for user in users:
        result[user.pk] = []
        connection, rules = _connection(user), _rules(user)
        if connection is not None and rules is not None:
            plans.append((user.pk, connection, rules, busy_window(rules, now)))
    if not plans:
        return result

    # Booked meetings whose buffered span reaches into some agent's window: one query.
    booked: dict[int, list[Interval]] = defaultdict(list)
    meetings = Meeting.objects.filter(
        agent_id__in=[pk for pk, *_ in plans],
        status=Meeting.Status.BOOKED,
        start__lt=max(end + _before(rules) for *_, rules, (_, end) in plans),
        end__gt=min(start - _after(rules) for *_, rules, (start, _) in plans),
    ).order_by()
    for agent_id, start, end in _agent_start_end(meetings):
        booked[agent_id].append(Interval(start, end))

    answers = provider_busy.busy_times_many(
        [(connection, start, end) for _, connection, _, (start, end) in plans], live=live
    )
    for (pk, _, rules, _), busy in zip(plans, answers, strict=True):
        if busy is None:  # unknown is never free
            continue
        result[pk] = free_slots(rules, now=now, busy=busy, booked=booked[pk], until=until)
    return result


class _EpochSeconds(Func):
    """A timestamptz as float seconds since 1970 (PostgreSQL)."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)::float8"
    output_field = FloatField()


def _agent_start_end(meetings) -> list[tuple[int, datetime, datetime]]:
    """(agent id, start, end) of the meetings, aware UTC."""
    if database.vendor != "postgresql":
        return list(meetings.values_list("agent_id", "start", "end"))
    # Django reads each timestamptz through psycopg's pure-Python loader (about 5 us each, a
    # quarter of the whole call for 20 agents' meetings); a float8 is read in C and turned
    # into a datetime for a tenth of that. Exact: float8 holds microseconds at today's epochs.
    rows = meetings.values_list("agent_id", _EpochSeconds("start"), _EpochSeconds("end"))
    at = datetime.fromtimestamp
    return [(agent_id, at(start, UTC), at(end, UTC)) for agent_id, start, end in rows]


def _connection(user) -> CalendarConnection | None:
    # A missing reverse one-to-one raises a DoesNotExist that is also an AttributeError.
    connection = getattr(user, "calendar_connection", None)
    return connection if connection is not None and connection.bookable else None


def _rules(user) -> Rules | None:
    availability = getattr(user, "availability", None)
    if availability is None:
        return None
    try:
        return rules_for(availability)
    except RulesInvalid as exc:
        log.warning("agent %s offers no slots: their availability is unusable: %s", user.pk, exc)
        return None


def _before(rules: Rules) -> timedelta:
    return timedelta(minutes=rules.buffer_before_minutes)


def _after(rules: Rules) -> timedelta:
    return timedelta(minutes=rules.buffer_after_minutes)


def _now(now: datetime | None) -> datetime:
    if now is None:
        return timezone.now()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    return now
