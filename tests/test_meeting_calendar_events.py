"""After a booking: the event on the agent's Google or Outlook calendar, and the invitation.

The real provider clients run against fake Google and Microsoft servers on loopback. The task
runs as a worker would run it (Celery's apply(), retries included)."""

from datetime import timedelta

import pytest
from django.core import mail
from icalendar import Calendar

from calendars.models import CalendarConnection
from calendars.providers.base import TransientCalendarError
from dialogues.targeting import ANONYMOUS
from meetings.models import Meeting
from meetings.tasks import add_meeting_to_calendar, retry_delay
from routing.routes import offer
from tests.conftest import make_agent, sign_in
from tests.test_booking import PARIS, book, first_slot, to_booking

Status = Meeting.CalendarStatus


@pytest.fixture
def gus(acme, fake_google):
    """Acme's agent on Google Calendar."""
    agent = make_agent(acme, "gus")
    sign_in(agent, fake_google, "google", "gus@acme.test")
    return agent


@pytest.fixture(autouse=True)
def retries_run_inline():
    """apply() runs a retry at once, inline, but only while errors do not propagate (with
    them on, the first Retry is raised to the caller)."""
    from dynchat.celery import app

    propagates = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = propagates


@pytest.fixture
def quick_retries(settings):
    settings.CALENDAR_EVENT_MAX_RETRIES = 2


def booked(widget, dialogue, email="ann@bigco.com") -> Meeting:
    chat = to_booking(widget, dialogue, email=email)
    response = book(widget, chat, first_slot(widget, chat))
    assert response.status_code == 201, response.content
    return Meeting.objects.get(lead_email=email)


@pytest.fixture
def run_task(django_capture_on_commit_callbacks):
    """Run the task as a worker would: apply() runs each retry at once (see above), and what
    the task leaves for after its commits (alert emails) runs too."""

    def run(meeting):
        with django_capture_on_commit_callbacks(execute=True):
            add_meeting_to_calendar.apply(args=[str(meeting.pk)]).get()
        meeting.refresh_from_db()
        return meeting

    return run


def invitation_event(message):
    (part,) = [p for p in message.attachments if p.get_content_type() == "text/calendar"]
    (event,) = Calendar.from_ical(part.get_payload(decode=True)).walk("VEVENT")
    return event


def test_the_meeting_goes_on_the_agents_google_calendar_once_with_a_meet_link(
    acme_widget, acme_dialogue, gus, fake_google, run_task
):
    meeting = run_task(booked(acme_widget, acme_dialogue))

    (event,) = fake_google.events("gus@acme.test")
    assert event["id"] == meeting.pk.hex  # our key: a retried insert cannot make a second
    assert [a["email"] for a in event["attendees"]] == ["ann@bigco.com"]
    assert event["start"]["dateTime"].startswith(meeting.start.strftime("%Y-%m-%dT%H:%M"))
    assert meeting.calendar_status == Status.CREATED
    assert meeting.provider_event_id == event["id"]
    assert meeting.ical_uid == event["iCalUID"]
    assert meeting.join_url and meeting.join_url == event["hangoutLink"]
    # Google sends nothing itself (sendUpdates=none): our invitation is the only one, and it
    # carries Google's UID, so the visitor's calendar shows one meeting.
    assert fake_google.sent_updates[-1]["sendUpdates"] == "none"
    (message,) = mail.outbox
    assert str(invitation_event(message)["UID"]) == event["iCalUID"]
    assert meeting.join_url in message.body


def test_a_lost_answer_from_google_is_retried_without_a_second_event(
    acme_widget, acme_dialogue, gus, fake_google, quick_retries, run_task
):
    # Google makes the event but the answer never arrives (a 503 after processing).
    fake_google.fail_next("events.insert", 503, after=True)

    meeting = run_task(booked(acme_widget, acme_dialogue))

    assert len(fake_google.events("gus@acme.test")) == 1
    assert fake_google.count("events.insert") == 2
    assert meeting.calendar_status == Status.CREATED
    assert meeting.calendar_attempts == 2
    assert len(mail.outbox) == 1


def test_a_rate_limited_insert_waits_and_then_succeeds(
    acme_widget, acme_dialogue, gus, fake_google, quick_retries, run_task
):
    fake_google.fail_next("events.insert", 429, retry_after=7)

    meeting = run_task(booked(acme_widget, acme_dialogue))

    assert meeting.calendar_status == Status.CREATED
    assert meeting.calendar_attempts == 2
    assert len(fake_google.events("gus@acme.test")) == 1


def test_a_calendar_down_for_good_marks_the_meeting_and_tells_the_agent_and_admins(
    acme_widget, acme_dialogue, gus, maya, fake_google, quick_retries, run_task
):
    fake_google.fail_next("events.insert", 500, times=10)

    meeting = run_task(booked(acme_widget, acme_dialogue))

    assert meeting.calendar_status == Status.FAILED
    assert "gave up after 3 tries" in meeting.calendar_error
    assert fake_google.events("gus@acme.test") == []
    alert, invitation = _split(mail.outbox)
    assert sorted(alert.to) == sorted([gus.email, maya.email])
    assert "not on the calendar" in alert.subject
    assert "Add the attached event to the calendar by hand" in alert.body
    # The visitor is told the truth: the meeting stands (DynChat holds the time) and their
    # invitation comes from us, with our own UID.
    assert invitation.to == ["ann@bigco.com"]
    assert str(invitation_event(invitation)["UID"]) == f"{meeting.pk.hex}@dynchat"
    assert meeting.invitation_sent_at is not None


def _split(outbox):
    (alert,) = [m for m in outbox if m.to != ["ann@bigco.com"]]
    (invitation,) = [m for m in outbox if m.to == ["ann@bigco.com"]]
    return alert, invitation


def test_a_revoked_grant_takes_the_agent_out_of_booking_and_says_so_once(
    acme, acme_widget, acme_dialogue, gus, fake_google, run_task
):
    meeting = booked(acme_widget, acme_dialogue)
    fake_google.revoke_all()
    fake_google.expire_access_tokens()

    meeting = run_task(meeting)

    connection = CalendarConnection.objects.get(user=gus)
    assert connection.status == CalendarConnection.Status.NEEDS_RECONNECT
    assert meeting.calendar_status == Status.FAILED
    assert "reconnect" in meeting.calendar_error
    reconnect = [m for m in mail.outbox if m.subject.startswith("Reconnect your Google")]
    assert len(reconnect) == 1 and reconnect[0].to == [gus.email]
    # Gus offers no more times until he reconnects.
    assert offer(acme, ANONYMOUS).slots == {}


def test_a_meeting_cancelled_before_the_worker_runs_is_left_alone(
    acme_widget, acme_dialogue, gus, fake_google, run_task
):
    meeting = booked(acme_widget, acme_dialogue)
    Meeting.objects.filter(pk=meeting.pk).update(status=Meeting.Status.CANCELLED)

    run_task(meeting)

    assert fake_google.events("gus@acme.test") == []
    assert mail.outbox == []


def test_running_the_task_twice_invites_once(
    acme_widget, acme_dialogue, gus, fake_google, run_task
):
    meeting = booked(acme_widget, acme_dialogue)

    run_task(meeting)
    run_task(meeting)

    assert len(fake_google.events("gus@acme.test")) == 1
    assert len(mail.outbox) == 1


def test_a_booking_checks_the_google_calendar_live_and_skips_a_time_just_taken(
    acme_widget, acme_dialogue, gus, fake_google
):
    chat = to_booking(acme_widget, acme_dialogue)
    start = first_slot(acme_widget, chat)
    # Gus accepts another meeting in Google after the slots were shown (they are cached).
    when = Meeting._meta.get_field("start").to_python(start)
    fake_google.set_busy("gus@acme.test", [(when, when + timedelta(minutes=30))])

    response = book(acme_widget, chat, start)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "slot_taken"
    assert not Meeting.objects.exists()


def test_an_outlook_agents_meeting_gets_a_teams_link_and_graphs_uid(
    acme, acme_widget, acme_dialogue, fake_microsoft, run_task
):
    olive = make_agent(acme, "olive")
    sign_in(olive, fake_microsoft, "microsoft", "olive@acme.test")

    meeting = run_task(booked(acme_widget, acme_dialogue))

    (event,) = fake_microsoft.events("olive@acme.test")
    assert event["transactionId"] == meeting.pk.hex
    assert meeting.calendar_status == Status.CREATED
    assert meeting.ical_uid == event["iCalUId"]
    assert meeting.join_url == event["onlineMeeting"]["joinUrl"]
    (message,) = mail.outbox
    assert str(invitation_event(message)["UID"]) == event["iCalUId"]
    assert PARIS in message.body


def test_retries_wait_as_long_as_the_provider_asks_or_back_off_and_then_give_up(settings):
    settings.CALENDAR_EVENT_MAX_RETRIES = 3
    limited = TransientCalendarError("429", retry_after=7)
    down = TransientCalendarError("503")

    assert retry_delay(limited, retries=0) == 7
    waits = [retry_delay(down, retries=n) for n in range(3)]
    assert 24 <= waits[0] <= 36 and 48 <= waits[1] <= 72 and 96 <= waits[2] <= 144
    assert retry_delay(down, retries=3) is None
