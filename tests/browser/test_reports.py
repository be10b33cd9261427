"""A marketer reads the demo dialogue's report after three visitors talked to it."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import asks_for_a_call, browses, sign_in_at, visitor_talks

pytestmark = pytest.mark.browser


def figure(page, name: str):
    return page.locator(f".report-totals [data-figure={name}]")


def test_a_marketer_sees_the_numbers_and_the_funnel_the_demo_conversations_made(
    browser, page, live_server, page_url, demo_site, demo_dialogue, demo_marketer
):
    visitor_talks(browser, page_url, lambda chat: None)  # sees the question and leaves
    visitor_talks(browser, page_url, browses)
    visitor_talks(browser, page_url, asks_for_a_call)

    sign_in_at(page, f"{live_server.url}/sites/{demo_site.pk}/dialogues/", demo_marketer)
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
    expect(page.locator("figure.chart-figure svg[role=img]").nth(1)).to_contain_text(
        "3 (1 left here)"
    )

    # Known visitors only: none of the three had told us who they were.
    page.get_by_label("Visitors", exact=True).select_option("known")
    page.get_by_role("button", name="Show").first.click()
    expect(figure(page, "triggered")).to_have_text("0")
