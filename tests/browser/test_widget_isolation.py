"""The widget is a guest on the host page: nothing leaks in or out of it."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

HOSTILE_NAME = "<script>alert(1)</script><b>bold</b>"


def test_it_shows_markup_typed_by_a_visitor_as_literal_text(chat):
    dialogs = []
    chat.page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    chat.visit()
    chat.choose("I'd like a demo")

    chat.type(HOSTILE_NAME, placeholder="First name")

    chat.bot_says("What's your work email?")
    answer = chat.log.locator(".msg.visitor").last
    assert answer.evaluate("node => node.textContent") == HOSTILE_NAME
    question = chat.log.locator(".msg.bot").last
    assert question.evaluate("node => node.textContent") == (
        f"Thanks {HOSTILE_NAME}. What's your work email?"
    )
    expect(chat.widget.locator("b")).to_have_count(0)
    expect(chat.widget.locator("script")).to_have_count(0)
    assert dialogs == []


def test_it_keeps_the_host_pages_css_out_of_the_widget(chat, demo_site):
    demo_site.theme = {**demo_site.theme, "primary_color": "#0a7d38", "text_color": "#fffff0"}
    demo_site.save(update_fields=["theme"])
    chat.visit()

    choice = chat.widget.get_by_role("button", name="Just browsing")
    expect(choice).to_be_visible()

    # The host page paints every button, div and p #c00 with !important...
    host_button = chat.page.get_by_role("button", name="Open the chat")
    expect(host_button).to_have_css("color", "rgb(204, 0, 0)")
    # ...and none of it reaches the widget, which wears the site's theme.
    for button in (choice, chat.launcher):
        expect(button).to_have_css("color", "rgb(255, 255, 240)")
        expect(button).to_have_css("background-color", "rgb(10, 125, 56)")
    expect(chat.messages.first).to_have_css("color", "rgb(29, 29, 31)")
    expect(chat.messages.first).not_to_have_css("font-family", "Georgia, serif")


def test_it_adds_no_global_but_dynchat(page, page_url, demo_site):
    # Remember the window's own properties before any page script runs (on document, not window).
    page.add_init_script("document.globalsBefore = Object.getOwnPropertyNames(window);")
    page.goto(page_url)
    expect(page.locator("dynchat-widget .msg.bot").first).to_be_visible()

    added = page.evaluate(
        "() => { const before = new Set(document.globalsBefore);"
        " return Object.getOwnPropertyNames(window).filter(name => !before.has(name)); }"
    )
    assert added == ["DynChat"]
    assert page.evaluate("window.onmessage") is None


def test_it_keeps_going_when_a_host_callback_throws(chat):
    chat.page.add_init_script(
        "window.DynChat = function () { (DynChat.q = DynChat.q || []).push(arguments); };"
        "DynChat('on', 'triggered', function () { throw new Error('the host page has a bug'); });"
        "DynChat('on', 'engaged', function () { throw new Error('and another one'); });"
    )
    chat.visit()

    chat.choose("Just browsing")

    chat.bot_says("Enjoy looking around. I'm here if you need me.")
    expect(chat.page.locator("body")).to_have_attribute("data-dynchat-completed", "yes")
