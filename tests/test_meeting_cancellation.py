"""Ann books a demo with Acme and then cannot make it. Her invitation carries a link to cancel;
the page it opens asks before anything happens (mail scanners open links too), and its button
cancels. The time is free again at once; the event goes from the agent's Google or Outlook
calendar without a second notice from Google; the agent is told; Ann gets a cancellation whose
.ics takes the meeting out of her calendar. A wrong link is a plain 404, a second click changes
nothing, and a meeting under way cannot be cancelled online.

The provider clients run against the fake Google and Microsoft servers on loopback; the tasks
run as a worker runs them (Celery's apply(), retries inline)."""

import logging
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from icalendar import Calendar

from calendars.providers import google
from meetings import calendar_events
from meetings import services as booking
from meetings.cancellation import CannotCancel, InvalidReason, cancel_meeting
from meetings.invitations import cancel_token, cancel_url
from meetings.models import InvitationTemplate, Meeting
from meetings.tasks import (
    add_meeting_to_calendar,
    remove_meeting_from_calendar,
    send_cancellation_emails,
)
from tests.conftest import make_agent, sign_in
from tests.test_booking import PARIS, book, first_slot, offered, to_booking

Status = Meeting.CalendarStatus
CANCEL_LINK = re.compile(r"https://chat\.acme\.test(/m/[0-9a-f-]{36}/cancel/[A-Za-z0-9_-]{43}/)")


@pytest.fixture(autouse=True)
def retries_run_inline(settings):
    """apply() runs a retry at once, inline, while errors do not propagate; links in emails
    start with SITE_ROOT."""
    from dynchat.celery import app

    settings.SITE_ROOT = "https://chat.acme.test"
    propagates = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = propagates


@pytest.fixture
def quick_retries(settings):
    settings.CALENDAR_EVENT_MAX_RETRIES = 2


@pytest.fixture
def gus(acme, fake_google):
    """Acme's agent on Google Calendar."""
    agent = make_agent(acme, "gus")
    sign_in(agent, fake_google, "google", "gus@acme.test")
    return agent


@pytest.fixture
def olive(acme, fake_microsoft):
    """Acme's agent on Outlook."""
    agent = make_agent(acme, "olive")
    sign_in(agent, fake_microsoft, "microsoft", "olive@acme.test")
    return agent


@pytest.fixture
def run_task(django_capture_on_commit_callbacks):
    """Run a meeting task as a worker would, and what it leaves for after its commits."""

    def run(task, meeting):
        with django_capture_on_commit_callbacks(execute=True):
            task.apply(args=[str(meeting.pk)]).get(propagate=False)
        meeting.refresh_from_db()
        return meeting

    return run


def booked(widget, dialogue, email="ann@bigco.com") -> Meeting:
    chat = to_booking(widget, dialogue, email=email)
    response = book(widget, chat, first_slot(widget, chat))
    assert response.status_code == 201, response.content
    return Meeting.objects.get(lead_email=email)


@pytest.fixture
def invited(acme_widget, acme_dialogue, run_task):
    """Book as Ann and run the calendar task: her invitation is in the outbox."""

    def invite(email="ann@bigco.com") -> Meeting:
        return run_task(add_meeting_to_calendar, booked(acme_widget, acme_dialogue, email))

    return invite


def invitation_to(address):
    (message,) = [m for m in mail.outbox if m.to == [address] and "Cancelled" not in m.subject]
    return message


def calendar_of(message):
    (part,) = [p for p in message.attachments if p.get_content_type() == "text/calendar"]
    calendar = Calendar.from_ical(part.get_payload(decode=True))
    (event,) = calendar.walk("VEVENT")
    return part, calendar, event


def link_path(message) -> str:
    (path,) = CANCEL_LINK.findall(message.body)
    return path


def page(response) -> str:
    return response.content.decode()


# --- the link in the invitation ----------------------------------------------------------------


def test_the_default_invitation_carries_the_cancel_link_in_its_text_and_its_ics(alex, invited):
    meeting = invited()

    message = invitation_to("ann@bigco.com")
    assert f"Can't make it? Cancel the meeting here: {cancel_url(meeting)}\n" in message.body
    assert message.body.count("/cancel/") == 1  # the default text places it: no footer too
    assert link_path(message) == f"/m/{meeting.pk}/cancel/{cancel_token(meeting.pk)}/"
    _, _, event = calendar_of(message)
    assert cancel_url(meeting) in str(event["DESCRIPTION"])


def test_a_marketers_text_without_the_token_gets_the_link_added_at_the_end(acme, alex, invited):
    InvitationTemplate.objects.create(
        site=acme, subject="Demo", body="See you {{meeting.time}}.\n\nThe Acme team"
    )

    meeting = invited()

    body = invitation_to("ann@bigco.com").body
    assert body.endswith(
        f"The Acme team\n\nCan't make it? Cancel the meeting here: {cancel_url(meeting)}\n"
    )


def test_a_marketers_text_with_the_token_has_the_link_where_she_put_it(acme, alex, invited):
    InvitationTemplate.objects.create(
        site=acme,
        subject="Demo",
        body='Plans changed? {{meeting.cancel_link | "Reply to cancel"}}\nThe Acme team',
    )

    meeting = invited()

    body = invitation_to("ann@bigco.com").body
    assert body == f"Plans changed? {cancel_url(meeting)}\nThe Acme team"


def test_each_meeting_has_its_own_unguessable_link(alex, invited):
    first, second = invited(), invited("bo@bigco.com")

    assert cancel_token(first.pk) != cancel_token(second.pk)
    assert len(cancel_token(first.pk)) == 43  # 256 bits, base64
    assert cancel_token(first.pk) == cancel_token(str(first.pk))  # stable across retries


# --- the cancel page ---------------------------------------------------------------------------


def test_a_wrong_link_is_a_plain_404_that_names_nothing_and_changes_nothing(client, alex, invited):
    meeting, other = invited(), invited("bo@bigco.com")
    wrong = [
        f"/m/{meeting.pk}/cancel/{'A' * 43}/",
        f"/m/{meeting.pk}/cancel/{cancel_token(other.pk)}/",  # another meeting's token
        f"/m/{meeting.pk}/cancel/{cancel_token(meeting.pk)[:-1]}/",
        f"/m/00000000-0000-4000-8000-000000000000/cancel/{cancel_token(meeting.pk)}/",
    ]

    for path in wrong:
        for method in (client.get, client.post):
            response = method(path)
            assert response.status_code == 404, path
            assert "Alex" not in page(response) and "Acme" not in page(response)

    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.BOOKED


def test_opening_the_link_asks_first_and_changes_nothing(client, alex, invited):
    meeting = invited()
    path = link_path(invitation_to("ann@bigco.com"))

    for _ in range(2):  # a mail scanner, then Ann
        response = client.get(path)

    assert response.status_code == 200
    html = page(response)
    assert "Cancel your meeting?" in html
    assert "<header>Acme</header>" in html
    assert "With Alex Agent (Acme)" in html
    local = meeting.start.astimezone(ZoneInfo(PARIS))
    assert f"{local.day} {local:%B} {local.year} at " in html and "(Europe/Paris)" in html
    assert 'method="post"' in html and ">Cancel meeting</button>" in html
    assert response["Cache-Control"].startswith("max-age=0")
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Robots-Tag"] == "noindex"
    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.BOOKED and meeting.cancelled_at is None


def test_the_button_cancels_and_the_page_says_so(
    client, alex, invited, django_capture_on_commit_callbacks
):
    meeting = invited()
    path = link_path(invitation_to("ann@bigco.com"))

    with django_capture_on_commit_callbacks() as after_commit:
        response = client.post(path, {"reason": "  We chose another vendor.  "})

    assert response.status_code == 303 and response["Location"] == path
    assert len(after_commit) == 2  # the calendar removal and the emails
    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.CANCELLED
    assert meeting.cancelled_by is None  # the visitor
    assert meeting.cancel_reason == "We chose another vendor."
    assert timezone.now() - meeting.cancelled_at < timedelta(minutes=1)
    html = page(client.get(path))
    assert "Your meeting is cancelled" in html
    assert "Alex Agent has been told" in html
    assert "<form" not in html


def test_a_second_click_changes_nothing_and_says_it_is_already_cancelled(
    client, alex, invited, django_capture_on_commit_callbacks
):
    invited()
    path = link_path(invitation_to("ann@bigco.com"))
    client.post(path, {"reason": "first"})
    before = Meeting.objects.get()

    with django_capture_on_commit_callbacks() as after_commit:
        response = client.post(path, {"reason": "second"})

    assert response.status_code == 200
    assert "Your meeting is cancelled" in page(response)
    assert after_commit == []
    after = Meeting.objects.get()
    assert (after.cancelled_at, after.cancel_reason) == (before.cancelled_at, "first")


def test_a_meeting_under_way_cannot_be_cancelled_online(client, alex, invited):
    meeting = invited()
    path = link_path(invitation_to("ann@bigco.com"))
    now = timezone.now()
    Meeting.objects.filter(pk=meeting.pk).update(
        start=now - timedelta(minutes=5), end=now + timedelta(minutes=25)
    )

    shown = client.get(path)
    response = client.post(path, {"reason": "late"})

    assert "can no longer be cancelled online" in page(shown) and "<form" not in page(shown)
    assert response.status_code == 409
    assert "can no longer be cancelled online" in page(response)
    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.BOOKED and meeting.cancel_reason == ""


def test_a_reason_over_500_characters_is_refused_and_nothing_changes(client, alex, invited):
    meeting = invited()
    path = link_path(invitation_to("ann@bigco.com"))

    response = client.post(path, {"reason": "x" * 501})

    assert response.status_code == 400
    assert "Nothing was changed" in page(response)
    assert "at most 500 characters" in page(response)
    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.BOOKED


def test_names_are_shown_as_text_never_as_html(client, acme, alex, invited):
    meeting = invited()
    Meeting.objects.filter(pk=meeting.pk).update(agent_name="<script>alert(1)</script>")
    acme.name = "<b>Acme</b>"
    acme.save(update_fields=["name"])

    html = page(client.get(link_path(invitation_to("ann@bigco.com"))))

    assert "<script>alert(1)" not in html and "<b>Acme" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<header>&lt;b&gt;Acme&lt;/b&gt;</header>" in html


def test_a_post_without_the_pages_csrf_token_is_refused(alex, invited):
    meeting = invited()
    strict = Client(enforce_csrf_checks=True)

    response = strict.post(link_path(invitation_to("ann@bigco.com")), {"reason": ""})

    assert response.status_code == 403
    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.BOOKED


def test_too_many_posts_from_one_address_are_slowed_down(client, alex, invited, monkeypatch):
    from meetings import cancel_views

    monkeypatch.setattr(cancel_views, "POSTS_PER_WINDOW", 3)
    meeting = invited()
    guesses = [client.post(f"/m/{meeting.pk}/cancel/{n:043d}/") for n in range(3)]

    response = client.post(link_path(invitation_to("ann@bigco.com")))

    assert [g.status_code for g in guesses] == [404, 404, 404]
    assert response.status_code == 429
    assert "try again in a few minutes" in page(response)
    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.BOOKED


# --- the service -------------------------------------------------------------------------------


def test_an_agent_cancels_through_the_service_and_a_second_time_is_refused(alex, invited):
    meeting = invited()

    cancelled = cancel_meeting(meeting_id=meeting.pk, by=alex, reason="Ill")

    assert (cancelled.status, cancelled.cancelled_by, cancelled.cancel_reason) == (
        Meeting.Status.CANCELLED,
        alex,
        "Ill",
    )
    with pytest.raises(CannotCancel) as refusal:
        cancel_meeting(meeting_id=meeting.pk, by=alex)
    assert refusal.value.code == "already_cancelled"
    assert refusal.value.message == "This meeting is already cancelled."


def test_the_service_refuses_a_started_meeting_a_long_reason_and_an_unknown_id(alex, invited):
    meeting = invited()

    with pytest.raises(CannotCancel) as refusal:
        cancel_meeting(meeting_id=meeting.pk, now=meeting.start)
    assert refusal.value.code == "started"
    with pytest.raises(InvalidReason):
        cancel_meeting(meeting_id=meeting.pk, reason="x" * 501)
    with pytest.raises(Meeting.DoesNotExist):
        cancel_meeting(meeting_id="00000000-0000-4000-8000-000000000000")
    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.BOOKED


def test_the_time_can_be_booked_again_once_cancelled(acme, acme_widget, acme_dialogue, alex):
    first = to_booking(acme_widget, acme_dialogue)
    start = first_slot(acme_widget, first)
    assert book(acme_widget, first, start).status_code == 201
    second = to_booking(acme_widget, acme_dialogue, email="bo@bigco.com")
    assert start not in offered(acme_widget, second)

    cancel_meeting(meeting_id=Meeting.objects.get(lead_email="ann@bigco.com").pk)

    assert start in offered(acme_widget, second)
    prompt = second["prompt"]
    again = booking.book_meeting(
        site=acme,
        conversation_id=second["conversation_id"],
        token=second["token"],
        card_id=prompt["card_id"],
        step=prompt["step"],
        start=datetime.fromisoformat(start),
        time_zone=PARIS,
    )
    assert (again.meeting.agent, again.meeting.start) == (alex, datetime.fromisoformat(start))
    assert sorted(Meeting.objects.values_list("lead_email", "status")) == [
        ("ann@bigco.com", "cancelled"),
        ("bo@bigco.com", "booked"),
    ]


# --- the emails --------------------------------------------------------------------------------


def test_ann_cancels_and_both_she_and_the_agent_are_told_once(client, alex, invited, run_task):
    meeting = invited()
    invitation = invitation_to("ann@bigco.com")
    _, _, invited_event = calendar_of(invitation)
    client.post(link_path(invitation), {"reason": "Budget frozen"})

    run_task(send_cancellation_emails, meeting)
    meeting = run_task(send_cancellation_emails, meeting)  # a second run sends nothing more

    (to_agent,) = [m for m in mail.outbox if m.to == [alex.email]]
    assert to_agent.subject.startswith("Cancelled: meeting with Ann on ")
    assert "  Cancelled by: the visitor, from their invitation\n" in to_agent.body
    assert "  Reason: Budget frozen\n" in to_agent.body
    assert "  Visitor: Ann, ann@bigco.com\n" in to_agent.body
    assert (
        f"Meeting page: https://chat.acme.test/sites/{meeting.site_id}/meetings/{meeting.pk}/"
        in to_agent.body
    )
    (to_ann,) = [m for m in mail.outbox if m.to == ["ann@bigco.com"] and m is not invitation]
    assert to_ann.subject.startswith("Cancelled: your meeting with Alex Agent on ")
    assert "As you asked, your meeting with Alex Agent on " in to_ann.body
    assert "Budget frozen" not in to_ann.body  # her own words are not quoted back to her
    part, calendar, event = calendar_of(to_ann)
    assert part.get_param("method") == "CANCEL"
    assert calendar["METHOD"] == "CANCEL"
    assert event["STATUS"] == "CANCELLED"
    assert str(event["UID"]) == str(invited_event["UID"]) == meeting.ical_uid
    assert event["SEQUENCE"] > invited_event["SEQUENCE"]
    assert event.decoded("DTSTART") == meeting.start
    assert meeting.agent_cancellation_sent_at and meeting.visitor_cancellation_sent_at
    assert len(mail.outbox) == 3


def test_an_agent_who_cancels_before_the_invitation_went_out_sends_no_ics(
    acme_widget, acme_dialogue, alex, run_task
):
    meeting = booked(acme_widget, acme_dialogue)
    cancel_meeting(meeting_id=meeting.pk, by=alex, reason="Double-booked, sorry")

    run_task(add_meeting_to_calendar, meeting)  # too late: no invitation now
    meeting = run_task(send_cancellation_emails, meeting)

    assert meeting.invitation_sent_at is None
    (to_ann,) = [m for m in mail.outbox if m.to == ["ann@bigco.com"]]
    assert "was cancelled by Alex Agent." in to_ann.body
    assert "Reason: Double-booked, sorry" in to_ann.body
    assert to_ann.attachments == []
    (to_alex,) = [m for m in mail.outbox if m.to == [alex.email]]
    assert "  Cancelled by: you\n" in to_alex.body


def test_an_admin_who_cancels_is_named_to_the_agent_and_is_the_team_to_the_visitor(
    maya, alex, invited, run_task
):
    maya.first_name, maya.last_name = "Maya", "Marketer"
    maya.save(update_fields=["first_name", "last_name"])
    meeting = invited()
    cancel_meeting(meeting_id=meeting.pk, by=maya)

    run_task(send_cancellation_emails, meeting)

    (to_alex,) = [m for m in mail.outbox if m.to == [alex.email]]
    assert "  Cancelled by: Maya Marketer (maya@example.com)\n" in to_alex.body
    assert "  Reason: none given\n" in to_alex.body
    (to_ann,) = [m for m in mail.outbox if m.subject.startswith("Cancelled: your")]
    assert "was cancelled by the Acme team." in to_ann.body


# --- the agent's calendar ----------------------------------------------------------------------


def test_the_google_event_is_deleted_without_a_notice_from_google(
    gus, invited, fake_google, run_task
):
    meeting = invited()
    assert len(fake_google.events("gus@acme.test")) == 1
    cancel_meeting(meeting_id=meeting.pk)

    meeting = run_task(remove_meeting_from_calendar, meeting)

    assert meeting.calendar_status == Status.REMOVED
    assert fake_google.events("gus@acme.test") == []
    (gone,) = fake_google.events("gus@acme.test", cancelled=True)
    assert gone["id"] == meeting.provider_event_id
    assert fake_google.sent_updates[-1] == {
        "action": "delete",
        "event_id": meeting.provider_event_id,
        "sendUpdates": "none",
    }


def test_a_rate_limited_delete_waits_as_google_asks_and_then_succeeds(
    gus, invited, fake_google, run_task, quick_retries, caplog
):
    meeting = invited()
    cancel_meeting(meeting_id=meeting.pk)
    fake_google.fail_next("events.delete", 429, retry_after=7)

    with caplog.at_level(logging.INFO, logger="celery.app.trace"):
        meeting = run_task(remove_meeting_from_calendar, meeting)

    assert "retry: Retry in 7.0s" in caplog.text
    assert fake_google.count("events.delete") == 2
    assert meeting.calendar_status == Status.REMOVED
    assert fake_google.events("gus@acme.test") == []


def test_a_google_error_is_retried_then_the_event_goes(
    gus, invited, fake_google, run_task, quick_retries
):
    meeting = invited()
    cancel_meeting(meeting_id=meeting.pk)
    fake_google.fail_next("events.delete", 503)

    meeting = run_task(remove_meeting_from_calendar, meeting)

    assert fake_google.count("events.delete") == 2
    assert meeting.calendar_status == Status.REMOVED


def test_an_event_already_gone_from_google_counts_as_removed(gus, invited, fake_google, run_task):
    meeting, other = invited(), invited("bo@bigco.com")
    google.cancel_event(gus.calendar_connection.pk, meeting.provider_event_id)  # by hand: 410
    Meeting.objects.filter(pk=other.pk).update(provider_event_id="0123456789abcdef")  # 404
    cancel_meeting(meeting_id=meeting.pk)
    cancel_meeting(meeting_id=other.pk)

    meeting = run_task(remove_meeting_from_calendar, meeting)
    other = run_task(remove_meeting_from_calendar, other)

    assert (meeting.calendar_status, other.calendar_status) == (Status.REMOVED, Status.REMOVED)
    assert fake_google.count("events.delete") == 3


def test_google_down_for_good_leaves_the_meeting_marked_and_logged(
    gus, invited, fake_google, run_task, quick_retries, caplog
):
    meeting = invited()
    cancel_meeting(meeting_id=meeting.pk)
    fake_google.fail_next("events.delete", 500, times=10)

    with caplog.at_level(logging.WARNING, logger="meetings.calendar_events"):
        meeting = run_task(remove_meeting_from_calendar, meeting)

    assert meeting.calendar_status == Status.REMOVE_FAILED
    assert "gave up after 3 tries" in meeting.calendar_error
    assert "could not be removed from the calendar" in caplog.text
    assert len(fake_google.events("gus@acme.test")) == 1


def test_the_outlook_event_is_deleted_not_cancelled_with_a_second_message(
    olive, invited, fake_microsoft, run_task
):
    meeting = invited()
    assert len(fake_microsoft.events("olive@acme.test")) == 1
    cancel_meeting(meeting_id=meeting.pk)

    meeting = run_task(remove_meeting_from_calendar, meeting)

    assert meeting.calendar_status == Status.REMOVED
    assert fake_microsoft.events("olive@acme.test") == []
    (gone,) = fake_microsoft.cancelled_events("olive@acme.test")
    assert gone["id"] == meeting.provider_event_id and gone["deleted"] is True
    assert fake_microsoft.counts["events.delete"] == 1
    assert fake_microsoft.counts["events.cancel"] == 0


@pytest.mark.parametrize(
    "fault", [{"status": 429, "retry_after": 3}, {"status": 503}], ids=["throttled", "down"]
)
def test_an_outlook_delete_that_fails_once_is_retried(
    olive, invited, fake_microsoft, run_task, quick_retries, fault
):
    meeting = invited()
    cancel_meeting(meeting_id=meeting.pk)
    fake_microsoft.fail_next("events.delete", **fault)

    meeting = run_task(remove_meeting_from_calendar, meeting)

    assert fake_microsoft.counts["events.delete"] == 2
    assert meeting.calendar_status == Status.REMOVED
    assert fake_microsoft.events("olive@acme.test") == []


def test_an_event_already_gone_from_outlook_counts_as_removed(
    olive, invited, fake_microsoft, run_task
):
    meeting = invited()
    fake_microsoft.account("olive@acme.test").events.clear()  # Olive deleted it herself
    cancel_meeting(meeting_id=meeting.pk)

    meeting = run_task(remove_meeting_from_calendar, meeting)

    assert meeting.calendar_status == Status.REMOVED
    assert fake_microsoft.counts["events.delete"] == 1


def test_a_builtin_calendar_meeting_needs_nothing_removed(alex, invited, run_task):
    meeting = invited()
    cancel_meeting(meeting_id=meeting.pk)

    meeting = run_task(remove_meeting_from_calendar, meeting)

    assert meeting.calendar_status == Status.REMOVED


# --- cancel and create racing ------------------------------------------------------------------


def test_a_meeting_cancelled_before_its_event_was_made_gets_none(
    gus, acme_widget, acme_dialogue, fake_google, run_task
):
    meeting = booked(acme_widget, acme_dialogue)
    cancel_meeting(meeting_id=meeting.pk)

    # The removal runs first: the event is not made yet, so it is the adding task's to settle.
    assert run_task(remove_meeting_from_calendar, meeting).calendar_status == Status.PENDING
    meeting = run_task(add_meeting_to_calendar, meeting)

    assert meeting.calendar_status == Status.REMOVED
    assert fake_google.count("events.insert") == 0
    assert mail.outbox == []  # no invitation for a cancelled meeting


def test_a_cancel_while_google_makes_the_event_leaves_no_event_and_no_invitation(
    gus, acme_widget, acme_dialogue, fake_google, run_task, monkeypatch
):
    meeting = booked(acme_widget, acme_dialogue)
    make_event = google.create_event

    def ann_cancels_meanwhile(connection_id, event):
        created = make_event(connection_id, event)  # Google has made it...
        cancel_meeting(meeting_id=meeting.pk)  # ...as Ann cancels, and the removal runs
        assert run_task(remove_meeting_from_calendar, meeting).calendar_status == Status.PENDING
        return created

    monkeypatch.setattr(google, "create_event", ann_cancels_meanwhile)

    meeting = run_task(add_meeting_to_calendar, meeting)

    assert meeting.calendar_status == Status.REMOVED
    assert fake_google.events("gus@acme.test") == []
    assert len(fake_google.events("gus@acme.test", cancelled=True)) == 1
    assert mail.outbox == []


def test_an_event_whose_answer_was_lost_is_found_by_its_key_after_a_cancel(
    gus, acme_widget, acme_dialogue, fake_google, run_task
):
    meeting = booked(acme_widget, acme_dialogue)
    fake_google.fail_next("events.insert", 503, after=True)  # made, but the answer is lost
    with pytest.raises(calendar_events.TransientCalendarError):
        calendar_events.add_to_calendar(str(meeting.pk))  # the task would retry later...
    cancel_meeting(meeting_id=meeting.pk)  # ...but Ann cancels first

    meeting = run_task(add_meeting_to_calendar, meeting)

    assert meeting.calendar_status == Status.REMOVED
    assert fake_google.events("gus@acme.test") == []
    assert mail.outbox == []


def test_an_outlook_event_whose_answer_was_lost_is_found_by_its_transaction_id(
    olive, acme_widget, acme_dialogue, fake_microsoft, run_task
):
    meeting = booked(acme_widget, acme_dialogue)
    fake_microsoft.fail_next("events.create", status=503, after=True)
    with pytest.raises(calendar_events.TransientCalendarError):
        calendar_events.add_to_calendar(str(meeting.pk))
    assert len(fake_microsoft.events("olive@acme.test")) == 1
    cancel_meeting(meeting_id=meeting.pk)

    meeting = run_task(add_meeting_to_calendar, meeting)

    assert meeting.calendar_status == Status.REMOVED
    assert fake_microsoft.events("olive@acme.test") == []
    assert fake_microsoft.counts["events.create"] == 1  # found, not made again


def test_an_event_made_for_a_cancelled_meeting_that_google_will_not_delete_is_marked(
    gus, acme_widget, acme_dialogue, fake_google, run_task, quick_retries, monkeypatch
):
    meeting = booked(acme_widget, acme_dialogue)
    fake_google.fail_next("events.delete", 500, times=10)
    make_event = google.create_event

    def ann_cancels_meanwhile(connection_id, event):
        created = make_event(connection_id, event)
        cancel_meeting(meeting_id=meeting.pk)
        return created

    monkeypatch.setattr(google, "create_event", ann_cancels_meanwhile)

    meeting = run_task(add_meeting_to_calendar, meeting)

    # The adding task tried to take it off, ran out of retries, and says so: no "could not
    # be added" alert (the meeting is off), no invitation.
    assert meeting.calendar_status == Status.REMOVE_FAILED
    assert "gave up after 3 tries" in meeting.calendar_error
    assert fake_google.count("events.delete") == 3
    assert len(fake_google.events("gus@acme.test")) == 1
    assert mail.outbox == []
