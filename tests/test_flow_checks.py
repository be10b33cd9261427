"""Before a dialogue is published, its draft is checked for what would make a broken or poor
conversation. Each problem belongs to a card, so the editor shows it next to that card. Pure
Python: no database."""

import copy
import json

import pytest
from conftest import EVERY_CARD_FLOW

from dialogues.flow.cards import parse_flow
from dialogues.flow.checks import flow_problems, problems_by_card
from dialogues.starters import STARTERS

END = {"id": "bye", "type": "end", "text": "Bye."}


def flow_of(*cards, start=None):
    """A flow of `cards`, starting at the first; with an end card `bye` if one leads there."""
    cards = list(cards)
    if not any(card.get("id") == "bye" for card in cards) and '"bye"' in json.dumps(cards):
        cards.append(END)
    return {"start": start if start is not None else cards[0]["id"], "cards": cards}


def message(card_id="hi", text="Hello", next="bye"):
    return {"id": card_id, "type": "message", "text": text, "next": next}


def email_capture(card_id="email", next="bye", **extra):
    return {
        "id": card_id,
        "type": "capture",
        "text": "Your email?",
        "input_type": "email",
        "attribute": "email",
        "next": next,
        **extra,
    }


def booking(card_id="book"):
    return {"id": card_id, "type": "booking", "text": "Pick a time."}


def branch(rules, default_next="bye", card_id="route"):
    card = {"id": card_id, "type": "branch", "rules": rules}
    if default_next is not None:
        card["default_next"] = default_next
    return card


def rule(*conditions, next="bye", match="all"):
    return {"match": match, "conditions": list(conditions), "next": next}


def found(data, **fields):
    return [(p.card_id, p.location, p.message) for p in flow_problems(data, **fields)]


def messages_for(data, card_id, **fields):
    return [p.message for p in flow_problems(data, **fields) if p.card_id == card_id]


# --- ready flows -------------------------------------------------------------------------------


def test_it_finds_nothing_in_the_flow_with_every_card_type():
    assert flow_problems(EVERY_CARD_FLOW) == []


@pytest.mark.parametrize("starter", STARTERS)
def test_it_finds_nothing_in_a_starter(starter):
    assert flow_problems(STARTERS[starter][1]) == []


# --- unreachable cards -------------------------------------------------------------------------


def test_it_reports_a_card_no_path_from_the_start_reaches():
    data = flow_of(message("hi"), message("orphan"))

    assert found(data) == [
        (
            "orphan",
            "cards.1",
            "no visitor can reach this card: no path from the start card leads here",
        )
    ]


def test_a_card_reached_only_through_a_branch_default_is_reachable():
    data = flow_of(
        branch([rule({"subject": "lead.email", "operator": "is_empty"})], default_next="later"),
        message("later"),
    )

    assert flow_problems(data) == []


def test_without_a_start_card_it_asks_for_one_instead_of_calling_every_card_unreachable():
    assert found(flow_of(message(), start="")) == [
        (None, "start", "choose the card the conversation starts with")
    ]


# --- dead ends ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "card",
    [
        pytest.param(message(next=None), id="message"),
        pytest.param({"id": "hi", "type": "goal", "name": "Won"}, id="goal"),
        pytest.param({**email_capture("hi"), "next": None}, id="capture"),
    ],
)
def test_it_reports_a_card_that_leads_nowhere(card):
    data = {"start": "hi", "cards": [card]}

    assert ("hi", "cards.0.next", "leads nowhere: choose the next card") in found(data)


def test_it_names_the_question_choice_that_leads_nowhere():
    question = {
        "id": "ask",
        "type": "question",
        "text": "Well?",
        "choices": [
            {"label": "Yes", "value": "yes", "next": "bye"},
            {"label": "No", "value": "no"},
        ],
    }

    assert found(flow_of(question)) == [
        (
            "ask",
            "cards.0.choices.1.next",
            "choice \u201cNo\u201d leads nowhere: choose its next card",
        )
    ]


def test_a_branch_rule_without_a_next_card_is_a_dead_end_not_a_schema_error():
    data = flow_of(branch([rule({"subject": "lead.email", "operator": "is_empty"}, next=None)]))

    assert found(data) == [
        ("route", "cards.0.rules.0.next", "rule 1 leads nowhere: choose its next card")
    ]


@pytest.mark.parametrize("card", [booking("hi"), {"id": "hi", "type": "end"}])
def test_booking_and_end_cards_may_end_the_conversation(card):
    data = {"start": "email", "cards": [email_capture(next="hi"), card]}

    assert flow_problems(data) == []


# --- a booking before the email is known ---------------------------------------------------------


def test_it_reports_a_booking_reached_before_any_email_capture_with_the_path():
    data = flow_of(message("hi", next="book"), booking())

    assert found(data) == [
        (
            "book",
            "cards.1",
            "offers a booking before the visitor's email is known (on the path hi -> book): "
            "capture the email on the way here",
        )
    ]


def test_a_booking_after_an_email_capture_is_fine():
    assert flow_problems(flow_of(email_capture(next="book"), booking())) == []


def test_an_email_capture_skipped_when_known_counts_as_knowing_the_email():
    data = flow_of(email_capture(next="book", skip_if_known=True), booking())

    assert flow_problems(data) == []


def test_a_custom_email_attribute_counts_too():
    data = flow_of(email_capture(next="book", attribute="custom:email"), booking())

    assert flow_problems(data) == []


def test_it_reports_a_booking_reachable_on_one_path_without_the_email():
    question = {
        "id": "ask",
        "type": "question",
        "text": "Demo?",
        "choices": [
            {"label": "Yes", "value": "yes", "next": "email"},
            {"label": "Straight away", "value": "now", "next": "book"},
        ],
    }
    data = flow_of(question, email_capture(next="book"), booking())

    assert messages_for(data, "book") == [
        "offers a booking before the visitor's email is known (on the path ask -> book): "
        "capture the email on the way here"
    ]


def test_a_capture_of_another_field_does_not_make_the_email_known():
    name = {**email_capture("name"), "input_type": "text", "attribute": "firstName", "next": "book"}

    assert messages_for(flow_of(name, booking()), "book")


def test_a_branch_rule_requiring_the_email_counts_as_knowing_it_on_that_rule_only():
    known = rule(
        {"subject": "lead.email", "operator": "is_not_empty"},
        {"subject": "lead.firstName", "operator": "is_not_empty"},
        next="book",
    )
    ready = flow_of(branch([known], default_next="bye"), booking())
    also_by_default = flow_of(branch([known], default_next="book"), booking())

    assert flow_problems(ready) == []
    assert "on the path route -> book" in messages_for(also_by_default, "book")[0]


def test_a_branch_rule_matching_any_condition_does_not_require_the_email():
    loose = rule(
        {"subject": "lead.email", "operator": "is_not_empty"},
        {"subject": "lead.firstName", "operator": "is_not_empty"},
        match="any",
        next="book",
    )

    assert messages_for(flow_of(branch([loose]), booking()), "book")


# --- a branch without a default ----------------------------------------------------------------


def test_it_reports_a_branch_without_a_default_in_plain_words():
    data = flow_of(branch([rule({"subject": "lead.email", "operator": "is_empty"})], None))

    assert found(data) == [
        (
            "route",
            "cards.0.default_next",
            "the branch has no default: choose where visitors go when no rule matches",
        )
    ]


def test_it_asks_for_a_rule_on_a_branch_without_rules():
    assert found(flow_of(branch([]))) == [("route", "cards.0.rules", "add at least one rule")]


# --- empty messages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "card",
    [
        pytest.param(message(text=""), id="message"),
        pytest.param(message(text="   "), id="blank message"),
        pytest.param({**email_capture("hi"), "text": ""}, id="capture"),
        pytest.param(
            {
                "id": "hi",
                "type": "question",
                "choices": [{"label": "A", "value": "a", "next": "bye"}],
            },
            id="question without text",
        ),
    ],
)
def test_it_reports_a_card_with_nothing_to_say(card):
    problems = found(flow_of(card))

    assert problems == [
        ("hi", "cards.0.text", f"the {card['type']} has no text: write what it says")
    ]


def test_an_end_card_may_say_nothing():
    assert flow_problems(flow_of(message(), {"id": "bye", "type": "end", "text": ""})) == []


# --- tokens and fields -------------------------------------------------------------------------


def test_it_reports_a_token_naming_an_unknown_lead_field():
    problems = found(flow_of(message(text="Hi {{lead.shoeSize}}")))

    assert problems == [
        (
            "hi",
            "cards.0.text",
            "token {{lead.shoeSize}} names an unknown lead field 'shoeSize': use a standard "
            "attribute, a field this dialogue captures, or a Marketo field picked in the sync "
            "settings",
        )
    ]


@pytest.mark.parametrize(
    "text",
    [
        'Hi {{lead.firstName | "there"}}',
        "Hi {{lead.email}} at {{lead.company}}",
        "You run {{lead.shoeSize}}",  # captured below as custom:shoeSize
        "You said {{answer.size}}",
    ],
)
def test_it_knows_standard_fields_captured_fields_and_answers(text):
    size = {
        "id": "size",
        "type": "capture",
        "text": "Shoe size?",
        "input_type": "text",
        "attribute": "custom:shoeSize",
        "next": "hi",
    }

    assert flow_problems(flow_of(size, message(text=text))) == []


def test_it_knows_the_marketo_fields_picked_for_the_sync():
    data = flow_of(message(text="{{lead.leadScore}} at {{company.industry}}"))

    assert flow_problems(data, person_fields=["leadScore"], company_fields=["industry"]) == []
    assert [p.message.split(" names")[0] for p in flow_problems(data)] == [
        "token {{lead.leadScore}}",
        "token {{company.industry}}",
    ]


def test_it_reports_an_answer_token_naming_no_question_or_capture():
    assert messages_for(flow_of(message(text="You said {{answer.hi}}")), "hi") == [
        "token {{answer.hi}} names no question or capture card of this dialogue ('hi')"
    ]


def test_it_reports_a_branch_condition_on_an_unknown_field():
    data = flow_of(branch([rule({"subject": "company.size", "operator": "is_empty"})]))

    assert found(data) == [
        (
            "route",
            "cards.0.rules.0.conditions.0.subject",
            "rule 1 tests company.size, which names an unknown company field 'size': pick it in "
            "the Marketo sync settings first",
        )
    ]


# --- everything at once ------------------------------------------------------------------------


def test_it_reports_the_problems_of_every_card_even_when_some_cards_are_invalid():
    data = copy.deepcopy(EVERY_CARD_FLOW)
    data["cards"][0]["text"] = ""  # hello: empty
    data["cards"][4]["name"] = ""  # goal: the schema's own rule
    data["cards"][6]["rules"][0]["conditions"][0]["subject"] = "lead.shoeSize"  # route
    data["cards"][1]["choices"][0]["label"] = ""  # want: the schema's own rule
    data["cards"][1]["choices"][1]["next"] = "gone"  # want: a link to no card

    by_card = problems_by_card(flow_problems(data))

    assert sorted(by_card) == ["goal", "hello", "route", "want"]
    assert [p.location for p in by_card["hello"]] == ["cards.0.text"]
    assert [p.message for p in by_card["want"]] == [
        "card 'want' leads to unknown card 'gone'",
        "String should have at least 1 character",
    ]
    assert [p.location for p in by_card["goal"]] == ["cards.4.name"]
    assert [p.location for p in by_card["route"]] == ["cards.6.rules.0.conditions.0.subject"]


def test_flow_wide_problems_come_first_and_belong_to_no_card():
    data = {"start": "", "cards": [message(next=None)], "extra": 1}

    assert [(p.card_id, p.location) for p in flow_problems(data)] == [
        (None, "start"),
        (None, "extra"),
        ("hi", "cards.0.next"),
    ]


@pytest.mark.parametrize("data", [None, [], {"start": "a"}, {"start": "a", "cards": "x"}])
def test_a_flow_that_is_not_a_flow_gets_the_schemas_answer(data):
    assert flow_problems(data)


def test_no_problems_means_the_schema_accepts_it():
    data = flow_of(email_capture(next="book"), booking())

    assert flow_problems(data) == []
    assert parse_flow(data).start == "email"
