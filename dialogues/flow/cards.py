"""The flow schema: one pydantic model per card type, and the Flow that holds them.

A flow is JSON shaped like {"start": "<card id>", "cards": [{"id": ..., "type": ..., ...}]}.
`parse_flow(data)` returns a validated Flow or raises FlowInvalid with every problem found,
each naming the card and field at fault, so an editor can show it next to that card.
"""

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

# INPUT_TYPES and FlowProblem live with the link checks (graph.py) and are part of this API too.
from dialogues.flow.graph import INPUT_TYPES, FlowProblem, reference_problems  # noqa: F401
from dialogues.flow.tokens import token_problems

CARD_ID = r"^[A-Za-z0-9_-]{1,40}$"
CUSTOM_ATTRIBUTE = re.compile(r"^custom:[A-Za-z][A-Za-z0-9_]{0,49}$")

# The visitor attributes a capture card may fill, with the Marketo-style lead field they become.
STANDARD_ATTRIBUTES = {
    "firstName": "first name",
    "lastName": "last name",
    "email": "email",
    "phone": "phone",
    "company": "company",
    "freeText": "free text",
}

OPERATORS = (
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "is_empty",
    "is_not_empty",
    "greater_than",
    "less_than",
    "in_list",
)
SUBJECT = re.compile(r"^(lead|company)\.[A-Za-z][A-Za-z0-9_]{0,49}$|^answer\.[A-Za-z0-9_-]{1,40}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class _Card(_Model):
    id: Annotated[str, Field(pattern=CARD_ID)]

    def next_ids(self) -> list[str]:
        """Every card this one can lead to (for reachability and reference checks)."""
        nxt = getattr(self, "next", None)
        return [nxt] if nxt else []


class _SaysText(_Card):
    text: Annotated[str, Field(min_length=1, max_length=2000)]

    @field_validator("text")
    @classmethod
    def _tokens_are_known(cls, text: str) -> str:
        problems = token_problems(text)
        if problems:
            raise ValueError("; ".join(problems))
        return text


class MessageCard(_SaysText):
    type: Literal["message"]
    next: str | None = None


class Choice(_Model):
    label: Annotated[str, Field(min_length=1, max_length=80)]
    value: Annotated[str, Field(min_length=1, max_length=200)]
    next: str | None = None


class QuestionCard(_SaysText):
    type: Literal["question"]
    choices: Annotated[list[Choice], Field(min_length=1, max_length=10)]

    @field_validator("choices")
    @classmethod
    def _values_are_unique(cls, choices: list[Choice]) -> list[Choice]:
        values = [choice.value for choice in choices]
        if len(set(values)) != len(values):
            raise ValueError("each choice needs its own stored value")
        return choices

    def next_ids(self) -> list[str]:
        return [choice.next for choice in self.choices if choice.next]


class CaptureCard(_SaysText):
    type: Literal["capture"]
    input_type: Literal["text", "email", "phone"]
    attribute: str
    placeholder: Annotated[str, Field(max_length=100)] = ""
    skip_if_known: bool = False
    next: str | None = None

    @field_validator("attribute")
    @classmethod
    def _attribute_is_known(cls, attribute: str) -> str:
        if attribute not in STANDARD_ATTRIBUTES and not CUSTOM_ATTRIBUTE.match(attribute):
            raise ValueError(
                f"must be one of {', '.join(STANDARD_ATTRIBUTES)} or custom:<fieldName>"
            )
        return attribute

    @model_validator(mode="after")
    def _type_fits_attribute(self) -> "CaptureCard":
        # By lead field, not attribute name: custom:email fills the same field as email.
        if self.lead_field == "email" and self.input_type != "email":
            raise ValueError("the email attribute needs input_type email")
        if self.lead_field == "phone" and self.input_type != "phone":
            raise ValueError("the phone attribute needs input_type phone")
        return self

    @property
    def lead_field(self) -> str:
        """The key this capture fills in the visitor's lead attributes."""
        return self.attribute.removeprefix("custom:")


class Condition(_Model):
    subject: Annotated[str, Field(pattern=SUBJECT.pattern)]
    operator: Literal[OPERATORS]  # type: ignore[valid-type]
    value: str | list[str] = ""

    @model_validator(mode="after")
    def _value_fits_operator(self) -> "Condition":
        if self.operator == "in_list":
            if not isinstance(self.value, list) or not self.value:
                raise ValueError("in_list needs a non-empty list of values")
        elif isinstance(self.value, list):
            raise ValueError(f"{self.operator} compares with one value, not a list")
        elif self.operator not in ("is_empty", "is_not_empty") and not self.value:
            raise ValueError(f"{self.operator} needs a value to compare with")
        return self


class BranchRule(_Model):
    match: Literal["all", "any"] = "all"
    conditions: Annotated[list[Condition], Field(min_length=1, max_length=20)]
    next: str


class BranchCard(_Card):
    type: Literal["branch"]
    rules: Annotated[list[BranchRule], Field(min_length=1, max_length=20)]
    default_next: str

    def next_ids(self) -> list[str]:
        return [rule.next for rule in self.rules] + [self.default_next]


class GoalCard(_Card):
    type: Literal["goal"]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    next: str | None = None


class BookingCard(_SaysText):
    """Meeting booking: the free times of the site's agents, in the visitor's time zone.

    The visitor picks a time and confirms; the flow goes on at `next` (or ends). With a
    `skip_label`, a visitor for whom no time works can say so and goes on at `skip_next` (or the
    conversation ends). `{{answer.<id>}}` reads the booked time afterwards.
    """

    type: Literal["booking"]
    # How many days with free times the visitor is shown at once.
    days: Annotated[int, Field(ge=1, le=30)] = 7
    skip_label: Annotated[str, Field(max_length=80)] = "None of these times work for me"
    next: str | None = None
    skip_next: str | None = None

    def next_ids(self) -> list[str]:
        return [card_id for card_id in (self.next, self.skip_next) if card_id]


class EndCard(_Card):
    type: Literal["end"]
    text: Annotated[str, Field(max_length=2000)] = ""

    @field_validator("text")
    @classmethod
    def _tokens_are_known(cls, text: str) -> str:
        problems = token_problems(text)
        if problems:
            raise ValueError("; ".join(problems))
        return text


Card = Annotated[
    MessageCard | QuestionCard | CaptureCard | BranchCard | GoalCard | BookingCard | EndCard,
    Field(discriminator="type"),
]
CARD_TYPES = ("message", "question", "capture", "branch", "goal", "booking", "end")


class Flow(_Model):
    start: str
    cards: Annotated[list[Card], Field(min_length=1, max_length=200)]

    @model_validator(mode="after")
    def _references_resolve(self) -> "Flow":
        problems = reference_problems(self.model_dump(mode="json"))
        if problems:
            # One error carrying every problem, each with its card: parse_flow unpacks them.
            raise PydanticCustomError(
                "flow_references",
                "{summary}",
                {"summary": "; ".join(p.message for p in problems), "problems": tuple(problems)},
            )
        return self

    def card(self, card_id: str) -> Card:
        for card in self.cards:
            if card.id == card_id:
                return card
        raise KeyError(card_id)


class FlowInvalid(ValueError):
    def __init__(self, problems: list[FlowProblem]):
        self.problems = problems
        super().__init__("; ".join(f"{p.location}: {p.message}" for p in problems))


def parse_flow(data: object) -> Flow:
    """Validate flow JSON; raise FlowInvalid listing every problem."""
    try:
        return Flow.model_validate(data)
    except ValidationError as exc:
        raise FlowInvalid([p for error in exc.errors() for p in _problems(data, error)]) from None


def _problems(data: object, error: dict) -> list[FlowProblem]:
    if error["type"] == "flow_references":
        return list(error["ctx"]["problems"])
    return [_problem(data, error)]


def _problem(data: object, error: dict) -> FlowProblem:
    loc = list(error["loc"])
    card_id = None
    if len(loc) >= 2 and loc[0] == "cards" and isinstance(loc[1], int) and isinstance(data, dict):
        cards = data.get("cards")
        if isinstance(cards, list) and loc[1] < len(cards) and isinstance(cards[loc[1]], dict):
            card_id = cards[loc[1]].get("id")
            # A card whose id is not text cannot be named by it (its id is the problem).
            if not isinstance(card_id, str):
                card_id = None
        # The discriminated union adds the card type to the path; it is noise to a reader.
        if len(loc) >= 3 and loc[2] in CARD_TYPES:
            del loc[2]
    message = str(error["msg"]).removeprefix("Value error, ")
    return FlowProblem(
        location=".".join(str(part) for part in loc) or "flow", card_id=card_id, message=message
    )
