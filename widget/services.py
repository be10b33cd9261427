"""The visitor runtime: sessions, conversations, answers. One write path each.

Concurrency: an answer locks its conversation row for the length of one short transaction, so
two answers arriving together (a double click, a replayed request) are applied one after the
other, and the second is refused as stale instead of being applied twice.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from dialogues.flow import engine
from dialogues.models import Dialogue, Site
from dialogues.selectors import (
    DialogueOffer,
    dialogue_to_offer,
    version_flow,
    version_flow_by_id,
)
from dialogues.targeting import VisitorFacts
from marketo_sync import writeback
from marketo_sync.selectors import person_and_company
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
) -> Session:
    """Recognise the visitor by their key (or issue a new one) and pick the dialogue to offer
    on `page_url`: the highest-priority one whose targeting admits this page, this moment and
    this visitor, and which they have not completed.

    No query for a new visitor (the Visitor row appears when they first act) nor for a returning
    one who brings the state token we gave them, unless a dialogue with audience conditions is
    in the running: then one indexed read of the visitor, and two of their synced lead and
    company when their email is known. A returning visitor without the token (an old widget,
    cleared storage, a rotated SECRET_KEY) costs the visitor read.
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
            visitor_facts=lambda: visitor_facts(visitor_row().attributes),
        ),
    )


def visitor_facts(told: dict) -> VisitorFacts:
    """What targeting knows of a visitor who told the chat `told`: their synced lead and its
    company when their email is known (two indexed reads), overlaid with what they told us,
    which is newer than the last sync."""
    person, company = person_and_company(told.get("email", ""))
    return VisitorFacts(lead={**person, **told}, company=company, chat=told)


@dataclass(frozen=True)
class _VisitorRow:
    completed: set[int]
    attributes: dict


NEW = _VisitorRow(completed=set(), attributes={})


def _visitor_row(*, site_id: int, key_hash: str) -> _VisitorRow:
    """The stored facts of the visitor with this key (NEW for a visitor with no row yet).

    Raw SQL because this runs on returning visitors' page views, and compiling the
    equivalent queryset costs several times what PostgreSQL spends answering it (bench/).
    """
    table = connection.ops.quote_name(Visitor._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT completed_dialogue_ids, attributes FROM {table}"  # noqa: S608 - our table
            " WHERE site_id = %s AND key_hash = %s",
            [site_id, key_hash],
        )
        found = cursor.fetchone()
    if found is None:
        return NEW
    # The backends hand JSON columns back as text (Django decodes them in JSONField).
    completed, attributes = (json.loads(v) if isinstance(v, str) else v for v in found)
    return _VisitorRow(completed=set(completed), attributes=attributes)


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
    *, site: Site, visitor_key: str, dialogue_id: int, page_url: str
) -> tuple[Step, str]:
    """Start the visitor on the dialogue's current published version.

    Returns the first step and the conversation token (shown once; only its digest is stored).
    Raises UnknownVisitor or DialogueUnavailable before writing anything; the Visitor row is
    created here, on the visitor's first conversation.
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
    version = dialogue.current_version
    flow = version_flow(version)
    lead = visitor.attributes
    outcome = engine.start(flow, lead=lead)
    token = keys.new_secret()
    now = timezone.now()
    conversation = Conversation.objects.create(
        site=site,
        visitor=visitor,
        dialogue=dialogue,
        version=version,
        token_hash=keys.digest(token),
        page_url=page_url,
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
    outcome = engine.answer(
        flow,
        state,
        card_id=card_id,
        step=step,
        value=value,
        lead=conversation.visitor.attributes,
        blocked_email_domains=site.blocked_email_domains,
    )
    events = list(outcome.events)
    if conversation.engaged_at is None:
        events.insert(0, engine.Event(Kind.ENGAGED, card_id))
    record_step(
        conversation, outcome, events, answer=(card_id, outcome.answer_text), now=timezone.now()
    )
    return Step(conversation, outcome, events, state_if_done(conversation, outcome))


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
    ConversationEvent.objects.bulk_create(
        ConversationEvent(
            conversation=conversation,
            site_id=conversation.site_id,
            dialogue_id=conversation.dialogue_id,
            version_id=conversation.version_id,
            kind=event.kind,
            card_id=event.card_id,
            data=event.data,
            page_url=conversation.page_url,
            created_at=now,
        )
        for event in events
    )

    captured = {
        e.data["attribute"].removeprefix("custom:"): e.data["value"]
        for e in events
        if e.kind == Kind.FIELD_CAPTURED
    }
    email_before = conversation.visitor.email
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


@transaction.atomic
def identify_visitor(*, visitor: Visitor, attributes: dict) -> Visitor:
    """Record what the host page knows about its visitor (DynChat.identify)."""
    visitor = Visitor.objects.select_for_update().get(pk=visitor.pk)
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
