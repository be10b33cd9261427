"""The meeting tasks: each takes a meeting id, re-reads the meeting, calls one function that is
idempotent (so acks_late is safe: a worker lost mid-task means the task runs again and finds
what the first run did), and owns its retries.

- add_meeting_to_calendar: after a booking, the provider event, then the visitor's invitation;
- notify_agent_of_meeting: after a booking, the agent's "new meeting" email;
- remove_meeting_from_calendar: after a cancellation, the provider event taken off;
- send_cancellation_emails: after a cancellation, the agent's and the visitor's emails.
"""

import logging
import random
from smtplib import SMTPException
from typing import NoReturn

from celery import shared_task
from django.conf import settings

from calendars.providers.base import TransientCalendarError
from meetings import calendar_events, invitations, notifications

log = logging.getLogger(__name__)

# Mail servers that refuse or cannot be reached (SMTPException is an OSError, like a refused or
# timed-out connection) are tried again: 30 s, 1, 2, 4, 8, 10, 10, 10 minutes.
MAIL_ERRORS = (SMTPException, OSError)
MAIL_MAX_RETRIES = 8
# How long the agent's email waits for the calendar event (and its join link): 4 x 15 s.
CALENDAR_WAITS = 4
CALENDAR_WAIT_SECONDS = 15


def retry_delay(exc: TransientCalendarError, *, retries: int) -> float | None:
    """Seconds to wait before try number `retries + 2`, or None to give up: the provider's
    Retry-After when it sent one, else 30 s, 1 min, 2 min, ... capped at 10 minutes, with
    jitter so that many meetings failing together do not retry together."""
    if retries >= settings.CALENDAR_EVENT_MAX_RETRIES:
        return None
    if exc.retry_after is not None:
        return exc.retry_after
    return _backoff(retries)


def mail_retry_delay(*, retries: int) -> float | None:
    """Seconds to wait before sending again, or None to give up (after MAIL_MAX_RETRIES)."""
    if retries >= MAIL_MAX_RETRIES:
        return None
    return _backoff(retries)


def _backoff(retries: int) -> float:
    return min(600, 30 * 2**retries) * random.uniform(0.8, 1.2)  # noqa: S311 - not a secret


def _retry_mail(task, exc: Exception, what: str) -> NoReturn:
    """Try the task again after a mail error, or fail it (logged) once out of retries."""
    delay = mail_retry_delay(retries=task.request.retries)
    if delay is None:
        log.error("gave up sending %s after %s tries: %r", what, task.request.retries + 1, exc)
        raise exc
    raise task.retry(countdown=delay, exc=exc)


@shared_task(bind=True, acks_late=True, max_retries=None)
def add_meeting_to_calendar(self, meeting_id: str) -> None:
    """See meetings.calendar_events.add_to_calendar."""
    try:
        calendar_events.add_to_calendar(meeting_id)
    except TransientCalendarError as exc:
        delay = retry_delay(exc, retries=self.request.retries)
        if delay is None:
            tries = self.request.retries + 1
            calendar_events.give_up(meeting_id, f"gave up after {tries} tries: {exc}")
            return
        raise self.retry(countdown=delay, exc=exc) from exc
    except MAIL_ERRORS as exc:
        # The event is made (and recorded): the retry only sends the invitation.
        _retry_mail(self, exc, f"the invitation of meeting {meeting_id}")


@shared_task(bind=True, acks_late=True, max_retries=None)
def notify_agent_of_meeting(self, meeting_id: str) -> None:
    """Email the agent their new meeting (at most once: notifications.notify_agent_of_meeting
    stamps it under the meeting's row lock). Queued with the calendar task; waits a little
    for the event so the email can carry its join link, then sends without it."""
    try:
        notifications.notify_agent_of_meeting(
            meeting_id, wait_for_calendar=self.request.retries < CALENDAR_WAITS
        )
    except notifications.CalendarNotReady as exc:
        raise self.retry(countdown=CALENDAR_WAIT_SECONDS, exc=exc) from exc
    except MAIL_ERRORS as exc:
        _retry_mail(self, exc, f"the agent's email of meeting {meeting_id}")


@shared_task(bind=True, acks_late=True, max_retries=None)
def remove_meeting_from_calendar(self, meeting_id: str) -> None:
    """After a cancellation: the provider event goes (see
    meetings.calendar_events.remove_from_calendar); retried like adding it, then the meeting
    is marked REMOVE_FAILED."""
    try:
        calendar_events.remove_from_calendar(meeting_id)
    except TransientCalendarError as exc:
        delay = retry_delay(exc, retries=self.request.retries)
        if delay is None:
            tries = self.request.retries + 1
            calendar_events.give_up_removing(meeting_id, f"gave up after {tries} tries: {exc}")
            return
        raise self.retry(countdown=delay, exc=exc) from exc


@shared_task(bind=True, acks_late=True, max_retries=None)
def send_cancellation_emails(self, meeting_id: str) -> None:
    """After a cancellation: the agent's email, then the visitor's (with the .ics CANCEL). A
    task of its own, so a provider that is slow to delete the event does not hold them back.
    Each is stamped once sent, so a retry after a mail error sends only what is missing."""
    try:
        notifications.send_agent_cancellation(meeting_id)
        invitations.send_visitor_cancellation(meeting_id)
    except MAIL_ERRORS as exc:
        _retry_mail(self, exc, f"the cancellation emails of meeting {meeting_id}")
