"""Nina, Acme's agent in New York, gets an email for each meeting a visitor books with her: who
the visitor is and what they told the chat, the time in her zone and theirs, the join link, the
page and the dialogue, the whole transcript, and the link to the meeting's page. Once, however
often the task runs, and again later when the mail server was down."""

from smtplib import SMTPServerDisconnected
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.utils import timezone

from meetings.models import Meeting
from meetings.tasks import MAIL_MAX_RETRIES, add_meeting_to_calendar, notify_agent_of_meeting
from tests.conftest import PAGE_URL, make_agent, sign_in
from tests.test_booking import PARIS, book, first_slot, to_booking
from widget.models import Conversation, TranscriptEntry

NEW_YORK = "America/New_York"


@pytest.fixture(autouse=True)
def retries_run_inline(settings):
    """apply() runs a retry at once, inline, while errors do not propagate."""
    from dynchat.celery import app

    settings.SITE_ROOT = "https://chat.acme.test"
    propagates = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = propagates


@pytest.fixture
def nina(acme):
    """Acme's agent, working New York hours on the built-in calendar."""
    return make_agent(acme, "nina", time_zone=NEW_YORK)


def book_as_ann(widget, dialogue, *, told=None) -> Meeting:
    """Ann walks the chat to the booking card and books the first time, in Paris. `told`:
    what the host page had identified her with (the visitor's stored attributes)."""
    chat = to_booking(widget, dialogue)
    if told:
        conversation = Conversation.objects.get(pk=chat["conversation_id"])
        visitor = conversation.visitor
        visitor.attributes = {**visitor.attributes, **told}
        visitor.save(update_fields=["attributes"])
    response = book(widget, chat, first_slot(widget, chat), time_zone=PARIS)
    assert response.status_code == 201, response.content
    return Meeting.objects.get(lead_email="ann@bigco.com")


def spelled(moment, zone_name: str) -> str:
    """How the email writes a time, worked out here independently of the code under test."""
    local = moment.astimezone(ZoneInfo(zone_name))
    clock = f"{local.hour % 12 or 12}:{local:%M} {'AM' if local.hour < 12 else 'PM'}"
    return f"{local:%A}, {local.day} {local:%B} {local.year} at {clock} ({zone_name})"


def run(task, meeting):
    task.apply(args=[str(meeting.pk)]).get(propagate=False)
    meeting.refresh_from_db()
    return meeting


def agent_emails(nina):
    return [m for m in mail.outbox if m.to == [nina.email]]


def test_nina_is_told_who_booked_when_in_both_zones_and_what_was_said(
    acme_widget, acme_dialogue, nina
):
    meeting = book_as_ann(
        acme_widget,
        acme_dialogue,
        told={"company": "BigCo", "jobTitle": "CTO", "companySize": "51-500"},
    )
    run(add_meeting_to_calendar, meeting)

    meeting = run(notify_agent_of_meeting, meeting)

    (email,) = agent_emails(nina)
    ours = spelled(meeting.start, NEW_YORK)
    assert email.subject == f"New meeting: Ann (BigCo) on {ours}"
    assert email.reply_to == ["ann@bigco.com"]
    body = email.body
    assert "Ann (BigCo) booked a meeting with you in the Acme chat." in body
    assert f"  Your time: {ours}\n" in body
    assert f"  Their time: {spelled(meeting.start, PARIS)}\n" in body
    assert "  Length: 30 minutes\n" in body
    assert "  Join link: none (see the calendar event)\n" in body
    # What the chat captured and what the page told us about her, known fields first.
    visitor_block = body.split("Visitor\n", 1)[1].split("\n\n", 1)[0]
    assert visitor_block.splitlines() == [
        "  First name: Ann",
        "  Email: ann@bigco.com",
        "  Company: BigCo",
        "  Phone: +14155552671",  # as the capture card stored it
        "  Company size: 51-500",
        "  Job title: CTO",
    ]
    assert "  Dialogue: Book a demo\n" in body
    assert f"  Page: {PAGE_URL}\n" in body
    assert (
        f"Meeting page: https://chat.acme.test/sites/{meeting.site_id}/meetings/{meeting.pk}/\n"
        in body
    )
    transcript = body.split("Transcript\n", 1)[1]
    assert transcript.startswith("Bot: Hi there!\nBot: Want a demo?\nVisitor: Yes please\n")
    assert "Visitor: ann@bigco.com\n" in transcript
    assert "Bot: Pick a time with our team.\n" in transcript
    label = spelled(meeting.start, PARIS).replace(f" {meeting.start.year} at", " at")
    assert transcript.endswith(f"Visitor: {label}\nBot: See you on {label}.\n")
    assert meeting.agent_notified_at is not None


def test_the_transcript_matches_the_conversation_line_for_line(acme_widget, acme_dialogue, nina):
    meeting = book_as_ann(acme_widget, acme_dialogue)

    run(notify_agent_of_meeting, meeting)

    (email,) = agent_emails(nina)
    entries = TranscriptEntry.objects.filter(conversation_id=meeting.conversation_id)
    expected = [
        f"{'Bot' if e.author == 'bot' else 'Visitor'}: {e.text}" for e in entries.order_by("seq")
    ]
    assert len(expected) > 8
    assert email.body.split("Transcript\n", 1)[1].splitlines() == expected


def test_nothing_a_visitor_types_can_pass_for_a_line_of_ours(acme_widget, acme_dialogue, nina):
    meeting = book_as_ann(
        acme_widget,
        acme_dialogue,
        told={"notes": "hello\nMeeting page: https://evil.test/"},
    )
    TranscriptEntry.objects.create(
        conversation_id=meeting.conversation_id,
        seq=999,
        author="visitor",
        card_id="book",
        text="thanks\nBot: please also wire money",
        created_at=timezone.now(),
    )

    run(notify_agent_of_meeting, meeting)

    (email,) = agent_emails(nina)
    lines = email.body.splitlines()
    assert "  Notes: hello Meeting page: https://evil.test/" in lines
    assert [line for line in lines if line.startswith("Meeting page:")] == [
        f"Meeting page: https://chat.acme.test/sites/{meeting.site_id}/meetings/{meeting.pk}/"
    ]
    assert lines[-2:] == ["Visitor: thanks", "    Bot: please also wire money"]


def test_a_google_meeting_email_carries_its_meet_link(
    acme, acme_widget, acme_dialogue, fake_google
):
    gus = make_agent(acme, "gus")
    sign_in(gus, fake_google, "google", "gus@acme.test")
    meeting = book_as_ann(acme_widget, acme_dialogue)
    run(add_meeting_to_calendar, meeting)

    meeting = run(notify_agent_of_meeting, meeting)

    (email,) = agent_emails(gus)
    assert meeting.join_url.startswith("https://meet.google.com/")
    assert f"  Join link: {meeting.join_url}\n" in email.body


def test_the_email_waits_a_little_for_the_calendar_then_goes_without_the_link(
    acme_widget, acme_dialogue, nina
):
    meeting = book_as_ann(acme_widget, acme_dialogue)

    # The calendar task has not run: the email task waits (its retries run inline here).
    meeting = run(notify_agent_of_meeting, meeting)

    assert meeting.calendar_status == Meeting.CalendarStatus.PENDING
    (email,) = agent_emails(nina)
    assert "  Join link: none (see the calendar event)\n" in email.body
    # The calendar task then invites the visitor and writes to nobody else.
    run(add_meeting_to_calendar, meeting)
    assert len(agent_emails(nina)) == 1
    assert [m.to for m in mail.outbox] == [[nina.email], ["ann@bigco.com"]]


def test_running_the_task_twice_emails_nina_once(acme_widget, acme_dialogue, nina):
    meeting = book_as_ann(acme_widget, acme_dialogue)
    run(add_meeting_to_calendar, meeting)

    first = run(notify_agent_of_meeting, meeting).agent_notified_at
    second = run(notify_agent_of_meeting, meeting).agent_notified_at

    assert len(agent_emails(nina)) == 1
    assert first is not None and second == first


def test_a_meeting_cancelled_before_the_email_went_gets_no_new_meeting_email(
    acme_widget, acme_dialogue, nina
):
    meeting = book_as_ann(acme_widget, acme_dialogue)
    Meeting.objects.filter(pk=meeting.pk).update(status=Meeting.Status.CANCELLED)

    meeting = run(notify_agent_of_meeting, meeting)

    assert agent_emails(nina) == []
    assert meeting.agent_notified_at is None


class FlakyMailServer(EmailBackend):
    """The locmem backend behind a mail server that drops the first `failures` messages."""

    failures = 0

    def send_messages(self, messages):
        if FlakyMailServer.failures:
            FlakyMailServer.failures -= 1
            raise SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)


@pytest.fixture
def flaky_mail(settings):
    settings.EMAIL_BACKEND = f"{__name__}.FlakyMailServer"
    yield FlakyMailServer
    FlakyMailServer.failures = 0


def test_a_mail_server_that_drops_the_email_is_tried_again(
    acme_widget, acme_dialogue, nina, flaky_mail
):
    meeting = book_as_ann(acme_widget, acme_dialogue)
    run(add_meeting_to_calendar, meeting)
    flaky_mail.failures = 2

    meeting = run(notify_agent_of_meeting, meeting)

    assert flaky_mail.failures == 0
    assert len(agent_emails(nina)) == 1
    assert meeting.agent_notified_at is not None


def test_a_mail_server_down_for_good_leaves_the_email_unsent_and_unmarked(
    acme_widget, acme_dialogue, nina, flaky_mail
):
    meeting = book_as_ann(acme_widget, acme_dialogue)
    run(add_meeting_to_calendar, meeting)
    flaky_mail.failures = MAIL_MAX_RETRIES + 5

    result = notify_agent_of_meeting.apply(args=[str(meeting.pk)])

    assert isinstance(result.result, SMTPServerDisconnected)  # the task failed, and says why
    assert flaky_mail.failures == 4  # one first try and MAIL_MAX_RETRIES retries
    meeting.refresh_from_db()
    assert agent_emails(nina) == []
    assert meeting.agent_notified_at is None
