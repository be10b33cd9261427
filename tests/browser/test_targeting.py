"""The demo admin targets the demo dialogue from its targeting page, and a visitor on the host
page sees it or not: a page rule, then an audience rule on who the visitor is."""

import pytest
from playwright.sync_api import expect

from dynchat.demo import DEMO_PASSWORD, DEMO_USERNAME

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def marketer(browser, live_server, demo_site, demo_dialogue):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_server.url}/sites/{demo_site.pk}/dialogues/{demo_dialogue.pk}/targeting/")
    page.get_by_label("Username").fill(DEMO_USERNAME)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Targeting: {demo_dialogue.name}")).to_be_visible()
    yield page
    context.close()


class Visitor:
    """A visitor's browser: each visit() a first visit unless `again` keeps their storage."""

    def __init__(self, browser, url):
        self.browser, self.url, self.context = browser, url, None

    def visit(self, *, again=False):
        if self.context is None or not again:
            if self.context is not None:
                self.context.close()
            self.context = self.browser.new_context()
            self.page = self.context.new_page()
        with self.page.expect_response(lambda r: r.url.endswith("/sessions")) as session:
            self.page.goto(self.url)
        return session.value.json()

    def sees_the_dialogue(self, first_words):
        widget = self.page.locator("dynchat-widget")
        expect(widget.locator(".msg.bot").first).to_contain_text(first_words)

    def sees_no_chat(self):
        # The session has answered: a widget with no dialogue to offer adds nothing to the page.
        self.page.wait_for_timeout(300)
        expect(self.page.locator("dynchat-widget")).to_have_count(0)

    def close(self):
        if self.context is not None:
            self.context.close()


@pytest.fixture
def visitor(browser, page_url):
    visitor = Visitor(browser, page_url)
    yield visitor
    visitor.close()


def save(marketer, dialogue_name):
    marketer.get_by_role("button", name="Save targeting").click()
    expect(marketer.get_by_text(f"Targeting of “{dialogue_name}” saved.")).to_be_visible()


def first_words(dialogue):
    return dialogue.current_version.flow["cards"][0]["text"].split("{{")[0].strip()[:10]


def test_a_page_rule_shows_the_dialogue_only_on_its_pages(marketer, visitor, demo_dialogue):
    pages = marketer.get_by_label("Show on these pages")
    pages.fill("http://*/pricing/*")
    save(marketer, demo_dialogue.name)
    assert visitor.visit()["dialogue"] is None
    visitor.sees_no_chat()

    pages.fill("http://*/pricing/*\nhttp://*/demo/*")
    save(marketer, demo_dialogue.name)
    assert visitor.visit()["dialogue"]["id"] == demo_dialogue.pk
    visitor.sees_the_dialogue(first_words(demo_dialogue))

    marketer.get_by_label("Never on these pages").fill(
        "http://localhost:*/demo/\nhttp://127.0.0.1:*/demo/"
    )
    save(marketer, demo_dialogue.name)
    assert visitor.visit()["dialogue"] is None


def test_an_audience_rule_waits_for_a_known_visitor(marketer, visitor, demo_dialogue):
    marketer.get_by_role("button", name="Add a group of conditions").click()
    marketer.get_by_label("Source").select_option(label="Person")
    marketer.get_by_label("Field").fill("email")
    marketer.get_by_label("Operator").select_option(label="is not empty")
    save(marketer, demo_dialogue.name)
    expect(marketer.get_by_label("Operator")).to_have_value("is_not_empty")

    assert visitor.visit()["dialogue"] is None
    visitor.sees_no_chat()
    with visitor.page.expect_response(lambda r: r.url.endswith("/visitors/identify")):
        visitor.page.evaluate("DynChat('identify', {email: 'ana@bigco.example'})")
    assert visitor.visit(again=True)["dialogue"]["id"] == demo_dialogue.pk
    visitor.sees_the_dialogue(first_words(demo_dialogue))

    # "Person email is empty" is the anonymous visitors' dialogue: the known visitor loses it.
    marketer.get_by_label("Operator").select_option(label="is empty")
    save(marketer, demo_dialogue.name)
    assert visitor.visit(again=True)["dialogue"] is None
    assert visitor.visit()["dialogue"]["id"] == demo_dialogue.pk


def test_a_scroll_depth_trigger_waits_for_the_scroll_then_fires_at_once_on_later_visits(
    visitor, demo_dialogue
):
    from dialogues.models import Dialogue

    Dialogue.objects.filter(pk=demo_dialogue.pk).update(
        trigger={"type": "scroll_depth", "seconds": 0, "percent": 60}
    )
    visitor.visit()
    visitor.context.close()
    # A long host page: the visitor sees its top fifth at first.
    visitor.context = visitor.browser.new_context(viewport={"width": 1000, "height": 800})
    visitor.page = visitor.context.new_page()
    visitor.page.add_init_script(
        "document.addEventListener('DOMContentLoaded', function () {"
        " var tall = document.createElement('div'); tall.style.height = '4000px';"
        " document.body.appendChild(tall); });"
    )
    assert visitor.visit(again=True)["dialogue"]["trigger"]["percent"] == 60
    widget = visitor.page.locator("dynchat-widget")
    visitor.page.wait_for_timeout(300)
    expect(widget.locator(".msg")).to_have_count(0)
    visitor.page.mouse.wheel(0, 1000)
    visitor.page.wait_for_timeout(300)
    expect(widget.locator(".msg")).to_have_count(0)
    visitor.page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    visitor.sees_the_dialogue(first_words(demo_dialogue))
    # Met once, the trigger fires at once on later pages, even with no stored conversation to
    # resume (here: forgotten).
    visitor.page.evaluate(
        "Object.keys(localStorage).filter(k => k.endsWith(':conversation'))"
        ".forEach(k => localStorage.removeItem(k))"
    )
    visitor.visit(again=True)
    visitor.sees_the_dialogue(first_words(demo_dialogue))
    assert visitor.page.evaluate("window.scrollY") == 0


def test_dragging_a_row_of_the_dialogue_list_changes_which_dialogue_wins(
    marketer, live_server, demo_site, demo_dialogue
):
    from dialogues import services
    from dialogues.models import Dialogue

    services.create_dialogue(site=demo_site, name="Spring campaign", starter="blank")
    services.create_dialogue(site=demo_site, name="Pricing help", starter="blank")
    marketer.goto(f"{live_server.url}/sites/{demo_site.pk}/dialogues/")
    rows = marketer.locator("#dialogue-table tbody tr")
    names = rows.locator("td:nth-child(2)")
    expect(names).to_have_text([demo_dialogue.name, "Spring campaign", "Pricing help"])

    rows.nth(2).drag_to(rows.nth(0), target_position={"x": 5, "y": 2})
    expect(names).to_have_text(["Pricing help", demo_dialogue.name, "Spring campaign"])
    # The table was re-read from the server: the priorities shown are the stored ones.
    expect(rows.locator("td.priority")).to_have_text(["3", "2", "1"])
    stored = Dialogue.objects.filter(site=demo_site).order_by("-priority")
    assert [d.name for d in stored] == ["Pricing help", demo_dialogue.name, "Spring campaign"]

    # The arrows do the same without dragging.
    marketer.get_by_role("button", name=f"Move {demo_dialogue.name} down").click()
    expect(names).to_have_text(["Pricing help", "Spring campaign", demo_dialogue.name])
