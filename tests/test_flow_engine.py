"""The flow engine steps a visitor through a published flow: what the bot says, what it asks,
what it records. Pure Python: no database, no Django."""

import json

import pytest
from conftest import EVERY_CARD_FLOW

from dialogues.flow import engine
from dialogues.flow.cards import parse_flow
from dialogues.flow.engine import ConversationOver, NotCurrentCard, State
from dialogues.flow.inputs import InvalidAnswer

EVERY_CARD = parse_flow(EVERY_CARD_FLOW)


def flow_of(*cards, start=None):
    return parse_flow({"start": start or cards[0]["id"], "cards": list(cards)})


def said(outcome):
    return [message.text for message in outcome.messages]


def kinds(outcome):
    return [event.kind for event in outcome.events]


def reply(flow, outcome, value, **known):
    """Answer the prompt the previous outcome left open, as the widget does."""
    return engine.answer(
        flow,
        outcome.state,
        card_id=outcome.prompt.card_id,
        step=outcome.prompt.step,
        value=value,
        **known,
    )


def end(card_id, text=None):
    card = {"id": card_id, "type": "end"}
    if text is not None:
        card["text"] = text
    return card


def capture(card_id="cap", input_type="text", attribute="firstName", **extra):
    return {
        "id": card_id,
        "type": "capture",
        "text": f"Your {attribute}?",
        "input_type": input_type,
        "attribute": attribute,
        **extra,
    }


def question(card_id="ask", **extra):
    return {
        "id": card_id,
        "type": "question",
        "text": "Want a demo?",
        "choices": [
            {"label": "Yes please", "value": "yes", "next": "yes-end"},
            {"label": "No thanks", "value": "no", "next": "no-end"},
            {"label": "Later", "value": "later"},
        ],
        **extra,
    }


ASK = flow_of(question(), end("yes-end", "Great."), end("no-end", "Fine."))


# --- starting ---------------------------------------------------------------------------------


def test_it_runs_through_messages_goals_and_branches_until_the_first_question():
    flow = flow_of(
        {"id": "hi", "type": "message", "text": "Hello!", "next": "won"},
        {"id": "won", "type": "goal", "name": "Opened chat", "next": "route"},
        {
            "id": "route",
            "type": "branch",
            "rules": [
                {"conditions": [{"subject": "lead.x", "operator": "is_empty"}], "next": "ask"}
            ],
            "default_next": "ask",
        },
        {"id": "more", "type": "message", "text": "Never said"},
        question(),
        end("yes-end"),
        end("no-end"),
    )

    outcome = engine.start(flow)

    assert said(outcome) == ["Hello!", "Want a demo?"]
    assert [(m.card_id, m.text) for m in outcome.messages][1] == ("ask", "Want a demo?")
    assert [(e.kind, e.card_id, e.data) for e in outcome.events] == [
        ("goal_reached", "won", {"goal": "Opened chat"})
    ]
    assert outcome.prompt.card_id == "ask"
    assert outcome.state == State(waiting_on="ask", step=1)


def test_it_completes_at_once_a_flow_that_never_asks_anything():
    flow = flow_of(
        {"id": "hi", "type": "message", "text": "Hello!", "next": "bye"}, end("bye", "Bye.")
    )

    outcome = engine.start(flow)

    assert said(outcome) == ["Hello!", "Bye."]
    assert outcome.prompt is None
    assert kinds(outcome) == ["completed"]
    assert outcome.state.done is True
    assert outcome.state.waiting_on is None


def test_it_offers_a_questions_choices_by_label_and_value():
    prompt = engine.start(ASK).prompt

    assert prompt.kind == "choice"
    assert prompt.step == 1
    assert [(c.label, c.value) for c in prompt.choices] == [
        ("Yes please", "yes"),
        ("No thanks", "no"),
        ("Later", "later"),
    ]


@pytest.mark.parametrize(
    ("input_type", "attribute", "placeholder"),
    [("text", "firstName", "First name"), ("email", "email", ""), ("phone", "phone", "+1 ...")],
)
def test_it_asks_a_capture_with_its_input_type_and_placeholder(input_type, attribute, placeholder):
    flow = flow_of(capture(input_type=input_type, attribute=attribute, placeholder=placeholder))

    prompt = engine.start(flow).prompt

    assert (prompt.card_id, prompt.kind, prompt.placeholder) == ("cap", input_type, placeholder)
    assert prompt.choices == ()


# --- questions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "label", "then_said"),
    [("yes", "Yes please", ["Great."]), ("no", "No thanks", ["Fine."]), ("later", "Later", [])],
)
def test_it_takes_a_choice_by_its_stored_value_and_shows_its_label(value, label, then_said):
    outcome = reply(ASK, engine.start(ASK), value)

    assert outcome.answer_text == label
    assert outcome.state.answers == {"ask": value}
    assert said(outcome) == then_said
    assert outcome.state.done is True


@pytest.mark.parametrize("value", ["Yes please", "YES", " yes", "maybe", ""])
def test_it_refuses_a_choice_that_was_not_offered(value):
    first = engine.start(ASK)

    with pytest.raises(InvalidAnswer) as caught:
        reply(ASK, first, value)

    assert (caught.value.code, caught.value.field) == ("invalid_choice", "value")
    assert caught.value.message == "Please pick one of the offered answers."


# --- captures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("input_type", "attribute", "typed", "stored"),
    [
        ("text", "firstName", "  Ann  ", "Ann"),
        ("text", "freeText", "x" * 1000, "x" * 1000),
        ("text", "custom:industry", "Retail", "Retail"),
        ("email", "email", " Maya@Example.COM ", "Maya@example.com"),
        ("email", "email", "ann.lee+chat@bigco.co.uk", "ann.lee+chat@bigco.co.uk"),
        ("phone", "phone", "(415) 555-2671", "+14155552671"),
        ("phone", "phone", "+1 415 555 2671", "+14155552671"),
        ("phone", "phone", "+44 20 7946 0958", "+442079460958"),
    ],
)
def test_it_stores_a_valid_capture_normalised(input_type, attribute, typed, stored):
    flow = flow_of(capture(input_type=input_type, attribute=attribute, next="bye"), end("bye"))

    outcome = reply(flow, engine.start(flow), typed)

    lead_field = attribute.removeprefix("custom:")
    assert outcome.answer_text == stored
    assert outcome.state.answers == {"cap": stored}
    assert outcome.state.captured == {lead_field: stored}
    assert outcome.events[0] == engine.Event(
        "field_captured",
        "cap",
        {"attribute": attribute, "input_type": input_type, "value": stored},
    )


@pytest.mark.parametrize(
    ("input_type", "attribute", "typed", "code"),
    [
        ("text", "firstName", "", "required"),
        ("text", "firstName", "   \n\t", "required"),
        ("text", "freeText", "x" * 1001, "too_long"),
        ("email", "email", "", "required"),
        ("email", "email", "maya@", "invalid_email"),
        ("email", "email", "not an email", "invalid_email"),
        ("email", "email", "maya@@acme.test", "invalid_email"),
        ("phone", "phone", "   ", "required"),
        ("phone", "phone", "12", "invalid_phone"),
        ("phone", "phone", "call me maybe", "invalid_phone"),
        ("phone", "phone", "+1 555", "invalid_phone"),
    ],
)
def test_it_refuses_an_invalid_capture_and_keeps_asking(input_type, attribute, typed, code):
    flow = flow_of(capture(input_type=input_type, attribute=attribute))
    first = engine.start(flow)

    with pytest.raises(InvalidAnswer) as caught:
        reply(flow, first, typed)

    assert (caught.value.code, caught.value.field) == (code, "value")
    assert caught.value.message
    assert first.state == State(waiting_on="cap", step=1)
    assert engine.current_prompt(flow, first.state) == first.prompt


def test_it_explains_each_invalid_capture_in_words_a_visitor_understands():
    flow = flow_of(capture("e", "email", "email", next="p"), capture("p", "phone", "phone"))
    first = engine.start(flow)

    with pytest.raises(InvalidAnswer) as bad_email:
        reply(flow, first, "maya@")
    with pytest.raises(InvalidAnswer) as long_text:
        reply(flow, first, "a@" + "b" * 1000)

    assert bad_email.value.message == "That doesn't look like an email address. Please try again."
    assert long_text.value.message == "Please keep your answer under 1000 characters."


@pytest.mark.parametrize("value", [5, 1.5, None, True, ["yes"], {"value": "yes"}])
@pytest.mark.parametrize("flow", [ASK, flow_of(capture())], ids=["question", "capture"])
def test_it_refuses_an_answer_that_is_not_text(flow, value):
    with pytest.raises(InvalidAnswer) as caught:
        reply(flow, engine.start(flow), value)

    assert (caught.value.code, caught.value.field) == ("invalid_type", "value")


def test_it_leaves_the_previous_state_untouched_when_answering():
    flow = flow_of(capture(next="bye"), end("bye"))
    first = engine.start(flow)

    reply(flow, first, "Ann")

    assert first.state == State(waiting_on="cap", step=1)


# --- skipping what is known -------------------------------------------------------------------

SKIPPING = flow_of(
    capture("name", skip_if_known=True, next="thanks"),
    {"id": "thanks", "type": "message", "text": 'Thanks {{lead.firstName | "friend"}}.'},
)


def test_it_skips_a_capture_the_lead_attributes_already_answer():
    outcome = engine.start(SKIPPING, lead={"firstName": "Ann"})

    assert said(outcome) == ["Thanks Ann."]
    assert outcome.state.done is True
    assert "field_captured" not in kinds(outcome)


@pytest.mark.parametrize(
    "lead", [{}, {"firstName": ""}, {"firstName": "   "}, {"firstName": None}, {"email": "a@b.co"}]
)
def test_it_asks_a_skippable_capture_when_the_value_is_unknown(lead):
    outcome = engine.start(SKIPPING, lead=lead)

    assert outcome.prompt.card_id == "name"


def test_it_asks_a_capture_again_when_it_is_not_marked_skippable():
    flow = flow_of(capture("name"))

    outcome = engine.start(flow, lead={"firstName": "Ann"})

    assert outcome.prompt.card_id == "name"


def test_it_skips_a_capture_answered_earlier_in_the_same_conversation():
    flow = flow_of(
        capture("first", next="ask"),
        question("ask", choices=[{"label": "Go on", "value": "go", "next": "again"}]),
        capture("again", skip_if_known=True, next="thanks"),
        {"id": "thanks", "type": "message", "text": "Thanks {{lead.firstName}}."},
    )
    first = engine.start(flow)
    second = reply(flow, first, "Ann")

    last = reply(flow, second, "go")

    assert said(last) == ["Thanks Ann."]
    assert last.state.done is True


# --- tokens -----------------------------------------------------------------------------------


def say(text, **known):
    flow = flow_of(
        question("ask", choices=[{"label": "Go", "value": "go", "next": "say"}]),
        {"id": "say", "type": "message", "text": text},
    )
    return said(reply(flow, engine.start(flow), "go", **known))


@pytest.mark.parametrize(
    ("text", "known", "expected"),
    [
        ('Hi {{lead.firstName | "there"}}!', {}, ["Hi there!"]),
        ('Hi {{lead.firstName | "there"}}!', {"lead": {"firstName": ""}}, ["Hi there!"]),
        ('Hi {{lead.firstName | "there"}}!', {"lead": {"firstName": "  "}}, ["Hi there!"]),
        ('Hi {{lead.firstName | "there"}}!', {"lead": {"firstName": "Ann"}}, ["Hi Ann!"]),
        ("Hi {{lead.firstName}}!", {}, ["Hi !"]),
        ("Hi {{ lead.firstName }}!", {"lead": {"firstName": "Ann"}}, ["Hi Ann!"]),
        ("You picked {{answer.ask}}", {}, ["You picked go"]),
        ('At {{company.name | "your company"}}', {}, ["At your company"]),
        ("At {{company.name}}", {"company": {"name": "Acme"}}, ["At Acme"]),
        ("{{lead.employees}} people", {"lead": {"employees": 250}}, ["250 people"]),
        ("{{lead.firstName}}", {}, []),
        ("<b>{{lead.firstName}}</b>", {"lead": {"firstName": "<i>Ann</i>"}}, ["<b><i>Ann</i></b>"]),
        (
            '{{lead.firstName | "<script>x</script>"}}',
            {},
            ["<script>x</script>"],
        ),
        ("{{lead.firstName}} & co", {"lead": {"firstName": "{{lead.x}}"}}, ["{{lead.x}} & co"]),
    ],
    ids=[
        "fallback-when-missing",
        "fallback-when-empty",
        "fallback-when-blank",
        "value-over-fallback",
        "no-fallback",
        "spaces-inside",
        "answer",
        "company-fallback",
        "company",
        "number",
        "nothing-left-to-say",
        "html-stays-raw",
        "html-fallback-stays-raw",
        "token-in-value-not-expanded",
    ],
)
def test_it_personalises_text_with_tokens(text, known, expected):
    assert say(text, **known) == expected


def test_it_prefers_what_the_chat_captured_over_older_lead_attributes():
    flow = flow_of(
        capture("name", next="thanks"),
        {"id": "thanks", "type": "message", "text": "Thanks {{lead.firstName}}."},
    )

    outcome = reply(flow, engine.start(flow, lead={"firstName": "Old"}), "New")

    assert said(outcome) == ["Thanks New."]


def test_it_personalises_question_and_capture_text_too():
    flow = flow_of(
        {
            "id": "ask",
            "type": "question",
            "text": "{{lead.firstName}}, demo?",
            "choices": [{"label": "Yes", "value": "yes", "next": "cap"}],
        },
        {**capture("cap"), "text": "Email for {{answer.ask}}?", "attribute": "custom:why"},
    )

    first = engine.start(flow, lead={"firstName": "Ann"})
    second = reply(flow, first, "yes", lead={"firstName": "Ann"})

    assert said(first) == ["Ann, demo?"]
    assert said(second) == ["Email for yes?"]


# --- branches ---------------------------------------------------------------------------------


def branch_flow(conditions, match="all"):
    return flow_of(
        {
            "id": "route",
            "type": "branch",
            "rules": [{"match": match, "conditions": conditions, "next": "matched"}],
            "default_next": "default",
        },
        end("matched", "matched"),
        end("default", "default"),
    )


def takes_rule(conditions, match="all", **known):
    return said(engine.start(branch_flow(conditions, match), **known)) == ["matched"]


@pytest.mark.parametrize(
    ("operator", "expected", "actual", "matches"),
    [
        ("equals", "acme", "Acme", True),
        ("equals", "ACME", "  acme ", True),
        ("equals", "acme", "Acme Inc", False),
        ("equals", "acme", None, False),
        ("not_equals", "globex", "Acme", True),
        ("not_equals", "ACME", "acme", False),
        ("not_equals", "acme", None, True),
        ("contains", "@bigco.", "maya@BigCo.com", True),
        ("contains", "@bigco.", "maya@small.com", False),
        ("not_contains", "@gmail.", "maya@bigco.com", True),
        ("not_contains", "@gmail.", "Maya@GMAIL.com", False),
        ("starts_with", "enter", "Enterprise plan", True),
        ("starts_with", "enter", "The enterprise plan", False),
        ("is_empty", "", None, True),
        ("is_empty", "", "", True),
        ("is_empty", "", "   ", True),
        ("is_empty", "", "x", False),
        ("is_not_empty", "", "x", True),
        ("is_not_empty", "", None, False),
        ("is_not_empty", "", "  ", False),
        ("greater_than", "1000", "1,500", True),
        ("greater_than", "1000", 1500, True),
        ("greater_than", "1000", "999.5", False),
        ("greater_than", "10", "10", False),
        ("greater_than", "10", "lots", False),
        ("greater_than", "many", "10", False),
        ("less_than", "10", "9.5", True),
        ("less_than", "10", "10", False),
        ("less_than", "10", "", False),
        ("less_than", "0", "-3", True),
        ("in_list", ["small", "Mid"], "mid", True),
        ("in_list", [" small "], "SMALL", True),
        ("in_list", ["small", "mid"], "large", False),
        ("in_list", ["small", "mid"], None, False),
    ],
)
def test_it_branches_on_every_operator_ignoring_case_and_spaces(
    operator, expected, actual, matches
):
    condition = {"subject": "lead.size", "operator": operator}
    if expected != "":
        condition["value"] = expected
    lead = {} if actual is None else {"size": actual}

    assert takes_rule([condition], lead=lead) is matches


@pytest.mark.parametrize(
    ("match", "lead", "matches"),
    [
        ("all", {"country": "US", "size": "500"}, True),
        ("all", {"country": "US", "size": "5"}, False),
        ("all", {"country": "FR", "size": "500"}, False),
        ("any", {"country": "US", "size": "5"}, True),
        ("any", {"country": "FR", "size": "500"}, True),
        ("any", {"country": "FR", "size": "5"}, False),
    ],
)
def test_it_needs_all_or_any_conditions_of_a_rule_as_the_rule_says(match, lead, matches):
    conditions = [
        {"subject": "lead.country", "operator": "equals", "value": "us"},
        {"subject": "lead.size", "operator": "greater_than", "value": "100"},
    ]

    assert takes_rule(conditions, match, lead=lead) is matches


def test_it_takes_the_first_matching_rule_in_order():
    flow = flow_of(
        {
            "id": "route",
            "type": "branch",
            "rules": [
                {
                    "conditions": [{"subject": "lead.size", "operator": "equals", "value": "x"}],
                    "next": "never",
                },
                {"conditions": [{"subject": "lead.size", "operator": "is_empty"}], "next": "first"},
                {"conditions": [{"subject": "lead.x", "operator": "is_empty"}], "next": "second"},
            ],
            "default_next": "default",
        },
        end("never", "never"),
        end("first", "first"),
        end("second", "second"),
        end("default", "default"),
    )

    assert said(engine.start(flow)) == ["first"]


@pytest.mark.parametrize(
    ("subject", "known", "matches"),
    [
        ("company.industry", {"company": {"industry": "Retail"}}, True),
        ("company.industry", {"lead": {"industry": "Retail"}}, False),
        ("lead.industry", {"lead": {"industry": "retail"}}, True),
    ],
)
def test_it_branches_on_lead_and_company_attributes(subject, known, matches):
    conditions = [{"subject": subject, "operator": "equals", "value": "retail"}]

    assert takes_rule(conditions, **known) is matches


@pytest.mark.parametrize(("choice", "ending"), [("large", ["big"]), ("small", ["small"])])
def test_it_branches_on_an_earlier_answer(choice, ending):
    flow = flow_of(
        {
            "id": "size",
            "type": "question",
            "text": "Size?",
            "choices": [
                {"label": "1-50", "value": "small", "next": "route"},
                {"label": "500+", "value": "large", "next": "route"},
            ],
        },
        {
            "id": "route",
            "type": "branch",
            "rules": [
                {
                    "conditions": [
                        {"subject": "answer.size", "operator": "in_list", "value": ["large"]}
                    ],
                    "next": "big",
                }
            ],
            "default_next": "small",
        },
        end("big", "big"),
        end("small", "small"),
    )

    assert said(reply(flow, engine.start(flow), choice)) == ending


# --- ends -------------------------------------------------------------------------------------


def test_it_waits_at_a_booking_card_with_a_booking_prompt():
    flow = flow_of({"id": "book", "type": "booking", "text": "Pick a time."})

    outcome = engine.start(flow)

    assert said(outcome) == ["Pick a time."]
    assert outcome.prompt == engine.Prompt(
        "book", 1, "booking", skip_label="None of these times work for me"
    )
    assert outcome.state.done is False
    assert engine.current_prompt(flow, outcome.state) == outcome.prompt


def test_a_booked_meeting_becomes_the_answer_and_the_flow_goes_on():
    flow = flow_of(
        {"id": "book", "type": "booking", "text": "Pick a time.", "next": "thanks"},
        end("thanks", "See you {{answer.book}}!"),
    )
    waiting = engine.start(flow)

    outcome = engine.book(
        flow,
        waiting.state,
        card_id="book",
        step=1,
        label="Monday, 23 November at 9:00 AM (Europe/Paris)",
        meeting={"meeting_id": "m1", "start": "2026-11-23T08:00:00+00:00"},
    )

    assert outcome.answer_text == "Monday, 23 November at 9:00 AM (Europe/Paris)"
    assert said(outcome) == ["See you Monday, 23 November at 9:00 AM (Europe/Paris)!"]
    assert outcome.events[0] == engine.Event(
        "meeting_booked", "book", {"meeting_id": "m1", "start": "2026-11-23T08:00:00+00:00"}
    )
    assert kinds(outcome) == ["meeting_booked", "completed"]
    assert outcome.state.done is True


def test_a_visitor_no_time_suits_goes_on_at_the_skip_card():
    flow = flow_of(
        {
            "id": "book",
            "type": "booking",
            "text": "Pick a time.",
            "skip_label": "Email me instead",
            "skip_next": "later",
        },
        end("later", "We will email you."),
    )

    outcome = reply(flow, engine.start(flow), "skip")

    assert outcome.answer_text == "Email me instead"
    assert said(outcome) == ["We will email you."]
    assert kinds(outcome) == ["completed"]


@pytest.mark.parametrize(("skip_label", "value"), [("", "skip"), ("Not now", "monday 9am")])
def test_a_booking_card_takes_no_typed_answer_and_no_skip_it_does_not_offer(skip_label, value):
    flow = flow_of(
        {"id": "book", "type": "booking", "text": "Pick a time.", "skip_label": skip_label}
    )
    waiting = engine.start(flow)

    with pytest.raises(InvalidAnswer) as refused:
        reply(flow, waiting, value)

    assert refused.value.code == "pick_a_time"


def test_only_the_waiting_booking_card_at_its_step_can_book():
    flow = flow_of(
        question("ask", choices=[{"label": "Go", "value": "go", "next": "book"}]),
        {"id": "book", "type": "booking", "text": "Pick a time."},
    )
    asking = engine.start(flow)

    with pytest.raises(engine.NotCurrentCard):
        engine.book(flow, asking.state, card_id="ask", step=1, label="x", meeting={})
    waiting = reply(flow, asking, "go")
    with pytest.raises(engine.NotCurrentCard):
        engine.book(flow, waiting.state, card_id="book", step=1, label="x", meeting={})


@pytest.mark.parametrize(("text", "expected"), [("Thanks!", ["Thanks!"]), (None, []), ("", [])])
def test_it_ends_the_conversation_at_an_end_card_saying_its_text_if_any(text, expected):
    flow = flow_of(
        question("ask", choices=[{"label": "Go", "value": "go", "next": "stop"}]),
        end("stop", text),
    )

    outcome = reply(flow, engine.start(flow), "go")

    assert said(outcome) == expected
    assert outcome.prompt is None
    assert outcome.state == State(waiting_on=None, step=1, answers={"ask": "go"}, done=True)
    assert kinds(outcome) == ["completed"]


@pytest.mark.parametrize(
    "cards",
    [
        pytest.param([{"id": "hi", "type": "message", "text": "Hi"}], id="message"),
        pytest.param([{"id": "won", "type": "goal", "name": "Won"}], id="goal"),
        pytest.param([question("ask", choices=[{"label": "Go", "value": "go"}])], id="choice"),
        pytest.param([capture("cap")], id="capture"),
    ],
)
def test_it_completes_when_a_path_runs_off_the_end(cards):
    flow = flow_of(*cards)
    outcome = engine.start(flow)
    if outcome.prompt is not None:
        outcome = reply(flow, outcome, "go")

    assert outcome.state.done is True
    assert outcome.prompt is None
    assert kinds(outcome)[-1] == "completed"


# --- events -----------------------------------------------------------------------------------


def test_it_reports_captures_goals_and_completion_in_the_order_they_happen():
    flow = flow_of(
        capture("email", "email", "email", next="won"),
        {"id": "won", "type": "goal", "name": "Email captured", "next": "more"},
        {"id": "more", "type": "goal", "name": "Second goal", "next": "bye"},
        end("bye", "Bye."),
    )

    outcome = reply(flow, engine.start(flow), "ann@bigco.com")

    assert [(e.kind, e.card_id, e.data) for e in outcome.events] == [
        (
            "field_captured",
            "email",
            {"attribute": "email", "input_type": "email", "value": "ann@bigco.com"},
        ),
        ("goal_reached", "won", {"goal": "Email captured"}),
        ("goal_reached", "more", {"goal": "Second goal"}),
        ("completed", "", {}),
    ]


# --- refused answers --------------------------------------------------------------------------


def test_it_refuses_an_answer_for_another_card():
    first = engine.start(EVERY_CARD)

    with pytest.raises(NotCurrentCard):
        engine.answer(EVERY_CARD, first.state, card_id="email", step=1, value="a@b.co")


@pytest.mark.parametrize("step", [0, 2, 99, -1])
def test_it_refuses_an_answer_for_another_step(step):
    first = engine.start(EVERY_CARD)

    with pytest.raises(NotCurrentCard):
        engine.answer(EVERY_CARD, first.state, card_id="want", step=step, value="yes")


def test_it_refuses_the_same_answer_sent_twice():
    first = engine.start(EVERY_CARD)
    second = reply(EVERY_CARD, first, "yes")

    with pytest.raises(NotCurrentCard) as caught:
        engine.answer(EVERY_CARD, second.state, card_id="want", step=1, value="yes")

    assert str(caught.value) == "the conversation waits on card 'name', step 2"


def test_it_checks_the_card_before_the_type_of_the_answer():
    first = engine.start(EVERY_CARD)

    with pytest.raises(NotCurrentCard):
        engine.answer(EVERY_CARD, first.state, card_id="name", step=1, value=5)


def test_it_refuses_any_answer_once_the_conversation_is_over():
    done = reply(ASK, engine.start(ASK), "no").state

    with pytest.raises(ConversationOver):
        engine.answer(ASK, done, card_id="ask", step=1, value="no")
    with pytest.raises(ConversationOver):
        engine.answer(ASK, done, card_id="ask", step=1, value=5)


# --- state between requests -------------------------------------------------------------------


def test_it_round_trips_its_state_through_json():
    state = reply(EVERY_CARD, reply(EVERY_CARD, engine.start(EVERY_CARD), "yes"), "Ann").state

    stored = json.loads(json.dumps(state.to_dict()))

    assert stored == {
        "waiting_on": "email",
        "step": 3,
        "answers": {"want": "yes", "name": "Ann"},
        "captured": {"firstName": "Ann"},
        "done": False,
    }
    assert State.from_dict(stored) == state


def test_it_reads_an_empty_stored_state_as_a_fresh_one():
    assert State.from_dict({}) == State()


def test_it_resumes_on_the_prompt_it_was_waiting_on():
    first = reply(EVERY_CARD, engine.start(EVERY_CARD), "yes")

    resumed = State.from_dict(json.loads(json.dumps(first.state.to_dict())))

    assert engine.current_prompt(EVERY_CARD, resumed) == first.prompt
    assert engine.current_prompt(EVERY_CARD, resumed).card_id == "name"
    after = engine.answer(EVERY_CARD, resumed, card_id="name", step=2, value="Ann")
    assert after.prompt.card_id == "email"


def test_it_has_no_prompt_for_a_finished_or_unstarted_conversation():
    done = reply(ASK, engine.start(ASK), "no").state

    assert engine.current_prompt(ASK, done) is None
    assert engine.current_prompt(ASK, State()) is None


# --- every path through the flow with every card type -----------------------------------------


@pytest.mark.parametrize(
    ("lead", "answers", "transcript", "events"),
    [
        pytest.param(
            {},
            ["no"],
            ["Hi there!", "Want a demo?", ("No thanks",), "Thanks, talk soon."],
            ["completed"],
            id="no-demo",
        ),
        pytest.param(
            {},
            ["yes", "Ann", "ann@BigCo.com", "415 555 2671", "skip"],
            [
                "Hi there!",
                "Want a demo?",
                ("Yes please",),
                "Your first name?",
                ("Ann",),
                "Thanks Ann. Your email?",
                ("ann@bigco.com",),
                "Your phone?",
                ("+14155552671",),
                "Pick a time with our team.",
                ("None of these times work",),
                "Thanks, talk soon.",
            ],
            ["field_captured", "field_captured", "goal_reached", "field_captured", "completed"],
            id="big-company-is-offered-a-booking-and-skips",
        ),
        pytest.param(
            {},
            ["yes", "Ann", "ann@small.com", "+1 415 555 2671"],
            [
                "Hi there!",
                "Want a demo?",
                ("Yes please",),
                "Your first name?",
                ("Ann",),
                "Thanks Ann. Your email?",
                ("ann@small.com",),
                "Your phone?",
                ("+14155552671",),
                "Thanks, talk soon.",
            ],
            ["field_captured", "field_captured", "goal_reached", "field_captured", "completed"],
            id="small-company-ends",
        ),
        pytest.param(
            {"firstName": "Maya"},
            ["yes", "maya@bigco.com", "4155552671", "skip"],
            [
                "Hi Maya!",
                "Want a demo?",
                ("Yes please",),
                "Thanks Maya. Your email?",
                ("maya@bigco.com",),
                "Your phone?",
                ("+14155552671",),
                "Pick a time with our team.",
                ("None of these times work",),
                "Thanks, talk soon.",
            ],
            ["field_captured", "goal_reached", "field_captured", "completed"],
            id="known-name-is-skipped",
        ),
        pytest.param(
            {"firstName": "Maya", "email": "maya@bigco.com"},
            ["yes", "maya@small.com", "4155552671"],
            [
                "Hi Maya!",
                "Want a demo?",
                ("Yes please",),
                "Thanks Maya. Your email?",
                ("maya@small.com",),
                "Your phone?",
                ("+14155552671",),
                "Thanks, talk soon.",
            ],
            ["field_captured", "goal_reached", "field_captured", "completed"],
            id="captured-email-wins-over-known-one",
        ),
    ],
)
def test_it_walks_every_path_of_the_flow_with_every_card_type(lead, answers, transcript, events):
    outcome = engine.start(EVERY_CARD, lead=lead)
    seen = said(outcome)
    all_events = kinds(outcome)
    steps = [outcome.prompt.step]
    for value in answers:
        outcome = reply(EVERY_CARD, outcome, value, lead=lead)
        seen += [(outcome.answer_text,), *said(outcome)]
        all_events += kinds(outcome)
        if outcome.prompt:
            steps.append(outcome.prompt.step)

    assert seen == transcript
    assert all_events == events
    assert steps == list(range(1, len(answers) + 1))
    assert outcome.state.done is True
    assert outcome.prompt is None


def test_it_keeps_asking_along_a_path_until_each_answer_is_valid():
    outcome = reply(EVERY_CARD, engine.start(EVERY_CARD), "yes")
    outcome = reply(EVERY_CARD, outcome, "Ann")

    for bad in ["", "ann@", "ann at bigco"]:
        with pytest.raises(InvalidAnswer):
            reply(EVERY_CARD, outcome, bad)
    outcome = reply(EVERY_CARD, outcome, "ann@bigco.com")
    for bad in ["", "555", "phone"]:
        with pytest.raises(InvalidAnswer):
            reply(EVERY_CARD, outcome, bad)
    outcome = reply(EVERY_CARD, outcome, "+14155552671")

    assert said(outcome) == ["Pick a time with our team."]
    assert outcome.state.answers == {
        "want": "yes",
        "name": "Ann",
        "email": "ann@bigco.com",
        "phone": "+14155552671",
    }
