"""The emails an agent gets about their meetings: "you have a new meeting" (who the visitor is,
what they told the chat, the transcript) and "your meeting was cancelled".

Plain text: every value in them was typed by a visitor or a marketer, and plain text cannot run
or hide anything. A visitor's value is written on one line (line breaks folded into spaces) and
transcript lines after the first are indented, so nothing a visitor types can pass for one of
our own lines ("Meeting page: ...", "Bot: ...").

Each email is sent at most once per meeting: under the meeting's row lock, stamped once the mail
server took it (agent_notified_at, agent_cancellation_sent_at), as invitations are.
"""

import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from calendars.display import zone_named
from calendars.models import Availability
from dialogues.flow import engine
from meetings.invitation_text import format_duration
from meetings.invitations import lead_name, visitor_zone, written_time
from meetings.models import Meeting
from widget.models import TranscriptEntry

log = logging.getLogger(__name__)

# What the chat captured, in this order first; anything else follows, by name.
KNOWN_FIELDS = (
    ("firstName", "First name"),
    ("lastName", "Last name"),
    ("email", "Email"),
    ("company", "Company"),
    ("phone", "Phone"),
)
MAX_VALUE_CHARS = 500


class CalendarNotReady(Exception):
    """The meeting's calendar event is still being made, so its join link is not known yet."""


def meeting_page_url(meeting: Meeting) -> str:
    path = reverse("meetings:detail", args=[meeting.site_id, meeting.pk])
    return settings.SITE_ROOT.rstrip("/") + path


def agent_zone(meeting: Meeting):
    """The agent's own zone (their hours' zone), UTC when they have none any more."""
    name = (
        Availability.objects.filter(user_id=meeting.agent_id)
        .values_list("time_zone", flat=True)
        .first()
    )
    return zone_named(name or "UTC") or zone_named("UTC")


def one_line(value) -> str:
    text = " ".join(str(value).split())
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return text


def field_label(name: str) -> str:
    """'companySize' -> 'Company size', 'utm_source' -> 'Utm source'."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").split()
    return " ".join(words).capitalize() if words else name


@dataclass(frozen=True)
class Lead:
    """What is known of the visitor who booked: (label, value) pairs, the page they were on,
    the dialogue's name and the transcript, as text."""

    fields: list[tuple[str, str]]
    page_url: str
    dialogue_name: str
    transcript: str


def lead_of(meeting: Meeting) -> Lead:
    """The visitor's details: the meeting's copy first (conversations are purged after the
    retention period, meetings are kept), then what the chat captured and the visitor's
    stored attributes (the chat's answers win, being newer)."""
    conversation = meeting.conversation
    told: dict = {}
    page_url = transcript = ""
    if conversation is not None:
        state = engine.State.from_dict(conversation.state)
        told = {**conversation.visitor.attributes, **state.captured}
        page_url = conversation.page_url
        entries = TranscriptEntry.objects.filter(conversation=conversation).order_by("seq")
        transcript = "\n".join(_transcript_line(e) for e in entries)
    known = {
        "firstName": meeting.lead_first_name,
        "lastName": meeting.lead_last_name,
        "email": meeting.lead_email,
        "company": meeting.lead_company,
    }
    fields = []
    for name, label in KNOWN_FIELDS:
        value = one_line(known.get(name) or told.get(name) or "")
        if value:
            fields.append((label, value))
    shown = {name for name, _ in KNOWN_FIELDS}
    for name in sorted(told, key=str.lower):
        value = told[name]
        if name in shown or value is None or one_line(value) == "":
            continue
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        fields.append((field_label(name), one_line(value)))
    return Lead(
        fields=fields,
        page_url=one_line(page_url),
        dialogue_name=meeting.dialogue.name if meeting.dialogue_id else "",
        transcript=transcript,
    )


def _transcript_line(entry: TranscriptEntry) -> str:
    who = "Bot" if entry.author == TranscriptEntry.Author.BOT else "Visitor"
    first, *rest = entry.text.splitlines() or [""]
    return "\n".join([f"{who}: {first}", *(f"    {line}" for line in rest)])


def _who(meeting: Meeting) -> str:
    name = lead_name(meeting) or meeting.lead_email
    return f"{name} ({meeting.lead_company})" if meeting.lead_company else name


def new_meeting_email(meeting: Meeting) -> EmailMessage:
    mine, theirs = agent_zone(meeting), visitor_zone(meeting)
    lead = lead_of(meeting)
    when = written_time(meeting.start, mine)
    lines = [
        f"{one_line(_who(meeting))} booked a meeting with you in the {meeting.site.name} chat.",
        "",
        "When",
        f"  Your time: {when}",
        f"  Their time: {written_time(meeting.start, theirs)}",
        f"  Length: {format_duration(meeting.end - meeting.start)}",
        f"  Join link: {meeting.join_url or 'none (see the calendar event)'}",
        "",
        "Visitor",
        *(f"  {label}: {value}" for label, value in lead.fields),
        "",
        "Conversation",
    ]
    if lead.dialogue_name:
        lines.append(f"  Dialogue: {one_line(lead.dialogue_name)}")
    lines.append(f"  Page: {lead.page_url or 'unknown'}")
    lines += [
        "",
        f"Meeting page: {meeting_page_url(meeting)}",
        "",
        "Transcript",
        lead.transcript or "(no transcript: the conversation was deleted)",
    ]
    return EmailMessage(
        subject=one_line(f"New meeting: {_who(meeting)} on {when}"),
        body="\n".join(lines) + "\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[meeting.agent_email],
        # Replying writes to the visitor, the one person the agent may want to write to.
        reply_to=[meeting.lead_email],
    )


def notify_agent_of_meeting(meeting_id, *, wait_for_calendar: bool = False) -> bool:
    """Email the agent about their new meeting, once. True when this call sent it.

    With `wait_for_calendar`, raises CalendarNotReady while the calendar event (and its join
    link) is still being made, for the task to try again a little later. A meeting cancelled
    meanwhile gets no "new meeting" email (the cancellation one tells the agent)."""
    with transaction.atomic():
        meeting = (
            Meeting.objects.select_for_update(of=("self",))
            .select_related("site", "dialogue", "conversation__visitor")
            .filter(pk=meeting_id)
            .first()
        )
        if (
            meeting is None
            or meeting.agent_notified_at
            or meeting.status != Meeting.Status.BOOKED
            or not meeting.agent_email
        ):
            return False
        if wait_for_calendar and meeting.calendar_status == Meeting.CalendarStatus.PENDING:
            raise CalendarNotReady(str(meeting_id))
        new_meeting_email(meeting).send()
        meeting.agent_notified_at = timezone.now()
        meeting.save(update_fields=["agent_notified_at", "updated_at"])
    return True


def cancellation_email(meeting: Meeting) -> EmailMessage:
    mine, theirs = agent_zone(meeting), visitor_zone(meeting)
    when = written_time(meeting.start, mine)
    if meeting.cancelled_by_id is None:
        by = "the visitor, from their invitation"
    elif meeting.cancelled_by_id == meeting.agent_id:
        by = "you"
    else:
        user = meeting.cancelled_by
        name = (user.get_full_name() or user.get_username()) if user else "a team member"
        by = f"{name} ({user.email})" if user and user.email else name
    lines = [
        f"Your meeting with {one_line(_who(meeting))} on {when} is cancelled.",
        "",
        f"  Their time: {written_time(meeting.start, theirs)}",
        f"  Visitor: {one_line(lead_name(meeting) or '-')}, {meeting.lead_email}",
        f"  Cancelled by: {by}",
        f"  Reason: {one_line(meeting.cancel_reason) if meeting.cancel_reason else 'none given'}",
        "",
        "The time is free again for other visitors, the event is taken off your calendar, and "
        "the visitor gets a cancellation for theirs.",
        "",
        f"Meeting page: {meeting_page_url(meeting)}",
    ]
    return EmailMessage(
        subject=one_line(f"Cancelled: meeting with {_who(meeting)} on {when}"),
        body="\n".join(lines) + "\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[meeting.agent_email],
        reply_to=[meeting.lead_email],
    )


def send_agent_cancellation(meeting_id) -> bool:
    """Tell the agent their meeting is cancelled, once. True when this call sent it."""
    with transaction.atomic():
        meeting = (
            Meeting.objects.select_for_update(of=("self",))
            .select_related("site", "cancelled_by")
            .filter(pk=meeting_id)
            .first()
        )
        if (
            meeting is None
            or meeting.status != Meeting.Status.CANCELLED
            or meeting.agent_cancellation_sent_at
            or not meeting.agent_email
        ):
            return False
        cancellation_email(meeting).send()
        meeting.agent_cancellation_sent_at = timezone.now()
        meeting.save(update_fields=["agent_cancellation_sent_at", "updated_at"])
    return True
