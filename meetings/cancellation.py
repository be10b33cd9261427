"""Cancelling a meeting: the one write path, for the visitor (from the link in their
invitation) and for the agent or an admin (from the meeting's page).

Cancelling frees the time at once: the exclusion constraint that keeps an agent's meetings
apart covers booked meetings only, and slots count booked meetings only. What follows runs
after the commit, in Celery tasks (meetings.tasks): the provider event is taken off the agent's
calendar, the agent is emailed, and the visitor gets a cancellation whose .ics takes the
meeting out of their calendar.
"""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from meetings.models import Meeting
from meetings.tasks import remove_meeting_from_calendar, send_cancellation_emails

log = logging.getLogger(__name__)

MAX_REASON_CHARS = Meeting._meta.get_field("cancel_reason").max_length


class CannotCancel(Exception):
    """The meeting cannot be cancelled (any more). `message` is for the person who tried;
    `code` says why: "already_cancelled" or "started"."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.message = message
        self.code = code


class InvalidReason(ValueError):
    """The reason given is too long; nothing was changed."""


def cancel_meeting(
    *, meeting_id, by=None, reason: str = "", now: datetime | None = None
) -> Meeting:
    """Cancel the meeting and return it. `by`: None for the visitor, else the user (the agent
    or an admin) who cancels; the caller checks that they may.

    Raises Meeting.DoesNotExist, InvalidReason (a reason over 500 characters), or CannotCancel
    (already cancelled, or started: a meeting under way or over is not cancelled online).
    Nothing is changed then. The meeting's row is locked while checking and writing, so two
    cancellations at once (a double click) make one, and the other is told it already is.
    """
    now = now or timezone.now()
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidReason(f"Please keep the reason to {MAX_REASON_CHARS} characters.")
    with transaction.atomic():
        meeting = Meeting.objects.select_for_update(of=("self",)).get(pk=meeting_id)
        if meeting.status == Meeting.Status.CANCELLED:
            raise CannotCancel("This meeting is already cancelled.", code="already_cancelled")
        if meeting.start <= now:
            raise CannotCancel(
                "This meeting has already started, so it can no longer be cancelled online. "
                "Please write to the person you are meeting.",
                code="started",
            )
        meeting.status = Meeting.Status.CANCELLED
        meeting.cancelled_at = now
        meeting.cancelled_by = by
        meeting.cancel_reason = reason
        meeting.save(
            update_fields=["status", "cancelled_at", "cancelled_by", "cancel_reason", "updated_at"]
        )
        key = str(meeting.pk)
        transaction.on_commit(lambda: remove_meeting_from_calendar.delay(key))
        transaction.on_commit(lambda: send_cancellation_emails.delay(key))
    log.info("meeting %s cancelled by %s", meeting.pk, f"user {by.pk}" if by else "the visitor")
    return meeting
