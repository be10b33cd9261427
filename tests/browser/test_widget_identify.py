"""The host page tells the widget who its visitor is; the dialogue greets them by name."""

import pytest
from playwright.sync_api import expect

from widget.models import Visitor

pytestmark = pytest.mark.browser


def test_it_greets_an_identified_visitor_and_skips_what_it_already_knows(chat, demo_site):
    # The host page calls identify() through the queue stub, before the script has loaded.
    chat.page.add_init_script(
        "window.DynChat = function () { (DynChat.q = DynChat.q || []).push(arguments); };"
        "DynChat('identify', {email: 'ada@example.com', firstName: 'Ada', password: 'no'});"
    )
    chat.visit()

    chat.bot_says("Hi Ada! I'm the DynChat assistant.")
    chat.choose("I'd like a demo")

    # Name and email are known, so the next question is the phone number.
    chat.bot_says("And a phone number we can reach you on?")
    expect(chat.log.get_by_text("What's your first name?")).to_have_count(0)
    expect(chat.log.get_by_text("What's your work email?")).to_have_count(0)
    visitor = Visitor.objects.get(site=demo_site)
    assert visitor.attributes == {"email": "ada@example.com", "firstName": "Ada"}
