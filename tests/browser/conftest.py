"""Headless Chromium against a live server, to test the widget the way a visitor meets it.

The demo page is opened on one host name (127.0.0.1) while the widget script and its API are
served from the other (localhost), so every test also proves the widget works cross-origin.
One browser per session keeps the suite fast; each test gets a fresh context (empty storage).
"""

import os
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright

from dialogues.models import Dialogue
from dynchat.demo import seed_demo

# Playwright's sync API runs an event loop in the test thread; Django would then refuse ORM
# calls from it. The test thread never runs async code of its own, so this is safe here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]
# Most tests keep the bot's "typing" short; the typing indicator has its own test.
FAST_RESPONSE_DELAY_MS = 50

expect.set_options(timeout=5_000)


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def demo_site(live_server, settings):
    """The seeded demo site, served by the live server, with a quick bot."""
    settings.SITE_ROOT = live_server.url
    settings.ALLOWED_HOSTS = ["*"]
    site = seed_demo()
    site.theme = {**site.theme, "response_delay_ms": FAST_RESPONSE_DELAY_MS}
    site.save(update_fields=["theme"])
    return site


@pytest.fixture
def demo_dialogue(demo_site):
    return Dialogue.objects.get(site=demo_site)


@pytest.fixture
def page_url(live_server):
    """The demo page on the other host name than the one serving the script and the API."""
    parts = urlsplit(live_server.url)
    other = "127.0.0.1" if parts.hostname == "localhost" else "localhost"
    return f"{parts.scheme}://{other}:{parts.port}/demo/"


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    in_flight = set()
    page.on("request", lambda request: in_flight.add(request))
    page.on("requestfinished", lambda request: in_flight.discard(request))
    page.on("requestfailed", lambda request: in_flight.discard(request))
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    yield page
    # Let the live server finish what the page asked of it: a request still running when the
    # database is flushed for the next test would deadlock with the flush.
    for _ in range(50):
        if not in_flight:
            break
        page.wait_for_timeout(100)
    context.close()
    assert errors == [], "the page raised errors"


class Chat:
    """What a visitor does with the widget and what they see in it, through its shadow root."""

    def __init__(self, page, url):
        self.page, self.url = page, url
        self.widget = page.locator("dynchat-widget")
        self.launcher = self.widget.locator(".launcher")
        self.panel = self.widget.locator(".panel")
        self.log = self.widget.locator("[role=log]")
        self.messages = self.log.locator(".msg:not(.typing)")
        self.input = self.widget.locator(".prompt input")

    def visit(self):
        self.page.goto(self.url)
        return self

    def bot_says(self, text):
        expect(self.log.locator(".msg.bot", has_text=text).last).to_be_visible()

    def choose(self, label):
        self.widget.get_by_role("button", name=label, exact=True).click()
        expect(self.log.locator(".msg.visitor").last).to_have_text(label)

    def type(self, text, *, placeholder):
        field = self.widget.get_by_placeholder(placeholder, exact=True)
        field.fill(text)
        field.press("Enter")

    def shown_texts(self):
        return self.messages.all_text_contents()


@pytest.fixture
def chat(page, page_url, demo_site):
    return Chat(page, page_url)


@pytest.fixture
def demo_marketer(demo_site, settings):
    """Mia, a marketing user of the demo site. No worker runs in tests: each chat step's
    report rollup runs right after its commit, as under `make run`."""
    from dialogues import services
    from dialogues.models import Membership
    from tests.conftest import _user

    settings.CELERY_TASK_ALWAYS_EAGER = True
    user = _user("mia")
    services.add_member(site=demo_site, user=user, role=Membership.Role.MARKETER)
    return user


def sign_in_at(page, url: str, user) -> None:
    """Open `url` and sign in on the login page it leads to."""
    from tests.conftest import PASSWORD

    page.goto(url)
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def visitor_talks(browser, page_url, steps) -> None:
    """One visitor (their own browser profile) meets the demo dialogue, then does `steps`."""
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
    """Leaves their name, email and phone, a small team, and a note: no booking."""
    chat.choose("I'd like a demo")
    chat.type("Ann", placeholder="First name")
    chat.type("ann@example.com", placeholder="you@company.com")
    chat.type("+1 415 555 2671", placeholder="+1 415 555 2671")
    chat.choose("1-50")
    chat.type("Call me after lunch", placeholder="Your message")
    chat.bot_says("Someone from our team will be in touch.")
