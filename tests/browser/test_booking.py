"""A visitor in another time zone books a meeting from the demo dialogue."""

import re
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from icalendar import Calendar
from playwright.sync_api import expect

from calendars.models import CalendarConnection
from meetings.models import Meeting
from tests.browser.conftest import Chat

pytestmark = pytest.mark.browser

TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture(autouse=True)
def tasks_run_in_the_web_process():
    """No Celery worker listens in tests: run the calendar task when the booking commits, as
    `make run` does."""
    from dynchat.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def only_priya(demo_site):
    """Sam's calendar needs reconnecting, so Priya (London) is the one agent taking meetings:
    a time she is booked at is gone for everyone."""
    CalendarConnection.objects.filter(user__username="sam").update(status="needs_reconnect")


@pytest.fixture
def tokyo_page(browser):
    context = browser.new_context(timezone_id="Asia/Tokyo")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    yield page
    context.close()
    assert errors == [], "the page raised errors"


def walk_to_booking(chat: Chat, name: str, email: str) -> None:
    chat.visit()
    chat.choose("I'd like a demo")
    chat.type(name, placeholder="First name")
    chat.type(email, placeholder="you@company.com")
    chat.type("+1 415 555 2671", placeholder="+1 415 555 2671")
    chat.choose("51-500")
    chat.bot_says("Pick a time for a 30-minute demo with our team.")


def test_a_visitor_in_tokyo_books_a_demo_and_gets_the_invitation(
    tokyo_page, page_url, demo_site, only_priya
):
    chat = Chat(tokyo_page, page_url)
    walk_to_booking(chat, "Kenji", "kenji@example.jp")

    # The widget found the visitor's zone and shows Priya's London hours in Tokyo time.
    zone = chat.widget.get_by_label("Time zone")
    expect(zone).to_have_value("Asia/Tokyo")
    first_day = chat.widget.get_by_role("group").first
    expect(first_day).to_be_visible()
    day_label = first_day.locator("legend").text_content()
    first_time = first_day.get_by_role("button").first
    time_label = first_time.text_content()
    first_time.press("Enter")  # keyboard works as well as a click
    expect(first_time).to_have_attribute("aria-pressed", "true")
    book = chat.widget.get_by_role("button", name=f"Book {day_label} at {time_label}")
    # The confirm button follows the chosen day, so the keyboard reaches it without passing
    # every other day's times.
    expect(first_day.locator("xpath=following-sibling::*[1]")).to_have_text(
        f"Book {day_label} at {time_label}"
    )
    book.click()

    booked = f"{day_label} at {time_label} (Asia/Tokyo)"
    expect(chat.log.locator(".msg.visitor").last).to_have_text(booked)
    chat.bot_says(f"You're booked for {booked}. Your invitation is on its way.")

    meeting = Meeting.objects.get()
    local = meeting.start.astimezone(TOKYO)
    assert day_label == f"{local:%A}, {local.day} {local:%B}"
    assert time_label == f"{local.hour % 12 or 12}:{local:%M} {'AM' if local.hour < 12 else 'PM'}"
    assert (meeting.agent.username, meeting.lead_email) == ("priya", "kenji@example.jp")
    assert meeting.visitor_time_zone == "Asia/Tokyo"
    london = meeting.start.astimezone(ZoneInfo("Europe/London"))
    assert (8, 30) <= (london.hour, london.minute) < (16, 30)  # inside Priya's hours

    # The invitation, with its .ics, is in the outbox (beside Priya's "new meeting" email).
    (invitation,) = [m for m in mail.outbox if m.to == ["kenji@example.jp"]]
    assert "Asia/Tokyo" in invitation.body
    (part,) = [p for p in invitation.attachments if p.get_content_type() == "text/calendar"]
    (event,) = Calendar.from_ical(part.get_payload(decode=True)).walk("VEVENT")
    assert event.decoded("DTSTART") == meeting.start
    assert str(event["UID"]) == meeting.ical_uid

    # The next visitor is not offered that time.
    second = Chat(
        tokyo_page.context.browser.new_context(timezone_id="Asia/Tokyo").new_page(), page_url
    )
    walk_to_booking(second, "Aiko", "aiko@example.jp")
    expect(second.widget.get_by_role("group").first).to_be_visible()
    taken_day = second.widget.get_by_role("group", name=day_label)
    expect(taken_day.get_by_role("button", name=time_label, exact=True)).to_have_count(0)
    second.page.context.close()


def test_a_visitor_can_change_the_time_zone_and_times_follow(
    tokyo_page, page_url, demo_site, only_priya
):
    chat = Chat(tokyo_page, page_url)
    walk_to_booking(chat, "Kenji", "kenji@example.jp")
    first = chat.widget.get_by_role("group").first.get_by_role("button").first
    expect(first).to_be_visible()
    in_tokyo = first.text_content()

    chat.widget.get_by_label("Time zone").select_option("Europe/London")

    expect(chat.widget.get_by_role("group").first.get_by_role("button").first).not_to_have_text(
        in_tokyo
    )
    # Tokyo is 8 or 9 hours ahead of London: the same first time, said in London.
    london_first = chat.widget.get_by_role("group").first.get_by_role("button").first.text_content()
    assert london_first != in_tokyo


def test_a_visitor_whose_time_was_taken_meanwhile_is_told_and_picks_again(
    tokyo_page, page_url, demo_site, only_priya
):
    chat = Chat(tokyo_page, page_url)
    walk_to_booking(chat, "Kenji", "kenji@example.jp")
    first_day = chat.widget.get_by_role("group").first
    day_label = first_day.locator("legend").text_content()
    first_time = first_day.get_by_role("button").first
    time_label = first_time.text_content()
    first_time.click()
    # Meanwhile another visitor books that very time with Priya, the only agent.
    other = Chat(
        tokyo_page.context.browser.new_context(timezone_id="Asia/Tokyo").new_page(), page_url
    )
    walk_to_booking(other, "Aiko", "aiko@example.jp")
    other.widget.get_by_role("group", name=day_label).get_by_role(
        "button", name=time_label, exact=True
    ).click()
    other.widget.get_by_role("button", name=f"Book {day_label} at {time_label}").click()
    other.bot_says("You're booked for")
    other.page.context.close()

    chat.widget.get_by_role("button", name=f"Book {day_label} at {time_label}").click()

    expect(chat.log.locator(".msg.error").last).to_have_text(
        "Sorry, that time was just taken. Please pick another one."
    )
    # Fresh times, without the taken one; the next one can be booked.
    fresh_day = chat.widget.get_by_role("group").first
    expect(fresh_day).to_be_visible()
    taken = chat.widget.get_by_role("group", name=day_label).get_by_role(
        "button", name=time_label, exact=True
    )
    expect(taken).to_have_count(0)
    fresh_day.get_by_role("button").first.click()
    chat.widget.get_by_role("button", name=re.compile("^Book ")).click()
    chat.bot_says("You're booked for")
    assert sorted(Meeting.objects.values_list("lead_email", flat=True)) == [
        "aiko@example.jp",
        "kenji@example.jp",
    ]
