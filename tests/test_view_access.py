"""Every marketer page, walked from the URL configuration so a new page cannot be forgotten:
who may open it (by role) and what everybody else gets (a sign-in redirect, or a 404 that
leaks nothing), including Acme's objects addressed under Globex's URL.

Each URL is filled with Acme's real objects (site, dialogue, a published version, a card, the
admin's membership); GET and POST are both tried, and nothing of Acme's may change.

The agent's calendar pages (the calendars app, /calendar/...) belong to no site: each is the
signed-in agent's own, so they are walked separately, for people who are no agent anywhere."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver

from calendars.models import Availability, CalendarConnection, OAuthAttempt
from dialogues import services
from dialogues.models import Dialogue, DialogueVersion, Membership, Site
from meetings.models import InvitationTemplate
from tests.conftest import EVERY_CARD_FLOW, PASSWORD, make_published_dialogue

pytestmark = pytest.mark.usefixtures("fast_password_hashing")
Role = Membership.Role

# Pages a marketing user may not open (only marketing admins).
ADMIN_PAGES = {"site_settings", "members", "member_role", "member_remove"}
# Site pages outside these rules, with the reason.
NOT_SITE_PAGES = {
    "home",  # lists the user's own sites; tested in test_marketer_home.py
}
# The apps whose URLs with a site id are marketer pages of that site.
SITE_APPS = {"dialogues", "meetings"}


def app_patterns(apps: set[str]) -> list[tuple[str, str]]:
    """(name, route) of every named URL of the apps `apps`."""
    found = []

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and pattern.name:
                found.append((pattern.name, prefix + str(pattern.pattern)))

    resolver = get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver) and getattr(pattern, "app_name", "") in apps:
            walk(pattern.url_patterns, str(pattern.pattern))
    return found


def site_patterns():
    """(name, route) of every marketer URL that takes a site id."""
    return [
        (name, route)
        for name, route in app_patterns(SITE_APPS)
        if "<int:site_id>" in route and name not in NOT_SITE_PAGES
    ]


PATTERNS = site_patterns()
AGENT_PATTERNS = app_patterns({"calendars"})


def test_the_walk_finds_the_marketer_pages():
    names = {name for name, _ in PATTERNS}
    assert {"list", "detail", "targeting", "preview", "branding", "members", "editor"} <= names
    assert "invitation" in names


def test_the_walk_finds_the_agents_calendar_pages():
    names = {name for name, _ in AGENT_PATTERNS}
    assert {"settings", "preview", "connect", "callback", "disconnect"} <= names
    assert all("<int:site_id>" not in route for _, route in AGENT_PATTERNS)


@pytest.fixture
def world(maya, acme, globex):
    dialogue = make_published_dialogue(
        acme, name="Acme secret plan", flow=EVERY_CARD_FLOW, user=maya
    )
    return {
        "acme": acme,
        "globex": globex,
        "dialogue": dialogue,
        "version": DialogueVersion.objects.get(dialogue=dialogue),
        "membership": Membership.objects.get(site=acme, user=maya),
    }


def fill(route, world, site):
    values = {
        "<int:site_id>": site.pk,
        "<int:dialogue_id>": world["dialogue"].pk,
        "<int:version_id>": world["version"].pk,
        "<int:membership_id>": world["membership"].pk,
        "<str:card_id>": "hello",
        "<str:provider_name>": "google",
    }
    path = route
    for placeholder, value in values.items():
        path = path.replace(placeholder, str(value))
    assert "<" not in path, f"fill in {path}"
    return "/" + path


def acme_state():
    return (
        list(Dialogue.objects.order_by("pk").values()),
        list(DialogueVersion.objects.order_by("pk").values_list("pk", "number")),
        list(Membership.objects.order_by("pk").values_list("pk", "role")),
        list(Site.objects.order_by("pk").values()),
        list(InvitationTemplate.objects.order_by("pk").values()),
    )


def calendar_state():
    return (
        list(CalendarConnection.objects.order_by("pk").values()),
        list(Availability.objects.order_by("pk").values()),
        list(OAuthAttempt.objects.order_by("pk").values_list("pk", "user_id")),
    )


def member(acme, role):
    user = get_user_model().objects.create_user(f"{role}-user", password=PASSWORD)
    services.add_member(site=acme, user=user, role=role)
    return user


@pytest.mark.parametrize(("name", "route"), PATTERNS, ids=[name for name, _ in PATTERNS])
def test_strangers_get_nothing_and_change_nothing(client, world, omar, outsider, name, route):
    acme = world["acme"]
    agent = member(acme, Role.AGENT)
    before = acme_state()
    url = fill(route, world, acme)
    for method in (client.get, client.post):
        # Anonymous: to sign in (or the method refused, whoever asks).
        assert method(url).status_code in (302, 405)
    for user in (outsider, omar, agent):
        client.force_login(user)
        refused(client, url)
    if "<int:dialogue_id>" in route or "<int:membership_id>" in route:
        # Omar's own site's URL with Acme's objects in it.
        client.force_login(omar)
        refused(client, fill(route, world, world["globex"]))
    assert acme_state() == before


def refused(client, url):
    # A page answers only the methods it takes (405 to the other, whoever asks: that tells
    # nothing of Acme); the method it takes is refused with a 404.
    statuses = set()
    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code in (404, 405), (method, url)
        assert b"Acme secret plan" not in response.content
        statuses.add(response.status_code)
    assert 404 in statuses, url


@pytest.mark.parametrize(("name", "route"), PATTERNS, ids=[name for name, _ in PATTERNS])
def test_marketing_users_open_their_pages_but_not_the_admins(client, world, name, route):
    client.force_login(member(world["acme"], Role.MARKETER))
    before = acme_state()
    url = fill(route, world, world["acme"])
    if name in ADMIN_PAGES:
        refused(client, url)
        assert acme_state() == before
    else:
        # 200 for pages; 405 for POST-only actions (the method, not access, is refused).
        assert client.get(url).status_code in (200, 405), name


@pytest.mark.parametrize(
    ("name", "route"), AGENT_PATTERNS, ids=[name for name, _ in AGENT_PATTERNS]
)
def test_calendar_pages_are_only_for_agents(client, world, maya, outsider, name, route):
    # Maya is Acme's marketing admin and a marketing user elsewhere, but no agent anywhere.
    services.add_member(site=world["globex"], user=maya, role=Role.MARKETER)
    before = calendar_state()
    url = fill(route, world, world["acme"])
    for method in (client.get, client.post):
        assert method(url).status_code in (302, 405)
    for user in (outsider, maya):
        client.force_login(user)
        refused(client, url)
    assert calendar_state() == before
