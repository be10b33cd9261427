"""A marketer builds a dialogue with every card type from a blank draft, is shown what to fix
next to the cards when publishing too early, fixes it, previews it in the real widget,
publishes, and a visitor on the customer's page then meets it."""

import pytest
from playwright.sync_api import expect

from dialogues.models import Dialogue, DialogueVersion
from dynchat.demo import DEMO_SITE_NAME, demo_origins
from tests.browser.flow_editor import FlowEditor
from widget.models import Conversation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def editor(page, live_server, settings, maya):
    settings.ALLOWED_HOSTS = ["*"]
    settings.SITE_ROOT = live_server.url
    return FlowEditor(page, live_server.url).sign_in("maya")


def test_a_marketer_builds_every_card_type_from_blank_fixes_the_problems_and_publishes(
    editor, page, acme, browser, page_url
):
    editor.create_dialogue(acme, "Book a demo")
    assert editor.card_ids() == ["hello", "bye"]

    # Every card type: the blank draft has a message and an end; add the rest.
    question = editor.add_card("question", after="hello")
    capture = editor.add_card("capture")
    goal = editor.add_card("goal")
    branch = editor.add_card("branch")
    booking = editor.add_card("booking")
    end = editor.add_card("end")
    assert editor.card_ids() == ["hello", question, "bye", capture, goal, branch, booking, end]

    # Publishing now is refused, and each problem is shown next to its card.
    editor.publish()
    expect(page.get_by_role("heading", name="Not published: fix these first")).to_be_visible()
    expect(editor.problems(question)).to_contain_text("The question has no text")
    expect(editor.problems(question)).to_contain_text("Choice \u201cYes\u201d leads nowhere")
    expect(editor.problems(goal)).to_contain_text("String should have at least 1 character")
    expect(editor.problems(branch)).to_contain_text("The branch has no default")
    expect(editor.problems(booking)).to_contain_text("The booking has no text")
    expect(editor.problems(end)).to_contain_text("No visitor can reach this card")

    # Fix them, card by card; one choice sends visitors to the booking too early.
    editor.fill_card(
        question,
        {
            "text": "Shall we book you a demo?",
            "choice-0-label": "Yes please",
            "choice-0-next": capture,
            "choice-1-label": "Right now",
            "choice-1-next": booking,
        },
    )
    editor.edit(question)
    editor.press(question, "Add a choice")
    editor.fill(
        question, {"choice-2-label": "Not now", "choice-2-value": "later", "choice-2-next": "bye"}
    )
    editor.save(question)
    editor.fill_card(
        capture,
        {"text": "Your work email?", "placeholder": "you@company.com", "skip_if_known": True},
    )
    editor.fill_card(goal, {"name": "Demo requested"})
    editor.edit(branch)
    editor.fill(
        branch,
        {
            "rule-0-cond-0-subject": "lead.email",
            "rule-0-cond-0-operator": "contains",
            "rule-0-cond-0-value": "@",
            "rule-0-next": booking,
            "default_next": end,
        },
    )
    editor.save(branch)
    editor.fill_card(booking, {"text": 'Pick a time, {{lead.firstName | "friend"}}.'})
    editor.fill_card(end, {"text": "We will be in touch."})

    # A bad token is refused in the form itself, next to the field; nothing is saved.
    editor.edit("hello")
    editor.fill("hello", {"text": "Hi {{visitor.name}}"})
    editor.card("hello").get_by_role("button", name="Save card").click()
    expect(editor.card("hello")).to_contain_text("names unknown namespace 'visitor'")
    editor.card("hello").get_by_role("link", name="Cancel").click()
    expect(editor.card("hello")).to_contain_text("Hi! How can we help?")

    # Deleting is undoable.
    editor.delete(end)
    expect(editor.problems(branch)).to_contain_text("The branch has no default")
    editor.undo()
    expect(editor.card(end)).to_be_visible()
    expect(editor.problems(branch)).to_have_count(0)

    # One problem is left, on the booking card: the "Right now" path skips the email.
    editor.publish()
    expect(editor.problems(booking)).to_contain_text(
        f"Offers a booking before the visitor's email is known (on the path hello -> {question}"
        f" -> {booking})"
    )
    expect(page.get_by_text("1 problem to fix before publishing.")).to_be_visible()
    editor.fill_card(question, {"choice-1-next": capture})
    expect(page.get_by_text("Ready to publish.")).to_be_visible()

    # The preview runs the draft in the real widget, restartable, recording nothing.
    page.set_viewport_size({"width": 1280, "height": 1100})  # the panel's whole height
    page.get_by_role("link", name="Preview the draft").click()
    widget = page.frame_locator("iframe.preview-frame").locator("dynchat-widget")
    expect(widget.locator(".msg.bot").first).to_have_text("Hi! How can we help?")
    expect(widget.locator(".msg.bot", has_text="Shall we book you a demo?")).to_be_visible()
    widget.get_by_role("button", name="Not now").click()
    expect(widget.locator(".msg.visitor")).to_have_text("Not now")
    expect(widget.locator(".msg.bot").last).to_have_text("Thanks for stopping by.")
    page.get_by_role("link", name="Restart the preview").click()
    expect(widget.locator(".msg.bot", has_text="Shall we book you a demo?")).to_be_visible()
    expect(widget.locator(".msg.visitor")).to_have_count(0)
    assert Conversation.objects.count() == 0
    page.go_back()
    page.go_back()

    editor.publish()
    expect(page.get_by_text("Published version 1: visitors see it now.")).to_be_visible()
    expect(page.get_by_text("v1 (live)")).to_be_visible()
    dialogue = Dialogue.objects.get(site=acme, name="Book a demo")
    version = DialogueVersion.objects.get(dialogue=dialogue)
    assert dialogue.current_version == version
    assert {card["type"] for card in version.flow["cards"]} == {
        "message",
        "question",
        "capture",
        "branch",
        "goal",
        "booking",
        "end",
    }

    # A visitor on the customer's page meets the published dialogue. The demo host page stands
    # in for Acme's: it embeds the widget of the site named as the demo site.
    acme.name = DEMO_SITE_NAME
    acme.allowed_origins = demo_origins()
    acme.save(update_fields=["name", "allowed_origins"])
    visitor = browser.new_context()
    host = visitor.new_page()
    host.goto(page_url)
    chat = host.locator("dynchat-widget")
    expect(chat.locator(".msg.bot", has_text="Shall we book you a demo?")).to_be_visible()
    chat.get_by_role("button", name="Yes please").click()
    expect(chat.locator(".msg.bot").last).to_have_text("Your work email?")
    assert Conversation.objects.filter(dialogue=dialogue, version=version).count() == 1
    visitor.close()
