"""The demo site's Marketo write-back pages in a browser: a marketer gives the demo dialogue a
"goal reached" action (a program, one of its statuses, which change with the program, and a
campaign with a token) and sees it listed; the admin retries a parked record and sees it leave
the parked records."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dialogues import services as dialogue_services
from dialogues.models import Membership
from dynchat.demo import DEMO_PASSWORD, DEMO_USERNAME
from marketo_sync.models import MarketoAction, MarketoCampaign, MarketoProgram, OutboxRecord
from tests.conftest import _user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def signed_in(browser, url, username, password):
    context = browser.new_context()
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    page.goto(url)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    return context, page, errors


@pytest.fixture
def catalogue(db):
    now = timezone.now()
    MarketoProgram.objects.create(
        id=1001,
        name="Webinar",
        statuses=["Not in Program", "Invited", "Registered", "Attended"],
        synced_at=now,
    )
    MarketoProgram.objects.create(
        id=1002, name="Demo requests", statuses=["Not in Program", "Requested"], synced_at=now
    )
    MarketoCampaign.objects.create(id=3001, name="Send the deck", synced_at=now)


def test_a_marketer_adds_a_goal_action(browser, live_server, demo_site, demo_dialogue, catalogue):
    marketer = _user("mia")
    dialogue_services.add_member(site=demo_site, user=marketer, role=Membership.Role.MARKETER)
    editor = f"{live_server.url}/sites/{demo_site.pk}/dialogues/{demo_dialogue.pk}/edit/"
    context, page, errors = signed_in(browser, editor, "mia", "correct horse battery staple")

    page.get_by_role("link", name="Marketo actions").click()
    expect(
        page.get_by_role("heading", name=f"Marketo actions of {demo_dialogue.name}")
    ).to_be_visible()
    page.get_by_role("link", name="Add an action").click()

    page.get_by_label("When").select_option(label="Visitor reaches a goal")
    page.get_by_label("Goal", exact=True).select_option(label="Email captured")
    status = page.get_by_label("Set the lead's status to")
    expect(status.locator("option")).to_have_text(["Choose a program first"])
    page.get_by_label("Program").select_option(label="Demo requests")
    expect(status.locator("option")).to_have_text(
        ["Choose a status", "Not in Program", "Requested"]
    )
    page.get_by_label("Program").select_option(label="Webinar")
    expect(status.locator("option")).to_have_text(
        ["Choose a status", "Not in Program", "Invited", "Registered", "Attended"]
    )
    status.select_option("Attended")
    page.get_by_label("Request the campaign").select_option(label="Send the deck")
    page.get_by_label("Token 1 name").fill("{{my.Goal Name}}")
    page.get_by_label("Token 1 value").select_option(label="Goal name")
    page.get_by_role("button", name="Save action").last.click()

    expect(page.get_by_text("Marketo action saved.")).to_be_visible()
    rows = page.get_by_role("table", name="Marketo actions").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td")).to_have_text(
        [
            "Visitor reaches a goal: “Email captured”",
            "Webinar → Attended",
            "Send the deck",
            "{{my.Goal Name}} = Goal name",
            "Edit Delete",
        ]
    )
    action = MarketoAction.objects.get(dialogue=demo_dialogue)
    assert (action.program_id, action.program_status, action.campaign_id) == (
        1001,
        "Attended",
        3001,
    )
    context.close()
    assert errors == [], "the page raised errors"


def test_an_admin_retries_a_parked_record(browser, live_server, demo_site, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # no delivery is started: there is no worker
    now = timezone.now()
    common = {"site": demo_site, "next_attempt_at": now, "created_at": now, "attempts": 5}
    refused = OutboxRecord.objects.create(
        kind=OutboxRecord.Kind.PROGRAM_STATUS,
        status=OutboxRecord.Status.PARKED,
        lead_key="ann@bigco.com",
        payload={"program_id": 1001, "program_name": "Webinar", "status": "Attendee"},
        error_code="1013",
        error_message="Invalid status 'Attendee'",
        **common,
    )
    OutboxRecord.objects.create(
        kind=OutboxRecord.Kind.CAMPAIGN,
        status=OutboxRecord.Status.PARKED,
        lead_key="bo@bigco.com",
        payload={"campaign_id": 3001, "campaign_name": "Send the deck", "tokens": []},
        error_code="1003",
        error_message="Campaign is not active",
        **common,
    )
    home = f"{live_server.url}/sites/{demo_site.pk}/dialogues/"
    context, page, errors = signed_in(browser, home, DEMO_USERNAME, DEMO_PASSWORD)

    page.get_by_role("navigation", name=demo_site.name).get_by_role("link", name="Marketo").click()
    page.get_by_role("navigation", name="Marketo").get_by_role("link", name="Outbox").click()
    rows = page.get_by_role("table", name="Outbox records").locator("tbody tr")
    expect(rows).to_have_count(2)
    row = rows.filter(has_text="Webinar → Attendee")
    expect(row).to_contain_text("1013 Invalid status 'Attendee'")

    row.get_by_role("button", name=f"Retry record {refused.pk}").click()

    expect(page.get_by_text(f"Record #{refused.pk} will be sent again.")).to_be_visible()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Send the deck")
    expect(page.get_by_role("button", name="Retry all parked records (1)")).to_be_visible()
    refused.refresh_from_db()
    assert (refused.status, refused.attempts, refused.error_code) == ("pending", 0, "")
    context.close()
    assert errors == [], "the page raised errors"
