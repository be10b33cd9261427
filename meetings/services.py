"""Booking a meeting from a conversation: the one write path for new meetings.

The order of a booking, and why:

1. Read-only checks, no transaction: the conversation is the caller's and waits on this
   booking card, the visitor's email is known, the time is one routing offers this visitor
   (routing.routes: account owner, custom rules, then the whole queue).
2. Ask the calendar of every agent who could take that time, *live*, whether they still are
   free, outside any lock: a provider call can take seconds and must never hold a row.
3. One short transaction: lock the conversation, check it still waits on this step (a double
   click loses here) and advance it; then lock the route's round-robin pointer
   (routing.assign) and store the meeting with the first free agent after it, moving the
   pointer to them. PostgreSQL's exclusion constraint makes a second booked meeting
   overlapping an agent's impossible, whatever race we lose: the insert fails in its
   savepoint and the next agent in turn is tried.
4. After commit, Celery tasks put the event on the agent's calendar and email the visitor.

A time nobody can take any more raises SlotTaken and leaves nothing behind.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db import connection as database
from django.utils import timezone

from calendars.display import when_label, zone_named
from calendars.slots import group_by_day
from dialogues.flow import engine
from dialogues.flow.cards import BookingCard
from dialogues.models import Site
from dialogues.selectors import version_flow_by_id
from dialogues.targeting import VisitorFacts
from meetings.models import InvitationTemplate, Meeting
from meetings.tasks import add_meeting_to_calendar, notify_agent_of_meeting
from reports import rollup
from routing import assign, routes
from widget import services as conversations
from widget.models import Conversation, ConversationEvent, TranscriptEntry

log = logging.getLogger(__name__)


class SlotTaken(Exception):
    """Nobody can take the meeting at that time any more (or it was never offered)."""


class EmailRequired(Exception):
    """The visitor's email is not known: there would be nobody to invite."""


class InvalidTimeZone(ValueError):
    pass


@dataclass(frozen=True)
class OfferedDays:
    time_zone: str
    meeting_minutes: int | None  # None when the agents' meeting lengths differ
    days: list[tuple]  # [(local date, [UTC slot starts])], at most the card's `days`
    # What the visitor is told instead of times when nobody can take them (days is empty).
    fallback: str | None = None


@dataclass(frozen=True)
class Booked:
    step: conversations.Step
    meeting: Meeting
    label: str  # how the time reads to the visitor, in their zone
    lock_wait_seconds: float = 0.0  # how long the round-robin pointer's lock took to get


def booking_card(conversation: Conversation, *, card_id: str, step: int) -> BookingCard:
    """The booking card the conversation waits on at `step`; raises engine.NotCurrentCard or
    engine.ConversationOver otherwise."""
    flow = version_flow_by_id(conversation.version_id)
    state = engine.State.from_dict(conversation.state)
    card = engine.waiting_card(flow, state, card_id=card_id, step=step)
    if not isinstance(card, BookingCard):
        raise engine.NotCurrentCard(f"card {card_id!r} does not book meetings")
    return card


def conversation_facts(conversation: Conversation) -> VisitorFacts:
    """What routing knows of the conversation's visitor: their synced lead (by the email they
    gave, else the lead their cookie resolved to) and company, overlaid with what they told
    the chat so far."""
    state = engine.State.from_dict(conversation.state)
    visitor = conversation.visitor
    # A visitor known by their Munchkin cookie books as that lead (its email included).
    return conversations.visitor_facts(
        {**visitor.attributes, **state.captured}, lead_id=visitor.marketo_lead_id
    )


def offered_days(
    *,
    site: Site,
    facts: VisitorFacts,
    card: BookingCard,
    time_zone: str,
    now: datetime | None = None,
) -> OfferedDays:
    """The times a visitor with `facts` may book now (routing decides whose), grouped by day in
    the visitor's zone; no days and the site's fallback message when nobody can take them."""
    zone = zone_named(time_zone)
    if zone is None:
        raise InvalidTimeZone(time_zone)
    offer = routes.offer(site, facts, now=now)
    days = group_by_day(sorted(offer.slots), zone)[: card.days]
    agent_ids = {
        agent_id for starts in days for start in starts[1] for agent_id in offer.slots[start]
    }
    lengths = {offer.agents[pk].availability.meeting_minutes for pk in agent_ids}
    return OfferedDays(
        time_zone=zone.key,
        meeting_minutes=lengths.pop() if len(lengths) == 1 else None,
        days=days,
        fallback=None if days else routes.fallback_message(site),
    )


def record_fallback(
    *, site: Site, conversation_id: str, token: str | None, card_id: str, step: int, message: str
) -> bool:
    """Note in the conversation that nobody could take the visitor at this booking card: a
    routing_fallback event and the message in the transcript, once per card and step however
    often the visitor asks for times. Returns whether it was recorded now."""
    with transaction.atomic():
        conversation = conversations.authorised_conversation(
            site=site, conversation_id=conversation_id, token=token, lock=True
        )
        booking_card(conversation, card_id=card_id, step=step)
        kind = ConversationEvent.Kind.ROUTING_FALLBACK
        if ConversationEvent.objects.filter(
            conversation=conversation, kind=kind, card_id=card_id, data__step=step
        ).exists():
            return False
        now = timezone.now()
        ConversationEvent.objects.create(
            conversation=conversation,
            site_id=conversation.site_id,
            dialogue_id=conversation.dialogue_id,
            version_id=conversation.version_id,
            kind=kind,
            card_id=card_id,
            data={"step": step},
            page_url=conversation.page_url,
            created_at=now,
        )
        TranscriptEntry.objects.create(
            conversation=conversation,
            seq=conversation.transcript_length,
            author=TranscriptEntry.Author.BOT,
            card_id=card_id,
            text=message,
            created_at=now,
        )
        conversation.transcript_length += 1
        conversation.save(update_fields=["transcript_length", "updated_at"])
        rollup.kick()
    return True


def book_meeting(
    *,
    site: Site,
    conversation_id: str,
    token: str | None,
    card_id: str,
    step: int,
    start: datetime,
    time_zone: str,
    now: datetime | None = None,
) -> Booked:
    """Book the meeting the visitor picked, with the agent routing gives it to. Raises
    ConversationDenied, NotCurrentCard, ConversationOver, InvalidTimeZone, EmailRequired or
    SlotTaken; nothing is written then."""
    zone = zone_named(time_zone)
    if zone is None:
        raise InvalidTimeZone(time_zone)
    conversation = conversations.authorised_conversation(
        site=site, conversation_id=conversation_id, token=token
    )
    booking_card(conversation, card_id=card_id, step=step)
    facts = conversation_facts(conversation)
    if not str(facts.lead.get("email") or "").strip():
        raise EmailRequired

    start = start.astimezone(UTC)
    try:
        # Live calendar checks of everyone who could take it, before any lock is taken.
        chosen = routes.route_for_slot(site, facts, start, now=now)
    except routes.NoRoute:
        raise SlotTaken from None
    return _store(
        site=site,
        conversation_id=conversation.pk,
        token=token,
        card_id=card_id,
        step=step,
        facts=facts,
        route=chosen.route,
        free=chosen.free,
        start=start,
        zone=zone,
        label=when_label(start, zone),
    )


def _store(
    *, site, conversation_id, token, card_id, step, facts, route, free, start, zone, label
) -> Booked:
    """The booking's one transaction: the conversation moves on and the meeting is stored with
    the first agent whose turn it is among those `free` ({id: (user, meeting end)}). Raises
    SlotTaken, storing nothing, when they were all taken meanwhile. `facts` were read before
    the conversation's lock, at this same step (re-checked under it), so they still hold."""
    with transaction.atomic():
        conversation = conversations.authorised_conversation(
            site=site, conversation_id=str(conversation_id), token=token, lock=True
        )
        # Re-checked under the lock: a second click on the same time loses here.
        booking_card(conversation, card_id=card_id, step=step)
        flow = version_flow_by_id(conversation.version_id)
        state = engine.State.from_dict(conversation.state)
        person, company = facts.lead, facts.company
        meeting_uuid = uuid.uuid4()
        outcome = engine.book(
            flow,
            state,
            card_id=card_id,
            step=step,
            label=label,
            # UTC with a Z, as the slots endpoint writes it (host pages get this as is).
            meeting={"meeting_id": str(meeting_uuid), "start": start.isoformat()[:19] + "Z"},
            lead=facts.lead,
            company=company,
        )
        events = list(outcome.events)
        if conversation.engaged_at is None:
            events.insert(0, engine.Event(ConversationEvent.Kind.ENGAGED, card_id))
        # Written before the pointer is locked, so the lock is held only for the choice itself.
        conversations.record_step(
            conversation, outcome, events, answer=(card_id, label), now=timezone.now()
        )
        stored: list[Meeting] = []

        def try_agent(agent_id: int, assignment: int | None) -> bool:
            if agent_id not in free:
                return False  # busy at that time, or their calendar could not say
            agent, end = free[agent_id]
            # On PostgreSQL the exclusion constraint decides, at the insert; SQLite has none.
            if database.vendor != "postgresql" and _overlaps(agent_id, start, end):
                return False
            try:
                with transaction.atomic():
                    stored.append(
                        Meeting.objects.create(
                            id=meeting_uuid,
                            site=site,
                            agent=agent,
                            agent_name=agent.get_full_name() or agent.username,
                            agent_email=agent.email,
                            conversation=conversation,
                            dialogue_id=conversation.dialogue_id,
                            lead_email=str(person["email"]).strip().lower(),
                            lead_first_name=str(person.get("firstName") or "")[:255],
                            lead_last_name=str(person.get("lastName") or "")[:255],
                            lead_company=str(company.get("company") or person.get("company") or "")[
                                :255
                            ],
                            visitor_time_zone=zone.key,
                            start=start,
                            end=end,
                            provider=_provider_of(agent),
                            routed_by=route.kind,
                            routing_rule_name=route.rule_name,
                            assignment=assignment,
                        )
                    )
            except IntegrityError:
                log.info("agent %s was booked at %s meanwhile; trying the next", agent_id, start)
                return False
            return True

        turn = assign.take_turn(site, route, try_agent)
        if turn is None:
            raise SlotTaken  # rolls the whole transaction back
        meeting = stored[0]
        meeting_id = str(meeting.pk)
        transaction.on_commit(lambda: add_meeting_to_calendar.delay(meeting_id))
        transaction.on_commit(lambda: notify_agent_of_meeting.delay(meeting_id))
        step_done = conversations.Step(
            conversation, outcome, events, conversations.state_if_done(conversation, outcome)
        )
    return Booked(
        step=step_done, meeting=meeting, label=label, lock_wait_seconds=turn.lock_wait_seconds
    )


@transaction.atomic
def update_invitation_template(*, site: Site, subject: str, body: str, user) -> InvitationTemplate:
    """Save the site's invitation email (validated by the caller's form)."""
    template, _ = InvitationTemplate.objects.update_or_create(
        site=site, defaults={"subject": subject, "body": body, "updated_by": user}
    )
    return template


def _overlaps(agent_id: int, start: datetime, end: datetime) -> bool:
    return Meeting.objects.filter(
        agent_id=agent_id, status=Meeting.Status.BOOKED, start__lt=end, end__gt=start
    ).exists()


def _provider_of(agent) -> str:
    connection = getattr(agent, "calendar_connection", None)
    return connection.provider if connection is not None else ""
