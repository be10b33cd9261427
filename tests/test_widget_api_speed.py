"""The widget API's hot paths stay cheap in queries, which is what keeps them fast under load
(bench/widget_api.py measures the speed itself). With the short per-process memo on, as in
production, a new visitor's page view touches no database at all."""

import pytest

from dialogues import selectors
from tests.conftest import make_published_dialogue


@pytest.fixture
def fifty_dialogues(acme):
    return [make_published_dialogue(acme, name=f"Dialogue {n}", priority=n) for n in range(50)]


def test_it_serves_a_new_visitors_page_view_without_a_query(
    acme_widget, fifty_dialogues, memo_on, django_assert_num_queries
):
    acme_widget.start_session()  # fills the memo

    with django_assert_num_queries(0):
        session = acme_widget.start_session()

    assert session["dialogue"]["name"] == "Dialogue 49"


def test_it_serves_a_returning_visitors_page_view_in_one_query(
    acme_widget, fifty_dialogues, memo_on, django_assert_num_queries
):
    visitor_id = acme_widget.start_session()["visitor_id"]
    acme_widget.start_conversation(fifty_dialogues[-1], visitor_id=visitor_id)

    with django_assert_num_queries(1):  # the visitor's row, completed dialogues included
        acme_widget.start_session(visitor_id=visitor_id)


def test_it_answers_in_one_short_transaction(
    acme_widget, acme_dialogue, memo_on, django_assert_max_num_queries
):
    conversation = acme_widget.start_conversation(acme_dialogue)

    # savepoint/begin, the locked read, transcript, events, conversation update, release/commit
    with django_assert_max_num_queries(6):
        response = acme_widget.answer(conversation, "yes")

    assert response.status_code == 200


def test_it_shows_a_published_dialogue_once_the_memo_expires(
    acme, acme_widget, memo_on, monkeypatch
):
    now = [1000.0]
    monkeypatch.setattr(selectors.time, "monotonic", lambda: now[0])
    assert acme_widget.start_session()["dialogue"] is None
    make_published_dialogue(acme, name="Fresh")

    now[0] += 59  # within WIDGET_CACHE_SECONDS the memo still answers
    assert acme_widget.start_session()["dialogue"] is None
    now[0] += 2
    assert acme_widget.start_session()["dialogue"]["name"] == "Fresh"


def test_it_remembers_a_dialogue_finished_at_once_as_completed(acme, acme_widget):
    says_hello = {"start": "hi", "cards": [{"id": "hi", "type": "end", "text": "Hello!"}]}
    hello = make_published_dialogue(acme, name="Hello", flow=says_hello, priority=5)
    visitor_id = acme_widget.start_session()["visitor_id"]

    finished = acme_widget.start_conversation(hello, visitor_id=visitor_id)

    assert finished["done"] is True
    assert acme_widget.start_session(visitor_id=visitor_id)["dialogue"] is None
