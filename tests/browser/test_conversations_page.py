"""A marketer finds a visitor's conversation by their email and reads its transcript."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import asks_for_a_call, browses, sign_in_at, visitor_talks

pytestmark = pytest.mark.browser


def test_a_marketer_searches_by_email_and_reads_the_transcript(
    browser, page, live_server, page_url, demo_site, demo_marketer
):
    visitor_talks(browser, page_url, asks_for_a_call)
    visitor_talks(browser, page_url, browses)

    sign_in_at(page, f"{live_server.url}/sites/{demo_site.pk}/conversations/", demo_marketer)

    expect(page.get_by_role("heading", name=f"{demo_site.name}: conversations")).to_be_visible()
    rows = page.locator("#conversation-results tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="Anonymous visitor")).to_have_count(1)

    page.evaluate("window.stillThisPage = true")
    page.get_by_label("Visitor email").fill("ANN@example.com")
    page.get_by_label("Visitor email").press("Enter")

    # htmx swaps the results in (no page load) and keeps the address in step with the filters.
    expect(page).to_have_url(re.compile(r"email=ANN%40example\.com"))
    expect(rows).to_have_count(1)
    assert page.evaluate("window.stillThisPage") is True
    row = rows.first
    expect(row).to_contain_text("ann@example.com")
    expect(row).to_contain_text("Completed")
    expect(row).to_contain_text("Email captured")

    row.get_by_role("link", name=re.compile("^Transcript of the conversation")).click()

    expect(page.get_by_role("heading", name="Conversation with ann@example.com")).to_be_visible()
    transcript = page.get_by_role("list", name="Transcript")
    expect(transcript).to_contain_text("What brings you here today?")
    expect(transcript).to_contain_text("Call me after lunch")
