"""Publishing from the marketer's pages: validation before publish, versions, restore,
unpublish, and nobody else's dialogues."""

import copy

import pytest
from conftest import PASSWORD, _user, make_published_dialogue

from dialogues import services
from dialogues.models import Dialogue, DialogueVersion, Membership

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def page(dialogue) -> str:
    return f"/sites/{dialogue.site_id}/dialogues/{dialogue.pk}/"


@pytest.fixture
def maya_client(client, maya):
    client.login(username="maya", password=PASSWORD)
    return client


@pytest.fixture
def demo(acme, maya):
    return make_published_dialogue(acme, name="Book a demo", user=maya)


def test_the_page_shows_the_draft_and_the_versions(maya_client, demo):
    html = maya_client.get(page(demo)).content.decode()
    assert "<h1>Book a demo</h1>" in html
    assert "v1 (live)" in html
    assert ">maya<" in html
    assert "<code>hello</code> · message" in html


def test_publishing_the_draft_makes_the_next_version(maya_client, demo):
    response = maya_client.post(f"{page(demo)}publish/", follow=True)
    assert "Published version 2" in response.content.decode()
    demo.refresh_from_db()
    assert demo.current_version.number == 2


def test_an_invalid_draft_is_not_published_and_each_problem_is_shown(maya_client, demo):
    demo.flow = {"start": "nowhere", "cards": [{"id": "a", "type": "message", "text": ""}]}
    demo.save()
    response = maya_client.post(f"{page(demo)}publish/")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Not published: fix these first" in html
    # The problem is named next to the card at fault.
    assert "Card <code>a</code>: the message has no text: write what it says" in html
    assert DialogueVersion.objects.filter(dialogue=demo).count() == 1
    demo.refresh_from_db()
    assert demo.current_version.number == 1


def test_restoring_a_version_makes_it_the_draft_without_changing_what_is_live(maya_client, demo):
    first = demo.current_version
    demo.flow = copy.deepcopy(demo.flow)
    demo.flow["cards"][0]["text"] = "Hello again"
    demo.save()
    services.publish_dialogue(dialogue_id=demo.pk)
    maya_client.post(f"{page(demo)}versions/{first.pk}/restore/")
    demo.refresh_from_db()
    assert demo.flow == first.flow
    assert demo.current_version.number == 2


def test_unpublish_stops_new_visitors_seeing_it(maya_client, demo, acme_widget):
    maya_client.post(f"{page(demo)}unpublish/")
    demo.refresh_from_db()
    assert demo.status == Dialogue.Status.UNPUBLISHED
    assert acme_widget.start_session()["dialogue"] is None


def test_agents_and_other_sites_cannot_see_or_publish(client, demo, omar, globex, acme):
    agent = _user("sam")
    services.add_member(site=acme, user=agent, role=Membership.Role.AGENT)
    for username in ("sam", "omar"):
        client.login(username=username, password=PASSWORD)
        assert client.get(page(demo)).status_code == 404
        assert client.post(f"{page(demo)}publish/").status_code == 404
        assert client.post(f"{page(demo)}unpublish/").status_code == 404
        client.logout()
    other = make_published_dialogue(globex, name="Globex chat")
    client.login(username="maya", password=PASSWORD)
    # Acme's URL with Globex's version: not found, nothing restored.
    restore = f"{page(demo)}versions/{other.current_version.pk}/restore/"
    assert client.post(restore).status_code == 404
    demo.refresh_from_db()
    assert demo.status == Dialogue.Status.PUBLISHED
    assert demo.versions.count() == 1
