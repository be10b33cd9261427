"""Slot arithmetic: an agent's wall-clock hours, busy times and bookings in, free start times out.

Pure Python, no Django: calendars.availability reads the rows and calls this. Rules are kept as
local wall-clock times plus an IANA zone and expanded date by date with zoneinfo, so "9:00 in
New York" stays 9:00 on both sides of a daylight-saving change (Cal.com's pipeline, without its
DST bugs; see reference/calendars-and-booking.md section 3).

Inside, instants are whole epoch seconds: the sweep over thousands of candidate slots compares
integers instead of building datetimes, and only the free starts become datetimes again.
"""

import math
import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calendars.providers.base import Interval

Blocks = tuple[tuple[time, time], ...]

WEEKDAY_NAMES = {
    1: "Monday",
    2: "Tuesday",
    3: "Wednesday",
    4: "Thursday",
    5: "Friday",
    6: "Saturday",
    7: "Sunday",
}
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MAX_MEETING_MINUTES = 24 * 60
_MAX_HORIZON_DAYS = 366
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class RulesInvalid(ValueError):
    """Availability data that cannot be used; `field` names the Availability field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Rules:
    """An agent's availability, parsed and validated (build it with parse_rules).

    Blocks are end-exclusive, sorted, non-overlapping, and each lies within one local day.
    """

    time_zone: ZoneInfo
    weekly_hours: Mapping[int, Blocks]  # ISO weekday (1 = Monday) -> blocks
    date_overrides: Mapping[date, Blocks]  # () = day off
    meeting_minutes: int
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    minimum_notice_minutes: int = 1440
    booking_horizon_days: int = 14

    def blocks_on(self, day: date) -> Blocks:
        """The day's working blocks: its override if it has one, else its weekday's hours."""
        if day in self.date_overrides:
            return self.date_overrides[day]
        return self.weekly_hours.get(day.isoweekday(), ())


def parse_rules(
    *,
    time_zone: str,
    weekly_hours: Mapping,
    date_overrides: Mapping,
    meeting_minutes: int,
    buffer_before_minutes: int,
    buffer_after_minutes: int,
    minimum_notice_minutes: int,
    booking_horizon_days: int,
) -> Rules:
    """Rules from the JSON shapes stored on Availability; raises RulesInvalid(field, message)."""
    return Rules(
        time_zone=_parse_zone(time_zone),
        weekly_hours=MappingProxyType(_parse_weekly_hours(weekly_hours)),
        date_overrides=MappingProxyType(_parse_date_overrides(date_overrides)),
        meeting_minutes=_parse_minutes(
            "meeting_minutes", meeting_minutes, low=1, high=_MAX_MEETING_MINUTES
        ),
        buffer_before_minutes=_parse_minutes(
            "buffer_before_minutes", buffer_before_minutes, low=0, high=_MAX_MEETING_MINUTES
        ),
        buffer_after_minutes=_parse_minutes(
            "buffer_after_minutes", buffer_after_minutes, low=0, high=_MAX_MEETING_MINUTES
        ),
        minimum_notice_minutes=_parse_minutes(
            "minimum_notice_minutes", minimum_notice_minutes, low=0, high=_MAX_HORIZON_DAYS * 1440
        ),
        booking_horizon_days=_parse_minutes(
            "booking_horizon_days", booking_horizon_days, low=0, high=_MAX_HORIZON_DAYS
        ),
    )


def _parse_zone(name) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise RulesInvalid("time_zone", "a time zone name is required, such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # ValueError: names that are not even paths zoneinfo may look up ("../x", "/etc").
        raise RulesInvalid("time_zone", f"unknown time zone {name!r}") from None


def _parse_minutes(field: str, value, *, low: int, high: int) -> int:
    # bool is an int in Python; true/false in the JSON is a mistake, not 1/0.
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise RulesInvalid(field, f"must be a whole number from {low} to {high}, not {value!r}")
    return value


def _parse_weekly_hours(raw) -> dict[int, Blocks]:
    if not isinstance(raw, Mapping):
        raise RulesInvalid("weekly_hours", "must map ISO weekdays (1 = Monday) to blocks")
    weekly = {}
    for key, blocks in raw.items():
        day = int(key) if isinstance(key, str) and key.isdigit() else key
        if not isinstance(day, int) or isinstance(day, bool) or day not in WEEKDAY_NAMES:
            raise RulesInvalid(
                "weekly_hours", f"unknown weekday {key!r}: use 1 (Monday) to 7 (Sunday)"
            )
        if day in weekly:
            raise RulesInvalid("weekly_hours", f"{WEEKDAY_NAMES[day]} is listed twice")
        weekly[day] = _parse_blocks("weekly_hours", WEEKDAY_NAMES[day], blocks)
    return weekly


def _parse_date_overrides(raw) -> dict[date, Blocks]:
    if not isinstance(raw, Mapping):
        raise RulesInvalid("date_overrides", "must map dates (YYYY-MM-DD) to blocks")
    overrides = {}
    for key, blocks in raw.items():
        try:
            if not isinstance(key, str) or not _DATE.fullmatch(key):
                raise ValueError
            day = date.fromisoformat(key)
        except ValueError:
            raise RulesInvalid(
                "date_overrides", f"{key!r} is not a date (use YYYY-MM-DD)"
            ) from None
        overrides[day] = _parse_blocks("date_overrides", key, blocks)
    return overrides


def _parse_blocks(field: str, label: str, raw) -> Blocks:
    if not isinstance(raw, list | tuple):
        raise RulesInvalid(field, f"{label}: must be a list of [start, end] blocks")
    blocks = []
    for pair in raw:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise RulesInvalid(field, f"{label}: {pair!r} is not a [start, end] block")
        start, end = (_parse_time(field, label, value) for value in pair)
        if start >= end:
            raise RulesInvalid(
                field, f"{label}: a block must end after it starts ({pair[0]}-{pair[1]})"
            )
        blocks.append((start, end))
    blocks.sort()
    for (_, earlier_end), (later_start, _) in pairwise(blocks):
        if later_start < earlier_end:
            raise RulesInvalid(
                field,
                f"{label}: blocks overlap ({later_start:%H:%M} starts before {earlier_end:%H:%M})",
            )
    return tuple(blocks)


def _parse_time(field: str, label: str, value) -> time:
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        # 24:00 is refused too: a block ends the same day it starts, at 23:59 at the latest.
        raise RulesInvalid(field, f"{label}: {value!r} is not a time (use HH:MM, 00:00 to 23:59)")
    return time(int(match[1]), int(match[2]))


def free_slots(
    rules: Rules,
    *,
    now: datetime,
    busy: Sequence[Interval] = (),
    booked: Sequence[Interval] = (),
    until: datetime | None = None,
    since: datetime | None = None,
) -> list[datetime]:
    """Start times (aware, UTC, sorted, unique) of the meetings the agent can take.

    A slot [s, s + meeting) lies inside one working block, on the grid stepping by the meeting
    length from the block's start; s >= now + minimum notice, s < now + horizon, s < until,
    s >= since (`since` and `until` only narrow the answer: the grid stays the block's).
    It is free when [s - buffer_before, s + meeting + buffer_after) overlaps no `busy` interval
    (the provider's) and no `booked` meeting widened by the agent's buffers (DynChat's own:
    [a, b) blocks [a - buffer_before, b + buffer_after)). Intervals are half-open, so
    back-to-back meetings are fine without buffers. `busy` and `booked` may be unsorted and
    overlap; their datetimes must be aware.
    """
    _require_aware("now", now)
    earliest = (now + timedelta(minutes=rules.minimum_notice_minutes)).timestamp()
    latest = (now + timedelta(days=rules.booking_horizon_days)).timestamp()
    if until is not None:
        _require_aware("until", until)
        latest = min(latest, until.timestamp())
    if since is not None:
        _require_aware("since", since)
        earliest = max(earliest, since.timestamp())
    if earliest >= latest:
        return []

    before = rules.buffer_before_minutes * 60
    after = rules.buffer_after_minutes * 60
    length = rules.meeting_minutes * 60
    blocked_starts, blocked_ends = _merge(busy, booked, before, after)
    count = len(blocked_starts)

    zone = rules.time_zone
    # A block lies within its local day, so days before the one notice ends on have no slot.
    first_day = datetime.fromtimestamp(earliest, zone).date().toordinal()
    last_day = datetime.fromtimestamp(latest, zone).date().toordinal()
    slots: list[datetime] = []
    fromtimestamp = datetime.fromtimestamp
    i = 0  # blocked intervals before i end too early to touch this block or any later one
    next_midnight = _midnight_offset(first_day, zone)
    for ordinal in range(first_day, last_day + 1):
        day = date.fromordinal(ordinal)
        blocks = rules.blocks_on(day)
        midnight, next_midnight = next_midnight, _midnight_offset(ordinal + 1, zone)
        for block_start, block_end in blocks:
            if midnight == next_midnight:
                # No clock change today (nearly every day): one offset for the whole day.
                day_epoch = (ordinal - _EPOCH_ORDINAL) * 86400 - midnight
                start = day_epoch + block_start.hour * 3600 + block_start.minute * 60
                end = day_epoch + block_end.hour * 3600 + block_end.minute * 60
            else:
                start, end = _instant(day, block_start, zone), _instant(day, block_end, zone)
            if end <= earliest or start >= latest:
                continue
            while i < count and blocked_ends[i] <= start - before:
                i += 1
            # Walk the gaps between the blocked intervals that reach into the block, and emit
            # the grid points start + k * length where a padded slot fits in each gap:
            # lowest <= s <= highest. (Plain comparisons instead of min/max: this loop is hot.)
            lowest = start if start > earliest else earliest
            room = end - length  # the last start that fits in the block
            last_k = math.ceil((latest - start) / length)  # k < last_k keeps s < latest
            j = i
            while True:
                touches = j < count and blocked_starts[j] < end + after
                highest = room
                if touches and blocked_starts[j] - length - after < room:
                    highest = blocked_starts[j] - length - after
                if lowest <= highest:
                    first = math.ceil((lowest - start) / length)
                    stop = math.floor((highest - start) / length) + 1
                    if stop > last_k:
                        stop = last_k
                    if first < stop:
                        slots.extend(
                            [fromtimestamp(start + k * length, UTC) for k in range(first, stop)]
                        )
                if not touches:
                    break
                if blocked_ends[j] + before > lowest:
                    lowest = blocked_ends[j] + before
                    if lowest > room:
                        break
                j += 1
    # Blocks follow each other in time and gaps within a block too, so `slots` is sorted and
    # has no duplicates as built.
    return slots


def _midnight_offset(ordinal: int, zone: ZoneInfo) -> int:
    """The zone's UTC offset in seconds at the start of the day (fold=0)."""
    local = datetime.combine(date.fromordinal(ordinal), time(0), tzinfo=zone)
    return int(local.utcoffset().total_seconds())


def group_by_day(starts: Iterable[datetime], zone: ZoneInfo) -> list[tuple[date, list[datetime]]]:
    """Slot starts grouped by their local date in `zone` (the visitor's), days and slots in
    order. The datetimes themselves are returned unchanged."""
    days: dict[date, list[datetime]] = {}
    for start in sorted(starts):
        _require_aware("starts", start)
        days.setdefault(start.astimezone(zone).date(), []).append(start)
    return list(days.items())


def _merge(
    busy: Sequence[Interval], booked: Sequence[Interval], before: int, after: int
) -> tuple[list[float], list[float]]:
    """Busy and buffered booked intervals merged into sorted, disjoint [start, end) seconds."""
    # Comprehensions, not a call per interval: this is most of the work for a busy calendar.
    spans = [(i.start.timestamp(), i.end.timestamp(), i.start.tzinfo, i.end.tzinfo) for i in busy]
    spans += [
        (i.start.timestamp() - before, i.end.timestamp() + after, i.start.tzinfo, i.end.tzinfo)
        for i in booked
    ]
    spans.sort(key=_first)
    starts: list[float] = []
    ends: list[float] = []
    for start, end, start_zone, end_zone in spans:
        if start_zone is None or end_zone is None:
            # timestamp() would read a naive datetime as the server's local time.
            raise ValueError("busy and booked intervals must be aware datetimes")
        if end <= start:
            continue
        if ends and start <= ends[-1]:
            if end > ends[-1]:
                ends[-1] = end
        else:
            starts.append(start)
            ends.append(end)
    return starts, ends


def _first(span: tuple) -> float:
    return span[0]


def _instant(day: date, wall: time, zone: ZoneInfo) -> int:
    """Epoch seconds of wall-clock `wall` on `day` in `zone`.

    A time that happens twice (the repeated hour when clocks go back) is its first occurrence
    (fold=0), for block ends as well as starts, so a block inside the repeated hour lasts its
    wall-clock length. A time that never happens (skipped when clocks go forward) becomes the
    first instant after the gap.
    """
    local = datetime.combine(day, wall, tzinfo=zone)
    first = int(local.timestamp())
    second = int(local.replace(fold=1).timestamp())
    if first <= second:  # exists, once or twice
        return first
    # In a gap, fold=0 reads the wall time with the offset before the change and fold=1 with
    # the one after, so the change happened in (second, first]: find the instant.
    offset_after = local.replace(fold=1).utcoffset()
    candidates = range(second + 1, first + 1)
    index = bisect_left(
        candidates,
        True,
        key=lambda instant: datetime.fromtimestamp(instant, zone).utcoffset() == offset_after,
    )
    return candidates[index]


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be aware datetimes")
