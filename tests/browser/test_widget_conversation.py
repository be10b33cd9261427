"""A visitor talks to the demo dialogue through the embedded widget, start to finish."""

import json

import pytest
from playwright.sync_api import expect

from widget.models import Conversation, TranscriptEntry

pytestmark = pytest.mark.browser

FINAL_MESSAGE = "Thanks! Someone from our team will be in touch."


def test_it_walks_a_visitor_through_the_demo_dialogue_to_the_end(chat, demo_site):
    chat.visit()
    chat.bot_says("What brings you here today?")

    chat.choose("I'd like a demo")
    chat.bot_says("Great! What's your first name?")
    chat.type("Grace", placeholder="First name")
    chat.bot_says("Thanks Grace. What's your work email?")
    chat.type("grace@example.com", placeholder="you@company.com")
    chat.bot_says("And a phone number we can reach you on?")
    chat.type("+1 415 555 2671", placeholder="+1 415 555 2671")
    chat.bot_says("How big is your team?")
    chat.choose("1-50")
    chat.bot_says("Anything you'd like us to know before we call?")
    chat.type("We run twelve dashboards.", placeholder="Your message")
    chat.bot_says(FINAL_MESSAGE)

    expected = [
        "Hi there! I'm the DynChat assistant.",
        "What brings you here today?",
        "I'd like a demo",
        "Great! What's your first name?",
        "Grace",
        "Thanks Grace. What's your work email?",
        "grace@example.com",
        "And a phone number we can reach you on?",
        "+14155552671",
        "How big is your team?",
        "1-50",
        "Anything you'd like us to know before we call?",
        "We run twelve dashboards.",
        FINAL_MESSAGE,
    ]
    assert chat.shown_texts() == expected
    # The callback the host page queued before the script loaded has fired.
    expect(chat.page.locator("body")).to_have_attribute("data-dynchat-completed", "yes")
    expect(chat.widget.locator(".prompt")).to_be_empty()

    conversation = Conversation.objects.get(site=demo_site)
    assert conversation.status == Conversation.Status.COMPLETED
    entries = TranscriptEntry.objects.filter(conversation=conversation).order_by("seq")
    assert [e.text for e in entries] == expected


def test_it_shows_a_typing_indicator_before_each_bot_message(chat, demo_site):
    demo_site.theme = {**demo_site.theme, "response_delay_ms": 1500}
    demo_site.save(update_fields=["theme"])

    chat.visit()

    typing = chat.log.locator(".typing")
    expect(typing).to_be_visible()
    expect(typing).to_have_text("DynChat is typing")
    expect(chat.messages).to_have_count(0)
    chat.bot_says("Hi there! I'm the DynChat assistant.")
    # The question has its own pause, and its choices wait for it.
    expect(typing).to_be_visible()
    expect(chat.widget.locator(".prompt button")).to_have_count(0)
    chat.bot_says("What brings you here today?")
    expect(typing).to_have_count(0)
    expect(chat.widget.get_by_role("button", name="Just browsing")).to_be_visible()


def test_it_resumes_the_conversation_after_a_page_reload(chat, demo_site):
    chat.visit()
    chat.choose("I'd like a demo")
    chat.type("Grace", placeholder="First name")
    chat.bot_says("Thanks Grace. What's your work email?")
    so_far = chat.shown_texts()

    chat.page.reload()

    expect(chat.messages).to_have_count(len(so_far))
    assert chat.shown_texts() == so_far
    expect(chat.panel).to_be_visible()
    chat.type("grace@example.com", placeholder="you@company.com")
    chat.type("+1 415 555 2671", placeholder="+1 415 555 2671")
    chat.choose("500+")
    chat.bot_says("Pick a time for a 30-minute demo with our team.")

    # A reload at the booking card brings its times back.
    chat.page.reload()
    expect(chat.widget.get_by_label("Time zone")).to_be_visible()
    expect(chat.widget.get_by_role("group").first).to_be_visible()
    chat.choose("None of these times work")
    chat.type("Call me instead.", placeholder="Your message")
    chat.bot_says("Thanks! Someone from our team will be in touch.")

    conversation = Conversation.objects.get(site=demo_site)
    assert conversation.status == Conversation.Status.COMPLETED


def test_it_forgets_a_stored_conversation_the_server_does_not_know(chat, demo_site):
    key = f"dynchat:{demo_site.public_key}:conversation"
    stale = {"id": "2b1f1f64-0a9b-4f45-9a7e-4a7f4a0c8a11", "token": "x" * 43, "open": True}
    chat.page.add_init_script(
        f"localStorage.setItem({json.dumps(key)}, {json.dumps(json.dumps(stale))})"
    )

    chat.visit()

    # The widget got a 404 for the stale conversation, dropped it, and started the dialogue.
    chat.bot_says("What brings you here today?")
    conversation = Conversation.objects.get(site=demo_site)
    stored = chat.page.evaluate(f"JSON.parse(localStorage.getItem({json.dumps(key)}))")
    assert stored["id"] == str(conversation.pk)


def test_it_does_not_offer_a_completed_dialogue_again_after_a_reload(chat, demo_site):
    chat.visit()
    chat.bot_says("What brings you here today?")
    chat.choose("Just browsing")
    chat.bot_says("Enjoy looking around. I'm here if you need me.")

    with chat.page.expect_response(lambda r: r.url.endswith("/sessions")) as session:
        chat.page.reload()

    # The widget sent back the signed note of what this visitor completed ...
    sent = json.loads(session.value.request.post_data)
    assert sent["visitor_state"].split(".")[0] == str(demo_site.dialogues.get().pk)
    # ... and the demo site has nothing else to offer, so nothing is shown or started.
    assert session.value.json()["dialogue"] is None
    chat.page.wait_for_timeout(300)
    assert chat.page.locator("dynchat-widget").count() == 0
    assert Conversation.objects.filter(site=demo_site).count() == 1
