"""A site's dialogue list: who may open it, what it shows, and its filters."""

from datetime import timedelta

import pytest
from conftest import PASSWORD, _user, make_published_dialogue
from django.utils import timezone

from dialogues import services
from dialogues.models import Dialogue, Membership
from reports import rollup
from widget.models import ConversationEvent

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def url(site) -> str:
    return f"/sites/{site.pk}/dialogues/"


def signed_in(client, user):
    client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def dialogues(acme, maya):
    demo = make_published_dialogue(acme, name="Book a demo", priority=5, user=maya)
    Dialogue.objects.create(site=acme, name="Pricing questions", priority=9)
    Dialogue.objects.create(
        site=acme, name="Old offer", priority=1, status=Dialogue.Status.ARCHIVED
    )
    return demo


@pytest.mark.parametrize("role", [Membership.Role.ADMIN, Membership.Role.MARKETER])
def test_admins_and_marketing_users_see_their_sites_dialogues(client, acme, dialogues, role):
    user = _user(f"someone-{role}")
    services.add_member(site=acme, user=user, role=role)
    page = signed_in(client, user).get(url(acme)).content.decode()
    assert "Acme: dialogues" in page
    assert url(acme) in client.get("/").content.decode()
    # Highest priority first; archived dialogues only under their status.
    assert page.index("Pricing questions") < page.index("Book a demo")
    assert "Old offer" not in page
    assert "v1," in page  # Book a demo's live version


def test_sales_agents_do_not_see_dialogues(client, acme, dialogues):
    agent = _user("sam")
    services.add_member(site=acme, user=agent, role=Membership.Role.AGENT)
    client = signed_in(client, agent)
    assert client.get(url(acme)).status_code == 404
    # Nor are they offered the link to them.
    assert url(acme) not in client.get("/").content.decode()


def test_another_sites_marketer_and_outsiders_get_nothing(
    client, acme, dialogues, omar, globex, outsider
):
    assert signed_in(client, omar).get(url(acme)).status_code == 404
    client.logout()
    assert signed_in(client, outsider).get(url(acme)).status_code == 404
    client.logout()
    assert client.get(url(acme)).url.startswith("/login/")
    assert signed_in(client, omar).get("/sites/999999/dialogues/").status_code == 404


def table(client, site, **params) -> str:
    """The dialogue table alone, as htmx fetches it when a filter changes."""
    return client.get(url(site), params, HTTP_HX_REQUEST="true").content.decode()


def test_it_filters_by_status_and_searches_by_name(client, maya, acme, dialogues):
    client = signed_in(client, maya)
    archived = table(client, acme, status="archived")
    assert "Old offer" in archived
    assert "Book a demo" not in archived
    found = table(client, acme, q="PRICING")
    assert "Pricing questions" in found
    assert "Old offer" not in found
    assert "No dialogue matches these filters." in table(client, acme, q="nothing like this")
    # An unknown status is ignored rather than showing an empty list.
    assert "Book a demo" in table(client, acme, status="bogus")


def test_htmx_gets_only_the_table(client, maya, acme, dialogues):
    response = signed_in(client, maya).get(url(acme), {"q": "demo"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<table id="dialogue-table">')
    assert "<h1>" not in html
    assert "Book a demo" in html


def test_it_shows_the_last_30_days_figures(client, maya, acme, dialogues, acme_widget):
    acme_widget.start_conversation(dialogues)
    old = ConversationEvent.objects.filter(dialogue=dialogues).first()
    ConversationEvent.objects.create(
        conversation=old.conversation,
        site=acme,
        dialogue=dialogues,
        version=old.version,
        kind=ConversationEvent.Kind.TRIGGERED,
        page_url=old.page_url,
        created_at=timezone.now() - timedelta(days=31),
    )
    # Figures come from the daily report tables, which the rollup fills.
    assert (
        "<td>1</td>" not in signed_in(client, maya).get(url(acme), {"q": "demo"}).content.decode()
    )
    rollup.roll_up()
    page = signed_in(client, maya).get(url(acme), {"q": "demo"}).content.decode()
    triggered = ConversationEvent.objects.filter(
        dialogue=dialogues, kind="triggered", created_at__gte=timezone.now() - timedelta(days=30)
    ).count()
    assert triggered == 1
    assert "<td>1</td>" in page  # the recent trigger, not the 31-day-old one


def test_a_marketer_creates_a_draft_from_each_starting_point(client, maya, acme):
    from dialogues.flow.cards import parse_flow
    from dialogues.starters import STARTERS

    client = signed_in(client, maya)
    for key, (label, _flow) in STARTERS.items():
        response = client.post(f"{url(acme)}new/", {"name": f"From {label}", "starter": key})
        assert response.status_code == 302
        dialogue = Dialogue.objects.get(site=acme, name=f"From {label}")
        assert dialogue.status == Dialogue.Status.DRAFT
        parse_flow(dialogue.flow)  # every starter is a valid draft
    assert "From Book a demo" in table(client, acme)


def test_bad_input_creates_nothing_and_says_why(client, maya, acme):
    client = signed_in(client, maya)
    blank = client.post(f"{url(acme)}new/", {"name": "   ", "starter": "blank"})
    assert blank.status_code == 200
    assert "This field is required." in blank.content.decode()
    unknown = client.post(f"{url(acme)}new/", {"name": "X", "starter": "everything"})
    assert "Select a valid choice." in unknown.content.decode()
    too_long = client.post(f"{url(acme)}new/", {"name": "x" * 101, "starter": "blank"})
    assert "at most 100 characters" in too_long.content.decode()
    assert not Dialogue.objects.filter(site=acme).exists()


def test_duplicate_copies_the_draft_and_archive_hides_it_from_visitors(
    client, maya, acme, dialogues, acme_widget
):
    client = signed_in(client, maya)
    client.post(f"{url(acme)}{dialogues.pk}/duplicate/")
    copy = Dialogue.objects.get(site=acme, name="Copy of Book a demo")
    assert copy.flow == dialogues.flow
    assert copy.status == Dialogue.Status.DRAFT
    assert copy.current_version is None

    client.post(f"{url(acme)}{dialogues.pk}/archive/")
    dialogues.refresh_from_db()
    assert dialogues.status == Dialogue.Status.ARCHIVED
    assert acme_widget.start_session()["dialogue"] is None
    assert "Book a demo" in table(client, acme, status="archived")


def test_nobody_acts_on_another_sites_dialogues(client, omar, globex, acme, dialogues):
    client = signed_in(client, omar)
    assert client.post(f"{url(acme)}{dialogues.pk}/archive/").status_code == 404
    assert client.post(f"{url(acme)}{dialogues.pk}/duplicate/").status_code == 404
    assert client.post(f"{url(acme)}new/", {"name": "X", "starter": "blank"}).status_code == 404
    # Their own site's URL with Acme's dialogue id: still nothing.
    assert client.post(f"{url(globex)}{dialogues.pk}/archive/").status_code == 404
    dialogues.refresh_from_db()
    assert dialogues.status == Dialogue.Status.PUBLISHED
    assert Dialogue.objects.filter(site=acme).count() == 3
