"""A marketer's flow is checked before it can be published: every card's own rules, the links
between cards, and the personalisation tokens. Each problem names the card and the place in it,
so the editor can show it next to that card."""

import copy

import pytest
from conftest import EVERY_CARD_FLOW

from dialogues.flow.cards import FlowInvalid, parse_flow

END = {"id": "bye", "type": "end", "text": "Bye."}


def flow_of(*cards, start=None):
    """A flow starting at the first card given (cards can point at `bye`, always present)."""
    cards = list(cards)
    if not any(card.get("id") == "bye" for card in cards):
        cards.append(END)
    return {"start": start or cards[0]["id"], "cards": cards}


def problems_of(data):
    with pytest.raises(FlowInvalid) as caught:
        parse_flow(data)
    return caught.value.problems


def only_problem(data):
    problems = problems_of(data)
    assert len(problems) == 1, problems
    return problems[0]


def message(card_id="hi", text="Hello", **extra):
    return {"id": card_id, "type": "message", "text": text, "next": "bye", **extra}


def question(card_id="ask", choices=None, **extra):
    if choices is None:
        choices = [
            {"label": "Yes", "value": "yes", "next": "bye"},
            {"label": "No", "value": "no", "next": "bye"},
        ]
    return {"id": card_id, "type": "question", "text": "Well?", "choices": choices, **extra}


def capture(card_id="cap", input_type="text", attribute="firstName", **extra):
    return {
        "id": card_id,
        "type": "capture",
        "text": "Tell me",
        "input_type": input_type,
        "attribute": attribute,
        "next": "bye",
        **extra,
    }


def branch(conditions, card_id="route", match="all", **extra):
    card = {
        "id": card_id,
        "type": "branch",
        "rules": [{"match": match, "conditions": conditions, "next": "bye"}],
        "default_next": "bye",
    }
    card.update(extra)
    return card


def test_it_accepts_the_flow_with_every_card_type():
    flow = parse_flow(EVERY_CARD_FLOW)

    assert flow.start == "hello"
    assert {card.type for card in flow.cards} == {
        "message",
        "question",
        "capture",
        "branch",
        "goal",
        "booking",
        "end",
    }


@pytest.mark.parametrize(
    ("card", "location", "fragment"),
    [
        pytest.param(message(text=""), "cards.0.text", "at least 1 character", id="empty-message"),
        pytest.param(
            message(text="   "), "cards.0.text", "at least 1 character", id="blank-message"
        ),
        pytest.param(message(text="x" * 2001), "cards.0.text", "at most 2000", id="long-message"),
        pytest.param(message(colour="red"), "cards.0.colour", "Extra inputs", id="unknown-field"),
        pytest.param(question(choices=[]), "cards.0.choices", "at least 1 item", id="no-choices"),
        pytest.param(
            {"id": "ask", "type": "question", "text": "Well?"},
            "cards.0.choices",
            "Field required",
            id="missing-choices",
        ),
        pytest.param(
            question(
                choices=[
                    {"label": "Yes", "value": "same", "next": "bye"},
                    {"label": "Sure", "value": "same", "next": "bye"},
                ]
            ),
            "cards.0.choices",
            "each choice needs its own stored value",
            id="duplicate-values",
        ),
        pytest.param(
            question(choices=[{"label": f"C{i}", "value": f"c{i}"} for i in range(11)]),
            "cards.0.choices",
            "at most 10 items",
            id="eleven-choices",
        ),
        pytest.param(
            question(choices=[{"label": "", "value": "yes"}]),
            "cards.0.choices.0.label",
            "at least 1 character",
            id="empty-label",
        ),
        pytest.param(
            question(choices=[{"label": "Yes"}]),
            "cards.0.choices.0.value",
            "Field required",
            id="choice-without-value",
        ),
        pytest.param(
            capture(attribute="favouriteColour"),
            "cards.0.attribute",
            "must be one of firstName, lastName, email, phone, company, freeText",
            id="unknown-attribute",
        ),
        pytest.param(
            capture(attribute="custom:"),
            "cards.0.attribute",
            "custom:<fieldName>",
            id="custom-without-name",
        ),
        pytest.param(
            capture(attribute="custom:9lives"),
            "cards.0.attribute",
            "custom:<fieldName>",
            id="custom-starting-with-digit",
        ),
        pytest.param(
            capture(input_type="text", attribute="email"),
            "cards.0",
            "the email attribute needs input_type email",
            id="email-attribute-as-text",
        ),
        pytest.param(
            capture(input_type="text", attribute="phone"),
            "cards.0",
            "the phone attribute needs input_type phone",
            id="phone-attribute-as-text",
        ),
        pytest.param(
            capture(input_type="text", attribute="custom:email"),
            "cards.0",
            "the email attribute needs input_type email",
            id="custom-email-attribute-as-text",
        ),
        pytest.param(
            capture(input_type="email", attribute="custom:phone"),
            "cards.0",
            "the phone attribute needs input_type phone",
            id="custom-phone-attribute-as-email",
        ),
        pytest.param(
            capture(input_type="date"),
            "cards.0.input_type",
            "'text', 'email' or 'phone'",
            id="unknown-input-type",
        ),
        pytest.param(
            {
                "id": "route",
                "type": "branch",
                "rules": [
                    {
                        "conditions": [{"subject": "lead.x", "operator": "is_empty"}],
                        "next": "bye",
                    }
                ],
            },
            "cards.0.default_next",
            "Field required",
            id="branch-without-default",
        ),
        pytest.param(
            branch([]), "cards.0.rules.0.conditions", "at least 1 item", id="rule-no-conditions"
        ),
        pytest.param(
            branch([{"subject": "lead.x", "operator": "is_empty"}], rules=[]),
            "cards.0.rules",
            "at least 1 item",
            id="branch-without-rules",
        ),
        pytest.param(
            branch([{"subject": "lead.industry", "operator": "in_list", "value": "tech"}]),
            "cards.0.rules.0.conditions.0",
            "in_list needs a non-empty list of values",
            id="in-list-without-list",
        ),
        pytest.param(
            branch([{"subject": "lead.industry", "operator": "in_list", "value": []}]),
            "cards.0.rules.0.conditions.0",
            "in_list needs a non-empty list of values",
            id="in-list-with-empty-list",
        ),
        pytest.param(
            branch([{"subject": "lead.industry", "operator": "equals", "value": ["a", "b"]}]),
            "cards.0.rules.0.conditions.0",
            "equals compares with one value, not a list",
            id="equals-with-list",
        ),
        pytest.param(
            branch([{"subject": "lead.industry", "operator": "resembles", "value": "a"}]),
            "cards.0.rules.0.conditions.0.operator",
            "Input should be 'equals'",
            id="unknown-operator",
        ),
        pytest.param(
            branch([{"subject": "visitor.industry", "operator": "is_empty"}]),
            "cards.0.rules.0.conditions.0.subject",
            "should match pattern",
            id="unknown-subject-namespace",
        ),
        pytest.param(
            branch([{"subject": "lead.x", "operator": "is_empty"}], match="most"),
            "cards.0.rules.0.match",
            "'all' or 'any'",
            id="unknown-match",
        ),
        pytest.param(
            {"id": "won", "type": "goal", "next": "bye"},
            "cards.0.name",
            "Field required",
            id="goal-without-name",
        ),
        pytest.param(
            {"id": "won", "type": "goal", "name": "  ", "next": "bye"},
            "cards.0.name",
            "at least 1 character",
            id="goal-with-blank-name",
        ),
        pytest.param(
            {"id": "book", "type": "booking", "text": ""},
            "cards.0.text",
            "at least 1 character",
            id="booking-without-text",
        ),
        pytest.param(
            {"id": "vid", "type": "video", "text": "Watch"},
            "cards.0",
            "'message', 'question', 'capture', 'branch', 'goal', 'booking', 'end'",
            id="unknown-card-type",
        ),
        pytest.param(
            {"id": "what", "text": "No type"}, "cards.0", "discriminator", id="missing-type"
        ),
        pytest.param(
            message(card_id="has space"), "cards.0.id", "should match pattern", id="bad-card-id"
        ),
    ],
)
def test_it_refuses_a_card_that_breaks_its_own_rules(card, location, fragment):
    problem = only_problem(flow_of(card))

    assert problem.location == location
    assert problem.card_id == card.get("id")
    assert fragment in problem.message


@pytest.mark.parametrize(
    "operator",
    [
        "equals",
        "not_equals",
        "contains",
        "not_contains",
        "starts_with",
        "greater_than",
        "less_than",
    ],
)
def test_it_refuses_an_operator_that_needs_a_value_without_one(operator):
    problem = only_problem(flow_of(branch([{"subject": "lead.size", "operator": operator}])))

    assert problem.location == "cards.0.rules.0.conditions.0"
    assert problem.card_id == "route"
    assert problem.message == f"{operator} needs a value to compare with"


@pytest.mark.parametrize("operator", ["is_empty", "is_not_empty"])
def test_it_accepts_emptiness_checks_without_a_value(operator):
    flow = parse_flow(flow_of(branch([{"subject": "answer.ask", "operator": operator}])))

    assert flow.card("route").rules[0].conditions[0].operator == operator


@pytest.mark.parametrize("attribute", ["custom:industry", "custom:employee_count", "custom:X1"])
def test_it_accepts_custom_field_attributes(attribute):
    flow = parse_flow(flow_of(capture(attribute=attribute)))

    assert flow.card("cap").attribute == attribute
    assert flow.card("cap").lead_field == attribute.removeprefix("custom:")


def test_it_accepts_an_end_card_without_text():
    flow = parse_flow({"start": "bye", "cards": [{"id": "bye", "type": "end"}]})

    assert flow.card("bye").text == ""


def test_it_refuses_a_flow_without_cards():
    problem = only_problem({"start": "hi", "cards": []})

    assert problem.location == "cards"
    assert problem.card_id is None


def test_it_refuses_a_flow_that_is_not_an_object():
    problem = only_problem(["not", "a", "flow"])

    assert problem.location == "flow"


def test_it_refuses_duplicate_card_ids_naming_the_second_card():
    problem = only_problem(flow_of(message("twice"), message("twice", text="Again")))

    assert (problem.location, problem.card_id) == ("cards.1.id", "twice")
    assert problem.message == "card ids must be unique: another card is also called 'twice'"


def test_it_refuses_a_start_naming_an_unknown_card():
    problem = only_problem(flow_of(message(), start="nowhere"))

    assert (problem.location, problem.card_id) == ("start", None)
    assert problem.message == "start names unknown card 'nowhere'"


@pytest.mark.parametrize(
    "card",
    [
        pytest.param(message(next="nowhere"), id="message-next"),
        pytest.param(
            question(choices=[{"label": "Yes", "value": "yes", "next": "nowhere"}]),
            id="choice-next",
        ),
        pytest.param(capture(next="nowhere"), id="capture-next"),
        pytest.param({"id": "won", "type": "goal", "name": "Won", "next": "nowhere"}, id="goal"),
        pytest.param(
            {
                "id": "route",
                "type": "branch",
                "rules": [
                    {
                        "conditions": [{"subject": "lead.x", "operator": "is_empty"}],
                        "next": "nowhere",
                    }
                ],
                "default_next": "bye",
            },
            id="rule-next",
        ),
        pytest.param(
            branch([{"subject": "lead.x", "operator": "is_empty"}], default_next="nowhere"),
            id="default-next",
        ),
    ],
)
def test_it_refuses_a_link_to_an_unknown_card(card):
    problem = only_problem(flow_of(card))

    assert problem.card_id == card["id"]
    assert problem.location.startswith("cards.0.") and problem.location.endswith("next")
    assert problem.message == f"card {card['id']!r} leads to unknown card 'nowhere'"


def test_it_reports_every_broken_link_at_once_each_on_its_card():
    problems = problems_of(
        flow_of(message("a", next="gone"), message("b", next="lost"), message("a"))
    )

    assert [(p.location, p.card_id) for p in problems] == [
        ("cards.2.id", "a"),
        ("cards.0.next", "a"),
        ("cards.1.next", "b"),
    ]


@pytest.mark.parametrize(
    ("cards", "loop"),
    [
        pytest.param(
            [message("a", next="b"), message("b", next="a")], "a -> b -> a", id="two-messages"
        ),
        pytest.param([message("a", next="a")], "a -> a", id="message-to-itself"),
        pytest.param(
            [
                message("a", next="won"),
                {"id": "won", "type": "goal", "name": "Won", "next": "route"},
                branch([{"subject": "lead.x", "operator": "is_empty"}], default_next="a"),
            ],
            "a -> won -> route -> a",
            id="through-goal-and-branch-default",
        ),
        pytest.param(
            [
                message("a", next="cap"),
                capture("cap", skip_if_known=True, next="a"),
            ],
            "a -> cap -> a",
            id="through-capture-skipped-when-known",
        ),
    ],
)
def test_it_refuses_a_loop_the_visitor_can_never_leave(cards, loop):
    problem = only_problem(flow_of(*cards))

    # Shown on the card the loop starts from.
    assert (problem.location, problem.card_id) == ("cards.0", loop.split(" ")[0])
    assert problem.message == f"cards {loop} form a loop the visitor can never leave"


@pytest.mark.parametrize(
    "cards",
    [
        pytest.param(
            [
                message("a", next="ask"),
                question(
                    "ask",
                    choices=[
                        {"label": "Again", "value": "again", "next": "a"},
                        {"label": "Stop", "value": "stop", "next": "bye"},
                    ],
                ),
            ],
            id="through-question",
        ),
        pytest.param([message("a", next="cap"), capture("cap", next="a")], id="through-capture"),
    ],
)
def test_it_accepts_a_loop_that_waits_for_the_visitor(cards):
    flow = parse_flow(flow_of(*cards))

    assert [card.id for card in flow.cards][:2] == ["a", cards[1]["id"]]


@pytest.mark.parametrize(
    "text",
    [
        'Hi {{lead.firstName | "there"}}!',
        "Hi {{ lead.firstName }}",
        'About {{company.name|"your company"}}',
        "You said {{answer.ask}} and {{answer.ask-2}}",
        "No tokens at all, only { braces }",
    ],
)
def test_it_accepts_well_formed_tokens(text):
    flow = parse_flow(flow_of(message(text=text)))

    assert flow.card("hi").text == text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("Hi {{visitor.name}}", "token {{visitor.name}} names unknown namespace 'visitor'"),
        ("Hi {{Lead.firstName}}", "names unknown namespace 'Lead'"),
        ("Hi {{lead.firstName | there}}", "token {{lead.firstName | there}} is not of the form"),
        ("Hi {{lead}}", "token {{lead}} is not of the form"),
        ("Hi {{lead.first name}}", "is not of the form"),
        ("Hi {{}}", "token {{}} is not of the form"),
        ("Hi {{lead.firstName | 'there'}}", "is not of the form"),
    ],
)
def test_it_refuses_a_malformed_or_unknown_token(text, fragment):
    problem = only_problem(flow_of(message(text=text)))

    assert problem.location == "cards.0.text"
    assert problem.card_id == "hi"
    assert fragment in problem.message


@pytest.mark.parametrize(
    "card",
    [
        pytest.param(question(text="Hi {{nope.x}}"), id="question"),
        pytest.param(capture(text="Hi {{nope.x}}"), id="capture"),
        pytest.param({"id": "book", "type": "booking", "text": "Hi {{nope.x}}"}, id="booking"),
        pytest.param({"id": "stop", "type": "end", "text": "Hi {{nope.x}}"}, id="end"),
    ],
)
def test_it_checks_tokens_on_every_card_that_speaks(card):
    problem = only_problem(flow_of(card))

    assert problem.location == "cards.0.text"
    assert problem.card_id == card["id"]
    assert "unknown namespace 'nope'" in problem.message


def test_it_reports_every_broken_card_at_once_each_with_its_own_card():
    data = copy.deepcopy(EVERY_CARD_FLOW)
    data["cards"][0]["text"] = ""  # hello
    data["cards"][1]["choices"] = []  # want
    data["cards"][4]["name"] = ""  # goal

    problems = problems_of(data)

    assert [(p.card_id, p.location) for p in problems] == [
        ("hello", "cards.0.text"),
        ("want", "cards.1.choices"),
        ("goal", "cards.4.name"),
    ]


def test_it_says_where_each_problem_is_in_the_error_text():
    with pytest.raises(FlowInvalid) as caught:
        parse_flow(flow_of(message(text=""), {"id": "won", "type": "goal", "next": "bye"}))

    assert str(caught.value) == (
        "cards.0.text: String should have at least 1 character; cards.1.name: Field required"
    )


@pytest.mark.parametrize("card_id", [5, None, ["a"], {"id": "a"}])
def test_it_reports_a_card_whose_id_is_not_text_as_a_flow_problem(card_id):
    problem = only_problem(
        flow_of({"id": card_id, "type": "message", "text": "Hello"}, start="bye")
    )

    assert problem.location == "cards.0.id"
    assert problem.card_id is None
