"""A marketer reads the demo dialogue's report after three visitors talked to it."""

import pytest
from playwright.sync_api import expect

from dialogues import services
from dialogues.models import Membership
from tests.browser.conftest import Chat
from tests.conftest import PASSWORD, _user

pytestmark = pytest.mark.browser


@pytest.fixture
def marketer(demo_site, settings):
    # No worker in tests: each chat step's rollup runs right after its commit, as under
    # `make run`.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    user = _user("mia")
    services.add_member(site=demo_site, user=user, role=Membership.Role.MARKETER)
    return user


def talk(browser, page_url, steps) -> None:
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


def leaves_an_email(chat: Chat) -> None:
    chat.choose("I'd like a demo")
    chat.type("Ann", placeholder="First name")
    chat.type("ann@example.com", placeholder="you@company.com")
    chat.type("+1 415 555 2671", placeholder="+1 415 555 2671")
    chat.choose("1-50")
    chat.type("Call me after lunch", placeholder="Your message")
    chat.bot_says("Someone from our team will be in touch.")


def figure(page, name: str):
    return page.locator(f".report-totals [data-figure={name}]")


def test_a_marketer_sees_the_numbers_and_the_funnel_the_demo_conversations_made(
    browser, page, live_server, page_url, demo_site, demo_dialogue, marketer
):
    talk(browser, page_url, lambda chat: None)  # sees the question and leaves
    talk(browser, page_url, browses)
    talk(browser, page_url, leaves_an_email)

    page.goto(f"{live_server.url}/sites/{demo_site.pk}/dialogues/")
    page.get_by_label("Username").fill(marketer.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name=f"Report of {demo_dialogue.name}").click()

    expect(page.get_by_role("heading", name=f"Report: {demo_dialogue.name}")).to_be_visible()
    expect(figure(page, "triggered")).to_have_text("3")
    expect(figure(page, "engaged")).to_have_text("2")
    expect(figure(page, "completed")).to_have_text("2")
    expect(figure(page, "captured")).to_have_text("1")
    expect(figure(page, "engagement_rate")).to_have_text("66.7%")
    expect(figure(page, "conversion_rate")).to_have_text("50.0%")

    funnel = page.get_by_role("table", name="Cards of version 1")
    question = funnel.locator("tr[data-card=intent]")
    expect(question.locator("th")).to_have_text("What brings you here today?")
    expect(question.locator("[data-figure=reached]")).to_have_text("3")
    expect(question.locator("[data-figure=answered]")).to_have_text("2")
    expect(question.locator("[data-figure=dropped]")).to_have_text("1")
    email = funnel.locator("tr[data-card=ask-email]")
    expect(email.locator("[data-figure=reached]")).to_have_text("1")
    expect(email.locator("[data-figure=dropped]")).to_have_text("0")
    expect(funnel.locator("tr[data-card=goodbye] [data-figure=reached]")).to_have_text("1")
    # The chart draws the same funnel, its figures printed beside the bars.
    expect(page.locator("figure.chart-figure svg[role=img]").nth(1)).to_contain_text("3 (1 left here)")

    # Known visitors only: none of the three had told us who they were.
    page.get_by_label("Visitors", exact=True).select_option("known")
    page.get_by_role("button", name="Show").first.click()
    expect(figure(page, "triggered")).to_have_text("0")
