"""The widget API, spoken to the way the embedded script on a customer's page speaks to it.

Every endpoint is checked on its happy path and on every kind of bad input: each refusal must
come back in the one error shape, with the right status and code, and leave nothing stored.
"""

import json
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from conftest import (
    ACME_ORIGIN,
    EVERY_CARD_FLOW,
    GLOBEX_ORIGIN,
    PAGE_URL,
    WidgetClient,
    make_published_dialogue,
)
from django.test import AsyncRequestFactory
from django.utils import timezone

from dialogues import services as dialogue_services
from dialogues.models import Dialogue
from widget import ratelimit, views
from widget.models import Conversation, ConversationEvent, TranscriptEntry, Visitor

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

API = "/api/widget/v1"
UNKNOWN_CONVERSATION = "00000000-0000-4000-8000-000000000000"
ANOTHER_VISITOR_KEY = "k" * 32

# A dialogue for visitors who come back: it greets by name and skips what is known.
WELCOME_BACK_FLOW = {
    "start": "hello",
    "cards": [
        {
            "id": "hello",
            "type": "message",
            "text": 'Welcome back {{lead.firstName | "there"}}.',
            "next": "email",
        },
        {
            "id": "email",
            "type": "capture",
            "text": "Your email?",
            "input_type": "email",
            "attribute": "email",
            "skip_if_known": True,
            "next": "bye",
        },
        {"id": "bye", "type": "end", "text": "We will write to {{lead.email}}."},
    ],
}


# --- what is stored ---------------------------------------------------------------------------


def stored():
    """Everything a widget request could write, to compare before and after a refusal."""
    return {
        "visitors": list(
            Visitor.objects.order_by("pk").values_list("pk", "attributes", "email", "last_seen_at")
        ),
        "conversations": list(
            Conversation.objects.order_by("pk").values_list(
                "pk", "state", "status", "transcript_length", "engaged_at", "completed_at"
            )
        ),
        "transcript": TranscriptEntry.objects.count(),
        "events": ConversationEvent.objects.count(),
    }


def assert_error(response, status, code, field=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "field"}
    assert (body["error"]["code"], body["error"]["field"]) == (code, field)
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]


# --- a client that can send anything ----------------------------------------------------------

MISSING = object()


@dataclass
class Call:
    method: str
    path: str
    body: dict | None = None
    token: str | None = None


class Api:
    """Sends one of the widget's calls, with any part of it changed or broken."""

    def __init__(self, client, site, calls):
        self.client, self.site, self.calls = client, site, calls

    def send(
        self,
        name,
        *,
        body=MISSING,
        raw=None,
        token=MISSING,
        origin=ACME_ORIGIN,
        method=None,
        site_key=None,
        content_type="application/json",
        **extra,
    ):
        call = self.calls[name]
        token = call.token if token is MISSING else token
        body = call.body if body is MISSING else body
        if origin is not None:
            extra["HTTP_ORIGIN"] = origin
        if token:
            extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        url = f"{API}/sites/{site_key or self.site.public_key}{call.path}"
        method = (method or call.method).upper()
        if method == "GET":
            return self.client.get(url, **extra)
        data = raw if raw is not None else json.dumps(body)
        return self.client.generic(method, url, data, content_type=content_type, **extra)


POSTS = ["sessions", "conversations", "answers", "identify"]
ENDPOINTS = [*POSTS, "conversation"]


@pytest.fixture
def globex_widget(client, globex, settings):
    settings.ALLOWED_HOSTS = ["*"]
    return WidgetClient(client, globex, origin=GLOBEX_ORIGIN)


@pytest.fixture
def visitor_id(acme_widget):
    return acme_widget.start_session()["visitor_id"]


@pytest.fixture
def conversation(acme_widget, acme_dialogue, visitor_id):
    return acme_widget.start_conversation(acme_dialogue, visitor_id=visitor_id)


@pytest.fixture
def api(acme_widget, acme_dialogue, visitor_id, conversation):
    cid, token = conversation["conversation_id"], conversation["token"]
    calls = {
        "sessions": Call("post", "/sessions", {"page_url": PAGE_URL}),
        "conversations": Call(
            "post",
            "/conversations",
            {"visitor_id": visitor_id, "dialogue_id": acme_dialogue.pk, "page_url": PAGE_URL},
        ),
        "answers": Call(
            "post", f"/conversations/{cid}/answers", {"card_id": "want", "step": 1, "value": "yes"}
        ),
        "conversation": Call("get", f"/conversations/{cid}"),
        "identify": Call(
            "post", "/visitors/identify", {"visitor_id": visitor_id, "firstName": "Ann"}
        ),
    }
    calls["answers"].token = calls["conversation"].token = token
    return Api(acme_widget.client, acme_widget.site, calls)


@pytest.fixture
def omar_conversation(globex_widget, globex, omar):
    dialogue = make_published_dialogue(globex, name="Globex demo", user=omar)
    return globex_widget.start_conversation(dialogue)


def answer_path(conversation):
    return f"/conversations/{conversation['conversation_id']}/answers"


def detail(acme_widget, conversation):
    response = acme_widget.get(
        f"/conversations/{conversation['conversation_id']}", token=conversation["token"]
    )
    assert response.status_code == 200, response.content
    return response.json()


def walk(acme_widget, conversation, *values):
    """Answer each prompt in turn; return the last response's JSON."""
    current = conversation
    for value in values:
        response = acme_widget.answer(current, value)
        assert response.status_code == 200, response.content
        current = {**current, **response.json()}
    return current


# --- the gate every endpoint goes through -----------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_it_refuses_an_unknown_site_key(api, endpoint):
    before = stored()

    response = api.send(endpoint, site_key="no-such-site-key")

    assert_error(response, 404, "unknown_site")
    assert not response.has_header("Access-Control-Allow-Origin")
    assert stored() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.test",
        GLOBEX_ORIGIN,
        "http://www.acme.test",
        "https://www.acme.test:8443",
        "https://acme.test",
        "https://www.acme.test.evil.test",
        "null",
        "https://www.acme.test:notaport",
        "https://www.acme.test:99999",
        "https://[::1",
    ],
)
def test_it_refuses_an_origin_the_site_has_not_allowed(api, endpoint, origin):
    before = stored()

    response = api.send(endpoint, origin=origin)

    assert_error(response, 403, "origin_not_allowed")
    assert not response.has_header("Access-Control-Allow-Origin")
    assert stored() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_it_refuses_a_request_without_an_origin(api, endpoint):
    before = stored()

    response = api.send(endpoint, origin=None)

    assert_error(response, 403, "origin_not_allowed")
    assert not response.has_header("Access-Control-Allow-Origin")
    assert stored() == before


def test_it_lets_the_page_read_its_answers_from_the_allowed_origin(api):
    response = api.send("sessions")

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ACME_ORIGIN
    assert response["Vary"] == "Origin"
    assert not response.has_header("Access-Control-Allow-Credentials")


def test_it_recognises_the_allowed_origin_spelled_with_capitals_and_default_port(api):
    response = api.send("sessions", origin="HTTPS://WWW.ACME.TEST:443")

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("endpoint", "method"),
    [
        ("sessions", "POST"),
        ("conversations", "POST"),
        ("answers", "POST"),
        ("identify", "POST"),
        ("conversation", "GET"),
    ],
)
def test_it_answers_a_cors_preflight_from_an_allowed_origin(api, endpoint, method):
    before = stored()

    response = api.send(
        endpoint,
        method="OPTIONS",
        raw="",
        token=None,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, authorization",
    )

    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == ACME_ORIGIN
    assert response["Access-Control-Allow-Methods"] == f"{method}, OPTIONS"
    allowed_headers = response["Access-Control-Allow-Headers"].lower()
    assert "content-type" in allowed_headers
    assert "authorization" in allowed_headers
    assert response["Access-Control-Max-Age"] == "600"
    assert not response.has_header("Access-Control-Allow-Credentials")
    assert stored() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_it_refuses_a_cors_preflight_from_a_foreign_origin(api, endpoint):
    response = api.send(
        endpoint,
        method="OPTIONS",
        raw="",
        token=None,
        origin="https://evil.test",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )

    assert_error(response, 403, "origin_not_allowed")
    assert not response.has_header("Access-Control-Allow-Origin")


@pytest.mark.parametrize("endpoint", POSTS)
def test_it_refuses_malformed_json(api, endpoint):
    before = stored()

    response = api.send(endpoint, raw='{"page_url": "https://www.acme.test/",')

    assert_error(response, 400, "malformed_json")
    # Refusals still carry CORS headers, so the widget can read and report them.
    assert response["Access-Control-Allow-Origin"] == ACME_ORIGIN
    assert stored() == before


@pytest.mark.parametrize("endpoint", POSTS)
@pytest.mark.parametrize("raw", ["[]", '[{"page_url": "https://www.acme.test/"}]', '"hi"', "42"])
def test_it_refuses_a_json_body_that_is_not_an_object(api, endpoint, raw):
    before = stored()

    response = api.send(endpoint, raw=raw)

    assert_error(response, 400, "invalid_body")
    assert stored() == before


@pytest.mark.parametrize("endpoint", POSTS)
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "application/jsonp"],
)
def test_it_refuses_a_body_that_is_not_sent_as_json(api, endpoint, content_type):
    before = stored()

    response = api.send(endpoint, content_type=content_type)

    assert_error(response, 415, "unsupported_media_type")
    assert stored() == before


def test_it_accepts_json_with_a_charset(api):
    response = api.send("sessions", content_type="application/json; charset=utf-8")

    assert response.status_code == 200


@pytest.mark.parametrize("endpoint", POSTS)
def test_it_refuses_a_body_over_the_size_limit(api, endpoint, settings):
    body = {**api.calls[endpoint].body, "padding": "x" * settings.WIDGET_MAX_BODY_BYTES}
    before = stored()

    response = api.send(endpoint, body=body)

    assert_error(response, 413, "body_too_large")
    assert stored() == before


@pytest.mark.parametrize("endpoint", POSTS)
def test_it_refuses_a_body_over_the_size_limit_even_when_its_length_header_lies(
    api, endpoint, settings
):
    # An ASGI server hands over the whole body whatever Content-Length said; WSGI never would.
    call = api.calls[endpoint]
    raw = json.dumps({**call.body, "padding": "x" * settings.WIDGET_MAX_BODY_BYTES})
    headers = {"Origin": ACME_ORIGIN}
    if call.token:
        headers["Authorization"] = f"Bearer {call.token}"
    request = AsyncRequestFactory().post(
        f"{API}/sites/{api.site.public_key}{call.path}",
        raw,
        content_type="application/json",
        headers=headers,
    )
    request.META["CONTENT_LENGTH"] = "100"
    view = {
        "sessions": views.sessions,
        "conversations": views.conversations,
        "answers": views.answers,
        "identify": views.identify,
    }[endpoint]
    kwargs = {"site_key": api.site.public_key}
    if endpoint == "answers":
        kwargs["conversation_id"] = call.path.split("/")[2]
    before = stored()

    response = view(request, **kwargs)

    assert_error(response, 413, "body_too_large")
    assert stored() == before


@pytest.mark.parametrize(
    ("endpoint", "method", "allowed"),
    [
        ("sessions", "GET", "POST"),
        ("conversations", "GET", "POST"),
        ("answers", "GET", "POST"),
        ("identify", "GET", "POST"),
        ("sessions", "PUT", "POST"),
        ("answers", "DELETE", "POST"),
        ("conversation", "POST", "GET"),
        ("conversation", "DELETE", "GET"),
    ],
)
def test_it_refuses_a_method_the_endpoint_does_not_take(api, endpoint, method, allowed):
    before = stored()

    response = api.send(endpoint, method=method)

    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == allowed
    assert response["Access-Control-Allow-Origin"] == ACME_ORIGIN
    assert stored() == before


@pytest.mark.parametrize("endpoint", POSTS)
def test_it_refuses_a_field_it_does_not_know(api, endpoint):
    before = stored()

    response = api.send(endpoint, body={**api.calls[endpoint].body, "admin": True})

    assert_error(response, 400, "unknown_field", "admin")
    assert stored() == before


# --- sessions ---------------------------------------------------------------------------------


def test_it_welcomes_a_new_visitor_with_a_key_the_theme_and_a_dialogue(acme_widget, acme_dialogue):
    session = acme_widget.start_session()

    assert len(session["visitor_id"]) >= 32
    assert session["chat_enabled"] is True
    assert session["theme"]["bot_name"] == "DynChat"
    assert session["dialogue"] == {
        "id": acme_dialogue.pk,
        "name": "Book a demo",
        "version": 1,
        "trigger": {"type": "time_on_page", "seconds": 0},
    }
    # A page view stores nothing: the visitor is recorded when they first act.
    assert Visitor.objects.count() == 0


def test_it_records_the_visitor_when_they_start_a_conversation(acme_widget, acme_dialogue):
    session = acme_widget.start_session()

    acme_widget.start_conversation(acme_dialogue, visitor_id=session["visitor_id"])
    acme_widget.start_conversation(acme_dialogue, visitor_id=session["visitor_id"])

    visitor = Visitor.objects.get()
    assert visitor.conversations.count() == 2
    # Only a digest of the visitor's key is kept.
    assert visitor.key_hash != session["visitor_id"]
    assert len(visitor.key_hash) == 64


def test_it_recognises_a_returning_visitor_by_their_key(acme_widget, visitor_id, acme_dialogue):
    acme_widget.start_conversation(acme_dialogue, visitor_id=visitor_id)

    session = acme_widget.start_session(visitor_id=visitor_id)

    assert session["visitor_id"] == visitor_id
    assert Visitor.objects.count() == 1


def test_it_gives_a_fresh_visitor_to_a_key_it_did_not_issue(acme_widget):
    session = acme_widget.start_session(visitor_id=ANOTHER_VISITOR_KEY)

    assert session["visitor_id"] != ANOTHER_VISITOR_KEY
    again = acme_widget.start_session(visitor_id=session["visitor_id"])
    assert again["visitor_id"] == session["visitor_id"]


def test_it_refuses_to_start_a_conversation_for_a_key_it_did_not_issue(acme_widget, acme_dialogue):
    response = acme_widget.post(
        "/conversations",
        {"visitor_id": ANOTHER_VISITOR_KEY, "dialogue_id": acme_dialogue.pk, "page_url": PAGE_URL},
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_visitor"
    assert Visitor.objects.count() == 0


def test_it_gives_a_fresh_visitor_to_a_key_from_another_site(acme_widget, globex_widget):
    omar_visitor = globex_widget.start_session()["visitor_id"]

    session = acme_widget.start_session(visitor_id=omar_visitor)

    assert session["visitor_id"] != omar_visitor


@pytest.mark.parametrize(
    "page_url",
    [
        "ftp://www.acme.test/file",
        "javascript:alert(1)",
        "www.acme.test/pricing",
        "/pricing",
        "",
        "https://" + "a" * 2000,
        42,
        None,
        ["https://www.acme.test/"],
    ],
)
def test_it_refuses_a_page_url_that_is_not_a_web_address(api, page_url):
    before = stored()

    response = api.send("sessions", body={"page_url": page_url})

    assert_error(response, 400, "invalid_field", "page_url")
    assert stored() == before


@pytest.mark.parametrize(
    "visitor_key", ["too-short", "has spaces but is long enough", "k" * 101, 12345678901234567890]
)
def test_it_refuses_a_visitor_key_that_could_never_have_been_issued(api, visitor_key):
    before = stored()

    response = api.send("sessions", body={"page_url": PAGE_URL, "visitor_id": visitor_key})

    assert_error(response, 400, "invalid_field", "visitor_id")
    assert stored() == before


def test_it_needs_the_page_url_to_start_a_session(api):
    before = stored()

    response = api.send("sessions", body={})

    assert_error(response, 400, "missing_field", "page_url")
    assert stored() == before


def test_it_offers_the_highest_priority_published_dialogue(acme_widget, acme, maya):
    make_published_dialogue(acme, name="Low", priority=1)
    high = make_published_dialogue(acme, name="High", priority=5)
    Dialogue.objects.create(site=acme, name="Draft", flow=EVERY_CARD_FLOW, priority=50)
    hidden = make_published_dialogue(acme, name="Hidden", priority=9)
    dialogue_services.unpublish_dialogue(dialogue_id=hidden.pk)

    session = acme_widget.start_session()

    assert session["dialogue"]["id"] == high.pk
    assert session["dialogue"]["name"] == "High"


def test_it_offers_no_dialogue_when_none_is_published(acme_widget, acme):
    Dialogue.objects.create(site=acme, name="Draft", flow=EVERY_CARD_FLOW)

    assert acme_widget.start_session()["dialogue"] is None


def test_it_never_offers_again_a_dialogue_the_visitor_completed(acme_widget, acme, visitor_id):
    first = make_published_dialogue(acme, name="First", priority=5)
    second = make_published_dialogue(acme, name="Second", priority=1)
    assert acme_widget.start_session(visitor_id=visitor_id)["dialogue"]["id"] == first.pk
    walk(acme_widget, acme_widget.start_conversation(first, visitor_id=visitor_id), "no")

    offered = acme_widget.start_session(visitor_id=visitor_id)["dialogue"]

    assert offered["id"] == second.pk
    # Someone else still gets the first one.
    assert acme_widget.start_session()["dialogue"]["id"] == first.pk


def test_it_offers_again_a_dialogue_the_visitor_left_unfinished(acme_widget, acme_dialogue):
    session = acme_widget.start_session()
    acme_widget.start_conversation(acme_dialogue, visitor_id=session["visitor_id"])

    again = acme_widget.start_session(visitor_id=session["visitor_id"])

    assert again["dialogue"]["id"] == acme_dialogue.pk


def test_it_offers_nothing_and_starts_nothing_when_chat_is_disabled(api, acme, acme_dialogue):
    acme.chat_enabled = False
    acme.save(update_fields=["chat_enabled"])

    session = api.send("sessions").json()
    before = stored()
    refused = api.send("conversations")

    assert session["chat_enabled"] is False
    assert session["dialogue"] is None
    assert_error(refused, 404, "dialogue_not_available", "dialogue_id")
    assert stored() == before


# --- starting a conversation ------------------------------------------------------------------


def test_it_starts_a_conversation_up_to_the_first_question(acme_widget, acme_dialogue, visitor_id):
    response = acme_widget.post(
        "/conversations",
        {"visitor_id": visitor_id, "dialogue_id": acme_dialogue.pk, "page_url": PAGE_URL},
    )

    assert response.status_code == 201
    body = response.json()
    assert len(body["token"]) >= 32
    assert body["messages"] == [
        {"card_id": "hello", "text": "Hi there!"},
        {"card_id": "want", "text": "Want a demo?"},
    ]
    assert body["prompt"] == {
        "card_id": "want",
        "step": 1,
        "kind": "choice",
        "choices": [{"label": "Yes please", "value": "yes"}, {"label": "No thanks", "value": "no"}],
    }
    assert body["done"] is False
    assert body["events"] == [{"kind": "triggered"}]
    conversation = Conversation.objects.get(pk=body["conversation_id"])
    assert conversation.visitor.site == acme_widget.site
    assert conversation.page_url == PAGE_URL
    assert conversation.status == "open"
    assert conversation.token_hash != body["token"]
    assert list(conversation.entries.values_list("seq", "author", "card_id", "text")) == [
        (0, "bot", "hello", "Hi there!"),
        (1, "bot", "want", "Want a demo?"),
    ]


def test_it_refuses_to_start_for_a_visitor_it_does_not_know(api):
    before = stored()

    response = api.send(
        "conversations", body={**api.calls["conversations"].body, "visitor_id": ANOTHER_VISITOR_KEY}
    )

    assert_error(response, 404, "unknown_visitor", "visitor_id")
    assert stored() == before


def test_it_refuses_to_start_for_a_visitor_of_another_site(api, globex_widget):
    omar_visitor = globex_widget.start_session()["visitor_id"]
    before = stored()

    response = api.send(
        "conversations", body={**api.calls["conversations"].body, "visitor_id": omar_visitor}
    )

    assert_error(response, 404, "unknown_visitor", "visitor_id")
    assert stored() == before


@pytest.fixture
def unavailable_dialogues(acme, globex, omar):
    draft = Dialogue.objects.create(site=acme, name="Draft", flow=EVERY_CARD_FLOW)
    unpublished = make_published_dialogue(acme, name="Retired")
    dialogue_services.unpublish_dialogue(dialogue_id=unpublished.pk)
    return {
        "unknown": 987654321,
        "huge": 10**30,
        "globex": make_published_dialogue(globex, name="Globex demo", user=omar).pk,
        "draft": draft.pk,
        "unpublished": unpublished.pk,
    }


@pytest.mark.parametrize("which", ["unknown", "huge", "globex", "draft", "unpublished"])
def test_it_refuses_to_start_a_dialogue_that_is_not_published_on_this_site(
    api, unavailable_dialogues, which
):
    before = stored()

    response = api.send(
        "conversations",
        body={**api.calls["conversations"].body, "dialogue_id": unavailable_dialogues[which]},
    )

    assert_error(response, 404, "dialogue_not_available", "dialogue_id")
    assert stored() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dialogue_id", "1"),
        ("dialogue_id", 1.0),
        ("dialogue_id", True),
        ("dialogue_id", 0),
        ("dialogue_id", -3),
        ("dialogue_id", None),
        ("dialogue_id", [1]),
        ("visitor_id", None),
        ("visitor_id", 5),
        ("page_url", "mailto:maya@acme.com"),
    ],
)
def test_it_refuses_a_conversation_field_of_the_wrong_type(api, field, value):
    before = stored()

    response = api.send("conversations", body={**api.calls["conversations"].body, field: value})

    assert_error(response, 400, "invalid_field", field)
    assert stored() == before


@pytest.mark.parametrize("field", ["visitor_id", "dialogue_id", "page_url"])
def test_it_refuses_a_conversation_without_a_required_field(api, field):
    body = dict(api.calls["conversations"].body)
    del body[field]
    before = stored()

    response = api.send("conversations", body=body)

    assert_error(response, 400, "missing_field", field)
    assert stored() == before


# --- answering --------------------------------------------------------------------------------


def test_it_takes_an_answer_and_asks_the_next_question(acme_widget, conversation):
    response = acme_widget.answer(conversation, "yes")

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ACME_ORIGIN
    body = response.json()
    assert body["answer"] == {"text": "Yes please"}
    assert body["messages"] == [{"card_id": "name", "text": "Your first name?"}]
    assert body["prompt"] == {"card_id": "name", "step": 2, "kind": "text", "placeholder": ""}
    assert body["done"] is False
    assert body["events"] == [{"kind": "engaged"}]
    assert "token" not in body


def test_it_tells_the_page_what_happened_without_the_captured_values(acme_widget, conversation):
    last = walk(acme_widget, conversation, "yes", "Ann", "ann@bigco.com")

    assert last["events"] == [
        {"kind": "field_captured", "input_type": "email"},
        {"kind": "goal_reached", "goal": "Email captured"},
    ]
    assert "ann@bigco.com" not in json.dumps(last["events"])


def test_it_keeps_the_transcript_in_the_order_it_was_said(acme_widget, conversation):
    walk(acme_widget, conversation, "yes", "Ann", "ann@bigco.com", "+1 415 555 2671", "skip")

    entries = TranscriptEntry.objects.filter(conversation_id=conversation["conversation_id"])
    assert list(entries.values_list("seq", "author", "card_id", "text")) == [
        (0, "bot", "hello", "Hi there!"),
        (1, "bot", "want", "Want a demo?"),
        (2, "visitor", "want", "Yes please"),
        (3, "bot", "name", "Your first name?"),
        (4, "visitor", "name", "Ann"),
        (5, "bot", "email", "Thanks Ann. Your email?"),
        (6, "visitor", "email", "ann@bigco.com"),
        (7, "bot", "phone", "Your phone?"),
        (8, "visitor", "phone", "+14155552671"),
        (9, "bot", "book", "Pick a time with our team."),
        (10, "visitor", "book", "None of these times work"),
        (11, "bot", "bye", "Thanks, talk soon."),
    ]


def test_it_records_each_event_once_stamped_with_dialogue_version_page_and_time(
    acme_widget, acme_dialogue, conversation
):
    started = timezone.now()
    walk(acme_widget, conversation, "yes", "Ann", "ann@bigco.com", "+1 415 555 2671", "skip")

    events = ConversationEvent.objects.filter(
        conversation_id=conversation["conversation_id"]
    ).order_by("pk")
    assert [(e.kind, e.card_id, e.data) for e in events] == [
        ("triggered", "", {}),
        # Each step also notes the cards it showed (the reports' funnel) and what it answered.
        ("step", "", {"shown": ["hello", "want"]}),
        ("engaged", "want", {}),
        ("step", "want", {"shown": ["name"]}),
        (
            "field_captured",
            "name",
            {"attribute": "firstName", "input_type": "text", "value": "Ann"},
        ),
        ("step", "name", {"shown": ["email"]}),
        (
            "field_captured",
            "email",
            # The visitor had given no email before: a person captured.
            {
                "attribute": "email",
                "input_type": "email",
                "value": "ann@bigco.com",
                "new_email": True,
            },
        ),
        ("goal_reached", "goal", {"goal": "Email captured"}),
        ("step", "email", {"shown": ["phone"]}),
        (
            "field_captured",
            "phone",
            {"attribute": "phone", "input_type": "phone", "value": "+14155552671"},
        ),
        ("step", "phone", {"shown": ["book"]}),
        ("completed", "", {}),
        ("step", "book", {"shown": ["bye"]}),
    ]
    for event in events:
        assert event.site_id == acme_dialogue.site_id
        assert event.dialogue_id == acme_dialogue.pk
        assert event.version_id == acme_dialogue.current_version_id
        assert event.page_url == PAGE_URL
        assert event.created_at.tzinfo is not None
        assert started - timezone.timedelta(seconds=5) <= event.created_at <= timezone.now()


def test_it_marks_the_conversation_engaged_at_the_first_answer_only(acme_widget, conversation):
    row = Conversation.objects.get(pk=conversation["conversation_id"])
    assert (row.status, row.engaged_at, row.completed_at) == ("open", None, None)

    walk(acme_widget, conversation, "yes")
    row.refresh_from_db()
    engaged_at = row.engaged_at
    assert engaged_at is not None
    assert row.completed_at is None

    walk(acme_widget, {**conversation, **detail(acme_widget, conversation)}, "Ann")
    row.refresh_from_db()
    assert row.engaged_at == engaged_at


def test_it_completes_the_conversation_at_the_end_of_the_dialogue(acme_widget, conversation):
    last = walk(acme_widget, conversation, "no")

    assert last["done"] is True
    assert last["prompt"] is None
    assert last["messages"] == [{"card_id": "bye", "text": "Thanks, talk soon."}]
    assert last["events"] == [{"kind": "engaged"}, {"kind": "completed"}]
    row = Conversation.objects.get(pk=conversation["conversation_id"])
    assert row.status == "completed"
    assert row.completed_at is not None


@pytest.mark.parametrize("authorization", [None, "", "Basic dXNlcjpwYXNz", "Bearer", "tok"])
@pytest.mark.parametrize("endpoint", ["answers", "conversation"])
def test_it_needs_the_conversation_token(api, endpoint, authorization):
    extra = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    before = stored()

    response = api.send(endpoint, token=None, **extra)

    assert_error(response, 401, "missing_token")
    assert stored() == before


@pytest.mark.parametrize("endpoint", ["answers", "conversation"])
def test_it_refuses_a_wrong_token(api, endpoint):
    before = stored()

    response = api.send(endpoint, token="not-the-token-of-this-conversation")

    assert_error(response, 403, "invalid_token")
    assert stored() == before


@pytest.mark.parametrize("endpoint", ["answers", "conversation"])
def test_it_refuses_the_token_of_another_conversation(api, acme_widget, acme_dialogue, endpoint):
    other = acme_widget.start_conversation(acme_dialogue)
    before = stored()

    response = api.send(endpoint, token=other["token"])

    assert_error(response, 403, "invalid_token")
    assert stored() == before


@pytest.mark.parametrize("endpoint", ["answers", "conversation"])
def test_it_knows_no_conversation_by_an_unknown_id(api, endpoint):
    api.calls[endpoint].path = api.calls[endpoint].path.replace(
        api.calls["conversation"].path.split("/")[2], UNKNOWN_CONVERSATION
    )
    before = stored()

    response = api.send(endpoint)

    assert_error(response, 404, "conversation_not_found")
    assert stored() == before


@pytest.mark.parametrize("endpoint", ["answers", "conversation"])
def test_it_hides_another_sites_conversation_even_with_its_token(api, omar_conversation, endpoint):
    api.calls[endpoint].path = api.calls[endpoint].path.replace(
        api.calls["conversation"].path.split("/")[2], omar_conversation["conversation_id"]
    )
    before = stored()

    response = api.send(endpoint, token=omar_conversation["token"])

    assert_error(response, 404, "conversation_not_found")
    assert stored() == before


def test_it_serves_omars_conversation_through_his_own_site(globex_widget, omar_conversation):
    response = globex_widget.get(
        f"/conversations/{omar_conversation['conversation_id']}", token=omar_conversation["token"]
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == GLOBEX_ORIGIN


def test_it_refuses_an_answer_to_a_card_that_is_not_being_asked(acme_widget, conversation):
    before = stored()

    response = acme_widget.answer(conversation, "Ann", card_id="name")

    assert_error(response, 409, "not_current_card", "card_id")
    assert stored() == before


def test_it_applies_a_replayed_answer_only_once(acme_widget, conversation):
    first = acme_widget.answer(conversation, "yes")
    after_first = stored()

    replay = acme_widget.answer(conversation, "yes")

    assert first.status_code == 200
    assert_error(replay, 409, "not_current_card", "card_id")
    assert stored() == after_first
    answers = TranscriptEntry.objects.filter(
        conversation_id=conversation["conversation_id"], author="visitor"
    )
    assert list(answers.values_list("card_id", "text")) == [("want", "Yes please")]


@pytest.mark.parametrize("step", [2, 99])
def test_it_refuses_an_answer_for_another_step(acme_widget, conversation, step):
    before = stored()

    response = acme_widget.answer(conversation, "yes", step=step)

    assert_error(response, 409, "not_current_card", "card_id")
    assert stored() == before


def test_it_refuses_an_answer_once_the_conversation_is_over(acme_widget, conversation):
    walk(acme_widget, conversation, "no")
    before = stored()

    response = acme_widget.answer(conversation, "no")

    assert_error(response, 409, "conversation_over")
    assert stored() == before


@pytest.mark.parametrize(
    ("answers", "value", "code"),
    [
        (["yes"], "", "required"),
        (["yes"], "   ", "required"),
        (["yes"], "x" * 1001, "too_long"),
        (["yes", "Ann"], "ann@", "invalid_email"),
        (["yes", "Ann"], "ann at bigco dot com", "invalid_email"),
        (["yes", "Ann", "ann@bigco.com"], "555", "invalid_phone"),
        (["yes", "Ann", "ann@bigco.com"], "call me", "invalid_phone"),
        ([], "Yes please", "invalid_choice"),
        ([], "maybe", "invalid_choice"),
    ],
)
def test_it_refuses_an_invalid_answer_and_keeps_the_question_open(
    acme_widget, conversation, answers, value, code
):
    current = walk(acme_widget, conversation, *answers)
    before = stored()
    open_before = detail(acme_widget, conversation)

    response = acme_widget.answer(current, value)

    assert_error(response, 422, code, "value")
    assert stored() == before
    assert detail(acme_widget, conversation) == open_before
    assert open_before["prompt"] == current["prompt"]


@pytest.mark.parametrize("value", [5, 1.5, True, None, ["yes"], {"value": "yes"}])
def test_it_refuses_an_answer_that_is_not_text(acme_widget, conversation, value):
    before = stored()

    response = acme_widget.answer(conversation, value)

    assert_error(response, 422, "invalid_type", "value")
    assert stored() == before


def test_it_refuses_an_answer_without_a_value_as_not_text(api):
    before = stored()

    response = api.send("answers", body={"card_id": "want", "step": 1})

    assert_error(response, 422, "invalid_type", "value")
    assert stored() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("step", "1"),
        ("step", 1.0),
        ("step", True),
        ("step", 0),
        ("step", None),
        ("card_id", ""),
        ("card_id", 7),
        ("card_id", "x" * 41),
        ("card_id", ["want"]),
    ],
)
def test_it_refuses_an_answer_field_of_the_wrong_type(api, field, value):
    before = stored()

    response = api.send("answers", body={**api.calls["answers"].body, field: value})

    assert_error(response, 400, "invalid_field", field)
    assert stored() == before


@pytest.mark.parametrize("field", ["card_id", "step"])
def test_it_refuses_an_answer_without_a_required_field(api, field):
    body = dict(api.calls["answers"].body)
    del body[field]
    before = stored()

    response = api.send("answers", body=body)

    assert_error(response, 400, "missing_field", field)
    assert stored() == before


# --- resuming a conversation ------------------------------------------------------------------


def test_it_shows_a_returning_page_the_transcript_and_the_open_question(
    acme_widget, acme_dialogue, conversation
):
    walk(acme_widget, conversation, "yes")

    shown = detail(acme_widget, conversation)

    assert shown == {
        "conversation_id": conversation["conversation_id"],
        "dialogue_id": acme_dialogue.pk,
        "version": 1,
        "transcript": [
            {"author": "bot", "card_id": "hello", "text": "Hi there!"},
            {"author": "bot", "card_id": "want", "text": "Want a demo?"},
            {"author": "visitor", "card_id": "want", "text": "Yes please"},
            {"author": "bot", "card_id": "name", "text": "Your first name?"},
        ],
        "prompt": {"card_id": "name", "step": 2, "kind": "text", "placeholder": ""},
        "done": False,
    }


def test_it_lets_a_resumed_conversation_carry_on_from_the_open_question(acme_widget, conversation):
    walk(acme_widget, conversation, "yes")
    resumed = {**conversation, "prompt": detail(acme_widget, conversation)["prompt"]}

    response = acme_widget.answer(resumed, "Ann")

    assert response.status_code == 200
    assert response.json()["prompt"]["card_id"] == "email"


def test_it_shows_a_finished_conversation_with_no_question_open(acme_widget, conversation):
    walk(acme_widget, conversation, "no")

    shown = detail(acme_widget, conversation)

    assert shown["done"] is True
    assert shown["prompt"] is None
    assert shown["transcript"][-1] == {
        "author": "bot",
        "card_id": "bye",
        "text": "Thanks, talk soon.",
    }


# --- what the visitor told us -----------------------------------------------------------------


def test_it_remembers_what_a_visitor_told_one_dialogue_in_the_next(acme_widget, acme):
    first = make_published_dialogue(acme, name="Book a demo", priority=5)
    make_published_dialogue(acme, name="Welcome back", flow=WELCOME_BACK_FLOW, priority=1)
    visitor_id = acme_widget.start_session()["visitor_id"]
    conversation = acme_widget.start_conversation(first, visitor_id=visitor_id)
    walk(acme_widget, conversation, "yes", "Ann", "Ann@BigCo.com", "+1 415 555 2671", "skip")

    visitor = Visitor.objects.get()
    assert visitor.attributes == {
        "firstName": "Ann",
        "email": "Ann@bigco.com",
        "phone": "+14155552671",
    }
    assert visitor.email == "ann@bigco.com"
    offer = acme_widget.start_session(visitor_id=visitor_id)["dialogue"]
    assert offer["name"] == "Welcome back"
    second = acme_widget.start_conversation(Dialogue.objects.get(pk=offer["id"]), visitor_id)

    assert [m["text"] for m in second["messages"]] == [
        "Welcome back Ann.",
        "We will write to Ann@bigco.com.",
    ]
    assert second["done"] is True


def test_it_skips_what_the_host_page_identified_and_greets_by_name(
    acme_widget, acme_dialogue, visitor_id
):
    identified = acme_widget.post(
        "/visitors/identify", {"visitor_id": visitor_id, "firstName": "Maya"}
    )
    conversation = acme_widget.start_conversation(acme_dialogue, visitor_id=visitor_id)

    after_yes = walk(acme_widget, conversation, "yes")

    assert identified.status_code == 200
    assert conversation["messages"][0]["text"] == "Hi Maya!"
    assert after_yes["prompt"]["card_id"] == "email"
    assert after_yes["messages"] == [{"card_id": "email", "text": "Thanks Maya. Your email?"}]


def test_it_stores_what_the_host_page_identifies_normalised(acme_widget, visitor_id):
    response = acme_widget.post(
        "/visitors/identify",
        {
            "visitor_id": visitor_id,
            "email": " Maya@Acme.COM ",
            "phone": "(415) 555-2671",
            "firstName": " Maya ",
            "lastName": "Lee",
            "company": "Acme",
        },
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ACME_ORIGIN
    assert response.json() == {"identified": ["company", "email", "firstName", "lastName", "phone"]}
    visitor = Visitor.objects.get()
    assert visitor.attributes == {
        "email": "Maya@acme.com",
        "phone": "+14155552671",
        "firstName": "Maya",
        "lastName": "Lee",
        "company": "Acme",
    }
    assert visitor.email == "maya@acme.com"


def test_it_keeps_earlier_attributes_when_identifying_more(acme_widget, visitor_id):
    acme_widget.post("/visitors/identify", {"visitor_id": visitor_id, "firstName": "Maya"})

    acme_widget.post("/visitors/identify", {"visitor_id": visitor_id, "company": "Acme"})

    assert Visitor.objects.get().attributes == {"firstName": "Maya", "company": "Acme"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "maya@"),
        ("email", "not an email"),
        ("email", ""),
        ("email", 5),
        ("phone", "555"),
        ("phone", "call me"),
        ("phone", 4155552671),
        ("firstName", ""),
        ("firstName", "   "),
        ("firstName", "x" * 201),
        ("company", ["Acme"]),
        ("visitor_id", "short"),
    ],
)
def test_it_refuses_to_identify_with_an_invalid_attribute(api, field, value):
    before = stored()

    response = api.send("identify", body={**api.calls["identify"].body, field: value})

    assert_error(response, 400, "invalid_field", field)
    assert stored() == before


def test_it_refuses_to_identify_a_visitor_it_does_not_know(api):
    before = stored()

    response = api.send(
        "identify", body={"visitor_id": ANOTHER_VISITOR_KEY, "email": "maya@acme.com"}
    )

    assert_error(response, 404, "unknown_visitor", "visitor_id")
    assert stored() == before


def test_it_refuses_to_identify_without_a_visitor(api):
    before = stored()

    response = api.send("identify", body={"email": "maya@acme.com"})

    assert_error(response, 400, "missing_field", "visitor_id")
    assert stored() == before


@pytest.mark.parametrize(
    ("endpoint", "field", "value"),
    [
        ("answers", "value", "Ann\u0000"),
        ("answers", "value", "Ann\ud800"),
        ("answers", "card_id", "want\u0000"),
        ("conversations", "page_url", "https://www.acme.test/\u0000"),
        ("identify", "firstName", "Ma\u0000ya"),
        ("identify", "company", "Acme\udfff"),
        ("sessions", "page_url", "https://www.acme.test/\u0000"),
    ],
)
def test_it_refuses_text_the_database_cannot_store(
    api, acme_widget, conversation, endpoint, field, value
):
    if endpoint == "answers":
        # On the name card, where a typed answer would be stored as it came.
        walk(acme_widget, conversation, "yes")
        api.calls["answers"].body = {"card_id": "name", "step": 2, "value": "Ann"}
    before = stored()

    response = api.send(endpoint, body={**api.calls[endpoint].body, field: value})

    assert_error(response, 400, "invalid_field", field)
    assert stored() == before


# --- rate limits ------------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    """Freeze the rate limiter's clock mid-window, so a test never straddles two windows."""
    now = SimpleNamespace(value=1_700_000_010.0)
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: now.value))
    return now


def test_it_limits_how_many_sessions_one_client_starts(api, settings, clock):
    settings.WIDGET_SESSION_RATE_LIMIT_PER_MINUTE = 2
    assert [api.send("sessions").status_code for _ in range(2)] == [200, 200]
    before = stored()

    refused = api.send("sessions")

    assert_error(refused, 429, "rate_limited")
    assert refused["Retry-After"] == "60"
    assert refused["Access-Control-Allow-Origin"] == ACME_ORIGIN
    assert stored() == before


def test_it_limits_the_other_calls_together_apart_from_sessions(api, settings, clock):
    settings.WIDGET_RATE_LIMIT_PER_MINUTE = 3
    assert api.send("conversation").status_code == 200
    assert api.send("identify").status_code == 200
    assert api.send("answers").status_code == 200
    before = stored()

    refused = [api.send(name) for name in ("conversation", "conversations", "identify")]

    for response in refused:
        assert_error(response, 429, "rate_limited")
        assert response["Retry-After"] == "60"
    assert stored() == before
    assert api.send("sessions").status_code == 200


def test_it_counts_each_client_on_its_own(api, settings, clock):
    settings.WIDGET_SESSION_RATE_LIMIT_PER_MINUTE = 1
    assert api.send("sessions", REMOTE_ADDR="203.0.113.1").status_code == 200
    assert api.send("sessions", REMOTE_ADDR="203.0.113.1").status_code == 429

    response = api.send("sessions", REMOTE_ADDR="203.0.113.2")

    assert response.status_code == 200


def test_it_counts_each_site_on_its_own(api, globex_widget, settings, clock):
    settings.WIDGET_SESSION_RATE_LIMIT_PER_MINUTE = 1
    assert api.send("sessions").status_code == 200
    assert api.send("sessions").status_code == 429

    response = globex_widget.post("/sessions", {"page_url": "https://globex.test/"})

    assert response.status_code == 200


def test_it_lets_a_limited_client_back_in_the_next_minute(api, settings, clock):
    settings.WIDGET_SESSION_RATE_LIMIT_PER_MINUTE = 1
    assert api.send("sessions").status_code == 200
    assert api.send("sessions").status_code == 429

    clock.value += 60

    assert api.send("sessions").status_code == 200


# --- the API description ----------------------------------------------------------------------


def test_it_serves_its_openapi_description(client):
    response = client.get(f"{API}/openapi.json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    document = json.loads(response.content)
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/sites/{site_key}/sessions",
        "/sites/{site_key}/conversations",
        "/sites/{site_key}/conversations/{conversation_id}",
        "/sites/{site_key}/conversations/{conversation_id}/answers",
        "/sites/{site_key}/conversations/{conversation_id}/slots",
        "/sites/{site_key}/conversations/{conversation_id}/bookings",
        "/sites/{site_key}/visitors/identify",
        "/sites/{site_key}/avatar",
    }


# --- garbage in, never a server error ---------------------------------------------------------

GARBAGE_BODIES = [
    "",
    " ",
    "{",
    "}",
    "{'page_url': 'https://www.acme.test/'}",
    '{"page_url": "https://www.acme.test/"',
    "{}",
    "[]",
    "[{}]",
    "null",
    "true",
    "0",
    "1e999",
    '"text"',
    "NaN",
    '{"a": NaN}',
    '{"": 1}',
    '{"__proto__": {"admin": true}}',
    '{"page_url": {"$gt": ""}}',
    '{"visitor_id": {"$ne": null}}',
    '{"step": 1e400, "card_id": "want", "value": "yes"}',
    "[" * 5000,
    '{"a":' * 3000,
    "[" * 500 + "]" * 500,
    b"\xff\xfe\xfd",
    b"\x00\x00\x00\x00",
    b'{"page_url": "\xed\xa0\x80"}',
    "\ufeff{}",
    '{"page_url": "' + "\u00e9" * 9000 + '"}',
]

GARBAGE_VALUES = [
    True,
    0,
    -1,
    1.5,
    10**30,
    "",
    " ",
    "\u0000",
    "a\u0000b",
    "\ud800",
    "x" * 3000,
    [],
    {},
    ["a"],
    {"a": 1},
    [[[[[[["deep"]]]]]]],
]

OPTIONAL_FIELDS = {"sessions": {"visitor_id"}, "identify": {"email", "phone", "firstName"}}


def garbage_bodies(api, endpoint):
    valid = {
        "sessions": {"page_url": PAGE_URL, "visitor_id": ANOTHER_VISITOR_KEY},
        "conversations": api.calls["conversations"].body,
        "answers": api.calls["answers"].body,
        "identify": {
            "visitor_id": api.calls["identify"].body["visitor_id"],
            "email": "maya@acme.com",
            "phone": "+14155552671",
            "firstName": "Maya",
        },
    }[endpoint]
    yield from GARBAGE_BODIES
    for field in valid:
        for value in GARBAGE_VALUES:
            if endpoint == "answers" and field == "step" and isinstance(value, int):
                # A whole number is a well-formed step; a wrong one is refused as stale, below.
                continue
            yield json.dumps({**valid, field: value})
        if field not in OPTIONAL_FIELDS.get(endpoint, ()):
            yield json.dumps({**valid, field: None})


@pytest.mark.parametrize("endpoint", POSTS)
def test_it_answers_garbage_with_a_client_error_never_a_server_error(api, endpoint):
    api.client.raise_request_exception = False
    before = stored()
    bad = []

    for raw in garbage_bodies(api, endpoint):
        response = api.send(endpoint, raw=raw)
        error = response.json().get("error", {}) if response.status_code != 500 else {}
        if not 400 <= response.status_code < 500 or set(error) != {"code", "message", "field"}:
            bad.append((raw[:80], response.status_code, response.content[:200]))

    assert bad == []
    assert stored() == before


@pytest.mark.parametrize(
    ("step", "status", "code", "field"),
    [
        (-1, 400, "invalid_field", "step"),
        (0, 400, "invalid_field", "step"),
        (2, 409, "not_current_card", "card_id"),
        (10**30, 409, "not_current_card", "card_id"),
    ],
)
def test_it_refuses_a_step_number_that_is_not_the_current_one(api, step, status, code, field):
    before = stored()

    response = api.send("answers", body={**api.calls["answers"].body, "step": step})

    assert_error(response, status, code, field)
    assert stored() == before
