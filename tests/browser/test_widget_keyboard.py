"""A keyboard-only visitor can open the chat, answer it and close it again."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_it_can_be_used_with_the_keyboard_alone(chat, demo_dialogue):
    # A late trigger: the launcher waits in the corner until the visitor opens it themselves.
    demo_dialogue.trigger = {"type": "time_on_page", "seconds": 60}
    demo_dialogue.save(update_fields=["trigger"])
    chat.visit()
    expect(chat.launcher).to_be_visible()
    expect(chat.panel).to_be_hidden()

    chat.launcher.focus()
    chat.page.keyboard.press("Enter")

    expect(chat.panel).to_be_visible()
    demo = chat.widget.get_by_role("button", name="I'd like a demo")
    browsing = chat.widget.get_by_role("button", name="Just browsing")
    expect(demo).to_be_focused()
    expect(demo).to_have_css("outline-style", "solid")
    chat.page.keyboard.press("Tab")
    expect(browsing).to_be_focused()
    expect(chat.log).to_have_attribute("aria-live", "polite")
    expect(chat.launcher).to_have_attribute("aria-expanded", "true")

    chat.page.keyboard.press("Escape")

    expect(chat.panel).to_be_hidden()
    expect(chat.launcher).to_be_focused()
    expect(chat.launcher).to_have_attribute("aria-expanded", "false")

    # Back in, the conversation is where it was, and an answer by keyboard moves it on.
    chat.page.keyboard.press("Enter")
    expect(demo).to_be_focused()
    chat.page.keyboard.press("Enter")
    field = chat.widget.get_by_label("Your answer")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("placeholder", "First name")
