"""The demo admin runs the demo site's routing in a browser: she drags an agent to the top of the
queue and the order outlives a reload; she uploads an account list with a mistake, reads which
row is wrong, fixes the file and sees the accounts listed."""

import re

import pytest
from playwright.sync_api import expect

from dynchat.demo import DEMO_PASSWORD, DEMO_USERNAME
from routing.models import AccountOwner, QueueMember

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin(browser, live_server, demo_site):
    context = browser.new_context()
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    page.goto(f"{live_server.url}/sites/{demo_site.pk}/routing/")
    page.get_by_label("Username").fill(DEMO_USERNAME)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"{demo_site.name}: routing")).to_be_visible()
    yield page
    context.close()
    assert errors == [], "the page raised errors"


def test_an_agent_dragged_to_the_top_of_the_queue_stays_there(admin, demo_site):
    names = admin.locator("#queue-table tbody td.agent")
    expect(names).to_have_text([re.compile("^Sam Rivera"), re.compile("^Priya Shah")])

    rows = admin.locator("#queue-table tbody tr")
    with admin.expect_response(lambda r: r.url.endswith("/routing/order/")) as saved:
        rows.nth(1).drag_to(rows.nth(0), target_position={"x": 5, "y": 2})
    assert saved.value.status == 200
    # The table is re-read from the server after the save: what is shown is what is stored.
    expect(names.first).to_contain_text("Priya Shah")
    expect(admin.locator("#queue-table tbody td.position")).to_have_text(["1", "2"])

    admin.reload()
    expect(names).to_have_text([re.compile("^Priya Shah"), re.compile("^Sam Rivera")])
    stored = QueueMember.objects.filter(site=demo_site).order_by("position")
    assert [(m.user.first_name, m.position) for m in stored] == [("Priya", 0), ("Sam", 1)]


def csv_file(text: str) -> dict:
    return {"name": "accounts.csv", "mimeType": "text/csv", "buffer": text.encode("utf-8")}


def test_an_upload_with_a_mistake_shows_the_row_and_the_fixed_file_is_imported(
    admin, live_server, demo_site
):
    admin.get_by_role("link", name="Accounts").click()
    expect(admin.get_by_role("heading", name=f"{demo_site.name}: account routing")).to_be_visible()
    expect(admin.get_by_text("No accounts yet")).to_be_visible()

    admin.get_by_label("CSV file").set_input_files(
        csv_file(
            "company,domain,owner_email\n"
            "Initech,initech.com,sam@example.com\n"
            "Hooli,hooli,priya@example.com\n"
        )
    )
    admin.get_by_role("button", name="Upload").click()
    expect(admin.get_by_role("alert")).to_contain_text("Nothing was imported")
    errors = admin.get_by_role("table", name="Problems in the file").locator("tbody tr")
    expect(errors).to_have_count(1)
    expect(errors.first.locator("td")).to_have_text(
        ["3", "domain", "“hooli” is not a domain name (such as acme.com)."]
    )
    assert not AccountOwner.objects.filter(site=demo_site).exists()

    admin.get_by_label("CSV file").set_input_files(
        csv_file(
            "company,domain,owner_email\n"
            "Initech,initech.com,sam@example.com\n"
            "Hooli,https://www.hooli.com/,priya@example.com\n"
        )
    )
    admin.get_by_role("button", name="Upload").click()
    expect(
        admin.get_by_text("Account list imported: 2 added, 0 updated, 0 unchanged.")
    ).to_be_visible()
    rows = admin.get_by_role("table", name="Accounts").locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("td").nth(0)).to_have_text("Hooli")
    expect(rows.nth(0).locator("td").nth(1)).to_have_text("hooli.com")
    expect(rows.nth(0).locator("td").nth(2)).to_contain_text("Priya Shah")
    expect(rows.nth(1).locator("td").nth(0)).to_have_text("Initech")
    expect(rows.nth(1).locator("td").nth(2)).to_contain_text("Sam Rivera")
    expect(admin.get_by_role("table", name="Problems in the file")).to_have_count(0)
