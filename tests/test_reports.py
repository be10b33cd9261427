"""The reports: figures counted from real chat steps, against numbers worked out by hand.

The history: six conversations on Acme's "Book a demo" (EVERY_CARD_FLOW), walked through the
widget API, then moved to two days by rewriting their timestamps, then rolled up.

  day 1 (3 days ago), version 1:
    A  shown the dialogue, never answers
    B  "No thanks" -> bye (completed)
    C  yes, Cal, cal@smallco.com (first email: captured), goal, phone -> bye (completed)
  day 2 (yesterday):
    D  version 1: yes, Dee, then leaves at the email card
    E  version 1, a known visitor (identified beforehand): yes, Eve, eve@bigco.com (not new),
       goal, phone, the booking card, "None of these times work" -> bye (completed)
    F  version 2: "No thanks" -> bye (completed)

By hand: triggered 6, engaged 5 (B C D E F), completed 4 (B C E F), captured 1 (C), goals 2
(C E), engagement rate 5/6 = 83.3%, conversion rate 1/5 = 20.0%.
"""

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from dialogues import services as dialogue_services
from dialogues.models import Membership
from reports import rollup, selectors
from reports.filters import ReportFilters, Visitors
from reports.models import CardDay, DialogueDay, PageDay
from tests.conftest import PAGE_URL, PASSWORD, make_published_dialogue
from widget.models import Conversation, ConversationEvent

TODAY = datetime.now(UTC).date()
DAY1 = TODAY - timedelta(days=3)
DAY2 = TODAY - timedelta(days=1)


def walk(widget, conversation, *values):
    current = conversation
    for value in values:
        response = widget.answer(current, value)
        assert response.status_code == 200, response.content
        current = {**current, **response.json()}
    return current


def move_to(conversation, day, hour=12):
    """Rewrite a conversation's times to `day` (UTC, the default REPORTS_TIME_ZONE)."""
    moment = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    pk = conversation["conversation_id"]
    Conversation.objects.filter(pk=pk).update(started_at=moment)
    ConversationEvent.objects.filter(conversation_id=pk).update(created_at=moment)


@pytest.fixture
def history(acme, acme_dialogue, acme_widget, maya):
    dialogue = acme_dialogue
    a = acme_widget.start_conversation(dialogue)
    b = walk(acme_widget, acme_widget.start_conversation(dialogue), "no")
    c = walk(
        acme_widget,
        acme_widget.start_conversation(dialogue),
        "yes",
        "Cal",
        "cal@smallco.com",
        "+1 415 555 2671",
    )
    d = walk(acme_widget, acme_widget.start_conversation(dialogue), "yes", "Dee")
    eve = acme_widget.start_session()["visitor_id"]
    identified = acme_widget.post(
        "/visitors/identify", {"visitor_id": eve, "email": "eve@bigco.com"}
    )
    assert identified.status_code == 200, identified.content
    e = walk(
        acme_widget,
        acme_widget.start_conversation(dialogue, visitor_id=eve),
        "yes",
        "Eve",
        "eve@bigco.com",
        "+1 415 555 2672",
        "skip",
    )
    for conversation in (a, b, c):
        move_to(conversation, DAY1)
    for conversation in (d, e):
        move_to(conversation, DAY2)
    dialogue_services.publish_dialogue(dialogue_id=dialogue.pk, user=maya)
    dialogue.refresh_from_db()
    f = walk(acme_widget, acme_widget.start_conversation(dialogue), "no")
    move_to(f, DAY2, hour=15)
    assert rollup.roll_up() == ConversationEvent.objects.count()
    return dialogue


def week(**changes) -> ReportFilters:
    return ReportFilters(start=TODAY - timedelta(days=6), end=TODAY, **changes)


# --- metric definitions ---------------------------------------------------------------------


def test_the_headline_figures_match_the_hand_count(acme, history):
    figures = selectors.totals(acme, week(dialogue_id=history.pk))

    assert figures == selectors.Figures(
        triggered=6, engaged=5, completed=4, captured=1, meetings=0, goals=2, fallbacks=0
    )
    assert figures.engagement_rate == pytest.approx(5 / 6)
    assert figures.conversion_rate == pytest.approx(1 / 5)


def test_each_day_counts_its_own_conversations(acme, history):
    days = dict(selectors.daily(acme, week()))

    assert len(days) == 7  # every day of the range, empty ones as zeros
    assert days[DAY1] == selectors.Figures(triggered=3, engaged=2, completed=2, captured=1, goals=1)
    assert days[DAY2] == selectors.Figures(triggered=3, engaged=3, completed=2, goals=1)
    assert days[TODAY] == selectors.Figures()


def test_the_figures_are_kept_per_published_version(acme, history):
    rows = selectors.by_version(acme, history, week())

    assert [(v.number, v.figures) for v in rows] == [
        (2, selectors.Figures(triggered=1, engaged=1, completed=1)),
        (1, selectors.Figures(triggered=5, engaged=4, completed=3, captured=1, goals=2)),
    ]


def test_the_funnel_counts_reached_answered_and_left_per_card(acme, history):
    version1 = history.versions.get(number=1)

    steps = {s.card_id: s for s in selectors.funnel(acme, version1, week())}

    # Flow order, branch cards (which show nothing) left out.
    assert list(steps) == [
        "hello", "want", "name", "email", "goal", "phone", "book", "booked", "bye"
    ]  # fmt: skip
    counts = {k: (s.reached, s.answered, s.dropped) for k, s in steps.items()}
    assert counts == {
        "hello": (5, None, None),
        "want": (5, 4, 1),  # A left at the first question
        "name": (3, 3, 0),
        "email": (3, 2, 1),  # D left at the email card
        "goal": (2, None, None),
        "phone": (2, 2, 0),
        "book": (1, 1, 0),  # E, from bigco, was offered times and said none worked
        "booked": (0, None, None),
        "bye": (3, None, None),
    }
    assert steps["email"].drop_rate == pytest.approx(1 / 3)
    assert steps["goal"].label == "Email captured"


def test_goals_are_named_and_counted(acme, history):
    goals = selectors.goals(acme, history, week())

    assert [(g.name, g.reached) for g in goals] == [("Email captured", 2)]


def test_pages_are_named_by_host_and_path(acme, history):
    pages = selectors.top_pages(acme, week())

    assert [(p.page, p.figures.triggered, p.figures.captured) for p in pages] == [
        ("www.acme.test/pricing", 6, 1)
    ]
    assert PAGE_URL == "https://www.acme.test/pricing"


@pytest.mark.parametrize(
    ("url", "page"),
    [
        ("https://WWW.Acme.test/pricing?email=ann@bigco.com#top", "www.acme.test/pricing"),
        ("https://www.acme.test", "www.acme.test/"),
        ("http://localhost:8000/demo/", "localhost:8000/demo/"),
        ("", ""),
    ],
)
def test_a_page_key_never_keeps_the_query_string(url, page):
    assert rollup.page_key(url) == page


# --- filters ------------------------------------------------------------------------------


def test_the_visitors_filter_splits_known_from_anonymous(acme, history):
    known = selectors.totals(acme, week(visitors=Visitors.KNOWN))
    anonymous = selectors.totals(acme, week(visitors=Visitors.ANONYMOUS))

    # Only E was known when their conversation started.
    assert known == selectors.Figures(triggered=1, engaged=1, completed=1, goals=1)
    assert anonymous == selectors.Figures(triggered=5, engaged=4, completed=3, captured=1, goals=1)


def test_the_date_range_takes_whole_days(acme, history):
    one_day = ReportFilters(start=DAY2, end=DAY2)

    assert selectors.totals(acme, one_day) == selectors.Figures(
        triggered=3, engaged=3, completed=2, goals=1
    )
    assert selectors.totals(acme, ReportFilters(start=TODAY, end=TODAY)) == selectors.Figures()


def test_the_dialogue_filter_leaves_other_dialogues_out(acme, history, acme_widget, maya):
    other = make_published_dialogue(acme, name="Pricing help", user=maya, priority=5)
    acme_widget.start_conversation(other)
    rollup.roll_up()

    assert selectors.totals(acme, week(dialogue_id=history.pk)).triggered == 6
    assert selectors.totals(acme, week(dialogue_id=other.pk)).triggered == 1
    assert selectors.totals(acme, week()).triggered == 7
    top = selectors.top_dialogues(acme, week())
    assert [(d.name, d.figures.triggered) for d in top] == [("Book a demo", 6), ("Pricing help", 1)]


# --- the rollup counts each event once -------------------------------------------------------


def test_a_second_rollup_counts_nothing_again(acme, history):
    before = list(DialogueDay.objects.values_list("triggered", "engaged", "completed"))

    assert rollup.roll_up() == 0

    assert list(DialogueDay.objects.values_list("triggered", "engaged", "completed")) == before


def test_small_batches_add_up_to_the_same_figures(acme, history):
    expected = selectors.totals(acme, week())
    DialogueDay.objects.all().delete()
    CardDay.objects.all().delete()
    PageDay.objects.all().delete()
    ConversationEvent.objects.update(rolled_up=False)

    counted = rollup.roll_up(batch=3)

    assert counted == ConversationEvent.objects.count()
    assert selectors.totals(acme, week()) == expected


def test_a_rollup_that_fails_midway_counts_nothing_and_the_next_counts_all(
    acme, history, monkeypatch
):
    expected = selectors.totals(acme, week())
    DialogueDay.objects.all().delete()
    ConversationEvent.objects.update(rolled_up=False)
    real_upsert = rollup._upsert

    def dies_at_the_cards(model, *args):
        if model is CardDay:
            raise RuntimeError("worker killed")
        real_upsert(model, *args)

    monkeypatch.setattr(rollup, "_upsert", dies_at_the_cards)
    with pytest.raises(RuntimeError):
        rollup.roll_up()
    # The batch's transaction rolled back: no figures, every event still to count.
    assert not DialogueDay.objects.exists()
    assert rollup.pending() == ConversationEvent.objects.count()

    monkeypatch.setattr(rollup, "_upsert", real_upsert)
    CardDay.objects.all().delete()
    PageDay.objects.all().delete()
    rollup.roll_up()
    assert selectors.totals(acme, week()) == expected


def test_events_are_counted_on_the_day_of_the_reports_zone(
    acme, acme_dialogue, acme_widget, settings
):
    settings.REPORTS_TIME_ZONE = "America/Los_Angeles"
    conversation = acme_widget.start_conversation(acme_dialogue)
    # 03:00 UTC on DAY2 is still the evening before in Los Angeles.
    moment = datetime(DAY2.year, DAY2.month, DAY2.day, 3, tzinfo=UTC)
    ConversationEvent.objects.filter(conversation_id=conversation["conversation_id"]).update(
        created_at=moment
    )

    rollup.roll_up()

    assert list(DialogueDay.objects.values_list("day", flat=True)) == [DAY2 - timedelta(days=1)]


# --- pages -----------------------------------------------------------------------------------


def logged_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_the_dialogue_report_shows_the_figures_and_the_funnel(acme, history, mia):
    url = f"/sites/{acme.pk}/dialogues/{history.pk}/report/"

    response = logged_in(mia).get(url, {"start": TODAY - timedelta(days=6), "end": TODAY})

    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-figure="triggered">6<' in page
    assert 'data-figure="engagement_rate">83.3%<' in page
    assert 'data-figure="conversion_rate">20.0%<' in page
    # The live version's funnel by default: version 2, where F said no.
    assert "Funnel of version 2" in page
    assert "<svg" in page
    version1 = logged_in(mia).get(url, {"version": 1, "start": DAY1, "end": TODAY}).content.decode()
    assert "Funnel of version 1" in version1
    email_row = re.search(r'<tr data-card="email">.*?</tr>', version1).group(0)
    assert 'data-figure="reached">3<' in email_row
    assert 'data-figure="answered">2<' in email_row
    assert 'data-figure="dropped">1<' in email_row
    assert "33.3%" in email_row


def test_the_overview_shows_totals_top_dialogues_and_pages(acme, history, mia):
    response = logged_in(mia).get(f"/sites/{acme.pk}/reports/", {"start": DAY1, "end": TODAY})

    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-figure="triggered">6<' in page
    assert 'data-figure="captured">1<' in page
    assert "Book a demo" in page
    assert "www.acme.test/pricing" in page


def test_bad_filters_show_an_error_and_the_default_range(acme, history, mia):
    response = logged_in(mia).get(
        f"/sites/{acme.pk}/reports/", {"start": "2026-13-45", "end": "yesterday"}
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "Some filters could not be used" in page
    assert "Enter a valid date." in page
    assert 'data-figure="triggered">6<' in page  # the last 30 days hold the whole history


def test_an_end_before_the_start_is_refused(acme, history, mia):
    response = logged_in(mia).get(f"/sites/{acme.pk}/reports/", {"start": TODAY, "end": DAY1})

    assert "The end date is before the start date." in response.content.decode()


def read_csv(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


@pytest.mark.parametrize("table", ["trend", "versions", "funnel", "goals", "pages"])
def test_every_table_of_the_dialogue_report_exports_as_csv(acme, history, mia, table):
    response = logged_in(mia).get(
        f"/sites/{acme.pk}/dialogues/{history.pk}/report/",
        {"start": DAY1, "end": TODAY, "table": table, "format": "csv", "version": 1},
    )

    assert response.status_code == 200
    rows = read_csv(response)
    # The header, then: 4 days (DAY1 .. TODAY), 2 versions, 9 cards, 1 goal, 1 page.
    header, length = {
        "trend": (["Day", "Triggered"], 5),
        "versions": (["Version", "Published"], 3),
        "funnel": (["Card", "Type"], 10),
        "goals": (["Goal", "Reached"], 2),
        "pages": (["Page", "Triggered"], 2),
    }[table]
    assert rows[0][:2] == header
    assert len(rows) == length
    if table == "funnel":
        assert rows[2][:6] == ["want", "question", "Want a demo?", "5", "4", "1"]
    if table == "goals":
        assert rows[1] == ["Email captured", "2"]


@pytest.mark.parametrize("table", ["trend", "dialogues", "pages"])
def test_every_table_of_the_overview_exports_as_csv(acme, history, mia, table):
    response = logged_in(mia).get(
        f"/sites/{acme.pk}/reports/", {"start": DAY2, "end": DAY2, "table": table, "format": "csv"}
    )

    rows = read_csv(response)
    assert response.status_code == 200
    if table == "trend":
        assert rows[1][:4] == [DAY2.isoformat(), "3", "3", "2"]
    elif table == "dialogues":
        assert rows[1][:3] == ["Book a demo", "published", "3"]
    else:
        assert rows[1][:2] == ["www.acme.test/pricing", "3"]


def test_an_unknown_csv_table_is_a_404(acme, history, mia):
    response = logged_in(mia).get(f"/sites/{acme.pk}/reports/", {"table": "x", "format": "csv"})

    assert response.status_code == 404


def test_dialogue_names_are_escaped_in_the_report(acme, maya, mia):
    dialogue = make_published_dialogue(acme, name="<script>alert(1)</script>", user=maya)

    page = logged_in(mia).get(f"/sites/{acme.pk}/dialogues/{dialogue.pk}/report/").content

    assert b"<script>alert(1)</script>" not in page
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- who sees what -----------------------------------------------------------------------------


def test_reports_are_for_the_sites_marketers_only(acme, history, globex, omar, outsider):
    agent = outsider
    dialogue_services.add_member(site=acme, user=agent, role=Membership.Role.AGENT)
    urls = [
        f"/sites/{acme.pk}/reports/",
        f"/sites/{acme.pk}/reports/?table=trend&format=csv",
        f"/sites/{acme.pk}/dialogues/{history.pk}/report/",
        f"/sites/{acme.pk}/dialogues/{history.pk}/report/?table=funnel&format=csv",
        # Acme's dialogue under Globex's address.
        f"/sites/{globex.pk}/dialogues/{history.pk}/report/",
    ]
    for user in (omar, agent):
        client = logged_in(user)
        for url in urls:
            assert client.get(url).status_code == 404, (user, url)
    assert Client().get(urls[0]).status_code == 302  # to the login page


def test_a_site_never_counts_another_sites_figures(acme, history, globex, omar):
    globex_figures = selectors.totals(globex, week())

    assert globex_figures == selectors.Figures()
    page = logged_in(omar).get(f"/sites/{globex.pk}/reports/").content.decode()
    assert 'data-figure="triggered">0<' in page
    assert "Book a demo" not in page


def test_without_filters_the_form_shows_the_last_30_days(acme, history, mia):
    page = logged_in(mia).get(f"/sites/{acme.pk}/reports/").content.decode()

    assert f'value="{TODAY - timedelta(days=29)}"' in page
    assert f'value="{TODAY}"' in page


def test_a_download_with_bad_filters_is_refused(acme, history, mia):
    response = logged_in(mia).get(
        f"/sites/{acme.pk}/reports/", {"start": "soon", "table": "trend", "format": "csv"}
    )

    assert response.status_code == 400
    assert b"Enter a valid date." in response.content
