"""How times read to people: in their own zone, in English, without leading zeros."""

from datetime import date, datetime
from functools import cache
from zoneinfo import ZoneInfo, available_timezones


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def zone_named(name: str) -> ZoneInfo | None:
    """The IANA zone called `name`, or None. Only names from the zone database are accepted
    (not file paths, not "localtime"), so the name is safe to echo back."""
    if name not in _zones():
        return None
    return ZoneInfo(name)


def day_label(day: date) -> str:
    """Monday, 23 November"""
    return f"{day:%A}, {day.day} {day:%B}"


def time_label(moment: datetime, zone: ZoneInfo) -> str:
    """9:00 AM"""
    local = moment.astimezone(zone)
    return f"{local.hour % 12 or 12}:{local:%M} {'AM' if local.hour < 12 else 'PM'}"


def when_label(moment: datetime, zone: ZoneInfo) -> str:
    """Monday, 23 November at 9:00 AM (Europe/Paris)"""
    local = moment.astimezone(zone)
    return f"{day_label(local.date())} at {time_label(moment, zone)} ({zone.key})"
