"""The visitor runtime: sessions, conversations, answers. One write path each.

Concurrency: an answer locks its conversation row for the length of one short transaction, so
two answers arriving together (a double click, a replayed request) are applied one after the
other, and the second is refused as stale instead of being applied twice.
"""

import json
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from dialogues.flow import engine, inputs
from dialogues.flow.cards import CaptureCard, Flow
from dialogues.models import Dialogue, Site
from dialogues.selectors import (
    DialogueOffer,
    dialogue_to_offer,
    version_flow,
    version_flow_by_id,
)
from dialogues.targeting import VisitorFacts
from marketo_sync import writeback
from marketo_sync.selectors import (
    lead_for_cookie,
    munchkin_cookie,
    person_and_company,
    person_and_company_for_cookie,
    person_and_company_for_lead,
)
from reports import rollup
from widget import keys
from widget.models import Conversation, ConversationEvent, TranscriptEntry, Visitor

Kind = ConversationEvent.Kind
# last_seen_at is touched when a visitor acts (a conversation, identify), at most daily: a write
# per request would be wasted on a date only the retention purge reads.
LAST_SEEN_PRECISION = timedelta(hours=24)


class DialogueUnavailable(Exception):
    """The dialogue does not exist on this site or is not published."""


class UnknownVisitor(Exception):
    """The visitor key was not issued by this server for this site."""


class ConversationDenied(Exception):
    """The conversation is not this site's, or the request does not hold its token."""

    def __init__(self, code: str, message: str, status: int):
        self.code, self.message, self.status = code, message, status
        super().__init__(message)


@dataclass(frozen=True)
class Session:
    visitor_key: str  # the secret the widget keeps; new when the visitor is new
    visitor_state: str  # keys.visitor_state_token(): the widget sends it back next time
    offer: DialogueOffer | None


def start_visitor_session(
    *,
    site: Site,
    visitor_key: str | None,
    visitor_state: str | None = None,
    page_url: str = "",
    marketo_cookie: str | None = None,
) -> Session:
    """Recognise the visitor by their key (or issue a new one) and pick the dialogue to offer
    on `page_url`: the highest-priority one whose targeting admits this page, this moment and
    this visitor, and which they have not completed.

    No query for a new visitor (the Visitor row appears when they first act) nor for a returning
    one who brings the state token we gave them, unless a dialogue with audience conditions is
    in the running: then one indexed read of the visitor, and two of their synced lead and
    company when their email, their resolved lead or their Munchkin cookie (`marketo_cookie`,
    the `_mkto_trk` value; malformed is ignored) tells who they are. A returning visitor
    without the token (an old widget, cleared storage, a rotated SECRET_KEY) costs the visitor
    read.
    """
    returning = bool(visitor_key) and keys.is_visitor_key(visitor_key, site.pk)
    if not returning:
        # Never issued by us for this site (invented, another site's, or from before a
        # SECRET_KEY change without fallbacks): a new visitor, not an error.
        visitor_key = keys.new_visitor_key(site.pk)
    key_hash = keys.digest(visitor_key)
    row: list[_VisitorRow] = []

    def visitor_row() -> _VisitorRow:
        if not row:
            row.append(_visitor_row(site_id=site.pk, key_hash=key_hash) if returning else NEW)
        return row[0]

    def facts() -> VisitorFacts:
        found = visitor_row()
        return visitor_facts(
            found.attributes, lead_id=found.marketo_lead_id, cookie=marketo_cookie or ""
        )

    completed: set[int] | None = set() if not returning else None
    if completed is None and visitor_state:
        completed = keys.read_visitor_state(visitor_state, site.pk, key_hash)
    if completed is None:
        completed = visitor_row().completed

    # A dialogue the visitor completed is never shown to them again.
    return Session(
        visitor_key=visitor_key,
        visitor_state=keys.visitor_state_token(site.pk, key_hash, completed),
        offer=dialogue_to_offer(
            site=site,
            excluded_dialogue_ids=completed,
            page_url=page_url,
            visitor_facts=facts,
        ),
    )


def visitor_facts(told: dict, *, lead_id: int | None = None, cookie: str = "") -> VisitorFacts:
    """What targeting knows of a visitor who told the chat `told`: their synced lead and its
    company (synced_lead: two indexed reads when it is known), overlaid with what they told
    us, which is newer than the last sync."""
    person, company = synced_lead(email=told.get("email", ""), lead_id=lead_id, cookie=cookie)
    return VisitorFacts(lead={**person, **told}, company=company, chat=told)


def synced_lead(
    *, email: str = "", lead_id: int | None = None, cookie: str = ""
) -> tuple[dict, dict]:
    """The person and company facts of the synced lead a visitor is: the one with the email
    they gave, else the one their Munchkin cookie resolved to (`lead_id`), else the one holding
    the `_mkto_trk` value they bring now. An email with no synced lead gives nothing: whoever
    used the browser before may be someone else. No query when none of the three is known."""
    if email:
        return person_and_company(email)
    if lead_id:
        return person_and_company_for_lead(lead_id)
    if cookie:
        return person_and_company_for_cookie(cookie)
    return {}, {}


@dataclass(frozen=True)
class _VisitorRow:
    completed: set[int]
    attributes: dict
    marketo_lead_id: int | None = None


NEW = _VisitorRow(completed=set(), attributes={})


def _visitor_row(*, site_id: int, key_hash: str) -> _VisitorRow:
    """The stored facts of the visitor with this key (NEW for a visitor with no row yet).

    Raw SQL because this runs on returning visitors' page views, and compiling the
    equivalent queryset costs several times what PostgreSQL spends answering it (bench/).
    """
    table = connection.ops.quote_name(Visitor._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT completed_dialogue_ids, attributes, marketo_lead_id FROM {table}"  # noqa: S608
            " WHERE site_id = %s AND key_hash = %s",
            [site_id, key_hash],
        )
        found = cursor.fetchone()
    if found is None:
        return NEW
    # The backends hand JSON columns back as text (Django decodes them in JSONField).
    completed, attributes = (json.loads(v) if isinstance(v, str) else v for v in found[:2])
    return _VisitorRow(completed=set(completed), attributes=attributes, marketo_lead_id=found[2])


def visitor_for_key(*, site: Site, visitor_key: str) -> Visitor | None:
    """The visitor holding `visitor_key`, created on first use; None for a key we never issued."""
    if not keys.is_visitor_key(visitor_key, site.pk):
        return None
    visitor, created = Visitor.objects.get_or_create(site=site, key_hash=keys.digest(visitor_key))
    now = timezone.now()
    if not created and now - visitor.last_seen_at > LAST_SEEN_PRECISION:
        visitor.last_seen_at = now
        visitor.save(update_fields=["last_seen_at"])
    return visitor


def authorised_conversation(
    *, site: Site, conversation_id: str, token: str | None, lock: bool = False
) -> Conversation:
    """The site's conversation `conversation_id` if `token` is its own, read in one query
    (and row-locked, with its visitor, when `lock`). Raises ConversationDenied."""
    try:
        pk = uuid.UUID(conversation_id)
    except ValueError:
        pk = None
    # The version is not joined: its flow is parsed once per process (version_flow_by_id).
    rows = Conversation.objects.select_related("visitor").filter(pk=pk, site=site)
    if lock:
        rows = rows.select_for_update(of=("self", "visitor"))
    conversation = rows.first() if pk else None
    if conversation is None:
        raise ConversationDenied(
            "conversation_not_found", "No such conversation on this site.", 404
        )
    if not token:
        raise ConversationDenied(
            "missing_token", "Send the conversation token as 'Authorization: Bearer <token>'.", 401
        )
    if not keys.matches(token, conversation.token_hash):
        raise ConversationDenied(
            "invalid_token", "The token does not belong to this conversation.", 403
        )
    return conversation


@dataclass(frozen=True)
class Step:
    """What a conversation says and asks after a start or an answer."""

    conversation: Conversation
    outcome: engine.Outcome
    events: list[engine.Event]  # the events stored by this step, for the widget's callbacks
    # A fresh keys.visitor_state_token() when this step completed the conversation, else None.
    visitor_state: str | None = None


@transaction.atomic
def start_conversation(
    *,
    site: Site,
    visitor_key: str,
    dialogue_id: int,
    page_url: str,
    marketo_cookie: str | None = None,
) -> tuple[Step, str]:
    """Start the visitor on the dialogue's current published version.

    Returns the first step and the conversation token (shown once; only its digest is stored).
    Raises UnknownVisitor or DialogueUnavailable before writing anything; the Visitor row is
    created here, on the visitor's first conversation. Their Munchkin cookie (`marketo_cookie`,
    malformed is ignored) is stored and, for an anonymous visitor, resolved to their synced
    lead (_note_cookie); the flow's tokens and branches see that lead and its company.
    """
    if not keys.is_visitor_key(visitor_key, site.pk):
        raise UnknownVisitor
    dialogue = (
        Dialogue.objects.select_related("current_version")
        .filter(site=site, pk=dialogue_id, status=Dialogue.Status.PUBLISHED)
        .first()
    )
    if dialogue is None or dialogue.current_version is None or not site.chat_enabled:
        raise DialogueUnavailable
    visitor = visitor_for_key(site=site, visitor_key=visitor_key)
    cookie = munchkin_cookie(marketo_cookie)
    if cookie and _cookie_news(visitor, cookie, resolve=True):
        visitor = Visitor.objects.select_for_update().get(pk=visitor.pk)
        _note_cookie(visitor, cookie, resolve=True)
    version = dialogue.current_version
    flow = version_flow(version)
    person, company = synced_lead(email=visitor.email, lead_id=visitor.marketo_lead_id)
    outcome = engine.start(flow, lead={**person, **visitor.attributes}, company=company)
    token = keys.new_secret()
    now = timezone.now()
    conversation = Conversation.objects.create(
        site=site,
        visitor=visitor,
        dialogue=dialogue,
        version=version,
        token_hash=keys.digest(token),
        page_url=page_url,
        visitor_known=bool(visitor.email or visitor.marketo_lead_id),
        started_at=now,
    )
    triggered = engine.Event(Kind.TRIGGERED, "")
    events = [triggered, *outcome.events]
    if outcome.state.done:
        # Finishing at once records the completion on the visitor: take its row lock first.
        conversation.visitor = Visitor.objects.select_for_update().get(pk=visitor.pk)
    record_step(conversation, outcome, events, answer=None, now=now)
    return Step(conversation, outcome, events, state_if_done(conversation, outcome)), token


@transaction.atomic
def answer_conversation(
    *, site: Site, conversation_id: str, token: str | None, card_id: str, step: int, value: object
) -> Step:
    """Apply a visitor's answer. Raises ConversationDenied, or the engine's NotCurrentCard,
    ConversationOver or InvalidAnswer, before anything is written: a refused answer changes
    nothing."""
    conversation = authorised_conversation(
        site=site, conversation_id=conversation_id, token=token, lock=True
    )
    flow = version_flow_by_id(conversation.version_id)
    state = engine.State.from_dict(conversation.state)
    visitor = conversation.visitor
    # An email given here names the lead at once: a branch right after it sees their synced
    # fields in this very answer.
    email = _email_answered(flow, state, card_id, value, site.blocked_email_domains)
    person, company = synced_lead(email=email or visitor.email, lead_id=visitor.marketo_lead_id)
    outcome = engine.answer(
        flow,
        state,
        card_id=card_id,
        step=step,
        value=value,
        lead={**person, **visitor.attributes},
        company=company,
        blocked_email_domains=site.blocked_email_domains,
    )
    events = list(outcome.events)
    if conversation.engaged_at is None:
        events.insert(0, engine.Event(Kind.ENGAGED, card_id))
    record_step(
        conversation, outcome, events, answer=(card_id, outcome.answer_text), now=timezone.now()
    )
    return Step(conversation, outcome, events, state_if_done(conversation, outcome))


def _email_answered(
    flow: Flow, state: engine.State, card_id: str, value: object, blocked_domains: Collection[str]
) -> str:
    """The email this answer gives the visitor (cleaned as the engine will clean it), when it
    answers the email capture the conversation waits on; "" otherwise, and for an answer the
    engine is going to refuse. No query."""
    if state.done or card_id != state.waiting_on or not isinstance(value, str):
        return ""
    card = flow.card(card_id)
    if not isinstance(card, CaptureCard) or card.lead_field != "email":
        return ""
    try:
        return inputs.clean_email(value, blocked_domains=blocked_domains)
    except inputs.InvalidAnswer:
        return ""


def state_if_done(conversation: Conversation, outcome: engine.Outcome) -> str | None:
    """The visitor's new state token once a completion is recorded on their (locked) row."""
    if not outcome.state.done:
        return None
    visitor = conversation.visitor
    return keys.visitor_state_token(
        conversation.site_id, visitor.key_hash, visitor.completed_dialogue_ids
    )


def record_step(conversation, outcome, events, *, answer, now) -> None:
    """Store the transcript lines, events, captured fields and new state of one step.

    The caller holds the conversation's row lock (and its visitor's, when the step completes
    the conversation or captures a field) inside its transaction."""
    entries = []
    seq = conversation.transcript_length
    if answer is not None:
        entries.append(
            TranscriptEntry(
                conversation=conversation,
                seq=seq,
                author="visitor",
                card_id=answer[0],
                text=answer[1],
                created_at=now,
            )
        )
        seq += 1
    for message in outcome.messages:
        entries.append(
            TranscriptEntry(
                conversation=conversation,
                seq=seq,
                author="bot",
                card_id=message.card_id,
                text=message.text,
                created_at=now,
            )
        )
        seq += 1
    TranscriptEntry.objects.bulk_create(entries)
    email_before = conversation.visitor.email
    step = engine.Event(Kind.STEP, answer[0] if answer else "", {"shown": shown_cards(outcome)})
    ConversationEvent.objects.bulk_create(
        ConversationEvent(
            conversation=conversation,
            site_id=conversation.site_id,
            dialogue_id=conversation.dialogue_id,
            version_id=conversation.version_id,
            kind=event.kind,
            card_id=event.card_id,
            data=_event_data(event, email_before),
            page_url=conversation.page_url,
            created_at=now,
        )
        for event in [*events, step]
    )

    captured = {
        e.data["attribute"].removeprefix("custom:"): e.data["value"]
        for e in events
        if e.kind == Kind.FIELD_CAPTURED
    }
    if captured or outcome.state.done:
        _remember(
            conversation.visitor,
            attributes=captured,
            completed_dialogue_id=conversation.dialogue_id if outcome.state.done else None,
        )

    conversation.state = outcome.state.to_dict()
    conversation.transcript_length = seq
    fields = ["state", "transcript_length", "updated_at"]
    if any(e.kind == Kind.ENGAGED for e in events):
        conversation.engaged_at = now
        fields.append("engaged_at")
    if outcome.state.done:
        conversation.status = Conversation.Status.COMPLETED
        conversation.completed_at = now
        fields += ["status", "completed_at"]
    conversation.save(update_fields=fields)
    writeback.chat_step(conversation, events, told=captured, email_before=email_before, now=now)
    rollup.kick()


def shown_cards(outcome: engine.Outcome) -> list[str]:
    """The cards a step showed the visitor, in order, each once: those that said something,
    and the card it now waits on (even if its text came out blank)."""
    shown = list(dict.fromkeys(m.card_id for m in outcome.messages))
    if outcome.prompt is not None and outcome.prompt.card_id not in shown:
        shown.append(outcome.prompt.card_id)
    return shown


def _event_data(event: engine.Event, email_before: str) -> dict:
    """What an event stores: the engine's data, and for an email captured from a visitor who
    had given none before, `new_email` (the reports' "people captured")."""
    data = event.data
    if (
        event.kind == Kind.FIELD_CAPTURED
        and data.get("attribute") == "email"
        and data.get("value")
        and not email_before
    ):
        return {**data, "new_email": True}
    return data


def _remember(visitor: Visitor, *, attributes: dict, completed_dialogue_id: int | None) -> None:
    """Store what we learnt about a visitor. The caller holds the visitor's row lock."""
    fields = []
    if attributes:
        visitor.attributes = {**visitor.attributes, **attributes}
        fields.append("attributes")
        if attributes.get("email"):
            visitor.email = attributes["email"].lower()
            fields.append("email")
    if completed_dialogue_id and completed_dialogue_id not in visitor.completed_dialogue_ids:
        visitor.completed_dialogue_ids = [*visitor.completed_dialogue_ids, completed_dialogue_id]
        fields.append("completed_dialogue_ids")
    if fields:
        visitor.save(update_fields=fields)


def _cookie_news(visitor: Visitor, cookie: str, *, resolve: bool) -> bool:
    """Whether _note_cookie has anything to do (read on the unlocked row, so a visitor whose
    cookie is already stored and resolved costs no lock)."""
    unresolved = resolve and not visitor.email and not visitor.marketo_lead_id
    return cookie != visitor.marketo_cookie or unresolved


def _note_cookie(visitor: Visitor, cookie: str, *, resolve: bool) -> None:
    """Store the visitor's Munchkin cookie (munchkin_cookie() form) when it changed, so it can
    be associated with their lead in Marketo once they give an email; and when `resolve` and
    they are anonymous with no lead yet, the synced lead holding it (one indexed read), whose
    waiting outbox records are then released to it. The caller holds the visitor's row lock
    inside its transaction."""
    fields = []
    if cookie != visitor.marketo_cookie:
        visitor.marketo_cookie = cookie
        fields.append("marketo_cookie")
    found = None
    if resolve and not visitor.email and not visitor.marketo_lead_id:
        found = lead_for_cookie(cookie)
        if found is not None:
            visitor.marketo_lead_id = found[0]
            fields.append("marketo_lead_id")
    if fields:
        visitor.save(update_fields=fields)
    if found is not None:
        writeback.visitor_resolved(visitor)
    elif "marketo_cookie" in fields and visitor.email:
        writeback.cookie_changed(visitor, now=timezone.now())


@transaction.atomic
def identify_visitor(
    *, visitor: Visitor, attributes: dict, marketo_cookie: str | None = None
) -> Visitor:
    """Record what the host page knows about its visitor (DynChat.identify), and their Munchkin
    cookie (`marketo_cookie`, malformed is ignored): an anonymous visitor whose cookie a synced
    lead holds is resolved to it, unless this call gives their email."""
    visitor = Visitor.objects.select_for_update().get(pk=visitor.pk)
    cookie = munchkin_cookie(marketo_cookie)
    if cookie:
        # Before what they told is remembered: a visitor who becomes a lead here has their
        # cookie associated with it (writeback).
        _note_cookie(visitor, cookie, resolve=not attributes.get("email"))
    email_before = visitor.email
    _remember(visitor, attributes=attributes, completed_dialogue_id=None)
    writeback.visitor_told(
        visitor,
        site_id=visitor.site_id,
        told=attributes,
        email_before=email_before,
        now=timezone.now(),
    )
    return visitor


def transcript(conversation: Conversation) -> list[TranscriptEntry]:
    return list(conversation.entries.order_by("seq"))
