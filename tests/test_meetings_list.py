"""A site's meetings list: what each person sees, the statuses and their grace period, the
filters, pages, the CSV export, the viewer's time zone, and the meeting's own page.

Personas: Maya is Acme's marketing admin, Mia a marketing user of Acme, Alex and Bea Acme's
sales agents, Omar Globex's marketer, and an outsider."""

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.test import RequestFactory
from django.utils import timezone

from dialogues.models import Dialogue, Membership
from dynchat.timezones import viewer_zone
from meetings import listing
from meetings.listing import ListStatus, MeetingFilters
from meetings.models import Meeting
from tests.conftest import make_agent, make_published_dialogue
from tests.meeting_factories import make_meeting
from tests.test_booking import book, first_slot, to_booking
from widget.models import Conversation

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

TOKYO = ZoneInfo("Asia/Tokyo")
HOUR = timedelta(hours=1)


def list_url(site) -> str:
    return f"/sites/{site.pk}/meetings/"


def export_url(site) -> str:
    return f"/sites/{site.pk}/meetings/export.csv"


def detail_url(meeting) -> str:
    return f"/sites/{meeting.site_id}/meetings/{meeting.pk}/"


@pytest.fixture
def bea(acme):
    return make_agent(acme, "bea")


@pytest.fixture
def demo(acme, maya):
    return make_published_dialogue(acme, name="Book a demo", user=maya)


def as_user(client, user, *, tz=None):
    client.force_login(user)
    if tz:
        client.cookies["tz"] = tz
    return client


def page_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def results(client, site, **params) -> str:
    """The results fragment alone, as htmx fetches it when a filter changes."""
    response = client.get(list_url(site), params, HTTP_HX_REQUEST="true")
    return page_of(response)


def export(client, site, **params) -> list[dict]:
    response = client.get(export_url(site), params)
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


# --- statuses -----------------------------------------------------------------------------------


def statuses(viewer, now, **filters) -> dict[str, str]:
    """lead email -> list status, as the list computes it at `now`."""
    meetings = listing.meetings_for(viewer, filters=MeetingFilters(**filters), zone=UTC, now=now)
    return {meeting.lead_email: meeting.list_status for meeting in meetings}


def test_a_meeting_awaits_its_outcome_until_the_grace_period_is_over(acme, maya, alex):
    now = datetime(2030, 3, 10, 12, 0, tzinfo=UTC)
    grace = timedelta(hours=48)  # the default MEETING_OUTCOME_GRACE_HOURS
    # `end` is what the rules read; one agent's meetings may not overlap, hence the lengths.
    times = {
        "running@x.test": (now - timedelta(minutes=29), now + timedelta(minutes=1)),
        "just-ended@x.test": (now - timedelta(minutes=30), now - timedelta(minutes=29)),
        "in-grace@x.test": (now - grace, now - grace + timedelta(seconds=1)),
        "grace-over@x.test": (now - grace - timedelta(minutes=30), now - grace),
    }
    for email, (start, end) in times.items():
        make_meeting(acme, alex, start=start, end=end, lead_email=email)

    viewer = listing.viewer_for(maya, acme.pk)

    assert statuses(viewer, now) == {
        "running@x.test": ListStatus.UPCOMING,
        "just-ended@x.test": ListStatus.AWAITING_OUTCOME,
        "in-grace@x.test": ListStatus.AWAITING_OUTCOME,
        "grace-over@x.test": ListStatus.HAPPENED,
    }


def test_the_grace_period_is_a_setting(acme, maya, alex, settings):
    now = datetime(2030, 3, 10, 12, 0, tzinfo=UTC)
    make_meeting(acme, alex, start=now - 3 * HOUR, lead_email="three-hours@x.test")
    viewer = listing.viewer_for(maya, acme.pk)
    assert statuses(viewer, now) == {"three-hours@x.test": ListStatus.AWAITING_OUTCOME}

    settings.MEETING_OUTCOME_GRACE_HOURS = 2

    assert statuses(viewer, now) == {"three-hours@x.test": ListStatus.HAPPENED}


def test_marks_and_cancellations_decide_the_status(acme, maya, alex):
    now = datetime(2030, 3, 10, 12, 0, tzinfo=UTC)
    make_meeting(acme, alex, start=now - 2 * HOUR, lead_email="no-show@x.test", outcome="no_show")
    make_meeting(acme, alex, start=now - 4 * HOUR, lead_email="happened@x.test", outcome="happened")
    make_meeting(
        acme, alex, start=now - 90 * HOUR, lead_email="old-no-show@x.test", outcome="no_show"
    )
    make_meeting(
        acme, alex, start=now + 2 * HOUR, lead_email="cancelled@x.test", status="cancelled"
    )
    # A cancelled meeting stays cancelled once its time has passed, whatever else it holds.
    make_meeting(
        acme,
        alex,
        start=now - 8 * HOUR,
        lead_email="cancelled-past@x.test",
        status="cancelled",
        outcome="happened",
    )

    viewer = listing.viewer_for(maya, acme.pk)

    assert statuses(viewer, now) == {
        "no-show@x.test": ListStatus.NO_SHOW,
        "happened@x.test": ListStatus.HAPPENED,
        "old-no-show@x.test": ListStatus.NO_SHOW,
        "cancelled@x.test": ListStatus.CANCELLED,
        "cancelled-past@x.test": ListStatus.CANCELLED,
    }
    assert statuses(viewer, now, status=ListStatus.NO_SHOW).keys() == {
        "no-show@x.test",
        "old-no-show@x.test",
    }
    assert listing.status_counts(viewer, filters=MeetingFilters(), zone=UTC, now=now) == {
        "upcoming": 0,
        "awaiting_outcome": 0,
        "happened": 1,
        "no_show": 2,
        "cancelled": 2,
    }


# --- the list -----------------------------------------------------------------------------------


@pytest.fixture
def meetings(acme, alex, bea, demo):
    """Alex: a meeting tomorrow and one that ended an hour ago; Bea: one last week."""
    now = timezone.now()
    return {
        "tomorrow": make_meeting(
            acme,
            alex,
            start=now + 24 * HOUR,
            lead_email="ann@bigco.com",
            first_name="Ann",
            last_name="Lee",
            company="BigCo",
            dialogue=demo,
        ),
        "ended": make_meeting(
            acme,
            alex,
            start=now - 2 * HOUR,
            minutes=60,
            lead_email="raj@smallco.io",
            first_name="Raj",
            last_name="Patel",
            company="SmallCo",
        ),
        "last_week": make_meeting(
            acme,
            bea,
            start=now - 7 * 24 * HOUR,
            lead_email="zoe@bigco.com",
            first_name="Zoë",
            last_name="Martin",
            company="BigCo Labs",
            dialogue=demo,
        ),
    }


def row_order(html: str, emails: list[str]) -> list[str]:
    found = [email for email in emails if email in html]
    return sorted(found, key=html.index)


def test_marketers_see_every_meeting_of_the_site_with_its_details(client, mia, meetings):
    page = page_of(as_user(client, mia, tz="Asia/Tokyo").get(list_url(mia.sites.get())))

    assert "Acme: meetings" in page
    assert "Times in Asia/Tokyo." in page
    tomorrow = meetings["tomorrow"]
    local = tomorrow.start.astimezone(TOKYO)
    assert f"{local:%a} {local.day} {local:%b %Y, %H:%M}" in page
    for text in ("ann@bigco.com", "Ann Lee", "BigCo", "Alex Agent", "Bea Agent", "Book a demo"):
        assert text in page
    assert "Zoë Martin" in page
    # Not ended yet, soonest first; then the others, latest first.
    assert row_order(page, ["ann@bigco.com", "raj@smallco.io", "zoe@bigco.com"]) == [
        "ann@bigco.com",
        "raj@smallco.io",
        "zoe@bigco.com",
    ]
    # Status and "took place" of each row; the counts above the table.
    assert '<span class="status status-upcoming">Upcoming</span>' in page
    assert '<span class="status status-awaiting_outcome">Ended, not marked yet</span>' in page
    assert '<span class="status status-happened">Happened</span>' in page  # last week, unmarked
    assert "Upcoming: 1" in page and "Ended, not marked yet: 1" in page and "Happened: 1" in page
    # Mia is a marketing user: she looks, she does not mark.
    assert "Mark the meeting with" not in page


def test_the_site_navigation_leads_to_the_meetings(client, mia, acme):
    page = page_of(as_user(client, mia).get(list_url(acme)))
    assert f'<a href="{list_url(acme)}" aria-current="page">Meetings</a>' in page
    dialogues = page_of(client.get(f"/sites/{acme.pk}/dialogues/"))
    assert f'<a href="{list_url(acme)}">Meetings</a>' in dialogues
    # Marketers reach them through the site's pages, not the top bar.
    assert "Your meetings" not in dialogues


def test_agents_see_only_their_own_meetings(client, alex, meetings):
    page = page_of(as_user(client, alex).get(list_url(alex.sites.get())))

    assert "Acme: your meetings" in page
    assert "ann@bigco.com" in page and "raj@smallco.io" in page
    assert "zoe@bigco.com" not in page
    # No agent column or filter, nor the site's marketer pages.
    assert "Bea Agent" not in page and 'name="agent"' not in page
    assert "Branding" not in page
    # Alex marks his own ended meeting from the row.
    assert "Mark the meeting with raj@smallco.io as no-show" in page
    assert "Mark the meeting with ann@bigco.com" not in page  # not ended yet


def test_an_agent_asking_for_another_agents_meetings_still_gets_only_their_own(
    client, alex, bea, meetings
):
    page = results(as_user(client, alex), alex.sites.get(), agent=bea.pk)
    assert "zoe@bigco.com" not in page


def test_agents_find_their_meetings_in_the_top_bar(client, alex, globex, maya, acme):
    link = '<a href="/meetings/">Your meetings</a>'
    assert link in page_of(as_user(client, alex).get("/"))
    # It leads to the meetings of their site...
    response = client.get("/meetings/")
    assert (response.status_code, response.url) == (302, list_url(acme))
    # ... or, for an agent of two sites, asks which.
    Membership.objects.create(user=alex, site=globex, role=Membership.Role.AGENT)
    page = page_of(client.get("/meetings/"))
    assert f'<a href="{list_url(acme)}">Meetings at Acme</a>' in page
    assert f'<a href="{list_url(globex)}">Meetings at Globex</a>' in page
    # Marketers have no such link (they have the site's navigation), nor anything there.
    as_user(client, maya)
    assert "Your meetings" not in page_of(client.get("/"))
    assert client.get("/meetings/").status_code == 404


def test_nobody_else_sees_the_meetings(client, acme, meetings, omar, outsider, globex):
    assert client.get(list_url(acme)).url.startswith("/login/")
    for user in (omar, outsider):
        as_user(client, user)
        assert client.get(list_url(acme)).status_code == 404
        assert client.get(export_url(acme)).status_code == 404
        assert client.get(detail_url(meetings["ended"])).status_code == 404
    # Acme's meeting under Globex's URL, asked by Globex's own marketer.
    as_user(client, omar)
    url = f"/sites/{globex.pk}/meetings/{meetings['ended'].pk}/"
    assert client.get(url).status_code == 404
    assert "raj@smallco.io" not in page_of(client.get(list_url(globex)))


# --- filters ------------------------------------------------------------------------------------


def test_it_filters_by_agent_dialogue_and_status(client, maya, acme, bea, meetings):
    as_user(client, maya)

    by_bea = results(client, acme, agent=bea.pk)
    assert "zoe@bigco.com" in by_bea
    assert "ann@bigco.com" not in by_bea and "raj@smallco.io" not in by_bea

    demo = Dialogue.objects.get(name="Book a demo")
    by_dialogue = results(client, acme, dialogue=demo.pk)
    assert "ann@bigco.com" in by_dialogue and "zoe@bigco.com" in by_dialogue
    assert "raj@smallco.io" not in by_dialogue

    awaiting = results(client, acme, status="awaiting_outcome")
    assert "raj@smallco.io" in awaiting
    assert "ann@bigco.com" not in awaiting and "zoe@bigco.com" not in awaiting

    both = results(client, acme, dialogue=demo.pk, status="upcoming")
    assert "ann@bigco.com" in both and "zoe@bigco.com" not in both
    assert "1 meeting match these filters." in both


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("RAJ@smallco", {"raj@smallco.io"}),  # email, any case
        ("ann", {"ann@bigco.com"}),  # first name (and email)
        ("patel", {"raj@smallco.io"}),  # last name
        ("bigco", {"ann@bigco.com", "zoe@bigco.com"}),  # company (and email)
        ("labs", {"zoe@bigco.com"}),  # company only
        ("zoë martin", {"zoe@bigco.com"}),  # every word must match somewhere
        ("ann patel", set()),
    ],
)
def test_it_searches_email_names_and_company(client, maya, acme, meetings, query, found):
    page = results(as_user(client, maya), acme, q=query)
    emails = {"ann@bigco.com", "raj@smallco.io", "zoe@bigco.com"}
    assert {email for email in emails if email in page} == found


def test_the_date_range_is_in_the_viewers_zone(client, maya, acme, alex):
    # 23:30 and 00:30 in Tokyo on either side of midnight, both on 10 March in UTC.
    make_meeting(
        acme, alex, start=datetime(2030, 3, 10, 23, 30, tzinfo=TOKYO), lead_email="late@x.test"
    )
    make_meeting(
        acme, alex, start=datetime(2030, 3, 11, 0, 30, tzinfo=TOKYO), lead_email="early@x.test"
    )

    as_user(client, maya, tz="Asia/Tokyo")
    tokyo = results(client, acme, date_from="2030-03-10", date_to="2030-03-10")
    assert "late@x.test" in tokyo and "early@x.test" not in tokyo
    next_day = results(client, acme, date_from="2030-03-11")
    assert "early@x.test" in next_day and "late@x.test" not in next_day

    client.cookies["tz"] = "UTC"
    utc = results(client, acme, date_to="2030-03-10")
    assert "late@x.test" in utc and "early@x.test" in utc


def test_bad_filters_are_shown_and_left_out(client, maya, acme, meetings):
    as_user(client, maya)

    yesterday = (timezone.now() - 24 * HOUR).date()  # Maya sends no zone: UTC
    page = results(client, acme, date_from=yesterday, date_to=yesterday - timedelta(days=1))
    assert "These filters were left out:" in page
    assert "To: The end date must not be before the start date." in page
    # The start date still applies (last week's meeting is out); the end date does not (or
    # nothing would be left), and the list with a bad filter is not exported.
    assert "raj@smallco.io" in page and "ann@bigco.com" in page
    assert "zoe@bigco.com" not in page
    assert "Fix the filters to export them." in page
    assert "Download CSV" not in page

    page = results(client, acme, agent="999999", status="sometimes")
    assert "Agent: Select a valid choice." in page
    assert "Status: Select a valid choice. sometimes is not one of the available choices." in page
    assert all(email in page for email in ("ann@bigco.com", "raj@smallco.io", "zoe@bigco.com"))


def test_the_form_works_without_javascript_and_htmx_gets_the_results_alone(
    client, maya, acme, meetings
):
    as_user(client, maya)
    full = page_of(client.get(list_url(acme), {"q": "raj"}))
    assert "<html" in full and 'id="meeting-results"' in full
    assert 'value="raj"' in full  # the form keeps what was typed
    assert "raj@smallco.io" in full and "ann@bigco.com" not in full

    response = client.get(list_url(acme), {"q": "raj"}, HTTP_HX_REQUEST="true")
    fragment = page_of(response)
    assert "<html" not in fragment and "<form" not in fragment.split("<tbody>")[0]
    assert 'id="meeting-results"' in fragment and "raj@smallco.io" in fragment
    assert "HX-Request" in response["Vary"]


def test_it_shows_fifty_meetings_a_page(client, maya, acme, alex):
    start = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)  # all ended: latest first
    for number in range(51):
        make_meeting(acme, alex, start=start - number * HOUR, lead_email=f"lead{number:02}@x.test")
    make_meeting(acme, alex, start=start + HOUR, lead_email="other@y.test")
    as_user(client, maya)

    first = results(client, acme, q="x.test")
    assert "51 meetings match these filters." in first
    assert "Page 1 of 2" in first
    assert sum(f"lead{n:02}@x.test" in first for n in range(51)) == 50
    assert "lead00@x.test" in first and "lead50@x.test" not in first  # latest first
    # The next page keeps the filter.
    assert 'href="?q=x.test&amp;page=2"' in first

    second = results(client, acme, q="x.test", page=2)
    assert "lead50@x.test" in second and "lead49@x.test" not in second
    assert "Page 2 of 2" in second and "other@y.test" not in second


# --- CSV export ---------------------------------------------------------------------------------


def test_the_csv_holds_the_filtered_meetings_in_the_viewers_zone(client, maya, acme, alex, demo):
    past = make_meeting(
        acme,
        alex,
        start=datetime(2025, 6, 1, 8, 0, tzinfo=UTC),
        minutes=45,
        lead_email="ann@bigco.com",
        first_name="Ann",
        last_name="Lee",
        company="BigCo",
        dialogue=demo,
        outcome="no_show",
        routed_by=Meeting.RoutedBy.ROUND_ROBIN,
        assignment=7,
    )
    future = make_meeting(
        acme,
        alex,
        start=datetime(2031, 1, 2, 15, 30, tzinfo=UTC),
        lead_email='=HYPERLINK("http://evil.test")@x.test',
        first_name="+cmd",
        last_name="-1",
        company="@SUM(A1)",
        routed_by=Meeting.RoutedBy.RULE,
    )
    make_meeting(
        acme,
        alex,
        start=datetime(2025, 6, 2, 8, 0, tzinfo=UTC),
        lead_email="other@else.test",
        company="\tTabbed\rCo",
    )
    Meeting.objects.filter(pk=past.pk).update(created_at=datetime(2025, 5, 30, 23, 0, tzinfo=UTC))
    Meeting.objects.filter(pk=future.pk).update(created_at=datetime(2030, 12, 1, 0, 0, tzinfo=UTC))
    as_user(client, maya, tz="Asia/Tokyo")

    response = client.get(export_url(acme), {"q": "x.test bigco"})
    assert response.status_code == 200  # no meeting matches both words: just the header
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = timezone.now().astimezone(TOKYO).date().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="meetings-acme-{today}.csv"'
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body == "\ufeff" + ",".join(listing.CSV_COLUMNS) + "\r\n"

    rows = export(client, acme, company="", q="")  # no filter: every meeting, list order
    assert [row["lead_email"] for row in rows] == [
        '\'=HYPERLINK("http://evil.test")@x.test',
        "other@else.test",
        "ann@bigco.com",
    ]
    assert rows[0] == {
        "meeting_id": str(future.pk),
        "lead_email": '\'=HYPERLINK("http://evil.test")@x.test',
        "first_name": "'+cmd",
        "last_name": "'-1",
        "company": "'@SUM(A1)",
        "agent_name": "Alex Agent",
        "agent_email": "alex@example.com",
        "dialogue": "",
        "start": "2031-01-03T00:30:00+09:00",
        "start_utc": "2031-01-02T15:30:00Z",
        "duration_minutes": "30",
        "status": "upcoming",
        "took_place": "",
        "routed_by": "rule",
        "booked_at": "2030-12-01T09:00:00+09:00",
    }
    assert rows[1]["company"] == "'\tTabbed\rCo"
    assert (rows[1]["status"], rows[1]["took_place"]) == ("happened", "yes")
    assert rows[2] == {
        "meeting_id": str(past.pk),
        "lead_email": "ann@bigco.com",
        "first_name": "Ann",
        "last_name": "Lee",
        "company": "BigCo",
        "agent_name": "Alex Agent",
        "agent_email": "alex@example.com",
        "dialogue": "Book a demo",
        "start": "2025-06-01T17:00:00+09:00",
        "start_utc": "2025-06-01T08:00:00Z",
        "duration_minutes": "45",
        "status": "no_show",
        "took_place": "no",
        "routed_by": "round_robin",
        "booked_at": "2025-05-31T08:00:00+09:00",
    }

    only_june_first = export(client, acme, date_from="2025-06-01", date_to="2025-06-01")
    assert [row["meeting_id"] for row in only_june_first] == [str(past.pk)]


def test_an_agents_csv_holds_only_their_own_meetings(client, alex, meetings):
    rows = export(as_user(client, alex), alex.sites.get())
    assert sorted(row["lead_email"] for row in rows) == ["ann@bigco.com", "raj@smallco.io"]


def test_the_csv_refuses_filters_that_do_not_validate(client, maya, acme, meetings):
    response = as_user(client, maya).get(export_url(acme), {"date_from": "yesterday"})
    assert response.status_code == 400
    assert response.content.decode() == (
        "Nothing was exported: fix the filters.\nFrom: Enter a valid date.\n"
    )


def test_the_list_links_its_csv_with_the_same_filters(client, maya, acme, meetings):
    page = results(as_user(client, maya), acme, q="bigco", status="upcoming")
    assert f'href="{export_url(acme)}?q=bigco&amp;status=upcoming"' in page


# --- the viewer's time zone ---------------------------------------------------------------------


def zone_of(request_cookies=None, user=None) -> str:
    """The zone viewer_zone() picks for a request with these cookies, signed in as `user`."""
    request = RequestFactory().get("/")
    request.COOKIES.update(request_cookies or {})
    if user is not None:
        request.user = user
        request.COOKIES[django_settings.SESSION_COOKIE_NAME] = "the session of the signed-in user"
    return viewer_zone(request).key


def test_the_zone_comes_from_the_cookie_else_the_agents_hours_else_the_setting(
    alex, maya, settings
):
    alex.availability.time_zone = "America/Chicago"
    alex.availability.save(update_fields=["time_zone"])

    assert zone_of({"tz": "Asia/Tokyo"}, alex) == "Asia/Tokyo"
    assert zone_of({}, alex) == "America/Chicago"
    # A cookie that names no zone is ignored, never trusted.
    for bad in ("Mars/Olympus", "../../etc/passwd", "asia/tokyo", "", "Asia/Tokyo" + "x" * 70):
        assert zone_of({"tz": bad}, alex) == "America/Chicago"
    assert zone_of({}, maya) == "UTC"
    settings.TIME_ZONE = "Europe/Lisbon"
    assert zone_of({"tz": "Not/AZone"}, maya) == "Europe/Lisbon"


def test_pages_show_times_in_the_viewers_zone(client, alex, meetings):
    alex.availability.time_zone = "America/Chicago"
    alex.availability.save(update_fields=["time_zone"])
    start = meetings["tomorrow"].start

    page = page_of(as_user(client, alex).get(list_url(alex.sites.get())))
    chicago = start.astimezone(ZoneInfo("America/Chicago"))
    assert "Times in America/Chicago." in page and f"{chicago:%H:%M}" in page

    client.cookies["tz"] = "Asia/Tokyo"
    page = page_of(client.get(list_url(alex.sites.get())))
    assert "Times in Asia/Tokyo." in page and f"{start.astimezone(TOKYO):%H:%M}" in page

    client.cookies["tz"] = "Nowhere/Special"
    assert "Times in America/Chicago." in page_of(client.get(list_url(alex.sites.get())))


def test_requests_without_a_session_are_not_made_to_vary_on_cookies(acme_widget):
    # The widget API sends no cookies; reading the zone must not read (and Vary on) a session.
    response = acme_widget.post("/sessions", {"page_url": "https://www.acme.test/"})
    assert response.status_code == 200
    assert "Cookie" not in response.get("Vary", "")


def test_every_page_loads_the_script_that_sends_the_zone(client, maya):
    page = page_of(as_user(client, maya).get("/"))
    assert '<script src="/static/js/timezone.js" defer></script>' in page


# --- the meeting's page -------------------------------------------------------------------------


def test_the_meeting_page_shows_who_when_and_how_it_was_routed(client, mia, acme, alex, demo):
    meeting = make_meeting(
        acme,
        alex,
        start=datetime(2030, 7, 1, 7, 0, tzinfo=UTC),
        dialogue=demo,
        visitor_time_zone="America/New_York",
        routed_by=Meeting.RoutedBy.RULE,
        routing_rule_name="Enterprise EMEA",
        assignment=12,
        join_url="https://meet.example.com/abc-defg",
    )
    page = page_of(as_user(client, mia, tz="Asia/Tokyo").get(detail_url(meeting)))

    assert "Meeting with Ann Lee" in page
    assert '<a href="mailto:ann@bigco.com">ann@bigco.com</a>' in page
    assert "BigCo" in page and "Alex Agent (alex@example.com)" in page and "Book a demo" in page
    dash = "\N{EN DASH}"
    assert f"Monday 1 July 2030, 16:00{dash}16:30</time> (Asia/Tokyo), 30 minutes" in page
    assert f"Monday 1 July 2030, 03:00{dash}03:30 (America/New_York)" in page
    assert "Custom rule: rule “Enterprise EMEA”, assignment 12" in page
    assert "In the DynChat calendar" in page
    assert 'href="https://meet.example.com/abc-defg"' in page
    assert '<span class="status status-upcoming">Upcoming</span>' in page
    # Mia looks; she neither marks nor cancels.
    assert "Save outcome" not in page and "Cancel this meeting" not in page


def test_a_join_link_that_is_not_a_web_address_is_not_a_link(client, maya, acme, alex):
    meeting = make_meeting(acme, alex, start=timezone.now() + HOUR, join_url="javascript:alert(1)")
    page = page_of(as_user(client, maya).get(detail_url(meeting)))
    assert "javascript:alert(1)" not in page


def test_an_agent_opens_their_meetings_but_not_another_agents(client, alex, meetings):
    as_user(client, alex)
    assert "raj@smallco.io" in page_of(client.get(detail_url(meetings["ended"])))
    assert client.get(detail_url(meetings["last_week"])).status_code == 404


def test_the_meeting_page_shows_the_conversation_as_plain_text(
    client, maya, acme_widget, acme_dialogue, alex
):
    # The visitor gives "<b>hi</b>" as their first name: the bot says it back, and it is the
    # lead's name on the meeting.
    chat = acme_widget.start_conversation(acme_dialogue)
    for value in ("yes", "<b>hi</b>", "ann@bigco.com", "+1 415 555 2671"):
        response = acme_widget.answer(chat, value)
        assert response.status_code == 200, response.content
        chat = {**chat, **response.json()}
    assert book(acme_widget, chat, first_slot(acme_widget, chat)).status_code == 201
    meeting = Meeting.objects.get()

    page = page_of(as_user(client, maya).get(detail_url(meeting)))

    assert "<b>hi</b>" not in page
    said = '<span class="text">&lt;b&gt;hi&lt;/b&gt;</span>'
    assert f'<span class="who">Visitor</span> {said}' in page
    assert "Thanks &lt;b&gt;hi&lt;/b&gt;. Your email?" in page
    # In order: the greeting first, the booked time last.
    texts = ["Want a demo?", "Yes please", "Your first name?", "Your email?", "Your phone?"]
    assert sorted(texts, key=page.index) == texts
    assert page.index("Pick a time with our team.") < page.index("See you on")


def test_once_the_conversation_is_deleted_the_page_says_so(
    client, maya, acme_widget, acme_dialogue, alex
):
    chat = to_booking(acme_widget, acme_dialogue)
    assert book(acme_widget, chat, first_slot(acme_widget, chat)).status_code == 201
    Conversation.objects.all().delete()  # what the 90-day purge does; the meeting stays

    page = page_of(as_user(client, maya).get(detail_url(Meeting.objects.get())))

    assert "is no longer kept: conversations are deleted after 90 days" in page
    assert "Pick a time with our team." not in page
