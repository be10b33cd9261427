"""What the editor's changes do to a draft, as pure functions on flow JSON (no database)."""

import copy

import pytest
from conftest import EVERY_CARD_FLOW

from dialogues.flow import edits
from dialogues.starters import BLANK


def ids(flow):
    return [card["id"] for card in flow["cards"]]


def test_new_cards_get_readable_ids_no_card_has():
    flow, first = edits.add_card(BLANK, card_type="question")
    flow, second = edits.add_card(flow, card_type="question")

    assert (first["id"], second["id"]) == ("question-1", "question-2")


def test_a_card_added_after_another_takes_over_its_way_out():
    flow, card = edits.add_card(BLANK, card_type="message", after="hello")

    assert ids(flow) == ["hello", "message-1", "bye"]
    assert flow["cards"][0]["next"] == "message-1"
    assert card["next"] == "bye"


def test_a_card_appended_is_linked_only_from_a_last_card_that_leads_nowhere():
    open_end = {"start": "hi", "cards": [{"id": "hi", "type": "message", "text": "Hi"}]}
    flow, card = edits.add_card(open_end, card_type="goal")
    assert flow["cards"][0]["next"] == card["id"]

    chosen = {"start": "hi", "cards": [{"id": "hi", "type": "message", "text": "Hi", "next": "hi"}]}
    flow, card = edits.add_card(chosen, card_type="goal")
    assert flow["cards"][0]["next"] == "hi"


def test_the_first_card_of_an_empty_draft_becomes_the_start():
    flow, card = edits.add_card(edits.empty_flow(), card_type="message")

    assert flow["start"] == card["id"]


def test_adding_leaves_the_original_flow_alone():
    original = copy.deepcopy(BLANK)
    edits.add_card(BLANK, card_type="end", after="hello")

    assert original == BLANK


def test_an_unknown_type_or_card_is_refused():
    with pytest.raises(ValueError):
        edits.add_card(BLANK, card_type="video")
    with pytest.raises(edits.CardNotFound):
        edits.add_card(BLANK, card_type="end", after="nowhere")


def test_deleting_a_card_empties_the_links_to_it_and_undo_puts_everything_back():
    flow, deleted = edits.delete_card(EVERY_CARD_FLOW, card_id="bye")

    assert "bye" not in ids(flow)
    assert flow["cards"][1]["choices"][1]["next"] is None
    assert flow["cards"][6]["default_next"] is None
    assert edits.restore_card(flow, deleted=deleted) == EVERY_CARD_FLOW


def test_deleting_the_start_card_leaves_no_start_until_undone():
    flow, deleted = edits.delete_card(EVERY_CARD_FLOW, card_id="hello")

    assert flow["start"] == ""
    assert edits.restore_card(flow, deleted=deleted) == EVERY_CARD_FLOW


def test_undo_keeps_a_link_chosen_since_the_delete():
    flow, deleted = edits.delete_card(BLANK, card_id="bye")
    flow, end = edits.add_card(flow, card_type="end")
    assert flow["cards"][0]["next"] == end["id"]

    flow = edits.restore_card(flow, deleted=deleted)

    assert ids(flow) == ["hello", "bye", "end-1"]
    assert flow["cards"][0]["next"] == "end-1"


def test_undo_is_refused_when_the_id_is_taken_again():
    flow, deleted = edits.delete_card(BLANK, card_id="bye")
    flow["cards"].append({"id": "bye", "type": "end"})

    with pytest.raises(ValueError, match="exists again"):
        edits.restore_card(flow, deleted=deleted)


@pytest.mark.parametrize(
    ("card_id", "offset", "order"),
    [
        ("bye", -1, ["bye", "hello"]),
        ("hello", 1, ["bye", "hello"]),
        ("hello", -1, ["hello", "bye"]),  # already first
        ("bye", 1, ["hello", "bye"]),  # already last
    ],
)
def test_moving_a_card_changes_the_order_only(card_id, offset, order):
    flow = edits.move_card(BLANK, card_id=card_id, offset=offset)

    assert ids(flow) == order
    assert flow["start"] == "hello"


def test_the_revision_changes_with_the_card_content_only():
    card = {"id": "a", "type": "message", "text": "Hi", "next": None}

    assert edits.card_revision(card) == edits.card_revision(dict(reversed(card.items())))
    assert edits.card_revision(card) != edits.card_revision({**card, "text": "Hi!"})
