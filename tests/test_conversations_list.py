"""A site's conversations page: Maya (Acme's admin) and Mia (Acme's marketing user) list every
conversation Acme's widget had, newest first, with what happened in each, narrow it by the
visitor's email, the dialogue, the outcome and dates, page through it, open a conversation's
transcript and download the list as CSV. Alex (Acme's agent), Omar (Globex's admin) and an
outsider learn nothing about it, and Globex's conversations never appear in Acme's list.

The conversations are made through the real widget API, as a visitor's browser makes them.

Acme's story (newest first):
- ann, on "Pricing help": already known, gives her email again and reaches "Pricing asked";
- anon, on "Pricing help": an anonymous visitor who left without answering;
- cat@bigco.com, on "Book a demo": reached the booking card when nobody was free;
- ben@bigco.com, on "Book a demo": booked a meeting with Alex;
- joann@initech.com, on "Book a demo": finished;
- ann@initech.com, on "Book a demo": finished (the oldest).
"""

import csv
import html
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.models import F
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calendars.models import CalendarConnection
from tests.conftest import (
    GLOBEX_ORIGIN,
    PAGE_URL,
    WidgetClient,
    make_published_dialogue,
)
from tests.test_booking import book, first_slot, slots, to_booking
from widget.models import Conversation, Visitor

HOUR = timedelta(hours=1)

PRICING_FLOW = {
    "start": "email",
    "cards": [
        {
            "id": "email",
            "type": "capture",
            "text": "Where should we send the prices?",
            "input_type": "email",
            "attribute": "email",
            "next": "goal",
        },
        {"id": "goal", "type": "goal", "name": "Pricing asked", "next": "end"},
        {"id": "end", "type": "end", "text": "On its way."},
    ],
}


def list_url(site) -> str:
    return f"/sites/{site.pk}/conversations/"


def export_url(site) -> str:
    return f"/sites/{site.pk}/conversations/export.csv"


def text(response) -> str:
    """The page as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(body).split())


def listed(response) -> list[str]:
    """The conversation ids the page lists, top to bottom."""
    assert response.status_code == 200, response.status_code
    return re.findall(r'<tr id="conversation-([0-9a-f-]{36})"', response.content.decode())


def row_text(response, conversation) -> str:
    found = re.search(
        rf'<tr id="conversation-{conversation.pk}">.*?</tr>', response.content.decode(), re.S
    )
    assert found, f"{conversation} is not listed"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(0))).split())


def export(client, site, **params) -> list[dict]:
    response = client.get(export_url(site), params)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(body.removeprefix("\ufeff"))))


def answer_all(widget, chat, answers):
    for value in answers:
        response = widget.answer(chat, value)
        assert response.status_code == 200, response.content
        chat = {**chat, **response.json()}
    return chat


def conversation_of(chat) -> Conversation:
    return Conversation.objects.get(pk=chat["conversation_id"])


@pytest.fixture
def widget(acme, settings):
    """The widget API as the visitors' browsers speak to it (a client of its own, so the
    marketer's session never travels with it)."""
    settings.ALLOWED_HOSTS = ["*"]
    return WidgetClient(Client(), acme)


@pytest.fixture
def pricing(acme, maya):
    return make_published_dialogue(acme, name="Pricing help", flow=PRICING_FLOW, user=maya)


@pytest.fixture
def story(widget, acme_dialogue, pricing, alex):
    """Acme's six conversations (see the module's docstring), an hour apart."""
    demo = acme_dialogue
    ann_visitor = widget.start_session()["visitor_id"]
    ann = answer_all(
        widget,
        widget.start_conversation(demo, visitor_id=ann_visitor),
        ("yes", "Ann", "ann@initech.com", "+1 415 555 2671"),
    )
    joann = answer_all(
        widget,
        widget.start_conversation(demo),
        ("yes", "Jo", "joann@initech.com", "+1 415 555 2672"),
    )
    ben = to_booking(widget, demo, email="ben@bigco.com")
    booked = book(widget, ben, first_slot(widget, ben))
    assert booked.status_code == 201, booked.content
    # Alex's calendar needs reconnecting: nobody is free when Cat reaches the booking card.
    CalendarConnection.objects.filter(user=alex).update(status="needs_reconnect")
    cat = to_booking(widget, demo, email="cat@bigco.com")
    assert slots(widget, cat).json()["fallback"]
    anon = widget.start_conversation(pricing)
    ann_again = answer_all(
        widget, widget.start_conversation(pricing, visitor_id=ann_visitor), ("ann@initech.com",)
    )
    names = ["ann", "joann", "ben", "cat", "anon", "ann_again"]
    chats = [ann, joann, ben, cat, anon, ann_again]
    now = timezone.now()
    conversations = {}
    for position, (name, chat) in enumerate(zip(names, chats, strict=True)):
        Conversation.objects.filter(pk=chat["conversation_id"]).update(
            started_at=now - (len(chats) - position) * HOUR
        )
        conversations[name] = conversation_of(chat)
    return conversations


def ids(story, *names) -> list[str]:
    return [str(story[name].pk) for name in names]


NEWEST_FIRST = ["ann_again", "anon", "cat", "ben", "joann", "ann"]


# --- the list ---------------------------------------------------------------------------------


def test_maya_sees_every_conversation_newest_first_with_what_happened(client, maya, story):
    client.force_login(maya)

    response = client.get(list_url(story["ann"].site))

    assert listed(response) == ids(story, *NEWEST_FIRST)
    shown = text(response)
    assert "6 conversations." in shown
    assert row_text(response, story["ann"]) == (
        f"{timezone.localtime(story['ann'].started_at):%a %-d %b %Y, %H:%M} "
        f"Book a demo · version 1 ann@initech.com www.acme.test/pricing "
        "Completed Email captured Goal reached: Email captured Transcript"
    )
    assert row_text(response, story["ben"]).endswith(
        "Completed Email captured Goal reached: Email captured Meeting booked Transcript"
    )
    assert row_text(response, story["cat"]).endswith(
        "cat@bigco.com www.acme.test/pricing Open Email captured Goal reached: Email captured "
        "Nobody free Transcript"
    )
    assert "Anonymous visitor www.acme.test/pricing Open Transcript" in row_text(
        response, story["anon"]
    )
    # A known visitor giving her email again is no new email captured.
    assert row_text(response, story["ann_again"]).endswith(
        "Pricing help · version 1 ann@initech.com www.acme.test/pricing "
        "Completed Goal reached: Pricing asked Transcript"
    )


def test_each_row_links_to_the_conversations_page_with_its_transcript(client, mia, story):
    client.force_login(mia)
    ann = story["ann"]

    body = client.get(list_url(ann.site)).content.decode()
    link = f"/sites/{ann.site_id}/conversations/{ann.pk}/"
    assert f'href="{link}"' in body

    page = client.get(link)
    assert page.status_code == 200
    assert "Visitor ann@initech.com" in text(page)
    assert "Your email? Visitor ann@initech.com" in text(page)


def test_the_page_says_how_long_conversations_are_kept(client, maya, acme, settings):
    settings.RETENTION_DAYS = 45
    client.force_login(maya)

    shown = text(client.get(list_url(acme)))

    assert "Conversations are kept 45 days: older ones are deleted with their transcripts" in shown
    assert "No conversations yet." in shown


def test_times_are_in_the_viewers_zone(client, maya, story):
    client.force_login(maya)
    client.cookies["tz"] = "Asia/Tokyo"
    ann = story["ann"]

    response = client.get(list_url(ann.site))

    tokyo = ann.started_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert "Times and dates in Asia/Tokyo." in text(response)
    assert row_text(response, ann).startswith(f"{tokyo:%a %-d %b %Y, %H:%M}")


# --- filters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        # A whole address finds exactly that visitor, whatever the case (not joann@ too).
        ("ann@initech.com", ["ann_again", "ann"]),
        ("ANN@Initech.com", ["ann_again", "ann"]),
        # Anything else finds every email containing it, whatever the case.
        ("ANN@", ["ann_again", "joann", "ann"]),
        ("bigco", ["cat", "ben"]),
        ("nobody@nowhere.test", []),
    ],
)
def test_maya_searches_by_the_visitors_email(client, maya, story, search, expected):
    client.force_login(maya)

    response = client.get(list_url(story["ann"].site), {"email": search})

    assert listed(response) == ids(story, *expected)


def test_maya_narrows_the_list_to_one_dialogue(client, maya, story, pricing):
    client.force_login(maya)

    response = client.get(list_url(pricing.site), {"dialogue": pricing.pk})

    assert listed(response) == ids(story, "ann_again", "anon")
    assert "2 conversations match these filters." in text(response)


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("", NEWEST_FIRST),
        ("completed", ["ann_again", "ben", "joann", "ann"]),
        ("not_completed", ["anon", "cat"]),
        ("email_captured", ["cat", "ben", "joann", "ann"]),
        ("goal_reached", ["ann_again", "cat", "ben", "joann", "ann"]),
        ("meeting_booked", ["ben"]),
        ("nobody_free", ["cat"]),
    ],
)
def test_maya_narrows_the_list_by_outcome(client, maya, story, outcome, expected):
    client.force_login(maya)

    response = client.get(list_url(story["ann"].site), {"outcome": outcome})

    assert listed(response) == ids(story, *expected)


def test_filters_combine(client, maya, story, acme_dialogue):
    client.force_login(maya)

    response = client.get(
        list_url(acme_dialogue.site),
        {"email": "initech", "dialogue": acme_dialogue.pk, "outcome": "completed"},
    )

    assert listed(response) == ids(story, "joann", "ann")


def test_dates_are_days_in_the_viewers_zone_both_included(client, maya, story):
    # 1 March 23:30 UTC is already 2 March in Tokyo; 3 March 12:00 UTC is 3 March there too.
    late = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    Conversation.objects.filter(pk=story["ann"].pk).update(started_at=late)
    Conversation.objects.filter(pk=story["joann"].pk).update(
        started_at=datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    )
    client.force_login(maya)
    site = story["ann"].site

    in_utc = client.get(list_url(site), {"start": "2026-03-02", "end": "2026-03-03"})
    client.cookies["tz"] = "Asia/Tokyo"
    in_tokyo = client.get(list_url(site), {"start": "2026-03-02", "end": "2026-03-03"})
    one_day = client.get(list_url(site), {"start": "2026-03-02", "end": "2026-03-02"})
    from_only = client.get(list_url(site), {"start": "2026-03-03"})
    to_only = client.get(list_url(site), {"end": "2026-03-02"})

    assert listed(in_utc) == ids(story, "joann")
    assert listed(in_tokyo) == ids(story, "joann", "ann")
    assert listed(one_day) == ids(story, "ann")
    assert listed(from_only) == ids(story, *NEWEST_FIRST[:-2], "joann")
    assert listed(to_only) == ids(story, "ann")


def test_bad_filters_are_reported_and_left_out(client, maya, story, globex):
    globex_dialogue = make_published_dialogue(globex, name="Globex only")
    client.force_login(maya)
    site = story["ann"].site

    response = client.get(
        list_url(site),
        {
            "start": "2026-03-05",
            "end": "2026-03-01",
            "dialogue": globex_dialogue.pk,
            "email": "ben",
        },
    )

    shown = text(response)
    assert "These filters were left out:" in shown
    assert "To: The end date must not be before the start date." in shown
    assert "Dialogue: Select a valid choice." in shown
    assert "Fix the filters to export them." in shown
    # Another site's dialogue is never listed as a choice; the valid filter still applies.
    assert "Globex only" not in shown
    assert listed(response) == ids(story, "ben")


# --- pages ------------------------------------------------------------------------------------


@pytest.fixture
def many(acme, acme_dialogue):
    """55 conversations of anonymous visitors, a minute apart (the newest first in the list)."""
    now = timezone.now()
    visitor = Visitor.objects.create(site=acme, key_hash=uuid.uuid4().hex)
    conversations = [
        Conversation(
            site=acme,
            visitor=visitor,
            dialogue=acme_dialogue,
            version=acme_dialogue.current_version,
            token_hash="x",
            page_url=f"{PAGE_URL}?n={n}",
            started_at=now - timedelta(minutes=n),
        )
        for n in range(55)
    ]
    Conversation.objects.bulk_create(conversations)
    return [str(c.pk) for c in conversations]


def test_the_list_shows_fifty_a_page(client, maya, acme, many):
    client.force_login(maya)

    first = client.get(list_url(acme))
    second = client.get(list_url(acme), {"page": 2})

    assert listed(first) == many[:50]
    assert "Page 1 of 2" in text(first)
    assert 'href="?page=2"' in first.content.decode()
    assert listed(second) == many[50:]
    assert 'href="?page=1"' in second.content.decode()


def test_page_links_keep_the_filters(client, maya, acme, many):
    client.force_login(maya)

    body = client.get(list_url(acme), {"outcome": "not_completed"}).content.decode()

    assert 'href="?outcome=not_completed&amp;page=2"' in body


def test_a_page_costs_the_same_queries_however_many_rows_it_shows(
    client, maya, acme, acme_dialogue, pricing, story, many
):
    # The 55 older than the story's six: both pages below have goals to read.
    Conversation.objects.filter(pk__in=many).update(started_at=F("started_at") - timedelta(days=1))
    client.force_login(maya)
    client.get(list_url(acme))  # the session, the zone: warm

    with CaptureQueriesContext(connection) as two_rows:
        assert len(listed(client.get(list_url(acme), {"dialogue": pricing.pk}))) == 2
    with CaptureQueriesContext(connection) as fifty_rows:
        assert len(listed(client.get(list_url(acme), {"dialogue": acme_dialogue.pk}))) == 50

    assert len(fifty_rows) == len(two_rows)


# --- htmx ------------------------------------------------------------------------------------


def test_htmx_gets_the_results_alone(client, maya, story):
    client.force_login(maya)

    response = client.get(
        list_url(story["ann"].site), {"outcome": "meeting_booked"}, HTTP_HX_REQUEST="true"
    )

    body = response.content.decode()
    assert body.split("\n", 1)[1].startswith('<div id="conversation-results">')
    assert "<html" not in body and "<form" not in body
    assert listed(response) == ids(story, "ben")
    assert "HX-Request" in response["Vary"]


def test_without_javascript_the_filter_form_is_a_plain_get_form(client, maya, acme):
    client.force_login(maya)

    body = client.get(list_url(acme)).content.decode()

    assert f'<form method="get" action="{list_url(acme)}"' in body
    assert f'hx-get="{list_url(acme)}"' in body
    assert "<html" in body


# --- CSV ----------------------------------------------------------------------------------------


def test_the_csv_holds_the_filtered_list(client, maya, story, settings):
    settings.SITE_ROOT = "https://chat.acme.test"
    client.force_login(maya)
    ben = story["ben"]

    rows = export(client, ben.site, email="bigco")

    assert [row["conversation_id"] for row in rows] == ids(story, "cat", "ben")
    row = rows[1]
    assert row == {
        "conversation_id": str(ben.pk),
        "started": ben.started_at.astimezone(UTC).isoformat(),
        "started_utc": ben.started_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "dialogue": "Book a demo",
        "version": "1",
        "visitor_email": "ben@bigco.com",
        "page": "www.acme.test/pricing",
        "page_url": PAGE_URL,
        "status": "completed",
        "email_captured": "yes",
        "goals": "Email captured",
        "meeting_booked": "yes",
        "nobody_free": "no",
        "transcript_url": f"https://chat.acme.test/sites/{ben.site_id}/conversations/{ben.pk}/",
    }
    assert (rows[0]["status"], rows[0]["meeting_booked"], rows[0]["nobody_free"]) == (
        "open",
        "no",
        "yes",
    )


def test_the_csv_has_every_page_and_is_streamed(client, maya, acme, many):
    client.force_login(maya)

    response = client.get(export_url(acme))

    assert response.streaming
    assert response["Content-Disposition"].startswith('attachment; filename="conversations-acme-')
    assert response["Cache-Control"] == "no-store"
    assert len(export(client, acme)) == 55


def test_the_csv_times_are_in_the_viewers_zone(client, maya, story):
    client.force_login(maya)
    client.cookies["tz"] = "Asia/Tokyo"
    ann = story["ann"]

    row = export(client, ann.site, email="ann@initech.com")[-1]

    assert row["started"].endswith("+09:00")
    assert datetime.fromisoformat(row["started"]) == ann.started_at


def test_visitor_text_cannot_become_a_spreadsheet_formula(client, maya, story):
    Visitor.objects.filter(pk=story["anon"].visitor_id).update(email="=HYPERLINK(1)@evil.test")
    Conversation.objects.filter(pk=story["anon"].pk).update(page_url="-2+3")
    client.force_login(maya)

    row = export(client, story["anon"].site, dialogue=story["anon"].dialogue_id)[1]

    assert row["visitor_email"] == "'=HYPERLINK(1)@evil.test"
    assert row["page_url"] == "'-2+3"
    assert row["version"] == "1"


def test_an_export_with_bad_filters_is_refused(client, maya, story):
    client.force_login(maya)

    response = client.get(export_url(story["ann"].site), {"start": "yesterday"})

    assert response.status_code == 400
    assert "Nothing was exported: fix the filters." in response.content.decode()
    assert "From: Enter a valid date." in response.content.decode()


# --- who sees what --------------------------------------------------------------------------


def test_the_marketing_user_sees_the_list_too(client, mia, story):
    client.force_login(mia)

    assert listed(client.get(list_url(story["ann"].site))) == ids(story, *NEWEST_FIRST)


@pytest.mark.parametrize("who", ["alex", "outsider", "omar"])
def test_anyone_else_gets_a_404(client, request, story, who):
    client.force_login(request.getfixturevalue(who))
    site = story["ann"].site

    assert client.get(list_url(site)).status_code == 404
    assert client.get(export_url(site)).status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(client, acme):
    response = client.get(list_url(acme))

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_another_sites_conversations_are_never_listed(client, maya, omar, story, globex):
    globex_dialogue = make_published_dialogue(globex, name="Globex demo", user=omar)
    globex_widget = WidgetClient(Client(), globex, origin=GLOBEX_ORIGIN)
    theirs = conversation_of(globex_widget.start_conversation(globex_dialogue))

    client.force_login(maya)
    acme_list = listed(client.get(list_url(story["ann"].site)))
    acme_csv = [row["conversation_id"] for row in export(client, story["ann"].site)]
    client.force_login(omar)
    globex_list = listed(client.get(list_url(globex)))

    assert str(theirs.pk) not in acme_list and str(theirs.pk) not in acme_csv
    assert globex_list == [str(theirs.pk)]


# --- what visitors sent is text ---------------------------------------------------------------


def test_a_visitors_email_and_page_are_shown_as_text_never_as_markup(client, maya, story):
    Visitor.objects.filter(pk=story["anon"].visitor_id).update(
        email="<script>alert(1)</script>@evil.test"
    )
    Conversation.objects.filter(pk=story["anon"].pk).update(
        page_url="https://www.acme.test/<script>alert(2)</script>"
    )
    client.force_login(maya)

    response = client.get(list_url(story["anon"].site))

    body = response.content.decode()
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;@evil.test" in body
    assert "www.acme.test/&lt;script&gt;alert(2)&lt;/script&gt;" in body
    assert "<script>alert(1)</script>@evil.test" in row_text(response, story["anon"])
