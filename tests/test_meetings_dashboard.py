"""A site's meetings dashboard: Maya (Acme's admin) and Mia (Acme's marketing user) read how many
meetings were booked, cancelled, happened, were no-shows, still await their outcome or are
upcoming, per agent, per dialogue and per week, narrowed by dates and dialogue, and download
each table as CSV. Alex (Acme's agent), Omar (Globex's admin) and an outsider get a 404, and
Globex's meetings never count in Acme's figures.

The seeded meetings (`seeded`), relative to now, with what each counts as:

    alex  5 days ago   Book a demo   marked happened      -> happened
    alex  4 days ago   Book a demo   marked no-show       -> no-show
    alex  3 days ago   Pricing help  unmarked, grace over -> happened
    alex  10 hours ago Book a demo   unmarked, in grace   -> awaiting outcome
    alex  in 2 days    Book a demo                        -> upcoming
    alex  2 days ago   Book a demo   cancelled            -> cancelled
    bea   6 days ago   Pricing help  marked no-show       -> no-show
    bea   1 day ago    Book a demo   marked happened      -> happened
    bea   in 3 days    (deleted)     cancelled            -> cancelled
    bea   in 1 day     Pricing help                       -> upcoming
    carl  8 days ago   Book a demo   marked no-show       -> no-show (carl's account deleted since)
    alex  40 days ago  Book a demo   marked happened      (outside the default 30 days)
    Globex's agent, 2 days ago                            (another site: never counted)
"""

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from dialogues.models import Dialogue
from meetings import listing
from meetings.models import Meeting
from reports import meeting_stats
from reports.filters import ReportFilters
from tests.conftest import make_agent, make_published_dialogue
from tests.meeting_factories import make_meeting

PARIS = ZoneInfo("Europe/Paris")
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
HAPPENED, NO_SHOW = Meeting.Outcome.HAPPENED, Meeting.Outcome.NO_SHOW


def dashboard_url(site) -> str:
    return f"/sites/{site.pk}/reports/meetings/"


def text(response) -> str:
    assert response.status_code == 200, response.status_code
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(unescape(body).split())


def table(response, label: str) -> list[str]:
    """The rows of the table labelled `label`, each as its text."""
    found = re.search(
        rf'<table aria-label="{label}">.*?<tbody>(.*?)</tbody>', response.content.decode(), re.S
    )
    assert found, f"no table {label}"
    rows = re.findall(r"<tr>(.*?)</tr>", found.group(1), re.S)
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in rows]


def figures(response) -> str:
    found = re.search(
        r'<dl class="figures" aria-label="Totals">(.*?)</dl>', response.content.decode(), re.S
    )
    assert found
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


def export(client, site, **params) -> list[list[str]]:
    response = client.get(dashboard_url(site), {**params, "format": "csv"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))


@pytest.fixture(autouse=True)
def report_zone(settings):
    settings.REPORTS_TIME_ZONE = "Europe/Paris"
    settings.MEETING_OUTCOME_GRACE_HOURS = 48


@pytest.fixture
def today() -> date:
    return timezone.now().astimezone(PARIS).date()


@pytest.fixture
def bea(acme):
    return make_agent(acme, "bea")


@pytest.fixture
def demo(acme_dialogue):
    return acme_dialogue


@pytest.fixture
def pricing(acme, maya):
    return make_published_dialogue(acme, name="Pricing help", user=maya)


@pytest.fixture
def seeded(acme, globex, alex, bea, demo, pricing):
    now = timezone.now()
    carl = make_agent(acme, "carl")
    gone = Dialogue.objects.create(site=acme, name="Old offer", flow={})
    meet = make_meeting
    meetings = [
        meet(acme, alex, start=now - 5 * DAY, dialogue=demo, outcome=HAPPENED),
        meet(acme, alex, start=now - 4 * DAY, dialogue=demo, outcome=NO_SHOW),
        meet(acme, alex, start=now - 3 * DAY, dialogue=pricing),
        meet(acme, alex, start=now - 10 * HOUR, dialogue=demo),
        meet(acme, alex, start=now + 2 * DAY, dialogue=demo),
        meet(acme, alex, start=now - 2 * DAY, dialogue=demo, status=Meeting.Status.CANCELLED),
        meet(acme, bea, start=now - 6 * DAY, dialogue=pricing, outcome=NO_SHOW),
        meet(acme, bea, start=now - 1 * DAY, dialogue=demo, outcome=HAPPENED),
        meet(acme, bea, start=now + 3 * DAY, dialogue=gone, status=Meeting.Status.CANCELLED),
        meet(acme, bea, start=now + 1 * DAY, dialogue=pricing),
        meet(acme, carl, start=now - 8 * DAY, dialogue=demo, outcome=NO_SHOW),
        meet(acme, alex, start=now - 40 * DAY, dialogue=demo, outcome=HAPPENED),
    ]
    gone.delete()  # the meeting keeps no dialogue
    carl.delete()  # the meeting keeps his name and email
    make_meeting(globex, make_agent(globex, "gil"), start=now - 2 * DAY, outcome=NO_SHOW)
    return meetings


def in_range(today: date) -> dict:
    """A range holding every seeded meeting of Acme but the one 40 days ago."""
    return {"start": (today - 20 * DAY).isoformat(), "end": (today + 10 * DAY).isoformat()}


# --- the figures --------------------------------------------------------------------------------


def test_maya_reads_the_totals(client, maya, acme, seeded, today):
    client.force_login(maya)

    response = client.get(dashboard_url(acme), in_range(today))

    assert figures(response) == (
        "Booked 11 Upcoming 2 Awaiting outcome 1 Happened 3 No-show 3 Cancelled 2 "
        "No-show rate 50.0%"
    )
    assert (
        "Of 6 meetings with a known outcome, 3 happened (50.0%) and 3 were no-shows (50.0%)."
        in text(response)
    )


def test_each_agent_has_a_row(client, maya, acme, seeded, today):
    client.force_login(maya)

    rows = table(client.get(dashboard_url(acme), in_range(today)), "Meetings by agent")

    # Agent, booked, upcoming, awaiting outcome, happened, no-show, cancelled, no-show rate.
    assert rows == [
        "Alex Agent alex@example.com 6 1 1 2 1 1 33.3%",
        "Bea Agent bea@example.com 4 1 0 1 1 1 50.0%",
        "Carl Agent carl@example.com (account removed) 1 0 0 0 1 0 100.0%",
    ]


def test_each_dialogue_has_a_row(client, maya, acme, seeded, today):
    client.force_login(maya)

    rows = table(client.get(dashboard_url(acme), in_range(today)), "Meetings by dialogue")

    assert rows == [
        "Book a demo 7 1 1 2 2 1 50.0%",
        "Pricing help 3 1 0 1 1 0 50.0%",
        # Nothing settled: no rate to give.
        "Deleted dialogues 1 0 0 0 0 1 \u2013",
    ]


def test_happened_and_no_shows_are_counted_by_week(client, maya, acme, alex, demo):
    # Long past meetings: every one has settled. 2 March 2026 is a Monday.
    def at(day, hour):
        return datetime(2026, 3, day, hour, tzinfo=PARIS)

    make_meeting(acme, alex, start=at(2, 9), outcome=HAPPENED)
    make_meeting(acme, alex, start=at(4, 9), outcome=NO_SHOW)
    make_meeting(acme, alex, start=at(8, 23))  # Sunday night: unmarked, so happened
    make_meeting(acme, alex, start=at(10, 9), outcome=NO_SHOW)
    make_meeting(acme, alex, start=at(11, 9), status=Meeting.Status.CANCELLED)
    client.force_login(maya)

    response = client.get(dashboard_url(acme), {"start": "2026-03-03", "end": "2026-03-20"})

    # The range starts on a Tuesday: its first week counts only from the 3rd (the 2nd is out).
    assert table(response, "Happened vs no-show by week") == [
        "Mon 2 Mar 2026 1 1 50.0% 0",
        "Mon 9 Mar 2026 0 1 100.0% 0",
        "Mon 16 Mar 2026 0 0 \u2013 0",
    ]


def test_the_figures_agree_with_the_meetings_list(acme, maya, seeded, today):
    """Same meetings, same moment, same definitions: the dashboard's totals are the list's
    status counts."""
    now = timezone.now()
    start, end = today - 20 * DAY, today + 10 * DAY
    totals = meeting_stats.totals(acme, filters=ReportFilters(start=start, end=end), now=now)
    listed = listing.status_counts(
        listing.viewer_for(maya, acme.pk),
        filters=listing.MeetingFilters(date_from=start, date_to=end),
        zone=PARIS,
        now=now,
    )

    assert {
        "upcoming": totals.upcoming,
        "awaiting_outcome": totals.awaiting_outcome,
        "happened": totals.happened,
        "no_show": totals.no_show,
        "cancelled": totals.cancelled,
    } == listed
    assert totals.booked == sum(listed.values())


def test_an_unmarked_meeting_settles_as_happened_when_the_grace_period_ends(
    acme, alex, settings, today
):
    make_meeting(acme, alex, start=timezone.now() - 30 * HOUR)
    filters = ReportFilters(start=today - 5 * DAY, end=today)

    settings.MEETING_OUTCOME_GRACE_HOURS = 48
    waiting = meeting_stats.totals(acme, filters=filters, now=timezone.now())
    settings.MEETING_OUTCOME_GRACE_HOURS = 24
    settled = meeting_stats.totals(acme, filters=filters, now=timezone.now())

    assert (waiting.awaiting_outcome, waiting.happened) == (1, 0)
    assert (settled.awaiting_outcome, settled.happened) == (0, 1)


def test_an_empty_range_says_so(client, maya, acme):
    client.force_login(maya)

    response = client.get(dashboard_url(acme))

    shown = text(response)
    assert figures(response).endswith("No-show rate \u2013")
    assert "No meeting in this range has a known outcome yet." in shown
    assert "No meeting was booked in this range." in shown


# --- filters ----------------------------------------------------------------------------------


def test_by_default_the_last_thirty_days_are_counted(client, maya, acme, seeded, today):
    client.force_login(maya)

    response = client.get(dashboard_url(acme))

    # Upcoming meetings start after today, so the default range leaves them out, and the
    # meeting 40 days ago too.
    assert figures(response).startswith(
        "Booked 8 Upcoming 0 Awaiting outcome 1 Happened 3 No-show 3 Cancelled 1"
    )
    first = today - 29 * DAY
    assert f"Meetings starting from {first:%-d %b %Y} to {today:%-d %b %Y}" in text(response)


def test_the_dates_narrow_the_meetings_by_their_start(client, maya, acme, seeded, today):
    client.force_login(maya)

    response = client.get(
        dashboard_url(acme), {"start": (today - 5 * DAY).isoformat(), "end": today.isoformat()}
    )

    assert figures(response).startswith(
        "Booked 6 Upcoming 0 Awaiting outcome 1 Happened 3 No-show 1 Cancelled 1"
    )


def test_days_are_those_of_the_reports_time_zone(client, maya, acme, alex):
    # 23:30 UTC on 9 March is 00:30 on the 10th in Paris.
    make_meeting(acme, alex, start=datetime(2026, 3, 9, 23, 30, tzinfo=UTC), outcome=NO_SHOW)
    client.force_login(maya)

    on_the_9th = client.get(dashboard_url(acme), {"start": "2026-03-09", "end": "2026-03-09"})
    on_the_10th = client.get(dashboard_url(acme), {"start": "2026-03-10", "end": "2026-03-10"})

    assert figures(on_the_9th).startswith("Booked 0")
    assert figures(on_the_10th).startswith("Booked 1")


def test_the_dialogue_filter_keeps_that_dialogues_meetings(
    client, maya, acme, seeded, pricing, today
):
    client.force_login(maya)

    response = client.get(dashboard_url(acme), {**in_range(today), "dialogue": pricing.pk})

    assert figures(response) == (
        "Booked 3 Upcoming 1 Awaiting outcome 0 Happened 1 No-show 1 Cancelled 0 No-show rate 50.0%"
    )
    assert table(response, "Meetings by dialogue") == ["Pricing help 3 1 0 1 1 0 50.0%"]


def test_the_visitors_filter_is_not_offered_and_changes_nothing(client, maya, acme, seeded, today):
    client.force_login(maya)

    everyone = client.get(dashboard_url(acme), in_range(today))
    anonymous = client.get(dashboard_url(acme), {**in_range(today), "visitors": "anonymous"})

    assert 'name="visitors"' not in everyone.content.decode()
    assert figures(anonymous) == figures(everyone)
    assert "visitors=" not in anonymous.content.decode()


def test_bad_filters_fall_back_to_the_last_thirty_days_and_say_so(
    client, maya, acme, seeded, globex
):
    theirs = make_published_dialogue(globex, name="Globex only")
    client.force_login(maya)

    response = client.get(
        dashboard_url(acme), {"start": "2026-03-10", "end": "2026-03-01", "dialogue": theirs.pk}
    )

    shown = text(response)
    assert "Some filters could not be used; the report shows the last 30 days instead." in shown
    assert "The end date is before the start date." in shown
    assert "Globex only" not in shown
    assert figures(response).startswith("Booked 8 ")


# --- CSV ----------------------------------------------------------------------------------------

HEADER = [
    "Booked",
    "Upcoming",
    "Awaiting outcome",
    "Happened",
    "No-show",
    "Cancelled",
    "No-show rate",
]


def test_every_table_downloads_as_csv_with_the_pages_filters(client, maya, acme, seeded, today):
    client.force_login(maya)
    dates = in_range(today)

    totals = export(client, acme, table="totals", **dates)
    agents = export(client, acme, table="agents", **dates)
    dialogues = export(client, acme, table="dialogues", **dates)
    weeks = export(client, acme, table="weeks", **dates)

    assert totals == [
        ["From", "To", *HEADER],
        [dates["start"], dates["end"], "11", "2", "1", "3", "3", "2", "0.5000"],
    ]
    assert agents == [
        ["Agent", "Email", "Account removed", *HEADER],
        ["Alex Agent", "alex@example.com", "no", "6", "1", "1", "2", "1", "1", "0.3333"],
        ["Bea Agent", "bea@example.com", "no", "4", "1", "0", "1", "1", "1", "0.5000"],
        ["Carl Agent", "carl@example.com", "yes", "1", "0", "0", "0", "1", "0", "1.0000"],
    ]
    assert dialogues == [
        ["Dialogue", *HEADER],
        ["Book a demo", "7", "1", "1", "2", "2", "1", "0.5000"],
        ["Pricing help", "3", "1", "0", "1", "1", "0", "0.5000"],
        ["Deleted dialogues", "1", "0", "0", "0", "0", "1", ""],
    ]
    assert weeks[0] == ["Week from", *HEADER]
    assert sum(int(row[1]) for row in weeks[1:]) == 11
    assert all(date.fromisoformat(row[0]).weekday() == 0 for row in weeks[1:])


def test_the_csv_keeps_the_dialogue_filter(client, maya, acme, seeded, pricing, today):
    client.force_login(maya)

    rows = export(client, acme, table="agents", dialogue=pricing.pk, **in_range(today))

    assert [row[:4] for row in rows[1:]] == [
        ["Bea Agent", "bea@example.com", "no", "2"],
        ["Alex Agent", "alex@example.com", "no", "1"],
    ]


def test_the_page_links_each_table_to_its_csv(client, maya, acme, pricing):
    client.force_login(maya)

    body = client.get(
        dashboard_url(acme), {"start": "2026-03-01", "end": "2026-03-31", "dialogue": pricing.pk}
    ).content.decode()

    base = f"?start=2026-03-01&amp;end=2026-03-31&amp;dialogue={pricing.pk}&amp;"
    for name in ("totals", "weeks"):
        assert f'href="{base}table={name}&amp;format=csv"' in body


def test_the_csv_is_an_attachment_never_cached(client, maya, acme):
    client.force_login(maya)

    response = client.get(
        dashboard_url(acme),
        {"start": "2026-03-01", "end": "2026-03-31", "table": "agents", "format": "csv"},
    )

    assert response.streaming
    assert response["Content-Disposition"] == (
        'attachment; filename="acme-meetings-agents-2026-03-01-2026-03-31.csv"'
    )
    assert response["Cache-Control"] == "no-store"


def test_names_cannot_become_spreadsheet_formulas(client, maya, acme, alex, today):
    dialogue = Dialogue.objects.create(site=acme, name="=HYPERLINK(1)", flow={})
    make_meeting(acme, alex, start=timezone.now() - 3 * DAY, dialogue=dialogue)
    client.force_login(maya)

    rows = export(client, acme, table="dialogues")
    page = client.get(dashboard_url(acme))

    assert rows[1][0] == "'=HYPERLINK(1)"
    assert "Meetings by dialogue" in page.content.decode()


def test_a_dialogue_name_is_shown_as_text(client, maya, acme, alex):
    dialogue = Dialogue.objects.create(site=acme, name="<script>alert(1)</script>", flow={})
    make_meeting(acme, alex, start=timezone.now() - 3 * DAY, dialogue=dialogue)
    client.force_login(maya)

    body = client.get(dashboard_url(acme)).content.decode()

    assert "<script>alert(1)" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_an_unknown_table_is_a_404(client, maya, acme):
    client.force_login(maya)

    response = client.get(dashboard_url(acme), {"table": "secrets", "format": "csv"})

    assert response.status_code == 404


def test_a_csv_with_bad_filters_is_refused_not_replaced(client, maya, acme):
    client.force_login(maya)

    response = client.get(
        dashboard_url(acme), {"table": "totals", "format": "csv", "start": "someday"}
    )

    assert response.status_code == 400
    assert "Nothing was exported: fix the filters." in response.content.decode()
    assert "From: Enter a valid date." in response.content.decode()


# --- who sees what --------------------------------------------------------------------------


def test_the_marketing_user_reads_it_too(client, mia, acme, seeded, today):
    client.force_login(mia)

    response = client.get(dashboard_url(acme), in_range(today))

    assert figures(response).startswith("Booked 11 ")


@pytest.mark.parametrize("who", ["alex", "outsider", "omar"])
def test_anyone_else_gets_a_404(client, request, acme, who):
    client.force_login(request.getfixturevalue(who))

    assert client.get(dashboard_url(acme)).status_code == 404
    assert client.get(dashboard_url(acme), {"table": "agents", "format": "csv"}).status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(client, acme):
    response = client.get(dashboard_url(acme))

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_globex_counts_only_its_own_meetings(client, omar, globex, seeded, today):
    client.force_login(omar)

    response = client.get(dashboard_url(globex), in_range(today))

    assert figures(response).startswith(
        "Booked 1 Upcoming 0 Awaiting outcome 0 Happened 0 No-show 1"
    )
    assert table(response, "Meetings by agent") == ["Gil Agent gil@example.com 1 0 0 0 1 0 100.0%"]
