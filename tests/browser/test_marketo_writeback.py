"""Chat engagement reaches Marketo, end to end: an anonymous visitor on the demo page gives an
email in the chat, reaches the dialogue's goal and books a meeting; the outbox is then
delivered to the fake Marketo, which holds the lead, the three Dynamic Chat activities, the
program status and the campaign request the dialogue asks for."""

import pytest

from marketo_sync import delivery
from marketo_sync.client import MarketoClient
from marketo_sync.models import MarketoAction, OutboxRecord
from meetings.models import Meeting
from tests.browser.test_routing_booking import book_first_time, same_hours  # noqa: F401
from tests.conftest import quick_sleep

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def writeback(marketo_settings, demo_dialogue, marketo):
    """The demo dialogue sets a program status on its goal and requests a campaign when a
    meeting is booked. Deliveries are run by the test (no worker)."""
    marketo_settings.CELERY_TASK_ALWAYS_EAGER = True
    program = marketo.add_program("Demo requests", channel="Webinar")
    campaign = marketo.add_campaign("Meeting follow-up")
    MarketoAction.objects.create(
        dialogue=demo_dialogue,
        on="goal",
        goal="Email captured",
        program_id=program,
        program_name="Demo requests",
        program_status="Registered",
    )
    MarketoAction.objects.create(
        dialogue=demo_dialogue,
        on="meeting",
        campaign_id=campaign,
        campaign_name="Meeting follow-up",
        tokens=[
            {"name": "{{my.Agent}}", "value": "agent_name"},
            {"name": "{{my.Meeting Time}}", "value": "meeting_time"},
        ],
    )
    return {"program": program, "campaign": campaign}


def test_a_visitor_who_chats_and_books_is_in_marketo_with_their_activities(
    browser,
    marketo,
    writeback,
    page_url,
    demo_dialogue,
    same_hours,  # noqa: F811
):
    book_first_time(browser, page_url, "Nora", "nora@bigco.example")

    # Written while she chatted, in the same transactions; sent now, as a worker would.
    assert OutboxRecord.objects.filter(status="pending").exists()
    with MarketoClient(delivery.client_config(), sleep=quick_sleep) as client:
        report = delivery.deliver(client=client)
    assert report.parked == 0
    assert set(OutboxRecord.objects.values_list("status", flat=True)) == {"delivered"}

    [lead] = [lead for lead in marketo.leads.values() if lead["email"] == "nora@bigco.example"]
    assert lead["firstName"] == "Nora"
    assert lead["phone"] == "+14155552671"

    activities = [a for a in marketo.custom_activities() if a["leadId"] == lead["id"]]
    named = {t["id"]: name for name, t in marketo.custom_activity_types.items()}
    assert sorted(named[a["activityTypeId"]] for a in activities) == [
        "dynchatEngagedWithDialogue",
        "dynchatReachedDialogueGoal",
        "dynchatScheduledMeetingInDialogue",
    ]
    assert {a["primaryAttributeValue"] for a in activities} == {demo_dialogue.name}
    meeting = Meeting.objects.get(lead_email="nora@bigco.example")
    [scheduled] = [
        a for a in activities if named[a["activityTypeId"]] == "dynchatScheduledMeetingInDialogue"
    ]
    said = {a["name"]: a["value"] for a in scheduled["attributes"]}
    assert said["Agent Name"] == meeting.agent_name
    assert said["Meeting Time"] == meeting.start.isoformat()[:19] + "Z"
    assert said["Page URL"] == page_url

    assert marketo.memberships == {writeback["program"]: {lead["id"]: "Registered"}}
    assert marketo.campaign_requests == [
        {
            "campaignId": writeback["campaign"],
            "leadIds": [lead["id"]],
            "tokens": [
                {"name": "{{my.Agent}}", "value": meeting.agent_name},
                {"name": "{{my.Meeting Time}}", "value": meeting.start.isoformat()[:19] + "Z"},
            ],
        }
    ]
