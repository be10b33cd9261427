"""Kenji books a demo in the widget, then cancels it from the link in his invitation."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from meetings.models import Meeting
from tests.browser.conftest import Chat
from tests.browser.test_booking import walk_to_booking

pytestmark = pytest.mark.browser

CANCEL_LINK = re.compile(r"https?://\S+/m/[0-9a-f-]{36}/cancel/[A-Za-z0-9_-]{43}/")


@pytest.fixture(autouse=True)
def tasks_run_in_the_web_process():
    """No Celery worker listens in tests: the tasks run when the booking (or the cancellation)
    commits, as under `make run`."""
    from dynchat.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


def test_a_visitor_cancels_from_the_link_in_the_invitation(page, page_url, demo_site):
    chat = Chat(page, page_url)
    walk_to_booking(chat, "Kenji", "kenji@example.jp")
    first_day = chat.widget.get_by_role("group").first
    first_day.get_by_role("button").first.click()
    chat.widget.get_by_role("button", name=re.compile("^Book ")).click()
    chat.bot_says("You're booked for")
    meeting = Meeting.objects.get()

    (invitation,) = [m for m in mail.outbox if m.to == ["kenji@example.jp"]]
    (link,) = CANCEL_LINK.findall(invitation.body)
    page.goto(link)

    expect(page.get_by_role("heading", name="Cancel your meeting?")).to_be_visible()
    expect(page.locator("header")).to_have_text(demo_site.name)
    expect(page.get_by_text(f"With {meeting.agent_name}")).to_be_visible()
    # Opening the page changed nothing: only the button cancels.
    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.BOOKED
    page.get_by_label("Reason (optional)").fill("Our budget was frozen.")
    page.get_by_role("button", name="Cancel meeting").click()

    expect(page.get_by_role("heading", name="Your meeting is cancelled")).to_be_visible()
    expect(page.get_by_text(f"{meeting.agent_name} has been told")).to_be_visible()
    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.CANCELLED
    assert (meeting.cancelled_by, meeting.cancel_reason) == (None, "Our budget was frozen.")
    (to_agent,) = [m for m in mail.outbox if m.subject.startswith("Cancelled: meeting with")]
    assert to_agent.to == [meeting.agent_email]
    assert "  Reason: Our budget was frozen.\n" in to_agent.body
    (to_kenji,) = [m for m in mail.outbox if m.subject.startswith("Cancelled: your meeting")]
    assert to_kenji.to == ["kenji@example.jp"]

    # Reloading (or a second click from another tab) says it again and changes nothing.
    page.reload()
    expect(page.get_by_role("heading", name="Your meeting is cancelled")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel meeting")).to_have_count(0)
    assert len([m for m in mail.outbox if m.subject.startswith("Cancelled:")]) == 2
