"""Putting a booked meeting on the agent's calendar, then inviting the visitor.

Runs in a Celery task (meetings.tasks), after the booking committed. Idempotent: the provider
event is keyed by the meeting's id (Google event id, Graph transactionId), so a retry after a
crash or a lost answer finds the event the first attempt made instead of making a second one;
and the invitation is sent at most once per meeting under the meeting's row lock.
"""

import logging
import uuid

from django.db import transaction
from django.utils import timezone

from calendars.models import CalendarConnection
from calendars.providers import provider
from calendars.providers.base import (
    CalendarError,
    NeedsReconnect,
    NewEvent,
    TransientCalendarError,
)
from meetings import invitations
from meetings.models import Meeting

log = logging.getLogger(__name__)
Status = Meeting.CalendarStatus


def add_to_calendar(meeting_id: str) -> None:
    """Create the meeting's calendar event (if still needed), then send the invitation.

    Raises TransientCalendarError for the task to retry; any other calendar failure marks the
    meeting failed and tells the agent and the site's admins, and the visitor is still invited
    (the time is held in DynChat whatever the calendar says)."""
    meeting = Meeting.objects.select_related("agent", "site").filter(pk=meeting_id).first()
    if meeting is None or meeting.status != Meeting.Status.BOOKED:
        return
    if meeting.calendar_status == Status.PENDING:
        _create_event(meeting)
    invitations.send_invitation(meeting_id)


def _create_event(meeting: Meeting) -> None:
    connection = CalendarConnection.objects.filter(user_id=meeting.agent_id).first()
    if connection is None:
        fail(meeting.pk, "the agent has no calendar connected any more")
        return
    if connection.provider == CalendarConnection.Provider.BUILTIN:
        _record(meeting.pk, status=Status.BUILTIN, ical_uid=f"{meeting.pk.hex}@dynchat")
        return
    Meeting.objects.filter(pk=meeting.pk).update(
        calendar_attempts=meeting.calendar_attempts + 1, updated_at=timezone.now()
    )
    event = NewEvent(
        key=meeting.pk.hex,
        summary=invitations.event_summary(meeting),
        description=invitations.event_description(meeting),
        start=meeting.start,
        end=meeting.end,
        attendee_email=meeting.lead_email,
        attendee_name=invitations.lead_name(meeting),
        video_link=connection.add_video_link,
    )
    try:
        created = provider(connection.provider).create_event(connection.pk, event)
    except TransientCalendarError:
        raise
    except NeedsReconnect as exc:
        fail(meeting.pk, f"the calendar needs reconnecting ({exc})")
        return
    except CalendarError as exc:
        fail(meeting.pk, str(exc) or exc.__class__.__name__)
        return
    _record(
        meeting.pk,
        status=Status.CREATED,
        provider_event_id=created.provider_event_id,
        ical_uid=created.ical_uid or f"{meeting.pk.hex}@dynchat",
        join_url=created.join_url,
    )


def _record(meeting_id, *, status: str, **fields) -> None:
    Meeting.objects.filter(pk=meeting_id, calendar_status=Status.PENDING).update(
        calendar_status=status, calendar_error="", updated_at=timezone.now(), **fields
    )


def fail(meeting_id, reason: str) -> None:
    """The event could not be created for good: mark the meeting and tell the people who can
    fix it, once (the update only happens while the meeting is still pending)."""
    with transaction.atomic():
        changed = Meeting.objects.filter(pk=meeting_id, calendar_status=Status.PENDING).update(
            calendar_status=Status.FAILED,
            calendar_error=reason[:2000],
            ical_uid=f"{uuid.UUID(str(meeting_id)).hex}@dynchat",
            updated_at=timezone.now(),
        )
        if changed:
            log.warning("meeting %s could not be added to the calendar: %s", meeting_id, reason)
            transaction.on_commit(lambda: invitations.send_calendar_failure(meeting_id))
