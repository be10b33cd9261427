"""A site's dialogue list: who may open it, what it shows, and its filters."""

from datetime import timedelta

import pytest
from conftest import PASSWORD, _user, make_published_dialogue
from django.utils import timezone

from dialogues import services
from dialogues.models import Dialogue, Membership
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
    # Highest priority first.
    assert page.index("Pricing questions") < page.index("Book a demo") < page.index("Old offer")
    assert "v1," in page  # Book a demo's live version


def test_sales_agents_do_not_see_dialogues(client, acme, dialogues):
    agent = _user("sam")
    services.add_member(site=acme, user=agent, role=Membership.Role.AGENT)
    assert signed_in(client, agent).get(url(acme)).status_code == 404


def test_another_sites_marketer_and_outsiders_get_nothing(
    client, acme, dialogues, omar, globex, outsider
):
    assert signed_in(client, omar).get(url(acme)).status_code == 404
    client.logout()
    assert signed_in(client, outsider).get(url(acme)).status_code == 404
    client.logout()
    assert client.get(url(acme)).url.startswith("/login/")
    assert signed_in(client, omar).get("/sites/999999/dialogues/").status_code == 404


def test_it_filters_by_status_and_searches_by_name(client, maya, acme, dialogues):
    client = signed_in(client, maya)
    archived = client.get(url(acme), {"status": "archived"}).content.decode()
    assert "Old offer" in archived
    assert "Book a demo" not in archived
    found = client.get(url(acme), {"q": "PRICING"}).content.decode()
    assert "Pricing questions" in found
    assert "Old offer" not in found
    none = client.get(url(acme), {"q": "nothing like this"}).content.decode()
    assert "No dialogue matches these filters." in none
    # An unknown status is ignored rather than showing an empty list.
    assert "Book a demo" in client.get(url(acme), {"status": "bogus"}).content.decode()


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
    page = signed_in(client, maya).get(url(acme), {"q": "demo"}).content.decode()
    triggered = ConversationEvent.objects.filter(
        dialogue=dialogues, kind="triggered", created_at__gte=timezone.now() - timedelta(days=30)
    ).count()
    assert triggered == 1
    assert "<td>1</td>" in page  # the recent trigger, not the 31-day-old one
