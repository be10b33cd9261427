"""Booking a meeting from a conversation: the one write path for new meetings.

The order of a booking, and why:

1. Read-only checks, no transaction: the conversation is the caller's and waits on this
   booking card, the visitor's email is known, the time is one that was offered.
2. For each agent free at that time (in queue order), ask their calendar *live* whether they
   still are, outside any lock: a provider call can take seconds and must never hold a row.
3. One short transaction per agent tried: lock the conversation, check it still waits on this
   step (a double click loses here), insert the meeting, advance the conversation. PostgreSQL's
   exclusion constraint makes a second booked meeting overlapping the agent's impossible,
   whatever race we lose: the insert fails in its savepoint and the next agent is tried.
4. After commit, a Celery task puts the event on the agent's calendar and emails the visitor.

A time nobody can take any more raises SlotTaken and leaves nothing behind.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from calendars import availability
from calendars.display import when_label, zone_named
from calendars.models import Availability
from calendars.slots import group_by_day
from dialogues.flow import engine
from dialogues.flow.cards import BookingCard
from dialogues.models import Site
from dialogues.selectors import version_flow_by_id
from meetings.models import InvitationTemplate, Meeting
from meetings.tasks import add_meeting_to_calendar
from widget import services as conversations
from widget.models import Conversation, ConversationEvent

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


@dataclass(frozen=True)
class Booked:
    step: conversations.Step
    meeting: Meeting
    label: str  # how the time reads to the visitor, in their zone


def booking_card(conversation: Conversation, *, card_id: str, step: int) -> BookingCard:
    """The booking card the conversation waits on at `step`; raises engine.NotCurrentCard or
    engine.ConversationOver otherwise."""
    flow = version_flow_by_id(conversation.version_id)
    state = engine.State.from_dict(conversation.state)
    card = engine.waiting_card(flow, state, card_id=card_id, step=step)
    if not isinstance(card, BookingCard):
        raise engine.NotCurrentCard(f"card {card_id!r} does not book meetings")
    return card


def offered_days(
    *, site: Site, card: BookingCard, time_zone: str, now: datetime | None = None
) -> OfferedDays:
    """The times visitors of `site` may book now, grouped by day in the visitor's zone."""
    zone = zone_named(time_zone)
    if zone is None:
        raise InvalidTimeZone(time_zone)
    offered = availability.offered_slots(site, now=now)
    days = group_by_day(sorted(offered), zone)[: card.days]
    agent_ids = {agent_id for starts in days for start in starts[1] for agent_id in offered[start]}
    lengths = set(
        Availability.objects.filter(user_id__in=agent_ids).values_list("meeting_minutes", flat=True)
    )
    return OfferedDays(
        time_zone=zone.key,
        meeting_minutes=lengths.pop() if len(lengths) == 1 else None,
        days=days,
    )


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
    """Book the meeting the visitor picked. Raises ConversationDenied, NotCurrentCard,
    ConversationOver, InvalidTimeZone, EmailRequired or SlotTaken; nothing is written then."""
    zone = zone_named(time_zone)
    if zone is None:
        raise InvalidTimeZone(time_zone)
    conversation = conversations.authorised_conversation(
        site=site, conversation_id=conversation_id, token=token
    )
    booking_card(conversation, card_id=card_id, step=step)
    state = engine.State.from_dict(conversation.state)
    visitor = conversation.visitor
    person = {**visitor.attributes, **state.captured}
    if not str(person.get("email") or "").strip():
        raise EmailRequired

    start = start.astimezone(UTC)
    candidates = availability.offered_slots(site, now=now).get(start, [])
    lengths = dict(
        Availability.objects.filter(user_id__in=candidates).values_list(
            "user_id", "meeting_minutes"
        )
    )
    agents = {a.pk: a for a in get_user_model().objects.filter(pk__in=candidates)}
    label = when_label(start, zone)
    for agent_id in candidates:
        agent = agents.get(agent_id)
        if agent is None or agent_id not in lengths:
            continue
        end = start + timedelta(minutes=lengths[agent_id])
        if not availability.agent_is_free(agent, start, end, now=now):
            continue  # their calendar changed since the slots were shown
        booked = _store(
            site=site,
            conversation_id=conversation.pk,
            token=token,
            card_id=card_id,
            step=step,
            agent=agent,
            start=start,
            end=end,
            zone=zone,
            label=label,
        )
        if booked is not None:
            return booked
    raise SlotTaken


def _store(
    *, site, conversation_id, token, card_id, step, agent, start, end, zone, label
) -> Booked | None:
    """The booking's one transaction; None when the agent was taken meanwhile."""
    with transaction.atomic():
        conversation = conversations.authorised_conversation(
            site=site, conversation_id=str(conversation_id), token=token, lock=True
        )
        # Re-checked under the lock: a second click on the same time loses here.
        booking_card(conversation, card_id=card_id, step=step)
        if Meeting.objects.filter(
            agent=agent, status=Meeting.Status.BOOKED, start__lt=end, end__gt=start
        ).exists():
            return None  # the guard on SQLite; on PostgreSQL the constraint below decides
        flow = version_flow_by_id(conversation.version_id)
        state = engine.State.from_dict(conversation.state)
        visitor = conversation.visitor
        facts = conversations.visitor_facts({**visitor.attributes, **state.captured})
        person, company = facts.lead, facts.company
        try:
            with transaction.atomic():
                meeting = Meeting.objects.create(
                    site=site,
                    agent=agent,
                    agent_name=agent.get_full_name() or agent.username,
                    agent_email=agent.email,
                    conversation=conversation,
                    dialogue_id=conversation.dialogue_id,
                    lead_email=str(person["email"]).strip().lower(),
                    lead_first_name=str(person.get("firstName") or "")[:255],
                    lead_last_name=str(person.get("lastName") or "")[:255],
                    lead_company=str(company.get("company") or person.get("company") or "")[:255],
                    visitor_time_zone=zone.key,
                    start=start,
                    end=end,
                    provider=_provider_of(agent),
                )
        except IntegrityError:
            log.info("agent %s was booked at %s meanwhile; trying the next", agent.pk, start)
            return None
        outcome = engine.book(
            flow,
            state,
            card_id=card_id,
            step=step,
            label=label,
            # UTC with a Z, as the slots endpoint writes it (host pages get this as is).
            meeting={"meeting_id": str(meeting.pk), "start": start.isoformat()[:19] + "Z"},
            lead=facts.lead,
            company=company,
        )
        events = list(outcome.events)
        if conversation.engaged_at is None:
            events.insert(0, engine.Event(ConversationEvent.Kind.ENGAGED, card_id))
        conversations.record_step(
            conversation, outcome, events, answer=(card_id, label), now=timezone.now()
        )
        meeting_id = str(meeting.pk)
        transaction.on_commit(lambda: add_meeting_to_calendar.delay(meeting_id))
        step_done = conversations.Step(
            conversation, outcome, events, conversations.state_if_done(conversation, outcome)
        )
    return Booked(step=step_done, meeting=meeting, label=label)


@transaction.atomic
def update_invitation_template(*, site: Site, subject: str, body: str, user) -> InvitationTemplate:
    """Save the site's invitation email (validated by the caller's form)."""
    template, _ = InvitationTemplate.objects.update_or_create(
        site=site, defaults={"subject": subject, "body": body, "updated_by": user}
    )
    return template


def _provider_of(agent) -> str:
    connection = getattr(agent, "calendar_connection", None)
    return connection.provider if connection is not None else ""
