"""Changes the flow editor makes to a draft, as pure functions on flow JSON.

Drafts may be incomplete (a new card has no text yet, a branch no default): these functions
keep a draft well-formed JSON, never valid, and dialogues/flow/checks.py says what is left to
do. Each returns a new flow and leaves its argument alone. dialogues/services.py locks the
dialogue row, calls one of these and stores the result.
"""

import copy
import hashlib
import json
import re

from dialogues.flow.cards import CARD_TYPES
from dialogues.flow.graph import edges_of

# What a new card holds: the shape of its type, with nothing chosen yet where a person must
# choose (its text, where it leads). A branch starts with the rule most branches need.
NEW_CARDS = {
    "message": {"text": "", "next": None},
    "question": {
        "text": "",
        "choices": [
            {"label": "Yes", "value": "yes", "next": None},
            {"label": "No", "value": "no", "next": None},
        ],
    },
    "capture": {
        "text": "",
        "input_type": "email",
        "attribute": "email",
        "placeholder": "",
        "skip_if_known": True,
        "next": None,
    },
    "branch": {
        "rules": [
            {
                "match": "all",
                "conditions": [{"subject": "lead.email", "operator": "is_not_empty", "value": ""}],
                "next": None,
            }
        ],
        "default_next": None,
    },
    "goal": {"name": "", "next": None},
    "booking": {"text": "", "days": 7, "skip_label": "None of these times work for me"},
    "end": {"text": ""},
}
# Cards with one way out, which a card added after them takes over.
SINGLE_EXIT = ("message", "capture", "goal")


class CardNotFound(KeyError):
    """The draft has no card with this id (someone deleted it, or a tampered request)."""


def empty_flow() -> dict:
    return {"start": "", "cards": []}


def cards(flow: dict) -> list[dict]:
    found = flow.get("cards") if isinstance(flow, dict) else None
    return [card for card in found if isinstance(card, dict)] if isinstance(found, list) else []


def find(flow: dict, card_id: str) -> tuple[int, dict]:
    """(position, card) of `card_id`; raises CardNotFound."""
    for index, card in enumerate(cards(flow)):
        if card.get("id") == card_id:
            return index, card
    raise CardNotFound(card_id)


def card_revision(card: dict) -> str:
    """A short fingerprint of a card's content: an edit form carries the one it was opened
    with, and a save is refused when the stored card no longer has it."""
    text = json.dumps(card, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def new_card_id(flow: dict, card_type: str) -> str:
    """A readable id no card has yet: "question-1", "question-2", ..."""
    taken = {card.get("id") for card in cards(flow)}
    number = 1
    while f"{card_type}-{number}" in taken:
        number += 1
    return f"{card_type}-{number}"


def add_card(flow: dict, *, card_type: str, after: str | None = None) -> tuple[dict, dict]:
    """A new card of `card_type` after card `after` (at the end when None); returns
    (new flow, new card).

    The card it follows (`after`, or the last card when appending) passes its way out to the
    new card when it has exactly one: after "hello → bye", adding a message after hello gives
    "hello → message-1 → bye". When appending, only an empty way out is taken, so a link the
    marketer chose is never changed behind their back. The first card becomes the start.
    """
    if card_type not in CARD_TYPES:
        raise ValueError(f"Unknown card type {card_type!r}.")
    flow = _copy(flow)
    card = {"id": new_card_id(flow, card_type), "type": card_type}
    card.update(copy.deepcopy(NEW_CARDS[card_type]))
    if after is None:
        position = len(flow["cards"])
        before = flow["cards"][-1] if flow["cards"] else None
        if before is not None and before.get("next"):
            before = None
    else:
        position, before = find(flow, after)
        position += 1
    if before is not None and before.get("type") in SINGLE_EXIT:
        if "next" in card:
            card["next"] = before.get("next")
        before["next"] = card["id"]
    flow["cards"].insert(position, card)
    if not flow.get("start"):
        flow["start"] = card["id"]
    return flow, card


def replace_card(flow: dict, *, card: dict) -> dict:
    """The flow with the card of the same id replaced by `card` (same type)."""
    flow = _copy(flow)
    index, old = find(flow, card["id"])
    if old.get("type") != card.get("type"):
        raise ValueError("A card keeps its type.")
    flow["cards"][index] = copy.deepcopy(card)
    return flow


def delete_card(flow: dict, *, card_id: str) -> tuple[dict, dict]:
    """The flow without `card_id`, and what undoing it needs: the card, its position and every
    place that led to it (those links are emptied, so the checks show where a card is now
    missing rather than a link to nothing)."""
    flow = _copy(flow)
    index, card = find(flow, card_id)
    del flow["cards"][index]
    references = []
    for position, other in enumerate(flow["cards"]):
        for edge in edges_of(position, other):
            if edge.target == card_id:
                # "cards.3.choices.1.next" -> the path inside the card, found again by id.
                path = edge.location.split(".")[2:]
                _set(other, path, None)
                references.append({"card": other["id"], "path": path})
    if flow.get("start") == card_id:
        flow["start"] = ""
        references.append({"card": None, "path": ["start"]})
    return flow, {"card": card, "position": index, "references": references}


def restore_card(flow: dict, *, deleted: dict) -> dict:
    """Undo delete_card: the card back at its position, and the links to it put back where
    they are still empty (a link chosen since then is kept). Raises ValueError when a card
    with its id exists again."""
    flow = _copy(flow)
    card = deleted["card"]
    if any(other.get("id") == card["id"] for other in flow["cards"]):
        raise ValueError(
            f"A card called {card['id']!r} exists again, so the deleted one cannot come back."
        )
    flow["cards"].insert(min(deleted["position"], len(flow["cards"])), copy.deepcopy(card))
    for reference in deleted["references"]:
        if reference["card"] is None:
            if not flow.get("start"):
                flow["start"] = card["id"]
            continue
        try:
            _, other = find(flow, reference["card"])
        except CardNotFound:
            continue
        if _get(other, reference["path"]) is None:
            _set(other, reference["path"], card["id"])
    return flow


def move_card(flow: dict, *, card_id: str, offset: int) -> dict:
    """The card moved `offset` places (-1: up, 1: down), staying within the list. Order is
    how the editor lists cards; where a conversation goes is decided by the links."""
    flow = _copy(flow)
    index, card = find(flow, card_id)
    target = max(0, min(len(flow["cards"]) - 1, index + offset))
    del flow["cards"][index]
    flow["cards"].insert(target, card)
    return flow


def set_start(flow: dict, *, card_id: str) -> dict:
    flow = _copy(flow)
    find(flow, card_id)
    flow["start"] = card_id
    return flow


def _copy(flow: dict) -> dict:
    """A deep copy shaped {"start": str, "cards": [dict, ...]}, whatever the draft held."""
    flow = copy.deepcopy(flow) if isinstance(flow, dict) else {}
    flow["cards"] = cards(flow)
    if not isinstance(flow.get("start"), str):
        flow["start"] = ""
    return flow


_INDEX = re.compile(r"^\d+$")
_GONE = object()


def _walk(card: dict, path: list[str]):
    node = card
    for part in path[:-1]:
        node = node[int(part)] if _INDEX.match(part) else node[part]
    return node, path[-1]


def _get(card: dict, path: list[str]):
    try:
        node, last = _walk(card, path)
        return node[int(last)] if _INDEX.match(last) else node.get(last)
    except (KeyError, IndexError, TypeError, AttributeError):
        return _GONE  # the place is gone (a choice removed since): nothing to put back


def _set(card: dict, path: list[str], value) -> None:
    node, last = _walk(card, path)
    node[last] = value
