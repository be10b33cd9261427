"""A returning visitor's page view needs no database read: the widget brings back the signed
visitor state (the dialogues they completed) that the server gave it. A state the server did
not sign for this visitor is ignored and the visitor's row is read instead."""

import pytest

from tests.conftest import make_published_dialogue
from widget import keys

SAYS_HELLO = {"start": "hi", "cards": [{"id": "hi", "type": "end", "text": "Hello!"}]}


@pytest.fixture
def hello_and_demo(acme):
    hello = make_published_dialogue(acme, name="Hello", flow=SAYS_HELLO, priority=5)
    demo = make_published_dialogue(acme, name="Book a demo", priority=1)
    return hello, demo


def start_session(acme_widget, visitor_id, visitor_state):
    response = acme_widget.post(
        "/sessions",
        {
            "page_url": "https://www.acme.test/",
            "visitor_id": visitor_id,
            "visitor_state": visitor_state,
        },
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_it_hands_back_a_new_state_when_a_conversation_completes(acme_widget, hello_and_demo):
    hello, _ = hello_and_demo
    session = acme_widget.start_session()

    finished = acme_widget.start_conversation(hello, visitor_id=session["visitor_id"])

    assert finished["done"] is True
    assert finished["visitor_state"] != session["visitor_state"]
    assert finished["visitor_state"].startswith(f"{hello.pk}.")


def test_it_offers_the_next_dialogue_from_the_state_without_a_query(
    acme_widget, hello_and_demo, memo_on, django_assert_num_queries
):
    hello, _ = hello_and_demo
    visitor_id = acme_widget.start_session()["visitor_id"]
    state = acme_widget.start_conversation(hello, visitor_id=visitor_id)["visitor_state"]

    with django_assert_num_queries(0):
        session = start_session(acme_widget, visitor_id, state)

    assert session["dialogue"]["name"] == "Book a demo"
    assert session["visitor_state"] == state


@pytest.mark.parametrize(
    "forge",
    [
        lambda state, other: "1-2-3" + state[state.index(".") :],  # the list altered
        lambda state, other: state[:-2] + "xx",  # the signature altered
        lambda state, other: other,  # another visitor's genuine state
    ],
)
def test_it_reads_the_visitors_row_when_the_state_is_not_theirs(
    acme_widget, hello_and_demo, memo_on, django_assert_num_queries, forge
):
    hello, _ = hello_and_demo
    visitor_id = acme_widget.start_session()["visitor_id"]
    state = acme_widget.start_conversation(hello, visitor_id=visitor_id)["visitor_state"]
    other = acme_widget.start_session()["visitor_state"]  # a new visitor's: nothing completed

    with django_assert_num_queries(1):
        session = start_session(acme_widget, visitor_id, forge(state, other))

    # The row says Hello was completed, whatever the forged state claimed.
    assert session["dialogue"]["name"] == "Book a demo"
    assert session["visitor_state"] == state


def test_it_refuses_a_state_that_is_not_even_shaped_like_one(acme_widget, hello_and_demo):
    visitor_id = acme_widget.start_session()["visitor_id"]

    response = acme_widget.post(
        "/sessions",
        {"page_url": "https://www.acme.test/", "visitor_id": visitor_id, "visitor_state": "<x>"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "visitor_state"


def test_it_binds_the_state_to_the_site():
    key_hash = keys.digest(keys.new_visitor_key(7))
    state = keys.visitor_state_token(7, key_hash, [3, 1])

    assert keys.read_visitor_state(state, 7, key_hash) == {1, 3}
    assert keys.read_visitor_state(state, 8, key_hash) is None
