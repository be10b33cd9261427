"""Putting a booked meeting on the agent's calendar, then inviting the visitor; and taking a
cancelled meeting off it again.

Runs in Celery tasks (meetings.tasks), after the booking or the cancellation committed.
Idempotent: the provider event is keyed by the meeting's id (Google event id, Graph
transactionId), so a retry after a crash or a lost answer finds the event the first attempt
made instead of making a second one; the invitation is sent at most once per meeting under the
meeting's row lock; and removing an event that is already gone counts as done.

Cancel and create can race. A PENDING calendar status belongs to the adding task: the
removing task leaves such a meeting alone, and the adding task, which checks the meeting's
status at its start and again after the provider answered, takes off any event it made for a
meeting that was cancelled meanwhile. So whichever order they run in, no event stays behind.
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
    (the time is held in DynChat whatever the calendar says). A meeting cancelled before or
    while its event was made gets no invitation, and no event is left on the calendar."""
    meeting = Meeting.objects.select_related("agent", "site").filter(pk=meeting_id).first()
    if meeting is None:
        return
    if meeting.status == Meeting.Status.CANCELLED:
        remove_from_calendar(meeting_id, settle_pending=True)
        return
    if meeting.calendar_status == Status.PENDING:
        _create_event(meeting)
        # Cancelled while the provider was answering: the event just made goes again.
        if Meeting.objects.filter(pk=meeting_id, status=Meeting.Status.CANCELLED).exists():
            remove_from_calendar(meeting_id, settle_pending=True)
            return
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
    fix it, once (the update only happens while the meeting is still pending, and booked: a
    cancelled meeting needs no event)."""
    with transaction.atomic():
        changed = Meeting.objects.filter(
            pk=meeting_id, calendar_status=Status.PENDING, status=Meeting.Status.BOOKED
        ).update(
            calendar_status=Status.FAILED,
            calendar_error=reason[:2000],
            ical_uid=f"{uuid.UUID(str(meeting_id)).hex}@dynchat",
            updated_at=timezone.now(),
        )
        if changed:
            log.warning("meeting %s could not be added to the calendar: %s", meeting_id, reason)
            transaction.on_commit(lambda: invitations.send_calendar_failure(meeting_id))


def give_up(meeting_id, reason: str) -> None:
    """The adding task ran out of retries. A booked meeting is marked failed (the agent and
    admins are told) and its visitor still invited; a meeting cancelled meanwhile is marked
    REMOVE_FAILED, since an attempt whose answer was lost may have made the event."""
    fail(meeting_id, reason)
    give_up_removing(meeting_id, reason)
    add_to_calendar(meeting_id)  # no provider call left: it only sends the invitation


# --- removing ------------------------------------------------------------------------------------


def remove_from_calendar(meeting_id, *, settle_pending: bool = False) -> None:
    """Take a cancelled meeting's event off the agent's calendar and mark it REMOVED (or
    REMOVE_FAILED on a permanent refusal). Raises TransientCalendarError for the task to
    retry. Removing what is already gone is done; a meeting that is not cancelled is left.

    A meeting still PENDING is the adding task's (see the module's docstring): only that task
    passes `settle_pending`, and then an event an earlier attempt may have made (its answer
    lost) is looked up by the meeting's key and removed."""
    meeting = Meeting.objects.filter(pk=meeting_id).first()
    if meeting is None or meeting.status != Meeting.Status.CANCELLED:
        return
    current = meeting.calendar_status
    if current in (Status.REMOVED, Status.REMOVE_FAILED):
        return
    if current == Status.PENDING and not settle_pending:
        log.info("meeting %s: its event is being made; the adding task removes it", meeting_id)
        return
    if current in (Status.BUILTIN, Status.FAILED) or (
        current == Status.PENDING and meeting.calendar_attempts == 0
    ):
        # Nothing was put on a provider's calendar (the built-in calendar is the meeting row).
        _mark_removed(meeting, current)
        return
    connection = CalendarConnection.objects.filter(user_id=meeting.agent_id).first()
    if connection is None or connection.provider != meeting.provider:
        _mark_remove_failed(
            meeting, current, "the agent's calendar was disconnected: delete the event by hand"
        )
        return
    calendar = provider(connection.provider)
    try:
        if current == Status.CREATED:
            calendar.cancel_event(connection.pk, meeting.provider_event_id)
        else:
            calendar.cancel_event_by_key(
                connection.pk, key=meeting.pk.hex, start=meeting.start, end=meeting.end
            )
    except TransientCalendarError:
        raise
    except NeedsReconnect as exc:
        _mark_remove_failed(meeting, current, f"the calendar needs reconnecting ({exc})")
        return
    except CalendarError as exc:
        _mark_remove_failed(meeting, current, str(exc) or exc.__class__.__name__)
        return
    _mark_removed(meeting, current)


def _mark_removed(meeting: Meeting, current: str) -> None:
    # Only from the status read: a concurrent run that got there first has nothing to redo.
    Meeting.objects.filter(pk=meeting.pk, calendar_status=current).update(
        calendar_status=Status.REMOVED, updated_at=timezone.now()
    )


def _mark_remove_failed(meeting: Meeting, current: str, reason: str) -> None:
    changed = Meeting.objects.filter(pk=meeting.pk, calendar_status=current).update(
        calendar_status=Status.REMOVE_FAILED,
        calendar_error=reason[:2000],
        updated_at=timezone.now(),
    )
    if changed:
        log.warning(
            "cancelled meeting %s could not be removed from the calendar: %s", meeting.pk, reason
        )


def give_up_removing(meeting_id, reason: str) -> None:
    """The provider kept failing: the event stays on the agent's calendar (the agent's
    cancellation email told them the meeting is off), and the meeting says so."""
    meeting = Meeting.objects.filter(pk=meeting_id, status=Meeting.Status.CANCELLED).first()
    if meeting is not None and meeting.calendar_status not in (
        Status.REMOVED,
        Status.REMOVE_FAILED,
    ):
        _mark_remove_failed(meeting, meeting.calendar_status, reason)
