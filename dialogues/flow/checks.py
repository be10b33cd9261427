"""Is a draft ready to publish? Every problem in it, each on the card it belongs to.

`flow_problems()` goes further than the schema (`cards.parse_flow`, which is what a published
flow must satisfy for the engine to run it): it also finds what would make a poor
conversation — cards no visitor can reach, cards and choices that lead nowhere, a booking
offered before the visitor's email is known, a branch without a default, an empty message, a
token or a branch condition naming a field nobody knows.

It reads drafts as they are while being edited: incomplete, some cards invalid. Each card is
checked on its own, so one broken card does not hide the problems of the others, and the
links are read from the JSON directly (graph.py). Pure Python: which Marketo fields are
synced is passed in, so this module needs no database.
"""

from collections import deque
from collections.abc import Iterable

from pydantic import TypeAdapter, ValidationError

from dialogues.flow.cards import (
    CARD_TYPES,
    STANDARD_ATTRIBUTES,
    Card,
    FlowInvalid,
    parse_flow,
)
from dialogues.flow.graph import (
    INPUT_TYPES,
    TERMINAL_TYPES,
    FlowProblem,
    cards_of,
    edges_of,
    reference_problems,
    successors,
)
from dialogues.flow.tokens import TOKEN

_CARD = TypeAdapter(Card)
# Cards whose text is what they are for: an empty one is a mistake (an end card may be silent).
SPEAKING_TYPES = ("message", "question", "capture", "booking")
TEXT_TYPES = (*SPEAKING_TYPES, "end")
# Conditions on lead.email that only hold when the email is known.
_NEEDS_A_VALUE = ("is_not_empty", "equals", "contains", "starts_with", "in_list")
_AT_LEAST_ONE = {"choices": "choice", "rules": "rule", "conditions": "condition"}


def flow_problems(
    data: object, *, person_fields: Iterable[str] = (), company_fields: Iterable[str] = ()
) -> list[FlowProblem]:
    """Every reason `data` cannot be published yet; empty when it can.

    `person_fields` and `company_fields` are the Marketo fields synced (lead and company
    attributes a token or a branch may use besides the standard ones and what the dialogue
    itself captures). The schema's own problems are included, so an empty result means
    `parse_flow(data)` succeeds. Flow-wide problems come first, then card by card.
    """
    if not isinstance(data, dict) or not isinstance(data.get("cards"), list):
        return _schema_problems(data)
    checks = _Checks(data, set(person_fields), set(company_fields))
    problems = checks.run()
    if not problems:
        # Belt and braces: anything the schema refuses that the checks above did not name.
        problems = _schema_problems(data)
    return problems


def problems_by_card(problems: Iterable[FlowProblem]) -> dict[str | None, list[FlowProblem]]:
    """Problems grouped by card id (None: the flow as a whole), for showing next to cards."""
    grouped: dict[str | None, list[FlowProblem]] = {}
    for problem in problems:
        grouped.setdefault(problem.card_id, []).append(problem)
    return grouped


def _schema_problems(data: object) -> list[FlowProblem]:
    try:
        parse_flow(data)
    except FlowInvalid as invalid:
        return list(invalid.problems)
    return []


class _Checks:
    def __init__(self, data: dict, person_fields: set[str], company_fields: set[str]):
        self.data = data
        self.cards = cards_of(data)
        self.by_id: dict[str, tuple[int, dict]] = {}
        for index, card in self.cards:
            self.by_id.setdefault(card["id"], (index, card))
        self.next = successors(data)
        start = data.get("start")
        self.start = start if isinstance(start, str) and start in self.by_id else None
        captured = {
            str(card.get("attribute")).removeprefix("custom:")
            for _, card in self.cards
            if card.get("type") == "capture"
        }
        self.known = {
            "lead": set(STANDARD_ATTRIBUTES) | captured | person_fields,
            "company": company_fields,
            "answer": {card["id"] for _, card in self.cards if card.get("type") in INPUT_TYPES},
        }
        self.problems: list[FlowProblem] = []
        # Schema errors at these places are replaced by a clearer problem of our own.
        self.covered: set[str] = set()

    def add(self, location: str, card_id: str | None, message: str) -> None:
        self.problems.append(FlowProblem(location=location, card_id=card_id, message=message))

    def run(self) -> list[FlowProblem]:
        self.flow_shape()
        flow_wide = len(self.problems)
        for index, card in enumerate(self.data["cards"]):
            if isinstance(card, dict):
                self.empty_text(index, card)
                self.dead_ends(index, card)
                self.unknown_fields(index, card)
        self.problems += reference_problems(self.data)
        self.unreachable()
        self.booking_before_email()
        for index, card in enumerate(self.data["cards"]):
            self.card_schema(index, card)
        # Flow-wide first, then in card order (a stable sort keeps each card's own order).
        order = {card["id"]: index for index, card in reversed(self.cards)}
        head, rest = self.problems[:flow_wide], self.problems[flow_wide:]
        rest.sort(key=lambda p: order.get(p.card_id, -1) if p.card_id else -1)
        return head + rest

    def flow_shape(self) -> None:
        start = self.data.get("start")
        if not isinstance(start, str) or not start:
            self.add("start", None, "choose the card the conversation starts with")
        if not self.data["cards"]:
            self.add("cards", None, "add a card: the dialogue is empty")
        elif len(self.data["cards"]) > 200:
            self.add("cards", None, "a dialogue can have at most 200 cards")
        for key in sorted(set(self.data) - {"start", "cards"}):
            self.add(key, None, f"unexpected key {key!r}")

    def card_schema(self, index: int, card: object) -> None:
        """The card's own rules (cards.py), as its own problems."""
        try:
            _CARD.validate_python(card)
        except ValidationError as exc:
            card_id = card.get("id") if isinstance(card, dict) else None
            card_id = card_id if isinstance(card_id, str) else None
            for error in exc.errors():
                loc = list(error["loc"])
                # The discriminated union puts the card type first; it is noise to a reader.
                if loc and loc[0] in CARD_TYPES:
                    del loc[0]
                location = ".".join(["cards", str(index), *map(str, loc)])
                if location in self.covered:
                    continue
                message = str(error["msg"]).removeprefix("Value error, ")
                if error["type"] == "too_short" and loc and loc[-1] in _AT_LEAST_ONE:
                    message = f"add at least one {_AT_LEAST_ONE[loc[-1]]}"
                self.add(location, card_id, message)

    def empty_text(self, index: int, card: dict) -> None:
        if card.get("type") not in SPEAKING_TYPES:
            return
        text = card.get("text")
        if text is None or (isinstance(text, str) and not text.strip()):
            location = f"cards.{index}.text"
            self.covered.add(location)
            self.add(location, card["id"], f"the {card['type']} has no text: write what it says")

    def dead_ends(self, index: int, card: dict) -> None:
        if card.get("type") in TERMINAL_TYPES or not isinstance(card.get("id"), str):
            return
        for edge in edges_of(index, card):
            if edge.target is not None:
                continue
            self.covered.add(edge.location)
            if edge.label == "default":
                message = "the branch has no default: choose where visitors go when no rule matches"
            elif edge.label == "next card":
                message = "leads nowhere: choose the next card"
            else:
                message = f"{edge.label} leads nowhere: choose its next card"
            self.add(edge.location, card["id"], message)

    def unknown_fields(self, index: int, card: dict) -> None:
        card_id = card.get("id") if isinstance(card.get("id"), str) else None
        text = card.get("text")
        if card.get("type") in TEXT_TYPES and isinstance(text, str):
            for match in TOKEN.finditer(text):
                problem = self.unknown(match["ns"], match["name"])
                if problem:
                    self.add(f"cards.{index}.text", card_id, f"token {match[0]} {problem}")
        if card.get("type") != "branch" or not isinstance(card.get("rules"), list):
            return
        for r, rule in enumerate(card["rules"]):
            conditions = rule.get("conditions") if isinstance(rule, dict) else None
            for c, condition in enumerate(conditions if isinstance(conditions, list) else []):
                subject = condition.get("subject") if isinstance(condition, dict) else None
                if not isinstance(subject, str) or "." not in subject:
                    continue  # the schema says what is wrong with it
                namespace, _, name = subject.partition(".")
                problem = self.unknown(namespace, name)
                if problem:
                    self.add(
                        f"cards.{index}.rules.{r}.conditions.{c}.subject",
                        card_id,
                        f"rule {r + 1} tests {subject}, which {problem}",
                    )

    def unknown(self, namespace: str, name: str) -> str:
        """Why `namespace.name` names nothing known (empty when it is known)."""
        if namespace not in self.known or name in self.known[namespace]:
            return ""  # an unknown namespace is the schema's problem
        if namespace == "answer":
            return f"names no question or capture card of this dialogue ({name!r})"
        if namespace == "company":
            return (
                f"names an unknown company field {name!r}: pick it in the Marketo sync "
                "settings first"
            )
        return (
            f"names an unknown lead field {name!r}: use a standard attribute, a field this "
            "dialogue captures, or a Marketo field picked in the sync settings"
        )

    def unreachable(self) -> None:
        if self.start is None:
            return  # with no start, every card would be "unreachable": the start problem says it
        reached = self.reach(self.start)
        for index, card in self.cards:
            if card["id"] not in reached and self.by_id[card["id"]][0] == index:
                self.add(
                    f"cards.{index}",
                    card["id"],
                    "no visitor can reach this card: no path from the start card leads here",
                )

    def reach(self, start: str) -> set[str]:
        seen, queue = {start}, deque([start])
        while queue:
            for target in self.next.get(queue.popleft(), []):
                if target not in seen:
                    seen.add(target)
                    queue.append(target)
        return seen

    def booking_before_email(self) -> None:
        """A booking needs the visitor's email. Walk every path from the start on which the
        email is not known yet (stopping at email captures and at branch rules that require
        it) and report each booking card found on one, with that path."""
        if self.start is None:
            return
        came_from: dict[str, str | None] = {self.start: None}
        queue = deque([self.start])
        while queue:
            card_id = queue.popleft()
            index, card = self.by_id[card_id]
            if card.get("type") == "booking":
                path = [card_id]
                while came_from[path[-1]] is not None:
                    path.append(came_from[path[-1]])
                self.add(
                    f"cards.{index}",
                    card_id,
                    "offers a booking before the visitor's email is known (on the path "
                    + " -> ".join(reversed(path))
                    + "): capture the email on the way here",
                )
                continue
            if _captures_email(card):
                continue  # after this card the email is known on every path through it
            for edge in edges_of(index, card):
                if edge.target not in self.by_id or edge.target in came_from:
                    continue
                if edge.location.endswith(".next") and ".rules." in edge.location:
                    rule = card["rules"][int(edge.location.split(".")[3])]
                    if _rule_requires_email(rule):
                        continue
                came_from[edge.target] = card_id
                queue.append(edge.target)


def _captures_email(card: dict) -> bool:
    # custom:email fills the same lead field as email (CaptureCard.lead_field).
    return card.get("type") == "capture" and card.get("attribute") in ("email", "custom:email")


def _rule_requires_email(rule: dict) -> bool:
    """Whether a branch rule can only match when lead.email is not blank: with match "all",
    one such condition is enough; with "any", every condition must be one."""
    conditions = rule.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        return False
    needs = [
        isinstance(c, dict)
        and c.get("subject") == "lead.email"
        and c.get("operator") in _NEEDS_A_VALUE
        and (c.get("operator") == "is_not_empty" or bool(c.get("value")))
        for c in conditions
    ]
    return any(needs) if rule.get("match", "all") == "all" else all(needs)
