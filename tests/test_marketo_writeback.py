"""What chat engagement writes to the outbox (marketo_sync/writeback.py), in the chat step's own
transaction: lead upserts, cookie associations, activities, program statuses and campaign
requests, waiting while the visitor is anonymous. Delivery is tests/test_marketo_delivery.py."""

import pytest
from django.db import transaction

from marketo_sync.models import MarketoAction, OutboxRecord
from tests.test_routing import book, chat_at_booking, hours_from_now
from widget import keys
from widget import services as conversations
from widget.models import ConversationEvent, Visitor

Kind, Status = OutboxRecord.Kind, OutboxRecord.Status
PAGE = "https://acme.test/pricing"


@pytest.fixture
def writeback_on(settings):
    """Marketo configured (nothing is sent: these tests only read the outbox)."""
    settings.MARKETO_BASE_URL = "http://127.0.0.1:9"
    settings.MARKETO_CLIENT_ID = "dynchat-writeback"
    settings.MARKETO_CLIENT_SECRET = "s3cret"
    settings.CELERY_TASK_ALWAYS_EAGER = True  # no delivery is started from these tests


class Chat:
    """A visitor going through the shared test flow, one answer at a time."""

    def __init__(self, site, dialogue, visitor_key=None):
        self.site = site
        self.visitor_key = visitor_key or keys.new_visitor_key(site.pk)
        self.step, self.token = conversations.start_conversation(
            site=site, visitor_key=self.visitor_key, dialogue_id=dialogue.pk, page_url=PAGE
        )
        self.conversation = self.step.conversation

    def say(self, *values):
        for value in values:
            state = self.step.outcome.state
            self.step = conversations.answer_conversation(
                site=self.site,
                conversation_id=str(self.conversation.pk),
                token=self.token,
                card_id=state.waiting_on,
                step=state.step,
                value=value,
            )
        return self


def outbox():
    return list(OutboxRecord.objects.order_by("id"))


def summary():
    return [(r.kind, r.status, r.lead_key) for r in outbox()]


def test_it_writes_nothing_while_marketo_is_not_configured(acme, acme_dialogue, settings):
    settings.MARKETO_BASE_URL = ""
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")
    assert outbox() == []


def test_it_keeps_an_anonymous_visitors_engagement_waiting(writeback_on, acme, acme_dialogue):
    Chat(acme, acme_dialogue).say("yes", "Ann")

    [engaged] = outbox()
    assert (engaged.kind, engaged.status, engaged.lead_key) == (Kind.ACTIVITY, Status.WAITING, "")
    assert engaged.payload["type"] == "engaged"


def test_giving_an_email_makes_the_lead_and_releases_what_waited(writeback_on, acme, acme_dialogue):
    chat = Chat(acme, acme_dialogue).say("yes", "Ann", "Ann@BigCo.com")

    assert summary() == [
        (Kind.ACTIVITY, Status.PENDING, "ann@bigco.com"),  # engaged, released
        (Kind.LEAD, Status.PENDING, "ann@bigco.com"),
        (Kind.ACTIVITY, Status.PENDING, "ann@bigco.com"),  # goal "Email captured"
    ]
    engaged, lead, goal = outbox()
    # The upsert carries what the visitor told before the email too; it goes first.
    assert lead.payload == {"email": "ann@bigco.com", "attributes": {"firstName": "Ann"}}
    assert lead.rank < engaged.rank
    assert goal.payload["type"] == "goal"
    assert goal.payload["primary"] == "Book a demo"
    conversation = chat.conversation
    assert goal.payload["attributes"] == {
        "dialogueId": conversation.dialogue_id,
        "dialogueVersion": 1,
        "pageUrl": PAGE,
        "transcriptUrl": f"http://127.0.0.1:8000/sites/{acme.pk}/conversations/{conversation.pk}/",
        "conversationId": str(conversation.pk),
        "goalName": "Email captured",
    }
    assert {r.conversation_id for r in (engaged, goal)} == {conversation.pk}


def test_fields_told_later_update_the_lead(writeback_on, acme, acme_dialogue):
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com", "+1 415 555 2671")

    leads = [r for r in outbox() if r.kind == Kind.LEAD]
    assert [r.payload["attributes"] for r in leads] == [
        {"firstName": "Ann"},
        {"phone": "+14155552671"},  # as the capture card cleaned it
    ]


def test_a_known_visitors_engagement_is_pending_at_once(writeback_on, acme, acme_dialogue):
    chat = Chat(acme, acme_dialogue)
    conversations.identify_visitor(
        visitor=chat.conversation.visitor, attributes={"email": "bo@bigco.com", "lastName": "Bo"}
    )
    chat.say("yes")

    assert summary() == [
        (Kind.LEAD, Status.PENDING, "bo@bigco.com"),
        (Kind.ACTIVITY, Status.PENDING, "bo@bigco.com"),
    ]
    assert outbox()[0].payload["attributes"] == {"lastName": "Bo"}


def test_the_cookie_is_associated_once_the_visitor_is_a_lead(writeback_on, acme, acme_dialogue):
    chat = Chat(acme, acme_dialogue)
    cookie = "id:561-HYG-937&token:_mch-acme.test-1700000000000-12345"
    Visitor.objects.filter(pk=chat.conversation.visitor_id).update(marketo_cookie=cookie)
    chat.conversation.visitor.refresh_from_db()
    chat.say("yes", "Ann", "ann@bigco.com")

    cookies = [r for r in outbox() if r.kind == Kind.COOKIE]
    assert [(r.payload, r.status, r.lead_key) for r in cookies] == [
        ({"cookie": cookie}, Status.PENDING, "ann@bigco.com")
    ]


def test_a_lead_found_by_cookie_gets_the_waiting_records(writeback_on, acme, acme_dialogue):
    from marketo_sync import writeback

    chat = Chat(acme, acme_dialogue).say("yes")
    visitor = chat.conversation.visitor
    with transaction.atomic():
        visitor = Visitor.objects.select_for_update().get(pk=visitor.pk)
        visitor.marketo_lead_id = 4242
        visitor.save(update_fields=["marketo_lead_id"])
        writeback.visitor_resolved(visitor)

    assert summary() == [(Kind.ACTIVITY, Status.PENDING, "id:4242")]


def test_a_failed_step_writes_nothing(writeback_on, acme, acme_dialogue):
    chat = Chat(acme, acme_dialogue).say("yes", "Ann")
    before = outbox()
    with pytest.raises(RuntimeError), transaction.atomic():
        chat.say("ann@bigco.com")
        raise RuntimeError("the request died after the answer")

    assert outbox() == before
    assert not ConversationEvent.objects.filter(kind="goal_reached").exists()


def test_dialogue_actions_follow_their_event(writeback_on, acme, acme_dialogue):
    MarketoAction.objects.create(
        dialogue=acme_dialogue,
        on="engaged",
        program_id=1001,
        program_name="Chat engagement",
        program_status="Engaged",
    )
    MarketoAction.objects.create(
        dialogue=acme_dialogue,
        on="goal",
        goal="Email captured",
        campaign_id=77,
        campaign_name="Send the price list",
        tokens=[
            {"name": "{{my.Goal}}", "value": "goal"},
            {"name": "{{my.Page}}", "value": "page_url"},
        ],
    )
    MarketoAction.objects.create(
        dialogue=acme_dialogue, on="goal", goal="Another goal", campaign_id=78, campaign_name="x"
    )
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")

    kinds = [(r.kind, r.payload.get("type")) for r in outbox()]
    assert kinds == [
        (Kind.ACTIVITY, "engaged"),
        (Kind.PROGRAM_STATUS, None),
        (Kind.LEAD, None),
        (Kind.ACTIVITY, "goal"),
        (Kind.CAMPAIGN, None),
    ]
    status, campaign = outbox()[1], outbox()[4]
    assert status.payload == {
        "program_id": 1001,
        "program_name": "Chat engagement",
        "status": "Engaged",
    }
    assert campaign.payload["campaign_id"] == 77
    assert campaign.payload["tokens"] == [
        {"name": "{{my.Goal}}", "value": "Email captured"},
        {"name": "{{my.Page}}", "value": PAGE},
    ]


def test_a_booked_meeting_is_an_activity_with_its_agent_filled_in_later(
    writeback_on, acme, acme_dialogue, alex
):
    from routing.models import QueueMember

    QueueMember.objects.get_or_create(site=acme, user=alex, defaults={"position": 1})
    MarketoAction.objects.create(
        dialogue=acme_dialogue,
        on="meeting",
        campaign_id=90,
        campaign_name="Meeting follow-up",
        tokens=[
            {"name": "{{my.Agent}}", "value": "agent_name"},
            {"name": "{{my.When}}", "value": "meeting_time"},
        ],
    )
    booked = book(acme, chat_at_booking(acme, acme_dialogue), hours_from_now(26))

    meeting_records = [r for r in outbox() if r.payload.get("meeting_id") == str(booked.meeting.pk)]
    activity, campaign = meeting_records
    assert activity.payload["type"] == "meeting"
    assert activity.payload["attributes"]["meetingId"] == str(booked.meeting.pk)
    start = booked.meeting.start.isoformat()[:19] + "Z"
    assert activity.payload["attributes"]["meetingTime"] == start
    assert campaign.payload["tokens"] == [
        {"name": "{{my.Agent}}", "bind": "agent_name"},
        {"name": "{{my.When}}", "value": start},
    ]


def test_two_sites_keep_their_own_records(writeback_on, acme, acme_dialogue, globex, omar):
    from tests.conftest import make_published_dialogue

    globex_dialogue = make_published_dialogue(globex, user=omar)
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")
    Chat(globex, globex_dialogue).say("yes", "Gil", "gil@bigco.com")

    by_site = {r.site_id for r in outbox() if r.lead_key == "gil@bigco.com"}
    assert by_site == {globex.pk}
    assert {r.site_id for r in outbox() if r.lead_key == "ann@bigco.com"} == {acme.pk}


def test_telling_the_same_email_again_sends_nothing_new(writeback_on, acme, acme_dialogue):
    chat = Chat(acme, acme_dialogue)
    visitor = chat.conversation.visitor
    conversations.identify_visitor(visitor=visitor, attributes={"email": "bo@bigco.com"})
    conversations.identify_visitor(visitor=visitor, attributes={"email": "bo@bigco.com"})

    assert summary() == [(Kind.LEAD, Status.PENDING, "bo@bigco.com")]
