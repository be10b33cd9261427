"""The links between cards, read from flow JSON that may be incomplete or invalid.

The schema (cards.py) and the publish checks (checks.py) both need to know where each card
leads, and the editor needs it for drafts that do not validate yet (a card half filled in).
So this module reads plain dicts, skips what it cannot read, and never raises. It imports
nothing from cards.py, which imports it.
"""

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

# Cards that stop and wait for the visitor; the others run straight through.
INPUT_TYPES = ("question", "capture", "booking")
# Cards after which a conversation is meant to stop; every other card must lead somewhere.
TERMINAL_TYPES = ("booking", "end")


class FlowProblem(BaseModel):
    """One reason a flow is invalid or not ready: where ("cards.2.choices.0.label"), the card
    it belongs to (None only for the flow as a whole, e.g. no start card), and what."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    location: str
    card_id: str | None
    message: str


@dataclass(frozen=True)
class Edge:
    """One way out of a card: where it is written (`location`), how a person would name it
    ("choice “Yes”"), and the card id it names (None when not chosen yet)."""

    location: str
    label: str
    target: str | None


def cards_of(data: object) -> list[tuple[int, dict]]:
    """(position, card) for every card that is an object with a text id."""
    cards = data.get("cards") if isinstance(data, dict) else None
    if not isinstance(cards, list):
        return []
    return [
        (index, card)
        for index, card in enumerate(cards)
        if isinstance(card, dict) and isinstance(card.get("id"), str)
    ]


def _target(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def edges_of(index: int, card: dict) -> list[Edge]:
    """Every way out of `card`, including the ones not chosen yet (target None)."""
    where = f"cards.{index}"
    kind = card.get("type")
    if kind in ("message", "capture", "goal"):
        return [Edge(f"{where}.next", "next card", _target(card.get("next")))]
    if kind == "question":
        choices = card.get("choices") if isinstance(card.get("choices"), list) else []
        return [
            Edge(
                f"{where}.choices.{n}.next",
                f"choice \u201c{choice.get('label') or n + 1}\u201d",
                _target(choice.get("next")),
            )
            for n, choice in enumerate(choices)
            if isinstance(choice, dict)
        ]
    if kind == "booking":
        return [
            Edge(f"{where}.next", "after booking", _target(card.get("next"))),
            Edge(f"{where}.skip_next", "no time suits", _target(card.get("skip_next"))),
        ]
    if kind == "branch":
        rules = card.get("rules") if isinstance(card.get("rules"), list) else []
        edges = [
            Edge(f"{where}.rules.{n}.next", f"rule {n + 1}", _target(rule.get("next")))
            for n, rule in enumerate(rules)
            if isinstance(rule, dict)
        ]
        return [*edges, Edge(f"{where}.default_next", "default", _target(card.get("default_next")))]
    return []


def successors(data: object) -> dict[str, list[str]]:
    """Card id -> the known card ids it can lead to (first card wins for a duplicated id)."""
    found: dict[str, list[str]] = {}
    for index, card in cards_of(data):
        if card["id"] not in found:
            found[card["id"]] = [e.target for e in edges_of(index, card) if e.target]
    return {
        card_id: [target for target in targets if target in found]
        for card_id, targets in found.items()
    }


def reference_problems(data: object) -> list[FlowProblem]:
    """Duplicate ids, a start or a link naming no card, and loops that never wait for the
    visitor (they would spin forever). Each problem names the card it belongs to."""
    problems: list[FlowProblem] = []
    cards = cards_of(data)
    seen: set[str] = set()
    for index, card in cards:
        if card["id"] in seen:
            problems.append(
                FlowProblem(
                    location=f"cards.{index}.id",
                    card_id=card["id"],
                    message=f"card ids must be unique: another card is also called {card['id']!r}",
                )
            )
        seen.add(card["id"])
    start = data.get("start") if isinstance(data, dict) else None
    if isinstance(start, str) and start and start not in seen:
        problems.append(
            FlowProblem(
                location="start", card_id=None, message=f"start names unknown card {start!r}"
            )
        )
    for index, card in cards:
        for edge in edges_of(index, card):
            if edge.target and edge.target not in seen:
                problems.append(
                    FlowProblem(
                        location=edge.location,
                        card_id=card["id"],
                        message=f"card {card['id']!r} leads to unknown card {edge.target!r}",
                    )
                )
    loop = loop_without_input(data)
    if loop:
        index = next(i for i, card in cards if card["id"] == loop[0])
        problems.append(
            FlowProblem(
                location=f"cards.{index}",
                card_id=loop[0],
                message="cards " + " -> ".join(loop) + " form a loop the visitor can never leave",
            )
        )
    return problems


def loop_without_input(data: object) -> list[str]:
    """A cycle made only of cards that never wait for input would spin forever; find one.

    A capture that skips when the value is known does not wait either, once it is known."""
    kinds = {card["id"]: card for _, card in reversed(cards_of(data))}
    edges = {
        card_id: targets
        for card_id, targets in successors(data).items()
        if kinds[card_id].get("type") not in INPUT_TYPES or kinds[card_id].get("skip_if_known")
    }
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(card_id: str) -> list[str]:
        state[card_id] = "open"
        path.append(card_id)
        for target in edges.get(card_id, []):
            if target not in edges:
                continue
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        state[card_id] = "done"
        path.pop()
        return []

    for card_id in edges:
        if card_id not in state:
            found = visit(card_id)
            if found:
                return found
    return []
