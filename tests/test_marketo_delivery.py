"""Delivering the outbox to Marketo (marketo_sync/delivery.py), against the fake Marketo on
loopback: the lead, its activities, program statuses and campaign requests arrive once, in
order, in batches; outages, 606 storms, lost answers and dead deliveries lose and repeat
nothing; what Marketo refuses for good is parked with its reason and can be retried."""

from datetime import timedelta

import pytest
from django.utils import timezone

from marketo_sync import delivery, writeback
from marketo_sync.client import MarketoClient
from marketo_sync.models import (
    CustomActivityType,
    DeliveryState,
    KnownLead,
    LeadFieldMapping,
    MarketoAction,
    OutboxRecord,
)
from marketo_sync.writeback_services import retry_parked
from tests.conftest import quick_sleep
from tests.test_marketo_writeback import PAGE, Chat
from tests.test_routing import book, chat_at_booking, hours_from_now

Kind, Status = OutboxRecord.Kind, OutboxRecord.Status


@pytest.fixture
def outbox_settings(marketo_settings):
    settings = marketo_settings
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the tests deliver themselves
    settings.MARKETO_OUTBOX_RETRY_SECONDS = 10
    settings.MARKETO_TIMEOUT_SECONDS = 2
    # A short window keeps 606 waits short (the client waits a quarter of it).
    settings.MARKETO_RATE_LIMIT_SECONDS = 2
    return settings


@pytest.fixture
def deliver(outbox_settings):
    """Run a delivery with a client that sleeps briefly, as a worker would run it."""
    clients = []

    def run(**kwargs):
        client = MarketoClient(delivery.client_config(), sleep=quick_sleep)
        clients.append(client)
        try:
            return delivery.deliver(client=client, **kwargs)
        finally:
            client.close()

    yield run
    if clients:
        clients[0].limiter.reset()


def records(**filters):
    return list(OutboxRecord.objects.filter(**filters).order_by("id"))


def lead_named(marketo, email):
    [lead] = [lead for lead in marketo.leads.values() if lead.get("email") == email]
    return lead


def attributes_of(activity) -> dict:
    return {a["name"]: a["value"] for a in activity["attributes"]}


def make_due():
    OutboxRecord.objects.filter(status=Status.PENDING).update(next_attempt_at=timezone.now())


def test_a_visitor_becomes_a_lead_with_their_activities(deliver, marketo, acme, acme_dialogue):
    chat = Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")

    report = deliver()

    assert report.delivered == 3 and report.parked == 0
    lead = lead_named(marketo, "ann@bigco.com")
    assert lead["firstName"] == "Ann"
    assert KnownLead.objects.get(lead_key="ann@bigco.com").lead_id == lead["id"]
    engaged, goal = marketo.custom_activities()
    types = {t.api_name: t.marketo_id for t in CustomActivityType.objects.all()}
    assert engaged["activityTypeId"] == types["dynchatEngagedWithDialogue"]
    assert goal["activityTypeId"] == types["dynchatReachedDialogueGoal"]
    assert engaged["leadId"] == goal["leadId"] == lead["id"]
    assert goal["primaryAttributeValue"] == "Book a demo"
    conversation = chat.conversation
    assert attributes_of(goal) == {
        "Dialogue ID": conversation.dialogue_id,
        "Dialogue Version": 1,
        "Page URL": PAGE,
        "Transcript Link": writeback.transcript_url(conversation),
        "Conversation ID": str(conversation.pk),
        "DynChat Event ID": str(records(kind=Kind.ACTIVITY)[1].id),
        "Goal Name": "Email captured",
    }
    assert {r.status for r in records()} == {Status.DELIVERED}
    assert all(r.marketo_id for r in records())


def test_the_activity_types_are_created_approved_and_named_like_marketos(
    deliver, marketo, acme, acme_dialogue
):
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")
    deliver()

    with MarketoClient(delivery.client_config(), sleep=quick_sleep) as client:
        listed = client.get("/rest/v1/activities/external/types.json")["result"]
    made = {t["apiName"]: t for t in listed}
    assert {t["name"] for t in made.values()} == {
        "Engaged with a Dialogue",
        "Reached Dialogue Goal",
        "Scheduled Meeting in Dialogue",
    }
    meeting = made["dynchatScheduledMeetingInDialogue"]
    assert meeting["status"] == "approved"
    assert meeting["primaryAttribute"]["name"] == "Dialogue"
    assert {"Meeting Time", "Agent Name", "Agent Email", "Transcript Link"} <= {
        a["name"] for a in meeting["attributes"]
    }

    # Known from then on: a second delivery does not ask Marketo about types again.
    before = len(marketo.calls_to("/activities/external/type"))
    Chat(acme, acme_dialogue).say("yes", "Bo", "bo@bigco.com")
    deliver()
    assert len(marketo.calls_to("/activities/external/type")) == before


def test_an_existing_type_missing_an_attribute_is_completed(deliver, marketo, acme, acme_dialogue):
    marketo.add_custom_activity_type(
        "dynchatEngagedWithDialogue",
        name="Engaged with a Dialogue",
        attributes=[{"apiName": "dialogueId", "name": "Dialogue ID", "dataType": "integer"}],
    )
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")
    deliver()

    with MarketoClient(delivery.client_config(), sleep=quick_sleep) as client:
        engaged = client.get(
            "/rest/v1/activities/external/type/dynchatEngagedWithDialogue/describe.json"
        )["result"][0]
    assert engaged["status"] == "approved"
    assert "DynChat Event ID" in {a["name"] for a in engaged["attributes"]}
    assert len(marketo.custom_activities()) == 2


def test_the_lead_is_created_before_its_activities_are_sent(deliver, marketo, acme, acme_dialogue):
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")
    deliver()

    paths = [c["path"] for c in marketo.calls if c["path"].startswith("/rest/v1/")]
    writes = [p for p in paths if p in ("/rest/v1/leads.json", "/rest/v1/activities/external.json")]
    assert writes == ["/rest/v1/leads.json", "/rest/v1/activities/external.json"]


def test_a_cookie_is_associated_with_the_new_lead(deliver, marketo, acme, acme_dialogue):
    from widget.models import Visitor

    chat = Chat(acme, acme_dialogue)
    cookie = "id:561-HYG-937&token:_mch-acme.test-1700000000000-12345"
    Visitor.objects.filter(pk=chat.conversation.visitor_id).update(marketo_cookie=cookie)
    chat.conversation.visitor.refresh_from_db()
    chat.say("yes", "Ann", "ann@bigco.com")

    deliver()

    lead = lead_named(marketo, "ann@bigco.com")
    assert marketo.associations == [
        {"leadId": lead["id"], "cookie": cookie, "token": "_mch-acme.test-1700000000000-12345"}
    ]


def test_activities_go_300_a_call(deliver, marketo, acme, acme_dialogue):
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")
    [engaged] = records(kind=Kind.ACTIVITY)[:1]
    now = timezone.now()
    OutboxRecord.objects.bulk_create(
        OutboxRecord(
            site=acme,
            lead_key="ann@bigco.com",
            kind=Kind.ACTIVITY,
            call_group=engaged.call_group,
            payload=engaged.payload,
            next_attempt_at=now,
            created_at=now,
        )
        for _ in range(700)
    )

    report = deliver()

    sizes = [len(c["json"]["input"]) for c in marketo.calls_to("/activities/external.json")]
    assert sizes == [300, 300, 102]
    assert report.delivered == 703
    assert len(marketo.custom_activities()) == 702


def test_program_status_and_campaign_requests_carry_the_dialogues_choices(
    deliver, marketo, acme, acme_dialogue
):
    program = marketo.add_program("Chat engagement", channel="Webinar")
    campaign = marketo.add_campaign("Send the price list")
    MarketoAction.objects.create(
        dialogue=acme_dialogue,
        on="goal",
        program_id=program,
        program_name="Chat engagement",
        program_status="Registered",
        campaign_id=campaign,
        campaign_name="Send the price list",
        tokens=[{"name": "{{my.Goal}}", "value": "goal"}],
    )
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")

    report = deliver()

    lead = lead_named(marketo, "ann@bigco.com")
    assert report.parked == 0
    assert marketo.memberships == {program: {lead["id"]: "Registered"}}
    assert marketo.campaign_requests == [
        {
            "campaignId": campaign,
            "leadIds": [lead["id"]],
            "tokens": [{"name": "{{my.Goal}}", "value": "Email captured"}],
        }
    ]


def test_a_booked_meeting_reaches_marketo_with_its_agent(
    deliver, marketo, acme, acme_dialogue, alex
):
    from routing.models import QueueMember

    QueueMember.objects.get_or_create(site=acme, user=alex, defaults={"position": 1})
    campaign = marketo.add_campaign("Meeting follow-up")
    MarketoAction.objects.create(
        dialogue=acme_dialogue,
        on="meeting",
        campaign_id=campaign,
        campaign_name="Meeting follow-up",
        tokens=[{"name": "{{my.Agent}}", "value": "agent_name"}],
    )
    booked = book(acme, chat_at_booking(acme, acme_dialogue), hours_from_now(26))

    deliver()

    meeting = booked.meeting
    [scheduled] = [
        a
        for a in marketo.custom_activities()
        if attributes_of(a).get("Meeting ID") == str(meeting.pk)
    ]
    shown = attributes_of(scheduled)
    assert shown["Agent Name"] == meeting.agent_name
    assert shown["Agent Email"] == alex.email
    assert shown["Meeting Time"] == meeting.start.isoformat()[:19] + "Z"
    [request] = marketo.campaign_requests
    assert request["tokens"] == [{"name": "{{my.Agent}}", "value": meeting.agent_name}]


def test_records_of_one_lead_keep_their_order_across_calls(deliver, marketo, acme, acme_dialogue):
    program = marketo.add_program("Chat engagement", channel="Webinar")
    MarketoAction.objects.create(
        dialogue=acme_dialogue,
        on="engaged",
        program_id=program,
        program_name="Chat engagement",
        program_status="Invited",
    )
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")
    deliver()

    order = [
        c["path"]
        for c in marketo.calls
        if c["path"].endswith(("leads.json", "external.json", "status.json"))
    ]
    # Upsert; then the engaged activity, the engagement's program status, the goal activity.
    assert order == [
        "/rest/v1/leads.json",
        "/rest/v1/activities/external.json",
        f"/rest/v1/programs/{program}/members/status.json",
        "/rest/v1/activities/external.json",
    ]


def test_an_outage_of_some_seconds_loses_and_repeats_nothing(deliver, marketo, acme, acme_dialogue):
    for name in ("ann", "bo", "cy"):
        Chat(acme, acme_dialogue).say("yes", name.title(), f"{name}@bigco.com")
    marketo.outage(2)

    report = deliver()

    assert report.delivered == 9 and report.parked == 0
    assert len(marketo.custom_activities()) == 6
    assert (
        len([lead for lead in marketo.leads.values() if lead["email"].endswith("@bigco.com")]) == 3
    )


def test_a_long_outage_makes_records_wait_then_they_all_arrive_once(
    deliver, outbox_settings, marketo, acme, acme_dialogue
):
    outbox_settings.MARKETO_OUTBOX_RETRY_SECONDS = 1
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")
    marketo.outage(60)

    report = deliver()

    assert report.stopped == "unavailable" and report.parked == 0
    state = DeliveryState.load()
    assert state.problem_code == "unavailable"
    waiting = records(status=Status.PENDING)
    assert len(waiting) == 3
    assert all(r.next_attempt_at > timezone.now() for r in waiting if r.attempts)
    # Still waiting: a delivery before they are due sends nothing.
    marketo.outage(0)
    lead_record = records(kind=Kind.LEAD)[0]
    assert lead_record.attempts == 1 and lead_record.error_code == "unavailable"

    make_due()
    report = deliver()

    assert report.delivered == 3
    assert len(marketo.custom_activities()) == 2
    assert DeliveryState.load().problem_code == ""


def test_a_606_storm_is_waited_out(deliver, marketo, acme, acme_dialogue):
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")
    marketo.fail("/rest/v1/", code=606, times=8)

    report = deliver()

    assert report.delivered == 3 and report.parked == 0
    assert len(marketo.custom_activities()) == 2
    assert len([c for c in marketo.calls if c["code"] == "606"]) == 8
    assert report.calls == len(marketo.calls_to("/rest/v1/"))


def test_an_activity_whose_answer_was_lost_is_not_sent_twice(deliver, marketo, acme, acme_dialogue):
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")
    # Marketo writes the activities, but answers after the client has given up waiting.
    marketo.stall("/activities/external.json", seconds=3)

    deliver()

    assert len(marketo.custom_activities()) == 2
    assert {r.status for r in records()} == {Status.DELIVERED}
    assert len(marketo.calls_to("/activities/external.json")) == 1
    assert marketo.calls_to("/rest/v1/activities.json")  # read back, found, not resent


def test_a_dead_deliverys_claims_are_checked_then_sent_once(deliver, marketo, acme, acme_dialogue):
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")
    deliver()
    Chat(acme, acme_dialogue).say("yes", "Bo", "bo@bigco.com")
    # A worker claimed Bo's records and died before (or while) sending them.
    OutboxRecord.objects.filter(status=Status.PENDING).update(
        claimed_until=timezone.now() + timedelta(minutes=10)
    )

    deliver()

    bo = lead_named(marketo, "bo@bigco.com")
    assert len([a for a in marketo.custom_activities() if a["leadId"] == bo["id"]]) == 2
    assert {r.status for r in records()} == {Status.DELIVERED}


def test_a_refused_field_parks_the_lead_with_marketos_reason_until_retried(
    deliver, marketo, acme, acme_dialogue
):
    LeadFieldMapping.objects.create(site=acme, fields={"firstName": "chatFirstName__c"})
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")

    report = deliver()

    [lead] = records(kind=Kind.LEAD)
    assert lead.status == Status.PARKED
    assert lead.error_code == "1006"
    assert "chatFirstName__c" in lead.error_message
    # Its activities cannot go without the lead: parked behind it, none sent.
    activities = records(kind=Kind.ACTIVITY)
    assert {(r.status, r.error_code) for r in activities} == {(Status.PARKED, "lead_parked")}
    assert report.parked == 3
    assert marketo.custom_activities() == []

    LeadFieldMapping.objects.filter(site=acme).update(fields={"firstName": "firstName"})
    assert retry_parked(site=acme, record_ids=[lead.pk]) == 3
    report = deliver()

    assert report.delivered == 3
    assert lead_named(marketo, "ann@bigco.com")["firstName"] == "Ann"
    assert len(marketo.custom_activities()) == 2


def test_an_unknown_program_status_is_parked_the_rest_delivered(
    deliver, marketo, acme, acme_dialogue
):
    program = marketo.add_program("Chat engagement", channel="Webinar")
    MarketoAction.objects.create(
        dialogue=acme_dialogue,
        on="engaged",
        program_id=program,
        program_name="Chat engagement",
        program_status="Renamed since",
    )
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")

    deliver()

    [status] = records(kind=Kind.PROGRAM_STATUS)
    assert (status.status, status.error_code) == (Status.PARKED, "1025")
    assert {r.status for r in records(kind=Kind.ACTIVITY)} == {Status.DELIVERED}


def test_no_permission_stops_delivery_and_parks_nothing(deliver, marketo, acme, acme_dialogue):
    marketo.deny_permission("/rest/v1/leads.json")
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")

    report = deliver()

    assert report.stopped == "603"
    assert records(status=Status.PARKED) == []
    state = DeliveryState.load()
    assert state.problem_code == "603" and "permission" in state.problem_message


def test_the_daily_quota_stops_delivery_until_it_resets(deliver, marketo, acme, acme_dialogue):
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")
    marketo.fail("/rest/v1/leads.json", code=607)

    report = deliver()

    assert report.stopped == "607"
    state = DeliveryState.load()
    assert state.resume_at > timezone.now()
    assert deliver() is None  # nothing is tried before the reset
    assert records(status=Status.PARKED) == []


def test_ten_custom_types_already_used_parks_activities_with_the_reason(
    deliver, marketo, acme, acme_dialogue
):
    for n in range(10):
        marketo.add_custom_activity_type(f"otherType{n}", name=f"Other type {n}")
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")

    deliver()

    assert records(kind=Kind.LEAD)[0].status == Status.DELIVERED
    parked = records(kind=Kind.ACTIVITY)
    assert {(r.status, r.error_code) for r in parked} == {(Status.PARKED, "1027")}


def test_nothing_is_sent_while_a_visitor_is_anonymous(deliver, marketo, acme, acme_dialogue):
    Chat(acme, acme_dialogue).say("yes", "Ann")

    report = deliver()

    assert report.delivered == 0
    assert records(status=Status.WAITING)
    assert marketo.custom_activities() == []


def test_one_delivery_at_a_time(deliver, acme, acme_dialogue):
    from django.db import connection

    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [delivery.LOCK_KEY])
    import threading

    outcome = {}

    def other_worker():
        from django.db import connections

        try:
            outcome["report"] = deliver()
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_worker)
    thread.start()
    thread.join()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [delivery.LOCK_KEY])
    assert outcome["report"] is None


def test_delivered_records_are_purged_after_the_keep_period(deliver, acme, acme_dialogue):
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")
    deliver()
    later = timezone.now() + timedelta(days=8)

    assert delivery.purge_delivered(now=later) == 3
    assert records() == []


def test_no_permission_to_create_activity_types_stops_without_parking(
    deliver, marketo, acme, acme_dialogue
):
    marketo.deny_permission("/activities/external/type")
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")

    report = deliver()

    assert report.stopped == "603"
    assert lead_named(marketo, "ann@bigco.com")  # the lead went first
    activities = records(kind=Kind.ACTIVITY)
    assert {r.status for r in activities} == {Status.PENDING}
    assert len(marketo.calls_to("/activities/external/types.json")) == 1  # asked once, stopped
