"""The built-in calendar: DynChat's own bookings are the agent's only busy times.

For agents without Google or Outlook (and the demo's agents). Nothing is sent anywhere: the
meeting row is the calendar entry, and the visitor's invitation carries DynChat's own UID.
"""

from datetime import datetime

from calendars.providers.base import CreatedEvent, Interval, NewEvent


def busy(connection_id: int, start: datetime, end: datetime) -> list[Interval]:
    return []  # DynChat's meetings are added by calendars.availability for every provider


def create_event(connection_id: int, event: NewEvent) -> CreatedEvent:
    return CreatedEvent(provider_event_id="", ical_uid=f"{event.key}@dynchat")


def cancel_event(connection_id: int, provider_event_id: str) -> None:
    return None  # the meeting row was the calendar entry; cancelling it is all there is


def cancel_event_by_key(connection_id: int, *, key: str, start: datetime, end: datetime) -> None:
    return None


def revoke(connection) -> None:
    return None
