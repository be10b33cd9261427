"""A conversation's page, the "Transcript Link" DynChat writes on its Marketo activities: Maya
(Acme's admin) and Mia (Acme's marketer) follow it from Marketo and read which dialogue and
version ran, on which page, who the visitor was, when they started, engaged and finished, the
transcript, and what happened (goals, captured fields, the meeting booked, with its page).
Acme's agent, Globex's admin, an outsider and anyone signed out learn nothing about it."""

import html
import re
import uuid

import pytest
from django.urls import reverse

from dialogues import services
from dialogues.models import Membership
from marketo_sync import writeback
from meetings.models import Meeting
from tests.conftest import PAGE_URL, PASSWORD, _user
from tests.test_booking import book, first_slot, to_booking
from widget.models import Conversation

pytestmark = pytest.mark.usefixtures("fast_password_hashing")
Role = Membership.Role


def text(response) -> str:
    """The page as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(body).split())


def section(response, label: str) -> str:
    """The text of the list labelled `label` (the transcript, the events)."""
    page = response.content.decode()
    found = re.search(rf'<(ol|ul)[^>]*aria-label="{label}".*?</\1>', page, re.S)
    assert found, f"no list {label}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(0))).split())


def page_of(conversation) -> str:
    return f"/sites/{conversation.site_id}/conversations/{conversation.pk}/"


def chat_to_the_end(widget, dialogue, *, first_name="Ann", email="ann@initech.com"):
    """A visitor answers every question of the shared test flow; the conversation ends on "bye"
    (their email is not at bigco, so no booking)."""
    chat = widget.start_conversation(dialogue)
    for value in ("yes", first_name, email, "+1 415 555 2671"):
        response = widget.answer(chat, value)
        assert response.status_code == 200, response.content
        chat = {**chat, **response.json()}
    assert chat["done"]
    return Conversation.objects.get(pk=chat["conversation_id"])


@pytest.fixture
def sam(acme):
    user = _user("sam")
    services.add_member(site=acme, user=user, role=Role.AGENT)
    return user


@pytest.fixture
def finished(acme_widget, acme_dialogue):
    return chat_to_the_end(acme_widget, acme_dialogue)


def test_the_transcript_link_is_this_page(finished, settings):
    settings.SITE_ROOT = "https://chat.acme.test"

    assert writeback.transcript_url(finished) == f"https://chat.acme.test{page_of(finished)}"
    assert reverse("dialogues:conversation", args=[finished.site_id, finished.pk]) == page_of(
        finished
    )


def test_maya_reads_the_dialogue_page_visitor_and_times(client, maya, finished, acme_dialogue):
    client.force_login(maya)

    response = client.get(page_of(finished))

    assert response.status_code == 200
    shown = text(response)
    assert "Conversation with ann@initech.com" in shown
    assert f"Dialogue Book a demo · version {acme_dialogue.current_version.number}" in shown
    assert f"Page {PAGE_URL}" in shown
    assert f'href="{PAGE_URL}"' in response.content.decode()
    assert "Visitor ann@initech.com" in shown
    started = finished.started_at.strftime("%-d %b %Y, %H:%M:%S")
    assert f"Started {started} (UTC)" in shown
    assert f"Engaged {finished.engaged_at.strftime('%-d %b %Y, %H:%M:%S')}" in shown
    assert f"Completed {finished.completed_at.strftime('%-d %b %Y, %H:%M:%S')}" in shown


def test_the_transcript_and_events_are_shown_in_order(client, mia, finished):
    client.force_login(mia)

    response = client.get(page_of(finished))

    assert section(response, "Transcript") == (
        "Bot Hi there! Bot Want a demo? Visitor Yes please Bot Your first name? Visitor Ann "
        "Bot Thanks Ann. Your email? Visitor ann@initech.com Bot Your phone? "
        "Visitor +14155552671 Bot Thanks, talk soon."
    )
    events = section(response, "Events")
    order = [
        "Dialogue shown",
        "Visitor engaged",
        "Captured firstName: Ann",
        "Captured email: ann@initech.com",
        "Goal reached: Email captured",
        "Captured phone: +14155552671",
        "Conversation completed",
    ]
    positions = [events.index(line) for line in order]
    assert positions == sorted(positions)


def test_an_anonymous_visitor_is_called_so(client, maya, acme_widget, acme_dialogue):
    chat = acme_widget.start_conversation(acme_dialogue)
    conversation = Conversation.objects.get(pk=chat["conversation_id"])
    client.force_login(maya)

    shown = text(client.get(page_of(conversation)))

    assert "Conversation with an anonymous visitor" in shown
    assert "Visitor anonymous visitor" in shown
    assert "Engaged Not engaged" in shown
    assert "Completed Not completed" in shown


def test_what_the_visitor_typed_is_shown_as_text_never_as_markup(
    client, maya, acme_widget, acme_dialogue
):
    conversation = chat_to_the_end(
        acme_widget, acme_dialogue, first_name='<img src=x onerror="alert(1)">'
    )
    Conversation.objects.filter(pk=conversation.pk).update(page_url="javascript:alert(2)")
    client.force_login(maya)

    response = client.get(page_of(conversation))

    body = response.content.decode()
    assert "<img src=x" not in body
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in body
    assert 'Captured firstName: <img src=x onerror="alert(1)">' in text(response)
    # A page address that is not a web address is text, not a link.
    assert 'href="javascript:' not in body
    assert "Page javascript:alert(2)" in text(response)


def test_a_booked_meeting_links_to_its_page(client, mia, acme, acme_widget, acme_dialogue, alex):
    chat = to_booking(acme_widget, acme_dialogue)
    response = book(acme_widget, chat, first_slot(acme_widget, chat))
    assert response.status_code == 201, response.content
    meeting = Meeting.objects.get(conversation_id=chat["conversation_id"])
    conversation = Conversation.objects.get(pk=chat["conversation_id"])
    client.force_login(mia)

    response = client.get(page_of(conversation))

    events = section(response, "Events")
    assert f"Meeting booked for {meeting.start.strftime('%-d %b %Y, %H:%M')}" in events
    assert "The meeting's page" in events
    meeting_page = reverse("meetings:detail", args=[acme.pk, meeting.pk])
    assert f'href="{meeting_page}"' in response.content.decode()
    meeting_response = client.get(meeting_page)
    assert meeting_response.status_code == 200
    # The meeting's page shows the same transcript, from the same fragment.
    said = section(response, "Transcript")
    assert "Visitor Ann" in said
    assert " ".join(text(meeting_response).split()).count("Visitor Ann") == 1


def test_a_meeting_no_longer_kept_is_named_without_a_link(
    client, mia, acme_widget, acme_dialogue, alex
):
    chat = to_booking(acme_widget, acme_dialogue)
    assert book(acme_widget, chat, first_slot(acme_widget, chat)).status_code == 201
    Meeting.objects.filter(conversation_id=chat["conversation_id"]).delete()
    conversation = Conversation.objects.get(pk=chat["conversation_id"])
    client.force_login(mia)

    response = client.get(page_of(conversation))

    assert "Meeting booked for" in section(response, "Events")
    assert "The meeting's page" not in response.content.decode()


@pytest.mark.parametrize("who", ["sam", "omar", "outsider"])
def test_nobody_else_learns_anything_about_it(client, finished, who, request, globex):
    client.force_login(request.getfixturevalue(who))

    response = client.get(page_of(finished))

    assert response.status_code == 404
    body = response.content.decode()
    assert "ann@initech.com" not in body
    assert "Book a demo" not in body


def test_signed_out_readers_are_sent_to_sign_in_first(client, finished):
    response = client.get(page_of(finished))

    assert response.status_code == 302
    assert response.url.startswith("/login/")
    # After signing in, the link leads where it pointed.
    response = client.post(response.url, {"username": "maya", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == page_of(finished)
    assert "Conversation with ann@initech.com" in text(response)


def test_another_sites_conversation_under_acmes_address_is_a_404(
    client, maya, finished, globex, omar
):
    client.force_login(omar)
    under_globex = f"/sites/{globex.pk}/conversations/{finished.pk}/"
    assert client.get(under_globex).status_code == 404
    client.force_login(maya)
    assert client.get(under_globex).status_code == 404
    assert client.get(f"/sites/{finished.site_id}/conversations/{uuid.uuid4()}/").status_code == (
        404
    )
