"""Preview: a marketer runs the draft in the real widget, and nothing is recorded.

The preview page embeds the widget script with `data-api` pointing at a preview API shaped
exactly like the widget API (dialogues/preview_views.py), and a signed preview key in place of
the site key. The key names the marketer and the dialogue and lasts PREVIEW_SECONDS; every call
checks that the marketer may still edit the dialogue. Conversations live in the cache for the
same time, keyed by a random id and authorised by their own token, and no Visitor, Conversation,
transcript or event row is ever written: reports and Marketo never see a preview.
"""

import secrets
import uuid
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core import signing
from django.core.cache import cache
from django.http import Http404

from dialogues.access import dialogue_for
from dialogues.flow import engine
from dialogues.flow.cards import BookingCard, Flow, FlowInvalid, FlowProblem, parse_flow
from dialogues.models import Dialogue, Site
from dialogues.validation import draft_problems
from widget import keys

PREVIEW_SECONDS = 60 * 60
_SALT = "dynchat.preview"
_CACHE_PREFIX = "dynchat:preview:"


class PreviewDenied(Exception):
    """The key is forged or expired, or its marketer may no longer edit the dialogue."""


class DraftInvalid(Exception):
    def __init__(self, problems: list[FlowProblem]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s)")


class ConversationGone(Exception):
    """No such preview conversation (expired, or never started), or not this token's."""


def preview_key(*, user, dialogue: Dialogue) -> str:
    """A fresh key for one preview run: a restart gets a new key, so the widget's stored
    conversation (kept per key) is left behind."""
    nonce = secrets.token_urlsafe(6)
    return signing.dumps({"u": user.pk, "d": dialogue.pk, "n": nonce}, salt=_SALT)


@dataclass(frozen=True)
class Preview:
    key: str
    site: Site
    dialogue: Dialogue
    flow: Flow


def open_preview(key: str) -> Preview:
    """The preview this key stands for. Raises PreviewDenied, or DraftInvalid when the draft
    cannot run (the preview page shows those problems instead of the widget)."""
    try:
        data = signing.loads(key, salt=_SALT, max_age=PREVIEW_SECONDS)
        user = get_user_model().objects.get(pk=data["u"], is_active=True)
        site_id = Dialogue.objects.values_list("site_id", flat=True).get(pk=data["d"])
        site, dialogue = dialogue_for(user, site_id, data["d"])
    except (
        signing.BadSignature,
        KeyError,
        TypeError,
        Http404,
        Dialogue.DoesNotExist,
        get_user_model().DoesNotExist,
    ) as exc:
        raise PreviewDenied from exc
    return Preview(key=key, site=site, dialogue=dialogue, flow=runnable_flow(dialogue))


def runnable_flow(dialogue: Dialogue) -> Flow:
    """The draft's flow if it could be published as it stands; else raises DraftInvalid."""
    problems = draft_problems(dialogue.flow)
    if problems:
        raise DraftInvalid(problems)
    try:
        return parse_flow(dialogue.flow)
    except FlowInvalid as exc:  # draft_problems covers the schema; this is belt and braces
        raise DraftInvalid(exc.problems) from None


def _visitor_cache_key(preview: Preview, visitor_id: str) -> str:
    return f"{_CACHE_PREFIX}visitor:{keys.digest(preview.key + visitor_id)}"


def identify(preview: Preview, *, visitor_id: str, attributes: dict) -> None:
    """What the preview host page said of its visitor, for tokens and branches."""
    key = _visitor_cache_key(preview, visitor_id)
    cache.set(key, {**(cache.get(key) or {}), **attributes}, PREVIEW_SECONDS)


@dataclass
class PreviewConversation:
    id: str
    token_hash: str
    state: engine.State
    transcript: list[dict]
    lead: dict


def _conversation_key(preview: Preview, conversation_id: str) -> str:
    return f"{_CACHE_PREFIX}conversation:{keys.digest(preview.key)}:{conversation_id}"


def _store(preview: Preview, conversation: PreviewConversation) -> None:
    cache.set(
        _conversation_key(preview, conversation.id),
        {
            "token_hash": conversation.token_hash,
            "state": conversation.state.to_dict(),
            "transcript": conversation.transcript,
            "lead": conversation.lead,
        },
        PREVIEW_SECONDS,
    )


def start(preview: Preview, *, visitor_id: str) -> tuple[PreviewConversation, engine.Outcome, str]:
    """Start the draft; returns the conversation, its first outcome and its token."""
    lead = cache.get(_visitor_cache_key(preview, visitor_id)) or {}
    outcome = engine.start(preview.flow, lead=lead)
    token = keys.new_secret()
    conversation = PreviewConversation(
        id=str(uuid.uuid4()),
        token_hash=keys.digest(token),
        state=outcome.state,
        transcript=[_bot(m) for m in outcome.messages],
        lead=lead,
    )
    _store(preview, conversation)
    return conversation, outcome, token


def conversation(preview: Preview, *, conversation_id: str, token: str | None):
    stored = cache.get(_conversation_key(preview, conversation_id))
    if stored is None or not token or not keys.matches(token, stored["token_hash"]):
        raise ConversationGone
    return PreviewConversation(
        id=conversation_id,
        token_hash=stored["token_hash"],
        state=engine.State.from_dict(stored["state"]),
        transcript=stored["transcript"],
        lead=stored["lead"],
    )


def answer(
    preview: Preview, *, conversation_id: str, token: str | None, card_id: str, step: int, value
) -> tuple[PreviewConversation, engine.Outcome]:
    """Apply an answer as the live widget would, blocked email domains included. Raises
    ConversationGone, or the engine's NotCurrentCard, ConversationOver or InvalidAnswer."""
    current = conversation(preview, conversation_id=conversation_id, token=token)
    outcome = engine.answer(
        preview.flow,
        current.state,
        card_id=card_id,
        step=step,
        value=value,
        lead=current.lead,
        blocked_email_domains=preview.site.blocked_email_domains,
    )
    current.transcript.append(
        {"author": "visitor", "card_id": card_id, "text": outcome.answer_text}
    )
    current.transcript.extend(_bot(m) for m in outcome.messages)
    current.state = outcome.state
    _store(preview, current)
    return current, outcome


def booking_card(preview: Preview, current: PreviewConversation, *, card_id: str, step: int):
    """The booking card the preview conversation waits on (NotCurrentCard otherwise)."""
    card = engine.waiting_card(preview.flow, current.state, card_id=card_id, step=step)
    if not isinstance(card, BookingCard):
        raise engine.NotCurrentCard(f"card {card_id!r} does not book meetings")
    return card


def book(
    preview: Preview,
    *,
    conversation_id: str,
    token: str | None,
    card_id: str,
    step: int,
    label: str,
) -> tuple[PreviewConversation, engine.Outcome]:
    """Go on as if the meeting at `label` were booked: the flow runs on from the booking card's
    `next`, and no meeting is stored, no calendar touched and nobody emailed."""
    current = conversation(preview, conversation_id=conversation_id, token=token)
    booking_card(preview, current, card_id=card_id, step=step)
    outcome = engine.book(
        preview.flow,
        current.state,
        card_id=card_id,
        step=step,
        label=label,
        meeting={},
        lead=current.lead,
    )
    current.transcript.append({"author": "visitor", "card_id": card_id, "text": label})
    current.transcript.extend(_bot(m) for m in outcome.messages)
    current.state = outcome.state
    _store(preview, current)
    return current, outcome


def _bot(message: engine.Message) -> dict:
    return {"author": "bot", "card_id": message.card_id, "text": message.text}
