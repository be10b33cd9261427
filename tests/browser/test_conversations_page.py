"""A marketer finds a visitor's conversation by their email and reads its transcript."""

import re

import pytest
from playwright.sync_api import expect

from dialogues import services
from dialogues.models import Membership
from tests.browser.conftest import Chat
from tests.conftest import PASSWORD, _user

pytestmark = pytest.mark.browser


@pytest.fixture
def marketer(demo_site, settings):
    # No worker in tests: the rollup each chat step starts runs right after its commit.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    user = _user("mia")
    services.add_member(site=demo_site, user=user, role=Membership.Role.MARKETER)
    return user


def visitor_talks(browser, page_url, steps) -> None:
    """One visitor (their own browser profile) talks to the demo dialogue."""
    context = browser.new_context()
    try:
        chat = Chat(context.new_page(), page_url).visit()
        chat.bot_says("What brings you here today?")
        steps(chat)
    finally:
        context.close()


def browses(chat: Chat) -> None:
    chat.choose("Just browsing")
    chat.bot_says("Enjoy looking around.")


def asks_for_a_call(chat: Chat) -> None:
    chat.choose("I'd like a demo")
    chat.type("Ann", placeholder="First name")
    chat.type("ann@example.com", placeholder="you@company.com")
    chat.type("+1 415 555 2671", placeholder="+1 415 555 2671")
    chat.choose("1-50")
    chat.type("Call me after lunch", placeholder="Your message")
    chat.bot_says("Someone from our team will be in touch.")


def test_a_marketer_searches_by_email_and_reads_the_transcript(
    browser, page, live_server, page_url, demo_site, marketer
):
    visitor_talks(browser, page_url, asks_for_a_call)
    visitor_talks(browser, page_url, browses)

    page.goto(f"{live_server.url}/sites/{demo_site.pk}/conversations/")
    page.get_by_label("Username").fill(marketer.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

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
