"""A visitor's invalid answer is re-asked, shown with the reason, and stored nowhere."""

import pytest
from playwright.sync_api import expect

from widget.models import ConversationEvent, TranscriptEntry, Visitor

pytestmark = pytest.mark.browser

BAD_EMAIL = "grace@@example"


def test_it_reasks_an_invalid_email_and_stores_only_the_valid_one(chat, demo_site):
    chat.visit()
    chat.choose("I'd like a demo")
    chat.type("Grace", placeholder="First name")
    chat.bot_says("Thanks Grace. What's your work email?")

    chat.type(BAD_EMAIL, placeholder="you@company.com")

    error = chat.log.locator(".msg.error")
    expect(error).to_have_text("That doesn't look like an email address. Please try again.")
    # The same question stays open, ready for another try, and nothing was echoed as an answer.
    field = chat.widget.get_by_placeholder("you@company.com")
    expect(field).to_be_enabled()
    expect(field).to_have_attribute("type", "email")
    expect(field).to_be_focused()
    expect(chat.log.locator(".msg.visitor")).to_have_text(["I'd like a demo", "Grace"])

    chat.type("grace@example.com", placeholder="you@company.com")
    chat.bot_says("And a phone number we can reach you on?")
    expect(chat.log.locator(".msg.visitor").last).to_have_text("grace@example.com")

    assert not TranscriptEntry.objects.filter(text__contains=BAD_EMAIL).exists()
    assert not any(BAD_EMAIL in str(e.data) for e in ConversationEvent.objects.all())
    visitor = Visitor.objects.get(site=demo_site)
    assert visitor.attributes == {"firstName": "Grace", "email": "grace@example.com"}
    assert visitor.email == "grace@example.com"
