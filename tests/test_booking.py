"""Visitors book meetings through the widget API: slots, booking, and what a booking leaves."""

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.db import IntegrityError, connection, transaction
from icalendar import Calendar

from calendars.models import CalendarConnection
from meetings import services as booking
from meetings.models import InvitationTemplate, Meeting
from meetings.tasks import add_meeting_to_calendar
from reports import rollup
from tests.conftest import WidgetClient, make_agent
from widget.models import Conversation, ConversationEvent, TranscriptEntry

PARIS = "Europe/Paris"


def to_booking(widget, dialogue, email="ann@bigco.com"):
    """A conversation of the shared test flow, walked up to its booking card."""
    conversation = widget.start_conversation(dialogue)
    for value in ("yes", "Ann", email, "+1 415 555 2671"):
        response = widget.answer(conversation, value)
        assert response.status_code == 200, response.content
        conversation = {**conversation, **response.json()}
    assert conversation["prompt"]["kind"] == "booking"
    return conversation


def slots(widget, conversation, time_zone=PARIS, **params):
    prompt = conversation["prompt"]
    query = {"card_id": prompt["card_id"], "step": prompt["step"], "time_zone": time_zone}
    query.update(params)
    path = f"/conversations/{conversation['conversation_id']}/slots?" + "&".join(
        f"{k}={v}" for k, v in query.items()
    )
    return widget.get(path, token=conversation["token"])


def book(widget, conversation, when, time_zone=PARIS, **overrides):
    prompt = conversation["prompt"]
    body = {"card_id": prompt["card_id"], "step": prompt["step"], "start": when}
    body["time_zone"] = time_zone
    body.update(overrides)
    return widget.post(
        f"/conversations/{conversation['conversation_id']}/bookings",
        body,
        token=conversation["token"],
    )


def first_slot(widget, conversation):
    days = slots(widget, conversation).json()["days"]
    return days[0]["slots"][0]["start"]


def offered(widget, conversation) -> list[str]:
    days = slots(widget, conversation).json()["days"]
    return [slot["start"] for day in days for slot in day["slots"]]


@pytest.fixture
def booking_chat(acme_widget, acme_dialogue, alex):
    return to_booking(acme_widget, acme_dialogue)


def run_calendar_task():
    """What a Celery worker does with the queued task, run here (tests queue to Redis and no
    worker is listening)."""
    for meeting_id in Meeting.objects.values_list("pk", flat=True):
        add_meeting_to_calendar.apply(args=[str(meeting_id)]).get()


# --- slots --------------------------------------------------------------------------------------


def test_it_offers_the_agents_free_times_by_day_in_the_visitors_zone(acme_widget, booking_chat):
    response = slots(acme_widget, booking_chat, time_zone="Asia/Kolkata")

    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["time_zone"] == "Asia/Kolkata"
    assert body["meeting_minutes"] == 30
    assert len(body["days"]) == 7  # Alex works every day; the card shows 7 days at most
    first = body["days"][0]["slots"][0]
    start = datetime.fromisoformat(first["start"])
    # Times are half-hours in UTC, at least the agent's hour of notice away, said in Kolkata.
    assert start.minute in (0, 30)
    assert start >= datetime.now(UTC) + timedelta(minutes=60)
    local = start.astimezone(ZoneInfo("Asia/Kolkata"))
    assert (
        first["label"] == f"{local.hour % 12 or 12}:{local:%M} {'AM' if local.hour < 12 else 'PM'}"
    )
    assert body["days"][0]["date"] == local.date().isoformat()
    assert body["days"][0]["label"] == f"{local:%A}, {local.day} {local:%B}"


def test_it_offers_no_times_when_no_agent_can_take_meetings(acme_widget, booking_chat, alex):
    CalendarConnection.objects.filter(user=alex).update(status="needs_reconnect")

    response = slots(acme_widget, booking_chat)

    assert response.status_code == 200
    assert response.json()["days"] == []


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "invalid_field", "time_zone"),
        ({"time_zone": "/etc/passwd"}, "invalid_field", "time_zone"),
        ({"step": "two"}, "invalid_field", "step"),
        ({"extra": "1"}, "unknown_field", "extra"),
    ],
)
def test_it_refuses_bad_slot_queries(acme_widget, booking_chat, params, code, field):
    response = slots(acme_widget, booking_chat, **params)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["field"] == field


def test_it_lists_slots_only_for_the_booking_prompt_being_asked(acme_widget, booking_chat):
    response = slots(acme_widget, booking_chat, step=booking_chat["prompt"]["step"] - 1)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_current_card"


def test_it_lists_slots_only_to_the_holder_of_the_conversation_token(acme_widget, booking_chat):
    stranger = {**booking_chat, "token": "not-the-token"}

    assert slots(acme_widget, stranger).status_code == 403


# --- booking ------------------------------------------------------------------------------------


def test_a_visitor_books_a_meeting_and_the_chat_goes_on(
    acme_widget, booking_chat, alex, django_capture_on_commit_callbacks
):
    start = first_slot(acme_widget, booking_chat)

    with django_capture_on_commit_callbacks() as after_commit:
        response = book(acme_widget, booking_chat, start)
    # The report rollup, the calendar task and the agent's email, started once the booking
    # committed.
    assert len(after_commit) == 3
    assert rollup._start in after_commit
    run_calendar_task()

    assert response.status_code == 201, response.content
    body = response.json()
    meeting = Meeting.objects.get()
    when = datetime.fromisoformat(start)
    assert (meeting.agent, meeting.start, meeting.end) == (alex, when, when + timedelta(minutes=30))
    assert (meeting.lead_email, meeting.lead_first_name) == ("ann@bigco.com", "Ann")
    assert meeting.visitor_time_zone == PARIS
    assert meeting.conversation_id.hex == body["conversation_id"].replace("-", "")
    assert body["answer"]["text"] == body["meeting"]["label"]
    assert body["answer"]["text"].endswith("(Europe/Paris)")
    assert body["meeting"]["agent_name"] == "Alex Agent"
    assert body["messages"] == [
        {"card_id": "booked", "text": f"See you on {body['answer']['text']}."}
    ]
    assert body["done"] is True
    assert {"kind": "meeting_booked", "start": start} in body["events"]
    stored = ConversationEvent.objects.get(kind="meeting_booked")
    assert stored.data == {"meeting_id": str(meeting.pk), "start": start}
    transcript = TranscriptEntry.objects.filter(card_id="book", author="visitor").get()
    assert transcript.text == body["answer"]["text"]
    # The built-in calendar needs no provider: the invitation goes out at once.
    meeting.refresh_from_db()
    assert meeting.calendar_status == Meeting.CalendarStatus.BUILTIN
    assert meeting.invitation_sent_at is not None
    assert [m.to for m in mail.outbox] == [["ann@bigco.com"]]


def test_the_invitation_carries_the_sites_text_and_an_ics_the_calendar_can_merge(
    acme_widget, acme, booking_chat
):
    InvitationTemplate.objects.create(
        site=acme,
        subject="Demo with {{agent.name}}",
        body='Hello {{person.firstName}} from {{company.name | "your team"}}: {{meeting.time}}.',
    )
    start = first_slot(acme_widget, booking_chat)

    label = book(acme_widget, booking_chat, start).json()["answer"]["text"]
    run_calendar_task()

    meeting = Meeting.objects.get()
    (message,) = mail.outbox
    assert message.subject == "Demo with Alex Agent"
    assert message.body.startswith("Hello Ann from your team: ")
    day, _, time = label.partition(" at ")  # "Monday, 23 November", "9:00 AM (Europe/Paris)"
    text, _, footer = message.body.partition("\n\n")
    assert text.endswith(f"{time}.") and day in text
    # A template without the cancel link gets it added at the end.
    assert footer.startswith("Can't make it? Cancel the meeting here: http://")
    assert message.reply_to == ["alex@example.com"]
    (part,) = [p for p in message.attachments if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == "REQUEST"
    calendar = Calendar.from_ical(part.get_payload(decode=True))
    assert calendar["METHOD"] == "REQUEST"
    (event,) = calendar.walk("VEVENT")
    assert str(event["UID"]) == f"{meeting.pk.hex}@dynchat"
    assert (event.decoded("DTSTART"), event.decoded("DTEND")) == (meeting.start, meeting.end)
    assert str(event["ORGANIZER"]) == "mailto:alex@example.com"
    assert event["ORGANIZER"].params["CN"] == "Alex Agent"
    assert str(event["ATTENDEE"]) == "mailto:ann@bigco.com"
    assert event["ATTENDEE"].params["RSVP"] == "TRUE"


def test_a_booked_time_is_no_longer_offered(acme_widget, acme_dialogue, booking_chat):
    start = first_slot(acme_widget, booking_chat)
    assert book(acme_widget, booking_chat, start).status_code == 201

    next_visitor = to_booking(acme_widget, acme_dialogue, email="bo@bigco.com")

    assert start not in offered(acme_widget, next_visitor)


def test_a_time_that_was_taken_meanwhile_is_refused_and_nothing_is_left_behind(
    acme_widget, acme_dialogue, booking_chat
):
    start = first_slot(acme_widget, booking_chat)
    other = to_booking(acme_widget, acme_dialogue, email="bo@bigco.com")
    assert book(acme_widget, other, start).status_code == 201
    before = Conversation.objects.get(pk=booking_chat["conversation_id"]).state

    response = book(acme_widget, booking_chat, start)

    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "slot_taken",
        "message": "Sorry, that time was just taken. Please pick another one.",
        "field": "start",
    }
    assert Meeting.objects.count() == 1
    assert Conversation.objects.get(pk=booking_chat["conversation_id"]).state == before
    # The visitor picks again from fresh times, and can book.
    assert book(acme_widget, booking_chat, first_slot(acme_widget, booking_chat)).status_code == 201


@pytest.mark.parametrize(
    "start",
    ["2020-01-06T09:00:00Z", "2026-11-23T09:07:00Z", "2999-01-01T09:00:00Z"],
    ids=["past", "off-the-grid", "beyond-the-horizon"],
)
def test_a_time_never_offered_cannot_be_booked(acme_widget, booking_chat, start):
    response = book(acme_widget, booking_chat, start)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "slot_taken"
    assert not Meeting.objects.exists()


def test_a_second_click_on_the_same_time_books_once(acme_widget, booking_chat):
    start = first_slot(acme_widget, booking_chat)

    first = book(acme_widget, booking_chat, start)
    second = book(acme_widget, booking_chat, start)

    assert first.status_code == 201
    assert second.status_code == 409
    # The booking ended this flow; had it gone on, the code would be not_current_card.
    assert second.json()["error"]["code"] == "conversation_over"
    assert Meeting.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"start": "tomorrow at nine"}, "start"),
        ({"start": "2026-11-23T09:00:00"}, "start"),
        ({"time_zone": "Europe/Atlantis"}, "time_zone"),
        ({"step": "3"}, "step"),
        ({"agent": "alex"}, "agent"),
    ],
)
def test_it_refuses_bad_booking_requests_and_books_nothing(
    acme_widget, booking_chat, change, field
):
    response = book(acme_widget, booking_chat, first_slot(acme_widget, booking_chat), **change)

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert not Meeting.objects.exists()


def test_it_will_not_book_before_the_visitor_gave_an_email(acme_widget, acme, alex):
    flow = {
        "start": "book",
        "cards": [{"id": "book", "type": "booking", "text": "Pick a time."}],
    }
    from dialogues.models import Dialogue

    dialogue = Dialogue.objects.create(site=acme, name="Straight to booking", flow=flow)
    dialogue.status, dialogue.current_version = (
        "published",
        dialogue.versions.create(number=1, flow=flow, published_at=datetime.now(UTC)),
    )
    dialogue.save()
    conversation = acme_widget.start_conversation(dialogue)

    response = book(acme_widget, conversation, first_slot(acme_widget, conversation))

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "email_required"
    assert not Meeting.objects.exists()


def test_only_the_conversation_token_holder_can_book(acme_widget, booking_chat):
    start = first_slot(acme_widget, booking_chat)

    response = book(acme_widget, {**booking_chat, "token": "guessed"}, start)

    assert response.status_code == 403
    assert not Meeting.objects.exists()


def test_another_sites_origin_cannot_book(client, globex, acme, booking_chat, settings):
    start = first_slot(WidgetClient(client, acme), booking_chat)
    foreign = WidgetClient(client, acme, origin="https://evil.example")

    response = book(foreign, booking_chat, start)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert not Meeting.objects.exists()


def test_a_second_agent_takes_a_time_the_first_was_booked_at(
    acme, acme_widget, acme_dialogue, alex
):
    make_agent(acme, "bea")
    first = to_booking(acme_widget, acme_dialogue)
    start = first_slot(acme_widget, first)

    outcomes = []
    for email in ("a@bigco.com", "b@bigco.com", "c@bigco.com"):
        chat = to_booking(acme_widget, acme_dialogue, email=email)
        outcomes.append(book(acme_widget, chat, start).status_code)

    assert outcomes == [201, 201, 409]
    assert sorted(Meeting.objects.values_list("agent__username", flat=True)) == ["alex", "bea"]


def test_the_database_refuses_overlapping_meetings_for_one_agent(acme, alex):
    start = datetime(2026, 11, 23, 9, tzinfo=UTC)

    def meeting(offset, status="booked", agent=alex):
        return Meeting(
            site=acme,
            agent=agent,
            agent_name="Alex",
            agent_email="alex@example.com",
            lead_email="x@bigco.com",
            visitor_time_zone="UTC",
            start=start + timedelta(minutes=offset),
            end=start + timedelta(minutes=offset + 30),
            status=status,
        )

    meeting(0).save()
    meeting(30).save()  # back to back is fine
    meeting(15, status="cancelled").save()  # cancelled meetings hold no time
    meeting(15, agent=make_agent(acme, "bea")).save()  # another agent's calendar
    with pytest.raises(IntegrityError), transaction.atomic():
        meeting(15).save()


# --- many visitors at once ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_many_visitors_booking_one_time_at_once_make_exactly_one_meeting(
    client, acme, acme_dialogue, alex, settings
):
    settings.ALLOWED_HOSTS = ["*"]
    widget = WidgetClient(client, acme)
    chats = [to_booking(widget, acme_dialogue, email=f"v{n}@bigco.com") for n in range(8)]
    start = datetime.fromisoformat(first_slot(widget, chats[0]))
    barrier = threading.Barrier(len(chats))
    results: list = []

    def visitor(chat):
        try:
            barrier.wait()
            results.append(
                booking.book_meeting(
                    site=acme,
                    conversation_id=chat["conversation_id"],
                    token=chat["token"],
                    card_id=chat["prompt"]["card_id"],
                    step=chat["prompt"]["step"],
                    start=start,
                    time_zone=PARIS,
                )
            )
        except booking.SlotTaken as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=visitor, args=(chat,)) for chat in chats]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(isinstance(r, booking.Booked) for r in results) == 1
    assert sum(isinstance(r, booking.SlotTaken) for r in results) == len(chats) - 1
    assert Meeting.objects.count() == 1
    assert ConversationEvent.objects.filter(kind="meeting_booked").count() == 1
