"""The meetings list in the browser: an agent marks a no-show, a marketer filters and exports.

Both browsers are in a zone of their own, so these tests also show the zone travelling from the
browser (static/js/timezone.js, the `tz` cookie) to the times on the page and in the CSV."""

import csv
import io
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from meetings.models import Meeting
from tests.conftest import PASSWORD
from tests.meeting_factories import make_meeting

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOUR = timedelta(hours=1)


@pytest.fixture
def page_in(browser):
    """A fresh browser page in the given IANA zone; no page errors allowed."""
    contexts = []

    def open_page(zone: str):
        context = browser.new_context(timezone_id=zone, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(error))
        page.errors = errors
        return page

    yield open_page
    for context in contexts:
        assert context.pages[0].errors == [], "the page raised errors"
        context.close()


def sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def alex_meetings(acme, alex):
    now = timezone.now()
    return {
        "ended": make_meeting(acme, alex, start=now - 3 * HOUR, lead_email="raj@smallco.io"),
        "upcoming": make_meeting(acme, alex, start=now + 26 * HOUR, lead_email="ann@bigco.com"),
    }


def test_an_agent_marks_a_past_meeting_as_a_no_show(
    page_in, live_server, settings, alex, alex_meetings
):
    settings.ALLOWED_HOSTS = ["*"]
    page = page_in("Asia/Tokyo")
    sign_in(page, live_server, "alex")

    page.get_by_role("link", name="Your meetings").click()

    # The browser told the server its zone; the list is in Tokyo time.
    expect(page.get_by_text("Times in Asia/Tokyo.")).to_be_visible()
    expect(page.get_by_role("heading", name="Acme: your meetings")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="raj@smallco.io")
    expect(row.get_by_text("Ended, not marked yet")).to_be_visible()
    start = alex_meetings["ended"].start.astimezone(ZoneInfo("Asia/Tokyo"))
    expect(row).to_contain_text(f"{start:%H:%M}")

    row.get_by_role("button", name="Mark the meeting with raj@smallco.io as no-show").click()

    # The row is swapped in place (htmx): its status and what is left to do.
    expect(row.get_by_text("No-show", exact=True)).to_be_visible()
    happened = "Mark the meeting with raj@smallco.io as happened"
    expect(row.get_by_role("button", name=happened)).to_be_visible()
    expect(row.get_by_role("button", name="as no-show")).to_have_count(0)
    page.reload()
    row = page.get_by_role("row").filter(has_text="raj@smallco.io")
    expect(row.get_by_text("No-show", exact=True)).to_be_visible()
    meeting = Meeting.objects.get(pk=alex_meetings["ended"].pk)
    assert (meeting.outcome, meeting.outcome_marked_by) == ("no_show", alex)
    # The upcoming meeting was left alone.
    assert Meeting.objects.get(pk=alex_meetings["upcoming"].pk).outcome == ""


def test_a_marketer_filters_the_list_and_downloads_the_csv(
    page_in, live_server, settings, acme, maya, alex, tmp_path
):
    settings.ALLOWED_HOSTS = ["*"]
    now = timezone.now()
    wanted = [
        make_meeting(acme, alex, start=now + 48 * HOUR, lead_email="ann@bigco.com"),
        make_meeting(
            acme, alex, start=now + 72 * HOUR, lead_email="lee@partner.test", company="BigCo"
        ),
    ]
    # Not BigCo; and BigCo but cancelled.
    make_meeting(acme, alex, start=now + 30 * HOUR, lead_email="raj@smallco.io", company="SmallCo")
    make_meeting(acme, alex, start=now + 96 * HOUR, lead_email="bo@bigco.com", status="cancelled")
    page = page_in("America/New_York")
    sign_in(page, live_server, "maya")
    page.goto(f"{live_server.url}/sites/{acme.pk}/dialogues/")
    page.get_by_role("link", name="Meetings", exact=True).click()
    expect(page.get_by_text("Times in America/New_York.")).to_be_visible()
    table = page.locator("table.meetings tbody")
    expect(table.get_by_role("row")).to_have_count(4)

    page.get_by_label("Search").fill("bigco")
    page.get_by_label("Search").press("Enter")
    expect(table.get_by_role("row")).to_have_count(3)
    page.get_by_label("Status").select_option("upcoming")
    expect(table.get_by_role("row")).to_have_count(2)
    expect(page.get_by_text("2 meetings match these filters.")).to_be_visible()
    assert "q=bigco" in page.url and "status=upcoming" in page.url  # kept in the address

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename.startswith("meetings-acme-")
    path = tmp_path / "meetings.csv"
    download.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))

    new_york = ZoneInfo("America/New_York")
    assert [(row["lead_email"], row["start"], row["status"]) for row in rows] == [
        (meeting.lead_email, meeting.start.astimezone(new_york).isoformat(), "upcoming")
        for meeting in wanted
    ]
