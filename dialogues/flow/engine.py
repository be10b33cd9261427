"""Step a conversation through a published flow.

The engine is pure: `start()` and `answer()` take a Flow, the conversation's State and what the
visitor knows about themselves (lead and company attributes), and return an Outcome with the
bot messages to show, the prompt to wait on (or none when the conversation is over), the events
that happened, and the new State. Nothing is stored here; the caller persists the outcome.
"""

from collections.abc import Collection
from dataclasses import dataclass, field, replace

from dialogues.flow import conditions, inputs, tokens
from dialogues.flow.cards import (
    BookingCard,
    BranchCard,
    CaptureCard,
    EndCard,
    Flow,
    GoalCard,
    MessageCard,
    QuestionCard,
)
from dialogues.flow.inputs import InvalidAnswer

# A flow may loop back through input cards, but never more than this many cards in one advance
# (schema validation already rejects loops without input; this is the belt to its braces).
MAX_CARDS_PER_ADVANCE = 500


@dataclass(frozen=True)
class State:
    """What the engine needs between two answers. Serialise with to_dict()/from_dict()."""

    waiting_on: str | None = None  # the card whose input we wait for
    step: int = 0  # bumps at every prompt, so a replayed or stale answer can be told apart
    answers: dict = field(default_factory=dict)  # card id -> stored value
    captured: dict = field(default_factory=dict)  # lead attribute -> value, from this chat
    done: bool = False

    def to_dict(self) -> dict:
        return {
            "waiting_on": self.waiting_on,
            "step": self.step,
            "answers": dict(self.answers),
            "captured": dict(self.captured),
            "done": self.done,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "State":
        return cls(
            waiting_on=data.get("waiting_on"),
            step=int(data.get("step", 0)),
            answers=dict(data.get("answers", {})),
            captured=dict(data.get("captured", {})),
            done=bool(data.get("done", False)),
        )


@dataclass(frozen=True)
class Choice:
    label: str
    value: str


@dataclass(frozen=True)
class Prompt:
    """What the visitor is asked to do now: pick a choice, or type text / email / phone."""

    card_id: str
    step: int
    kind: str  # "choice" | "text" | "email" | "phone"
    choices: tuple[Choice, ...] = ()
    placeholder: str = ""
    skip_label: str = ""  # booking: the answer that declines every time offered ("" = none)


@dataclass(frozen=True)
class Event:
    """Something reporting and Marketo care about: field_captured, goal_reached,
    meeting_booked, completed."""

    kind: str
    card_id: str
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    card_id: str
    text: str


@dataclass(frozen=True)
class Outcome:
    messages: list[Message]
    prompt: Prompt | None
    events: list[Event]
    state: State
    answer_text: str = ""  # how the visitor's answer reads in the transcript (a choice's label)


# The answer to a booking card that declines every time offered.
SKIP = "skip"


class FlowError(RuntimeError):
    """The flow cannot be run (it ran into an endless loop); never the visitor's fault."""


class NotCurrentCard(ValueError):
    """An answer names a card other than the one the conversation waits on, or a stale step."""


class ConversationOver(ValueError):
    """The conversation has finished; it takes no more answers."""


def start(flow: Flow, *, lead: dict | None = None, company: dict | None = None) -> Outcome:
    """Run the flow from its first card up to the first prompt or its end."""
    return _advance(flow, State(), flow.start, lead=lead or {}, company=company or {})


def answer(
    flow: Flow,
    state: State,
    *,
    card_id: str,
    step: int,
    value: object,
    lead: dict | None = None,
    company: dict | None = None,
    blocked_email_domains: Collection[str] = (),
) -> Outcome:
    """Apply the visitor's answer to the card they were asked, then run on to the next prompt.

    Raises ConversationOver, NotCurrentCard (wrong card or stale step: nothing applies), or
    InvalidAnswer (the card's own validation, or an email capture at one of the site's
    `blocked_email_domains`: the same prompt stays open).
    """
    card = waiting_card(flow, state, card_id=card_id, step=step)
    lead, company = lead or {}, company or {}
    if not isinstance(value, str):
        raise InvalidAnswer("invalid_type", "The answer must be text.")
    if isinstance(card, BookingCard):
        # A time is booked through book(); the only answer a booking card takes is "skip".
        if value != SKIP or not card.skip_label:
            raise InvalidAnswer("pick_a_time", "Please pick one of the times offered.")
        outcome = _advance(
            flow, _answered(state, card.id, SKIP), card.skip_next, lead=lead, company=company
        )
        return replace(outcome, answer_text=card.skip_label)

    events: list[Event] = []
    captured = dict(state.captured)
    if isinstance(card, QuestionCard):
        chosen = next((c for c in card.choices if c.value == value), None)
        if chosen is None:
            raise InvalidAnswer("invalid_choice", "Please pick one of the offered answers.")
        stored, shown, next_id = chosen.value, chosen.label, chosen.next
    elif isinstance(card, CaptureCard):
        stored = _clean_capture(card, value, blocked_email_domains)
        shown, next_id = stored, card.next
        captured[card.lead_field] = stored
        events.append(
            Event(
                "field_captured",
                card.id,
                {"attribute": card.attribute, "input_type": card.input_type, "value": stored},
            )
        )
    else:  # pragma: no cover - waiting_on only ever names an input card
        raise FlowError(f"card {card_id!r} does not take answers")

    answered = replace(_answered(state, card.id, stored), captured=captured)
    outcome = _advance(flow, answered, next_id, lead=lead, company=company)
    return replace(outcome, events=events + outcome.events, answer_text=shown)


def book(
    flow: Flow,
    state: State,
    *,
    card_id: str,
    step: int,
    label: str,
    meeting: dict,
    lead: dict | None = None,
    company: dict | None = None,
) -> Outcome:
    """Record a meeting the caller has booked for the booking card the conversation waits on,
    then run on from the card's `next`. `label` is how the time reads to the visitor (it
    becomes the answer, so {{answer.<card id>}} says it); `meeting` goes into the
    meeting_booked event. Raises ConversationOver or NotCurrentCard, like answer()."""
    card = waiting_card(flow, state, card_id=card_id, step=step)
    if not isinstance(card, BookingCard):
        raise NotCurrentCard(f"card {card_id!r} does not book meetings")
    outcome = _advance(
        flow, _answered(state, card.id, label), card.next, lead=lead or {}, company=company or {}
    )
    booked = Event("meeting_booked", card.id, dict(meeting))
    return replace(outcome, events=[booked, *outcome.events], answer_text=label)


def waiting_card(flow: Flow, state: State, *, card_id: str, step: int):
    """The card the conversation waits on, if that is `card_id` at `step`; raises
    ConversationOver or NotCurrentCard otherwise."""
    if state.done:
        raise ConversationOver("the conversation has ended")
    if card_id != state.waiting_on or step != state.step:
        raise NotCurrentCard(
            f"the conversation waits on card {state.waiting_on!r}, step {state.step}"
        )
    return flow.card(card_id)


def _answered(state: State, card_id: str, stored: str) -> State:
    return replace(state, answers={**state.answers, card_id: stored})


def _clean_capture(card: CaptureCard, value: str, blocked_email_domains: Collection[str]) -> str:
    if card.input_type == "email":
        return inputs.clean_email(value, blocked_domains=blocked_email_domains)
    if card.input_type == "phone":
        return inputs.clean_phone(value)
    return inputs.clean_text(value)


def _advance(
    flow: Flow, state: State, card_id: str | None, *, lead: dict, company: dict
) -> Outcome:
    messages: list[Message] = []
    events: list[Event] = []
    # What the chat captured wins over older synced values.
    known_lead = {**lead, **state.captured}

    def say(card_id: str, text: str) -> None:
        rendered = tokens.render(text, lead=known_lead, company=company, answers=state.answers)
        if rendered.strip():
            messages.append(Message(card_id, rendered))

    for _ in range(MAX_CARDS_PER_ADVANCE):
        if card_id is None:
            # Running off the end of any branch completes the conversation, as in Marketo.
            events.append(Event("completed", ""))
            done = replace(state, waiting_on=None, done=True)
            return Outcome(messages, None, events, done)
        card = flow.card(card_id)
        if isinstance(card, MessageCard):
            say(card.id, card.text)
            card_id = card.next
        elif isinstance(card, GoalCard):
            events.append(Event("goal_reached", card.id, {"goal": card.name}))
            card_id = card.next
        elif isinstance(card, BranchCard):
            card_id = next(
                (
                    rule.next
                    for rule in card.rules
                    if conditions.rule_matches(
                        rule, lead=known_lead, company=company, answers=state.answers
                    )
                ),
                card.default_next,
            )
        elif (
            isinstance(card, CaptureCard)
            and card.skip_if_known
            and _known(known_lead, card.lead_field)
        ):
            card_id = card.next
        elif isinstance(card, (QuestionCard, CaptureCard, BookingCard)):
            say(card.id, card.text)
            state = replace(state, waiting_on=card.id, step=state.step + 1)
            return Outcome(messages, _prompt(card, state.step), events, state)
        elif isinstance(card, EndCard):
            say(card.id, card.text)
            card_id = None
    raise FlowError(f"flow ran through {MAX_CARDS_PER_ADVANCE} cards without waiting for input")


def _known(lead: dict, field: str) -> bool:
    """A value counts as known when it is not blank (the same rule tokens use for fallbacks)."""
    value = lead.get(field)
    return value is not None and str(value).strip() != ""


def _prompt(card: QuestionCard | CaptureCard | BookingCard, step: int) -> Prompt:
    if isinstance(card, BookingCard):
        return Prompt(card.id, step, "booking", skip_label=card.skip_label)
    if isinstance(card, QuestionCard):
        choices = tuple(Choice(c.label, c.value) for c in card.choices)
        return Prompt(card.id, step, "choice", choices=choices)
    return Prompt(card.id, step, card.input_type, placeholder=card.placeholder)


def current_prompt(flow: Flow, state: State) -> Prompt | None:
    """The prompt the conversation waits on, for a visitor resuming after a page reload."""
    if state.done or state.waiting_on is None:
        return None
    card = flow.card(state.waiting_on)
    if not isinstance(card, (QuestionCard, CaptureCard, BookingCard)):  # pragma: no cover
        raise FlowError(f"card {card.id!r} does not take answers")
    return _prompt(card, state.step)
