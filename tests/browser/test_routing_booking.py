"""Routing decides who visitors book, end to end in a browser: the demo admin changes the queue
or uploads an account list, visitors book in the demo widget, and the meetings list shows the
agent routing chose.

Sam and Priya get the same hours here (every day, all day, UTC) so that every time offered is
free for both: then only routing decides who gets a meeting."""

import pytest
from playwright.sync_api import expect

from calendars.models import Availability
from dynchat.demo import DEMO_PASSWORD, DEMO_USERNAME
from meetings.models import Meeting
from tests.browser.conftest import Chat
from tests.browser.test_booking import walk_to_booking

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def tasks_run_in_the_web_process():
    from dynchat.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def same_hours(demo_site):
    Availability.objects.filter(user__username__in=["sam", "priya"]).update(
        time_zone="UTC",
        weekly_hours={str(day): [["00:00", "23:30"]] for day in range(1, 8)},
        buffer_after_minutes=0,
    )


@pytest.fixture
def admin(browser, live_server, demo_site):
    context = browser.new_context(timezone_id="UTC")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(DEMO_USERNAME)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    yield page
    context.close()
    assert errors == [], "the page raised errors"


def book_first_time(browser, page_url, name, email):
    """A visitor books the first time offered; returns the time as the widget said it."""
    context = browser.new_context(timezone_id="UTC")
    chat = Chat(context.new_page(), page_url)
    walk_to_booking(chat, name, email)
    first_day = chat.widget.get_by_role("group").first
    day_label = first_day.locator("legend").text_content()
    first_time = first_day.get_by_role("button").first
    time_label = first_time.text_content()
    first_time.click()
    chat.widget.get_by_role("button", name=f"Book {day_label} at {time_label}").click()
    chat.bot_says(f"You're booked for {day_label} at {time_label} (UTC).")
    context.close()


def meeting_row(admin, live_server, demo_site, email):
    admin.goto(f"{live_server.url}/sites/{demo_site.pk}/meetings/")
    row = admin.get_by_role("row").filter(has_text=email)
    expect(row).to_have_count(1)
    return row


def test_after_a_reorder_the_next_visitor_books_the_agent_now_first(
    browser, admin, live_server, demo_site, page_url, same_hours
):
    admin.goto(f"{live_server.url}/sites/{demo_site.pk}/routing/")
    names = admin.locator("#queue-table tbody td.agent")
    expect(names.first).to_contain_text("Sam Rivera")
    expect(admin.get_by_text("Next up: Sam Rivera")).to_be_visible()
    rows = admin.locator("#queue-table tbody tr")
    with admin.expect_response(lambda r: r.url.endswith("/routing/order/")) as saved:
        rows.nth(1).drag_to(rows.nth(0), target_position={"x": 5, "y": 2})
    assert saved.value.status == 200
    expect(names.first).to_contain_text("Priya Shah")
    admin.reload()
    expect(admin.get_by_text("Next up: Priya Shah")).to_be_visible()

    book_first_time(browser, page_url, "Ann", "ann@example.org")
    expect(meeting_row(admin, live_server, demo_site, "ann@example.org")).to_contain_text(
        "Priya Shah"
    )
    # Then Sam's turn, at the same time even: he is free then too.
    book_first_time(browser, page_url, "Bob", "bob@example.org")
    expect(meeting_row(admin, live_server, demo_site, "bob@example.org")).to_contain_text(
        "Sam Rivera"
    )
    assert [m.agent.username for m in Meeting.objects.order_by("assignment")] == ["priya", "sam"]


def test_a_visitor_from_an_uploaded_account_books_its_owner(
    browser, admin, live_server, demo_site, page_url, same_hours
):
    admin.goto(f"{live_server.url}/sites/{demo_site.pk}/routing/accounts/")
    admin.get_by_label("CSV file").set_input_files(
        {
            "name": "accounts.csv",
            "mimeType": "text/csv",
            "buffer": b"company,domain,owner_email\nBigCo,bigco.com,priya@example.com\n",
        }
    )
    admin.get_by_role("button", name="Upload").click()
    expect(admin.get_by_text("Account list imported: 1 added")).to_be_visible()

    # Sam is first in the queue, but BigCo's visitors go to its owner, Priya; others take turns.
    book_first_time(browser, page_url, "Ann", "ann@bigco.com")
    book_first_time(browser, page_url, "Cat", "cat@example.org")

    expect(meeting_row(admin, live_server, demo_site, "ann@bigco.com")).to_contain_text(
        "Priya Shah"
    )
    expect(meeting_row(admin, live_server, demo_site, "cat@example.org")).to_contain_text(
        "Sam Rivera"
    )
    owned = Meeting.objects.get(lead_email="ann@bigco.com")
    assert (owned.agent.username, owned.routed_by) == ("priya", Meeting.RoutedBy.ACCOUNT)


def test_a_visitor_nobody_can_take_reads_the_fallback_message_and_goes_on(
    browser, demo_site, page_url
):
    from routing import services as routing
    from routing.models import QueueMember
    from widget.models import ConversationEvent, TranscriptEntry

    routing.save_fallback_message(
        site=demo_site, message="Our team is fully booked. We'll email you within a day."
    )
    QueueMember.objects.filter(site=demo_site).update(paused=True)
    context = browser.new_context(timezone_id="UTC")
    chat = Chat(context.new_page(), page_url)
    walk_to_booking(chat, "Ann", "ann@example.org")

    expect(
        chat.widget.get_by_text("Our team is fully booked. We'll email you within a day.")
    ).to_be_visible()
    expect(chat.widget.get_by_role("group")).to_have_count(0)  # no days, no times
    event = ConversationEvent.objects.get(kind=ConversationEvent.Kind.ROUTING_FALLBACK)
    assert TranscriptEntry.objects.filter(
        conversation=event.conversation, author="bot", text__startswith="Our team is fully booked"
    ).exists()
    # The card's other way on still works.
    chat.choose("None of these times work")
    chat.bot_says("Anything you'd like us to know before we call?")
    context.close()
