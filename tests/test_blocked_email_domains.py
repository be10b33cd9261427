"""The email capture card refuses addresses at the site's blocked domains (free mail on a B2B
site, say), subdomains included, asks for a work address, stores nothing, and lets the visitor
try again."""

import pytest
from conftest import EVERY_CARD_FLOW

from dialogues.flow import engine
from dialogues.flow.cards import parse_flow
from dialogues.flow.inputs import InvalidAnswer, clean_email, domain_blocked
from dialogues.models import Site
from widget.models import ConversationEvent, TranscriptEntry, Visitor

BLOCKED = ["gmail.com", "yahoo.co.uk"]
MESSAGE = "Please use your work email address."

# --- the rule, without a database --------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["ann@gmail.com", "Ann@GMAIL.COM", "ann@mail.gmail.com", "ann@yahoo.co.uk"],
)
def test_it_refuses_an_address_at_a_blocked_domain_or_below_it(address):
    with pytest.raises(InvalidAnswer) as refused:
        clean_email(address, blocked_domains=BLOCKED)

    assert refused.value.code == "blocked_email_domain"
    assert refused.value.message == MESSAGE


@pytest.mark.parametrize(
    "address",
    ["ann@notgmail.com", "ann@gmail.com.acme.example", "ann@yahoo.com", "gmail.com@acme.example"],
)
def test_it_accepts_a_domain_that_only_looks_like_a_blocked_one(address):
    assert clean_email(address, blocked_domains=BLOCKED) == address


def test_an_international_domain_is_compared_in_its_ascii_form():
    assert domain_blocked("xn--bcher-kva.example", ["xn--bcher-kva.example"])
    with pytest.raises(InvalidAnswer):
        clean_email("ann@bücher.example", blocked_domains=["xn--bcher-kva.example"])


def test_the_engine_passes_the_blocked_domains_to_the_email_card_only():
    flow = parse_flow(EVERY_CARD_FLOW)
    state = engine.start(flow).state
    state = engine.answer(flow, state, card_id="want", step=state.step, value="yes").state
    # A text capture at a "blocked" domain is only text.
    state = engine.answer(
        flow,
        state,
        card_id="name",
        step=state.step,
        value="ann@gmail.com",
        blocked_email_domains=BLOCKED,
    ).state

    with pytest.raises(InvalidAnswer, match=MESSAGE):
        engine.answer(
            flow,
            state,
            card_id="email",
            step=state.step,
            value="ann@gmail.com",
            blocked_email_domains=BLOCKED,
        )
    outcome = engine.answer(flow, state, card_id="email", step=state.step, value="ann@gmail.com")
    assert outcome.state.captured["email"] == "ann@gmail.com"


# --- through the widget API ----------------------------------------------------------------------


def stored():
    return (
        list(Visitor.objects.values_list("attributes", "email")),
        TranscriptEntry.objects.count(),
        ConversationEvent.objects.count(),
    )


@pytest.fixture
def at_the_email_card(acme, acme_widget, acme_dialogue):
    Site.objects.filter(pk=acme.pk).update(blocked_email_domains=BLOCKED)
    conversation = acme_widget.start_conversation(acme_dialogue)
    for value in ("yes", "Ann"):
        response = acme_widget.answer(conversation, value)
        assert response.status_code == 200, response.content
        conversation = {**conversation, **response.json()}
    assert conversation["prompt"]["kind"] == "email"
    return conversation


def test_a_visitor_with_a_free_mail_address_is_asked_for_a_work_one(acme_widget, at_the_email_card):
    before = stored()

    response = acme_widget.answer(at_the_email_card, "ann@mail.gmail.com")

    assert response.status_code == 422
    assert response.json() == {
        "error": {"code": "blocked_email_domain", "message": MESSAGE, "field": "value"}
    }
    assert stored() == before


def test_the_visitor_can_try_again_with_a_work_address(acme_widget, at_the_email_card):
    acme_widget.answer(at_the_email_card, "ann@gmail.com")

    response = acme_widget.answer(at_the_email_card, "ann@bigco.example")

    assert response.status_code == 200, response.content
    assert response.json()["answer"]["text"] == "ann@bigco.example"
    assert Visitor.objects.get().email == "ann@bigco.example"


def test_a_site_without_blocked_domains_takes_any_address(acme_widget, acme, at_the_email_card):
    Site.objects.filter(pk=acme.pk).update(blocked_email_domains=[])

    response = acme_widget.answer(at_the_email_card, "ann@gmail.com")

    assert response.status_code == 200, response.content
