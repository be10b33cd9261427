"""Shared fixtures: the people in our stories, and the sites they work on.

- Maya, a marketer on Acme's site (https://www.acme.test);
- Omar, a marketer on another company's site (Globex), who must never see Acme's data;
- an outsider with an account but no site.
"""

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from dialogues import selectors
from dialogues import services as dialogue_services
from dialogues.models import Dialogue, Membership

ACME_ORIGIN = "https://www.acme.test"
GLOBEX_ORIGIN = "https://globex.test"
PAGE_URL = "https://www.acme.test/pricing"
PASSWORD = "correct horse battery staple"

# A small flow with every card type, used wherever a test needs "a real dialogue".
EVERY_CARD_FLOW = {
    "start": "hello",
    "cards": [
        {
            "id": "hello",
            "type": "message",
            "text": 'Hi {{lead.firstName | "there"}}!',
            "next": "want",
        },
        {
            "id": "want",
            "type": "question",
            "text": "Want a demo?",
            "choices": [
                {"label": "Yes please", "value": "yes", "next": "name"},
                {"label": "No thanks", "value": "no", "next": "bye"},
            ],
        },
        {
            "id": "name",
            "type": "capture",
            "text": "Your first name?",
            "input_type": "text",
            "attribute": "firstName",
            "skip_if_known": True,
            "next": "email",
        },
        {
            "id": "email",
            "type": "capture",
            "text": "Thanks {{lead.firstName}}. Your email?",
            "input_type": "email",
            "attribute": "email",
            "placeholder": "you@company.com",
            "next": "goal",
        },
        {"id": "goal", "type": "goal", "name": "Email captured", "next": "phone"},
        {
            "id": "phone",
            "type": "capture",
            "text": "Your phone?",
            "input_type": "phone",
            "attribute": "phone",
            "next": "route",
        },
        {
            "id": "route",
            "type": "branch",
            "rules": [
                {
                    "conditions": [
                        {"subject": "lead.email", "operator": "contains", "value": "@bigco."}
                    ],
                    "next": "book",
                }
            ],
            "default_next": "bye",
        },
        {
            "id": "book",
            "type": "booking",
            "text": "Pick a time with our team.",
            "skip_label": "None of these times work",
            "next": "booked",
            "skip_next": "bye",
        },
        {"id": "booked", "type": "end", "text": "See you on {{answer.book}}."},
        {"id": "bye", "type": "end", "text": "Thanks, talk soon."},
    ],
}


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    # Rate-limit counters live in the cache (Redis under `make test`); each test starts at zero.
    cache.clear()
    # Tests change sites and dialogues between requests and must see it at once; the short
    # per-process memo is tested on its own (test_widget_api_speed.py).
    settings.WIDGET_CACHE_SECONDS = 0
    yield
    cache.clear()


@pytest.fixture
def memo_on(settings):
    """The short per-process memo of sites and offers switched on, as in production."""
    settings.WIDGET_CACHE_SECONDS = 60
    selectors._sites.clear()
    selectors._offers.clear()
    yield
    selectors._sites.clear()
    selectors._offers.clear()


def _user(username: str):
    return get_user_model().objects.create_user(
        username=username, email=f"{username}@example.com", password=PASSWORD
    )


@pytest.fixture
def maya(db):
    return _user("maya")


@pytest.fixture
def omar(db):
    return _user("omar")


@pytest.fixture
def outsider(db):
    return _user("outsider")


@pytest.fixture
def acme(maya):
    return dialogue_services.create_site(name="Acme", allowed_origins=[ACME_ORIGIN], owner=maya)


@pytest.fixture
def mia(acme):
    """Acme's marketing user."""
    user = _user("mia")
    dialogue_services.add_member(site=acme, user=user, role=Membership.Role.MARKETER)
    return user


@pytest.fixture
def globex(omar):
    return dialogue_services.create_site(name="Globex", allowed_origins=[GLOBEX_ORIGIN], owner=omar)


def make_published_dialogue(site, *, name="Book a demo", flow=None, priority=0, user=None):
    dialogue = Dialogue.objects.create(
        site=site, name=name, flow=flow or EVERY_CARD_FLOW, priority=priority
    )
    dialogue_services.publish_dialogue(dialogue_id=dialogue.pk, user=user)
    dialogue.refresh_from_db()
    return dialogue


@pytest.fixture
def acme_dialogue(acme, maya):
    return make_published_dialogue(acme, user=maya)


class WidgetClient:
    """Speaks to the widget API the way the embedded script does: JSON, an Origin header."""

    def __init__(self, client, site, origin=ACME_ORIGIN):
        self.client, self.site, self.origin = client, site, origin
        self.base = f"/api/widget/v1/sites/{site.public_key}"

    def post(
        self, path, body, *, token=None, origin=None, raw=None, content_type="application/json"
    ):
        headers = {"HTTP_ORIGIN": origin or self.origin}
        if token:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        data = raw if raw is not None else json.dumps(body)
        return self.client.post(self.base + path, data, content_type=content_type, **headers)

    def get(self, path, *, token=None, origin=None):
        headers = {"HTTP_ORIGIN": origin or self.origin}
        if token:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        return self.client.get(self.base + path, **headers)

    def start_session(self, visitor_id=None, page_url=PAGE_URL):
        body = {"page_url": page_url}
        if visitor_id:
            body["visitor_id"] = visitor_id
        response = self.post("/sessions", body)
        assert response.status_code == 200, response.content
        return response.json()

    def start_conversation(self, dialogue, visitor_id=None):
        visitor_id = visitor_id or self.start_session()["visitor_id"]
        response = self.post(
            "/conversations",
            {"visitor_id": visitor_id, "dialogue_id": dialogue.pk, "page_url": PAGE_URL},
        )
        assert response.status_code == 201, response.content
        return response.json()

    def answer(self, conversation, value, *, card_id=None, step=None):
        prompt = conversation.get("prompt") or {}
        return self.post(
            f"/conversations/{conversation['conversation_id']}/answers",
            {
                "card_id": card_id or prompt.get("card_id"),
                "step": step or prompt.get("step"),
                "value": value,
            },
            token=conversation["token"],
        )


@pytest.fixture
def acme_widget(client, acme, settings):
    settings.ALLOWED_HOSTS = ["*"]
    return WidgetClient(client, acme)


@pytest.fixture
def member_roles():
    return Membership.Role


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Hash every test user's password with a fast hasher: PBKDF2 costs 0.3 to 1.5 s per user
    created (a routing test makes five agents). Autouse fixtures are set up before the personas,
    so their passwords are hashed the fast way. (Files that still name it in `usefixtures` are
    harmless.)"""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- Marketo -----------------------------------------------------------------------------------


def quick_sleep(seconds):
    """Retries and rate waits keep their order but not their length: tests run in seconds."""
    import time

    time.sleep(min(seconds, 0.05))


@pytest.fixture
def marketo():
    """A fake Marketo instance on loopback, with its own credentials (so its token and limit
    counters in Redis are its own)."""
    import uuid

    from tests.fakes.marketo import FakeMarketo

    fake = FakeMarketo(client_id=f"dynchat-{uuid.uuid4().hex[:12]}", client_secret="s3cret")
    with fake:
        yield fake


@pytest.fixture
def marketo_settings(settings, marketo):
    settings.MARKETO_BASE_URL = marketo.base_url
    settings.MARKETO_CLIENT_ID = marketo._client_id
    settings.MARKETO_CLIENT_SECRET = "s3cret"
    settings.MARKETO_BULK_POLL_SECONDS = 0
    settings.MARKETO_MAX_RETRY_SECONDS = 20
    settings.MARKETO_TIMEOUT_SECONDS = 5
    settings.MARKETO_LEADS_SINCE = ""
    # Ingest in the test's own connection and transaction (worker threads would commit
    # outside it); tests/test_marketo_parallel_ingest.py runs the threads.
    settings.MARKETO_INGEST_WORKERS = 1
    return settings


@pytest.fixture
def marketo_client(marketo_settings):
    from marketo_sync.client import MarketoClient, MarketoConfig

    client = MarketoClient(MarketoConfig.from_settings(), sleep=quick_sleep)
    yield client
    client.limiter.reset()
    client.close()


# --- agents and meetings ----------------------------------------------------------------------

ALL_WEEK = {str(day): [["00:00", "23:30"]] for day in range(1, 8)}


def make_agent(site, username, *, provider="builtin", first_name="", **availability):
    """A sales agent on `site` with a calendar and hours (all week, 0:00-23:30 UTC, 30-minute
    meetings, one hour's notice unless overridden)."""
    from calendars.models import Availability
    from calendars.services import save_connection

    user = _user(username)
    user.first_name = first_name or username.capitalize()
    user.last_name = "Agent"
    user.save(update_fields=["first_name", "last_name"])
    Membership.objects.create(user=user, site=site, role=Membership.Role.AGENT)
    save_connection(user, provider, account_email=user.email)
    Availability.objects.create(
        user=user,
        **{
            "time_zone": "UTC",
            "weekly_hours": ALL_WEEK,
            "meeting_minutes": 30,
            "minimum_notice_minutes": 60,
            "booking_horizon_days": 14,
            **availability,
        },
    )
    return user


@pytest.fixture
def alex(acme):
    """Acme's sales agent, on the built-in calendar."""
    return make_agent(acme, "alex")


@pytest.fixture
def fake_google(settings):
    """A fake Google (sign-in and Calendar API) on loopback, with the GOOGLE_* settings."""
    from tests.fakes.google_calendar import FakeGoogle

    with FakeGoogle(account_email="gus@acme.test") as fake:
        for name, value in fake.settings().items():
            setattr(settings, name, value)
        settings.CALENDAR_TIMEOUT_SECONDS = 5
        yield fake


@pytest.fixture
def fake_microsoft(settings):
    """A fake Microsoft sign-in and Graph (over TLS), with the MICROSOFT_* settings."""
    from tests.fakes.microsoft import FakeMicrosoft

    with FakeMicrosoft() as fake:
        settings.MICROSOFT_CLIENT_ID = fake.client_id
        settings.MICROSOFT_CLIENT_SECRET = fake.client_secret
        settings.MICROSOFT_AUTHORITY = fake.authority
        settings.MICROSOFT_GRAPH_API = fake.graph_url
        settings.MICROSOFT_CA_BUNDLE = fake.ca_bundle
        settings.CALENDAR_TIMEOUT_SECONDS = 5
        yield fake


def sign_in(user, fake, provider_name: str, email: str):
    """The agent's whole OAuth sign-in against a fake provider."""
    from calendars.providers import provider

    redirect = f"http://testserver/calendar/callback/{provider_name}/"
    url = provider(provider_name).authorization_url(user, redirect)
    params = fake.consent(url) if provider_name == "google" else fake.sign_in(url, email)
    return provider(provider_name).finish_authorization(user, params, redirect)
