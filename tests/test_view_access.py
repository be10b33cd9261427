"""Every marketer page, walked from the URL configuration so a new page cannot be forgotten:
who may open it (by role) and what everybody else gets (a sign-in redirect, or a 404 that
leaks nothing), including Acme's objects addressed under Globex's URL.

Each URL is filled with Acme's real objects (site, dialogue, a published version, a card, the
admin's membership, a meeting of one of its agents); GET and POST are both tried, and nothing of
Acme's may change. Names are namespaced ("meetings:list"), as apps reuse short names.

The agent's calendar pages (the calendars app, /calendar/...) and /meetings/ (which leads an
agent to their site's meetings) belong to no site: each is the signed-in agent's own, so they
are walked separately, for people who are no agent anywhere."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from calendars.models import Availability, CalendarConnection, OAuthAttempt
from dialogues import services
from dialogues.models import Dialogue, DialogueVersion, Membership, Site
from marketo_sync.models import LeadFieldMapping, MarketoAction, OutboxRecord
from meetings.models import InvitationTemplate, Meeting
from reports import rollup
from reports.models import CardDay, DialogueDay, Erasure, PageDay
from routing import services as routing_services
from routing.models import AccountOwner, QueueMember, RoutingRule, RoutingSettings
from tests.conftest import EVERY_CARD_FLOW, PASSWORD, make_agent, make_published_dialogue
from tests.meeting_factories import make_meeting
from widget import keys
from widget import services as conversations
from widget.models import Conversation, Visitor

pytestmark = pytest.mark.usefixtures("fast_password_hashing")
Role = Membership.Role

# Pages a marketing user may not open (only marketing admins).
ADMIN_PAGES = {
    "dialogues:site_settings",
    "dialogues:members",
    "dialogues:member_role",
    "dialogues:member_remove",
    *(
        f"routing:{name}"
        for name in (
            "queue",
            "queue_order",
            "queue_add",
            "queue_pause",
            "queue_remove",
            "fallback",
            "accounts",
            "accounts_upload",
            "accounts_download",
            "account_delete",
            "rules",
            "rule_new",
            "rule_edit",
            "rule_move",
            "rule_active",
            "rule_delete",
        )
    ),
    *(
        f"writeback:{name}"
        for name in ("field_mapping", "delivery", "outbox", "retry_all", "retry", "discard")
    ),
    # Erasing a person and the erasure log.
    "reports:privacy",
}
# Sales agents open these too, but see only their own meetings in them (so a stranger agent of
# Acme gets a page without Acme's meeting, not a 404); the rows are tested in
# test_meetings_list.py. A meeting's own page stays a 404 for any agent but its own.
AGENT_OWN_PAGES = {"meetings:list", "meetings:export"}
# Actions on a meeting for its agent and the site's admins: a marketing user, who may see the
# meeting, is refused with a 403 rather than a 404.
MEETING_ACTIONS = {"meetings:outcome", "meetings:cancel"}
# Site pages outside these rules, with the reason.
NOT_SITE_PAGES = {
    "dialogues:home",  # lists the user's own sites; tested in test_marketer_home.py
}
# The apps whose URLs with a site id are marketer pages of that site.
SITE_APPS = {"dialogues", "meetings", "routing", "writeback", "reports"}


def app_patterns(apps: set[str]) -> list[tuple[str, str]]:
    """(name, route) of every named URL of the apps `apps`."""
    found = []

    def walk(patterns, app, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, app, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and pattern.name:
                found.append((f"{app}:{pattern.name}", prefix + str(pattern.pattern)))

    resolver = get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver) and getattr(pattern, "app_name", "") in apps:
            walk(pattern.url_patterns, pattern.app_name, str(pattern.pattern))
    return found


def site_patterns():
    """(name, route) of every marketer URL that takes a site id."""
    return [
        (name, route)
        for name, route in app_patterns(SITE_APPS)
        if "<int:site_id>" in route and name not in NOT_SITE_PAGES
    ]


PATTERNS = site_patterns()
AGENT_PATTERNS = app_patterns({"calendars"}) + [
    (name, route) for name, route in app_patterns({"meetings"}) if name == "meetings:mine"
]


def test_the_walk_finds_the_marketer_pages():
    names = {name for name, _ in PATTERNS}
    dialogue_pages = {"list", "detail", "targeting", "preview", "branding", "members", "editor"}
    assert {f"dialogues:{name}" for name in dialogue_pages} <= names
    meeting_pages = {"invitation", "list", "export", "detail", "outcome", "cancel"}
    assert {f"meetings:{name}" for name in meeting_pages} <= names
    assert {"dialogues:conversation", "writeback:outbox", "writeback:actions"} <= names
    routing_pages = {"queue", "accounts", "rules", "rule_edit", "account_delete", "queue_pause"}
    assert {f"routing:{name}" for name in routing_pages} <= names
    report_pages = {"overview", "dialogue", "meetings", "conversations", "conversations_csv"}
    assert {f"reports:{name}" for name in report_pages} <= names


def test_the_walk_finds_the_agents_calendar_pages():
    names = {name for name, _ in AGENT_PATTERNS}
    calendar_pages = {"settings", "preview", "connect", "callback", "disconnect"}
    assert {f"calendars:{name}" for name in calendar_pages} <= names
    assert "meetings:mine" in names
    assert all("<int:site_id>" not in route for _, route in AGENT_PATTERNS)


@pytest.fixture
def world(maya, acme, globex):
    dialogue = make_published_dialogue(
        acme, name="Acme secret plan", flow=EVERY_CARD_FLOW, user=maya
    )
    # Ended an hour ago and unmarked: a page that let a stranger mark or cancel it would change it.
    meeting = make_meeting(
        acme,
        make_agent(acme, "alex"),
        start=timezone.now() - timedelta(hours=2),
        lead_email="lead@acme-secret.test",
        dialogue=dialogue,
    )
    # Acme's routing: its agent in the queue, owning an account, taking a rule's visitors.
    rule = routing_services.save_rule(
        site=acme,
        name="DACH",
        description="",
        match="all",
        conditions=[{"subject": "lead.country", "operator": "equals", "value": "DE"}],
        agent_ids=[meeting.agent_id],
    )
    account = routing_services.save_account_owner(
        site=acme, company_name="Initech", domain="initech.com", owner=meeting.agent
    )
    # A conversation, a parked Marketo record and a dialogue action of Acme's.
    step, _ = conversations.start_conversation(
        site=acme,
        visitor_key=keys.new_visitor_key(acme.pk),
        dialogue_id=dialogue.pk,
        page_url="https://acme.test/secret",
    )
    rollup.roll_up()  # Acme's report figures
    now = timezone.now()
    record = OutboxRecord.objects.create(
        site=acme,
        lead_key="lead@acme-secret.test",
        kind=OutboxRecord.Kind.LEAD,
        call_group="lead",
        payload={"email": "lead@acme-secret.test", "attributes": {}},
        status=OutboxRecord.Status.PARKED,
        error_code="1006",
        error_message="Field 'x' not found",
        next_attempt_at=now,
        created_at=now,
    )
    action = MarketoAction.objects.create(
        dialogue=dialogue, on="engaged", campaign_id=1, campaign_name="Acme secret campaign"
    )
    return {
        "conversation": step.conversation,
        "record": record,
        "action": action,
        "queue_member": QueueMember.objects.get(site=acme, user=meeting.agent),
        "account": account,
        "rule": rule,
        "meeting": meeting,
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
        "<uuid:meeting_id>": world["meeting"].pk,
        "<int:member_id>": world["queue_member"].pk,
        "<int:account_id>": world["account"].pk,
        "<int:rule_id>": world["rule"].pk,
        "<uuid:conversation_id>": world["conversation"].pk,
        "<int:record_id>": world["record"].pk,
        "<int:action_id>": world["action"].pk,
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
        list(Meeting.objects.order_by("pk").values()),
        list(QueueMember.objects.order_by("pk").values()),
        list(AccountOwner.objects.order_by("pk").values()),
        list(RoutingRule.objects.order_by("pk").values()),
        list(RoutingRule.agents.through.objects.order_by("pk").values()),
        list(RoutingSettings.objects.order_by("pk").values()),
        list(OutboxRecord.objects.order_by("pk").values()),
        list(MarketoAction.objects.order_by("pk").values()),
        list(LeadFieldMapping.objects.order_by("pk").values()),
        list(DialogueDay.objects.order_by("pk").values()),
        list(CardDay.objects.order_by("pk").values()),
        list(PageDay.objects.order_by("pk").values()),
        list(Conversation.objects.order_by("pk").values_list("pk", flat=True)),
        list(Visitor.objects.order_by("pk").values_list("pk", "email")),
        list(Erasure.objects.order_by("pk").values()),
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
        if user == agent and name in AGENT_OWN_PAGES:
            shows_no_meeting_of_others(client, url)
        else:
            refused(client, url)
    object_ids = (
        "<int:dialogue_id>",
        "<int:membership_id>",
        "<uuid:meeting_id>",
        "<int:member_id>",
        "<int:account_id>",
        "<int:rule_id>",
        "<uuid:conversation_id>",
        "<int:record_id>",
        "<int:action_id>",
    )
    if any(key in route for key in object_ids):
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
        assert b"acme-secret" not in response.content
        statuses.add(response.status_code)
    assert 404 in statuses, url


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def shows_no_meeting_of_others(client, url):
    """An agent's own view of a meetings page: it opens (GET only), without others' meetings."""
    response = client.get(url)
    assert response.status_code == 200, url
    assert b"acme-secret" not in body(response)
    assert client.post(url).status_code == 405


@pytest.mark.parametrize(("name", "route"), PATTERNS, ids=[name for name, _ in PATTERNS])
def test_marketing_users_open_their_pages_but_not_the_admins(client, world, name, route):
    client.force_login(member(world["acme"], Role.MARKETER))
    before = acme_state()
    url = fill(route, world, world["acme"])
    if name in ADMIN_PAGES:
        refused(client, url)
        assert acme_state() == before
    elif name in MEETING_ACTIONS:
        statuses = {client.get(url).status_code, client.post(url).status_code}
        assert statuses <= {403, 405} and 403 in statuses, name
        assert acme_state() == before
    else:
        # 200 for pages; 405 for POST-only actions (the method, not access, is refused).
        assert client.get(url).status_code in (200, 405), name


MEETING_PATTERNS = [(name, route) for name, route in PATTERNS if "<uuid:meeting_id>" in route]


@pytest.mark.parametrize(
    ("name", "route"), MEETING_PATTERNS, ids=[name for name, _ in MEETING_PATTERNS]
)
def test_the_meetings_agent_opens_its_pages(client, world, name, route):
    # Opening (GET) only: what POSTs do is tested in test_meeting_outcomes.py.
    client.force_login(world["meeting"].agent)
    response = client.get(fill(route, world, world["acme"]))
    assert response.status_code in (200, 405), name
    if response.status_code == 200:
        assert b"lead@acme-secret.test" in response.content


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
