"""One conversation's page: the dialogue and version it ran, the page it was on, the visitor,
its times, the transcript and what happened in it (goals, captured fields, a booked meeting).

This is the "Transcript Link" DynChat writes on its Marketo activities
(marketo_sync.writeback.transcript_url), so a marketer reading a lead in Marketo lands here.
For the site's marketing admins and marketing users; anyone else, and a conversation of another
site under this site's address, gets a 404 (dialogues.access.site_for).

Everything shown that a visitor typed (answers, captured values, the page address) is
auto-escaped text; the page address becomes a link only when it is a web address.
"""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from dialogues.access import site_for
from meetings.models import Meeting
from widget.models import Conversation, ConversationEvent

Kind = ConversationEvent.Kind


@dataclass(frozen=True)
class EventLine:
    """One event as the page lists it: when, what (plain text, then `moment` if it names a
    time, shown in the viewer's zone), and a link if it has one."""

    at: datetime
    kind: str
    text: str
    moment: datetime | None = None
    link: str = ""
    link_text: str = ""


@require_GET
@login_required
def conversation(request, site_id, conversation_id):
    site = site_for(request.user, site_id)
    conversation = get_object_or_404(
        Conversation.objects.select_related("dialogue", "version", "visitor"),
        pk=conversation_id,
        site=site,
    )
    page_url = conversation.page_url
    context = {
        "site": site,
        "conversation": conversation,
        "dialogue": conversation.dialogue,
        # Sent by the visitor's browser: only a web address becomes a link.
        "page_link": page_url if page_url.startswith(("https://", "http://")) else "",
        "visitor_email": conversation.visitor.email,
        "transcript": list(conversation.entries.order_by("seq")),
        "events": _event_lines(site, conversation),
    }
    return render(request, "dialogues/conversation.html", context)


def _event_lines(site, conversation) -> list[EventLine]:
    # Step events (the cards each step showed, for the reports' funnel) repeat the transcript.
    events = list(conversation.events.exclude(kind=Kind.STEP).order_by("created_at", "pk"))
    # The meetings this conversation booked that still exist, by id (one query for all).
    meetings = {
        str(pk): pk
        for pk in Meeting.objects.filter(conversation=conversation, site=site).values_list(
            "pk", flat=True
        )
    }
    return [_line(site, event, meetings) for event in events]


def _line(site, event, meetings: dict) -> EventLine:
    data = event.data or {}
    at, kind = event.created_at, event.kind
    if kind == Kind.GOAL_REACHED:
        return EventLine(at, kind, f"Goal reached: {data.get('goal', '')}")
    if kind == Kind.FIELD_CAPTURED:
        # Named as write-back names it (custom: dropped), as on the Marketo field mapping page.
        attribute = str(data.get("attribute", "")).removeprefix("custom:")
        return EventLine(at, kind, f"Captured {attribute}: {data.get('value', '')}")
    if kind == Kind.MEETING_BOOKED:
        start = _moment(data.get("start", ""))
        text = "Meeting booked for" if start else "Meeting booked"
        meeting_pk = meetings.get(str(data.get("meeting_id", "")))
        if meeting_pk is None:
            return EventLine(at, kind, text, moment=start)
        link = reverse("meetings:detail", args=[site.pk, meeting_pk])
        return EventLine(at, kind, text, moment=start, link=link, link_text="The meeting's page")
    return EventLine(at, kind, EVENT_TEXTS.get(kind, kind))


def _moment(text: str) -> datetime | None:
    """The event's ISO time ("2026-03-02T15:00:00Z"), or None when it has none that reads."""
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


EVENT_TEXTS = {
    Kind.TRIGGERED: "Dialogue shown",
    Kind.ENGAGED: "Visitor engaged",
    Kind.COMPLETED: "Conversation completed",
    Kind.ROUTING_FALLBACK: "Nobody could take a meeting: the visitor read the fallback message",
}
