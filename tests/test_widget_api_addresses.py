"""Addresses a client can get wrong still get the API's JSON error shape, never an HTML page."""

import pytest


@pytest.mark.parametrize(
    "path",
    ["/conversations/not-a-uuid", "/conversations/1234/answers"],
)
def test_it_answers_a_mangled_conversation_id_with_a_json_not_found(acme_widget, path):
    method = acme_widget.post if path.endswith("answers") else acme_widget.get
    args = ({"card_id": "want", "step": 1, "value": "yes"},) if path.endswith("answers") else ()

    response = method(path, *args, token="whatever")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "conversation_not_found"


def test_it_answers_an_unknown_api_address_with_a_json_not_found(client, settings):
    settings.ALLOWED_HOSTS = ["*"]

    response = client.get("/api/widget/v1/nothing/here")

    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "not_found",
            "message": "There is nothing at this address.",
            "field": None,
        }
    }


def test_it_shows_people_an_html_page_for_an_unknown_address(client, settings):
    settings.ALLOWED_HOSTS = ["*"]

    response = client.get("/no/such/page")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_it_lets_the_widget_read_retry_after_across_origins(acme_widget, settings):
    settings.WIDGET_SESSION_RATE_LIMIT_PER_MINUTE = 1
    acme_widget.start_session()

    response = acme_widget.post("/sessions", {"page_url": "https://www.acme.test/"})

    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    assert "Retry-After" in response["Access-Control-Expose-Headers"]


def test_it_stores_no_visitor_when_the_dialogue_asked_for_is_not_available(acme_widget, globex):
    from tests.conftest import make_published_dialogue
    from widget.models import Visitor

    foreign = make_published_dialogue(globex, name="Globex only")
    visitor_id = acme_widget.start_session()["visitor_id"]

    for dialogue_id in (foreign.pk, 999_999):
        response = acme_widget.post(
            "/conversations",
            {
                "visitor_id": visitor_id,
                "dialogue_id": dialogue_id,
                "page_url": "https://www.acme.test/",
            },
        )
        assert response.json()["error"]["code"] == "dialogue_not_available"

    assert not Visitor.objects.exists()
