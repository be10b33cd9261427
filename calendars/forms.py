"""The agent's availability form: the numbers in a Django form, the hours as editable rows.

Weekly hours and date overrides have a varying number of rows, so they are read from the POST
by HoursRows (the same way dialogues/targeting_forms.py reads audience conditions): add and
remove buttons redisplay the rows without saving, and Save checks everything at once and marks
each row at fault. The rules are the slot engine's (calendars.slots.parse_rules, which the
service runs again); here they are said in words an agent understands, next to the field.
"""

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cache
from itertools import pairwise
from zoneinfo import available_timezones

from django import forms

from calendars.models import Availability

MAX_BLOCKS = 6  # per day: more is a mistake, not a working pattern
MAX_OVERRIDES = 60
WEEKDAYS = (
    (1, "Monday"),
    (2, "Tuesday"),
    (3, "Wednesday"),
    (4, "Thursday"),
    (5, "Friday"),
    (6, "Saturday"),
    (7, "Sunday"),
)
# <input type="time"> sends HH:MM (HH:MM:SS only with a step under a minute).
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::00)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@cache
def zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(available_timezones())]


def _whole_number(label: str, low: int, high: int, unit: str, initial: int) -> forms.IntegerField:
    message = f"Enter a whole number of {unit} from {low} to {high}."
    return forms.IntegerField(
        label=label,
        min_value=low,
        max_value=high,
        initial=initial,
        error_messages={
            "required": message,
            "invalid": message,
            "min_value": message,
            "max_value": message,
        },
        widget=forms.NumberInput(attrs={"min": low, "max": high}),
    )


class AvailabilityForm(forms.Form):
    time_zone = forms.ChoiceField(
        label="Time zone",
        choices=zone_choices,
        initial="UTC",
        error_messages={
            "required": "Choose your time zone.",
            "invalid_choice": "Choose your time zone from the list (e.g. Europe/Berlin).",
        },
        help_text="Your hours below are in this zone; visitors see them in their own.",
    )
    meeting_minutes = _whole_number("Meeting length (minutes)", 5, 480, "minutes", 30)
    buffer_before_minutes = _whole_number(
        "Free time before a meeting (minutes)", 0, 240, "minutes", 0
    )
    buffer_after_minutes = _whole_number(
        "Free time after a meeting (minutes)", 0, 240, "minutes", 0
    )
    minimum_notice_hours = forms.DecimalField(
        label="Minimum notice (hours)",
        min_value=0,
        max_value=720,
        decimal_places=2,
        initial=24,
        error_messages={
            key: "Enter a number of hours from 0 to 720, e.g. 24 or 1.5."
            for key in ("required", "invalid", "min_value", "max_value", "max_decimal_places")
        },
        widget=forms.NumberInput(attrs={"min": 0, "max": 720, "step": "0.25"}),
        help_text="Visitors cannot book a meeting that starts sooner than this.",
    )
    booking_horizon_days = _whole_number(
        "How far ahead visitors can book (days)", 1, 365, "days", 14
    )

    @staticmethod
    def initial_for(availability: Availability) -> dict:
        hours = str((Decimal(availability.minimum_notice_minutes) / 60).quantize(Decimal("0.01")))
        return {
            "time_zone": availability.time_zone,
            "meeting_minutes": availability.meeting_minutes,
            "buffer_before_minutes": availability.buffer_before_minutes,
            "buffer_after_minutes": availability.buffer_after_minutes,
            # 24, not 24.00 (nor 2.4E+1, which normalize() gives for 240); 1.5 for 90 minutes.
            "minimum_notice_hours": hours.rstrip("0").rstrip("."),
            "booking_horizon_days": availability.booking_horizon_days,
        }

    def minimum_notice_minutes(self) -> int:
        return round(self.cleaned_data["minimum_notice_hours"] * 60)


@dataclass
class BlockRow:
    """One block of hours as typed: "09:00" to "12:00", end exclusive."""

    start: str = ""
    end: str = ""
    error: str = ""

    @property
    def blank(self) -> bool:
        return not self.start.strip() and not self.end.strip()


@dataclass
class DayRows:
    weekday: int
    name: str
    blocks: list[BlockRow] = field(default_factory=list)
    error: str = ""  # what is wrong across blocks (overlaps)

    @property
    def prefix(self) -> str:
        return f"w{self.weekday}"


@dataclass
class OverrideRow:
    """A date whose hours replace its weekday's: other hours, or a day off."""

    date: str = ""
    day_off: bool = False
    blocks: list[BlockRow] = field(default_factory=list)
    error: str = ""

    @property
    def blank(self) -> bool:
        return not self.date.strip() and not self.day_off and all(b.blank for b in self.blocks)


class HoursRows:
    """The weekly hours and date overrides as the agent is editing them.

    Field names: weekly blocks `w<weekday>-<n>-start` / `-end` (weekday 1 = Monday); overrides
    `o<k>-date`, `o<k>-off`, `o<k>-<n>-start` / `-end`. Rows left empty are ignored.
    """

    def __init__(self, days: list[DayRows], overrides: list[OverrideRow]):
        self.days = days
        self.overrides = overrides
        self.valid = True

    @classmethod
    def from_availability(cls, availability: Availability, *, today: date) -> "HoursRows":
        """The saved hours. Overrides of dates already past are left out: they no longer mean
        anything, and would only stop the next save (a past date is refused)."""
        weekly = availability.weekly_hours or {}
        days = [
            DayRows(day, name, [BlockRow(s, e) for s, e in weekly.get(str(day), [])])
            for day, name in WEEKDAYS
        ]
        overrides = [
            OverrideRow(date=key, day_off=not blocks, blocks=[BlockRow(s, e) for s, e in blocks])
            for key, blocks in sorted((availability.date_overrides or {}).items())
            if key >= today.isoformat()
        ]
        return cls(days, overrides)

    @classmethod
    def from_post(cls, data) -> "HoursRows":
        days = [DayRows(day, name, _blocks_from_post(data, f"w{day}")) for day, name in WEEKDAYS]
        overrides = []
        for k in range(MAX_OVERRIDES):
            prefix = f"o{k}"
            if f"{prefix}-date" not in data:
                break
            overrides.append(
                OverrideRow(
                    date=data.get(f"{prefix}-date", "")[:20],
                    day_off=bool(data.get(f"{prefix}-off")),
                    blocks=_blocks_from_post(data, prefix),
                )
            )
        return cls(days, overrides)

    @property
    def override_rows(self) -> list[tuple[str, OverrideRow]]:
        """The overrides with their field name prefixes (o0, o1, ...), for the template."""
        return [(f"o{k}", row) for k, row in enumerate(self.overrides)]

    def apply_button(self, data) -> bool:
        """Apply an add/remove button; True when one was pressed (the form is then redisplayed,
        nothing saved)."""
        if "add_block" in data:
            blocks = self._blocks(str(data.get("add_block")))
            if blocks is not None and len(blocks) < MAX_BLOCKS:
                blocks.append(BlockRow())
            return True
        if "remove_block" in data:
            owner, _, n = str(data.get("remove_block")).rpartition("-")
            blocks, n = self._blocks(owner), _index(n)
            if blocks is not None and n is not None and n < len(blocks):
                del blocks[n]
            return True
        if "add_override" in data:
            if len(self.overrides) < MAX_OVERRIDES:
                self.overrides.append(OverrideRow(blocks=[BlockRow()]))
            return True
        if "remove_override" in data:
            k = _index(data.get("remove_override"))
            if k is not None and k < len(self.overrides):
                del self.overrides[k]
            return True
        return False

    def _blocks(self, owner: str) -> list[BlockRow] | None:
        """The block list a button names: `w3` (Wednesday) or `o2` (the third override)."""
        n = _index(owner[1:])
        if owner[:1] == "w" and n is not None and 1 <= n <= 7:
            return self.days[n - 1].blocks
        if owner[:1] == "o" and n is not None and n < len(self.overrides):
            return self.overrides[n].blocks
        return None

    def cleaned(self, *, today: date) -> tuple[dict, dict]:
        """(weekly_hours, date_overrides) in Availability's JSON shapes; marks the rows at fault
        and sets `valid`. `today` is the agent's date, in their zone: earlier dates are refused."""
        weekly = {}
        for day in self.days:
            blocks, day.error = self._clean_blocks(day.blocks)
            if blocks:
                weekly[str(day.weekday)] = blocks
        overrides: dict[str, list] = {}
        for row in self.overrides:
            if row.blank:
                continue
            when = _parse_date(row.date)
            if isinstance(when, str):
                row.error = when
            elif when < today:
                row.error = f"{when:%Y-%m-%d} has passed: choose today or a later date."
            elif when.isoformat() in overrides:
                row.error = f"{when:%Y-%m-%d} is listed twice: put all its hours in one row."
            if row.day_off:
                # A day off has no hours, whatever is left in its time boxes.
                blocks, problem = [], ""
            else:
                blocks, problem = self._clean_blocks(row.blocks)
                if not problem and not blocks and not any(b.error for b in row.blocks):
                    problem = "Give this date its hours, or tick “Day off”."
            row.error = row.error or problem
            if row.error or any(b.error for b in row.blocks if not row.day_off):
                self.valid = False
            elif not isinstance(when, str):
                overrides[when.isoformat()] = blocks
        return weekly, dict(sorted(overrides.items()))

    def _clean_blocks(self, rows: list[BlockRow]) -> tuple[list[list[str]], str]:
        """The valid blocks of `rows`, sorted, and what is wrong across them (overlaps). Marks
        each row's own problem on it."""
        blocks = []
        for row in rows:
            row.error = ""
            if row.blank:
                continue
            start, end = _parse_time(row.start), _parse_time(row.end)
            if not row.start.strip() or not row.end.strip():
                row.error = "Give both a start and an end time."
            elif start is None or end is None:
                bad = row.start if start is None else row.end
                row.error = f"“{bad.strip()}” is not a time: use HH:MM, e.g. 09:00 or 17:30."
            elif start >= end:
                row.error = f"The end ({end}) must be after the start ({start})."
            else:
                blocks.append([start, end])
        if any(row.error for row in rows):
            self.valid = False
        blocks.sort()
        for (earlier_start, earlier_end), (later_start, later_end) in pairwise(blocks):
            if later_start < earlier_end:
                self.valid = False
                message = (
                    f"{earlier_start} to {earlier_end} and {later_start} to {later_end} overlap: "
                    "change or remove one of them."
                )
                return blocks, message
        return blocks, ""


def _blocks_from_post(data, prefix: str) -> list[BlockRow]:
    rows = []
    for n in range(MAX_BLOCKS):
        if f"{prefix}-{n}-start" not in data:
            break
        start, end = data.get(f"{prefix}-{n}-start", ""), data.get(f"{prefix}-{n}-end", "")
        rows.append(BlockRow(start[:10], end[:10]))
    return rows


def _parse_time(text: str) -> str | None:
    """'9:05' -> '09:05'; None unless a time of day from 00:00 to 23:59 (24:00 is refused, as
    the slot engine does: a block ends on the day it starts)."""
    match = _TIME.fullmatch(text.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        return None
    return f"{int(match[1]):02d}:{match[2]}"


def _parse_date(text: str) -> date | str:
    """The date, or what is wrong with it."""
    text = text.strip()
    if not text:
        return "Enter the date."
    try:
        if not _DATE.fullmatch(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        return f"“{text}” is not a date: use YYYY-MM-DD, e.g. 2026-12-24."


def _index(text) -> int | None:
    try:
        value = int(text)
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None
