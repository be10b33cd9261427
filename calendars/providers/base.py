"""What every calendar provider offers, and the errors it raises.

A provider module (google.py, microsoft.py, builtin.py) exposes:

- ``authorization_url(user, redirect_uri) -> str``: start the OAuth sign-in (keeping what the
  callback needs in an OAuthAttempt row) and return the provider's consent page address;
- ``finish_authorization(user, params, redirect_uri) -> CalendarConnection``: finish it from the
  callback's query parameters, creating or replacing the user's connection; raises
  AuthorizationFailed;
- ``busy(connection_id, start, end) -> list[Interval]``: the agent's busy times in the window;
- ``create_event(connection_id, event) -> CreatedEvent``: idempotent by ``event.key``;
- ``cancel_event(connection_id, provider_event_id) -> None``: idempotent (gone is fine), and
  without a notice of the provider's own to the visitor where the provider allows it (DynChat
  emails the visitor their cancellation);
- ``cancel_event_by_key(connection_id, *, key, start, end) -> None``: the same for an event
  whose id was never recorded (the answer to create_event was lost), found by ``event.key``;
- ``revoke(connection) -> None``: best effort, on disconnect.

Every function that talks to the provider takes the connection's id, not the row: it reads the
row itself, and refreshes the access token under the row's lock (select_for_update) so two
workers never overwrite each other's refresh token.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, order=True)
class Interval:
    """[start, end), both aware datetimes in UTC."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class NewEvent:
    # Unique per meeting and stable across retries: the Google event id (32 hex characters are
    # valid base32hex) and the Graph transactionId.
    key: str
    summary: str
    description: str
    start: datetime  # aware, UTC
    end: datetime
    attendee_email: str
    attendee_name: str
    video_link: bool  # ask for a Google Meet / Teams link


@dataclass(frozen=True)
class CreatedEvent:
    provider_event_id: str
    ical_uid: str
    join_url: str = ""


class CalendarError(Exception):
    """Anything that went wrong talking to a calendar provider."""


class NeedsReconnect(CalendarError):
    """The grant is revoked or expired (invalid_grant): only the agent signing in again helps."""


class TransientCalendarError(CalendarError):
    """Worth retrying later: rate limited (429, 403 rateLimitExceeded), 5xx, timeout, network."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after  # seconds, from Retry-After when the provider sent it


class PermanentCalendarError(CalendarError):
    """The provider refused the request itself (400, 403 forbidden, 404): retrying won't help."""


class BusyUnknown(CalendarError):
    """The provider answered but could not say when the calendar is busy (a freebusy entry with
    errors, a getSchedule item with an error): the time counts as unknown, never as free."""


class AuthorizationFailed(Exception):
    """The sign-in could not be finished; the message is shown to the agent."""


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header, a number or an HTTP date; None without one
    (or with one that cannot be read)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
