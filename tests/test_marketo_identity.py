"""Knowing who the visitor is: the widget brings Marketo's Munchkin cookie (`_mkto_trk`), which
the server resolves to a synced lead through the leads' cookies; an email given through
DynChat.identify or typed into the chat resolves them by email. Targeting, branches and tokens
then see the synced lead and company, from the very answer that gave the email, and an
anonymous visitor's waiting Marketo records are released to their lead.

The story: Ana Duval works at BigCo, a French bank. She is a synced Marketo lead (id 42) whose
browser carries her Munchkin cookie. Bob is a lead whose cookie was not synced yet."""

from urllib.parse import quote

import pytest
from django.utils import timezone

from dialogues import selectors
from dialogues.models import Dialogue
from marketo_sync.models import Company, Lead, OutboxRecord
from marketo_sync.selectors import lead_for_cookie
from tests.conftest import PAGE_URL, make_published_dialogue
from widget.models import Visitor

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

ANA_TOKEN = "_mch-www.acme.test-1718000000000-12345"
ANA_COOKIE = f"id:561-HYG-937&token:{ANA_TOKEN}"
BOB_TOKEN = "_mch-www.acme.test-1718000000999-777"
BOB_COOKIE = f"id:561-HYG-937&token:{BOB_TOKEN}"

# An email card, then a branch on the country Marketo has for the lead.
EMAIL_THEN_COUNTRY = {
    "start": "email",
    "cards": [
        {
            "id": "email",
            "type": "capture",
            "text": "Your work email?",
            "input_type": "email",
            "attribute": "email",
            "next": "where",
        },
        {
            "id": "where",
            "type": "branch",
            "rules": [
                {
                    "conditions": [
                        {"subject": "lead.country", "operator": "equals", "value": "France"}
                    ],
                    "next": "france",
                }
            ],
            "default_next": "elsewhere",
        },
        {
            "id": "france",
            "type": "end",
            "text": "Bonjour {{lead.firstName}}, our Paris team looks after {{company.company}}.",
        },
        {"id": "elsewhere", "type": "end", "text": "Thanks, talk soon."},
    ],
}


@pytest.fixture
def ana(db):
    Company.objects.create(
        id=7,
        external_company_id="bigco",
        name="BigCo",
        attributes={"industry": "Banking"},
        synced_at=timezone.now(),
    )
    return Lead.objects.create(
        id=42,
        email="Ana@BigCo.com",
        external_company_id="bigco",
        cookies=ANA_TOKEN,
        updated_at=timezone.now(),
        attributes={"country": "France", "firstName": "Ana"},
    )


def targeted(site, name, *, priority=0, **targeting):
    dialogue = make_published_dialogue(site, name=name, priority=priority)
    Dialogue.objects.filter(pk=dialogue.pk).update(targeting=targeting)
    return dialogue


def france_only(site):
    condition = {"subject": "lead.country", "operator": "equals", "value": "France"}
    return targeted(site, "For France", priority=5, audience=[{"conditions": [condition]}])


def session(widget, cookie=None, visitor_id=None):
    body = {"page_url": PAGE_URL}
    if cookie is not None:
        body["mkto_trk"] = cookie
    if visitor_id:
        body["visitor_id"] = visitor_id
    response = widget.post("/sessions", body)
    assert response.status_code == 200, response.content
    return response.json()


def start(widget, dialogue, visitor_id, cookie=None):
    body = {"visitor_id": visitor_id, "dialogue_id": dialogue.pk, "page_url": PAGE_URL}
    if cookie is not None:
        body["mkto_trk"] = cookie
    response = widget.post("/conversations", body)
    assert response.status_code == 201, response.content
    return response.json()


def say(widget, conversation, *values):
    for value in values:
        response = widget.answer(conversation, value)
        assert response.status_code == 200, response.content
        conversation = {**response.json(), "token": conversation["token"]}
    return conversation


def texts(step):
    return [m["text"] for m in step["messages"]]


# --- the cookie resolves to a synced lead ------------------------------------------------------


def test_a_munchkin_cookie_resolves_to_the_lead_holding_its_token(ana, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert lead_for_cookie(ANA_COOKIE) == (42, "Ana@BigCo.com")


def test_a_url_encoded_munchkin_cookie_resolves_the_same(ana):
    assert lead_for_cookie(ANA_COOKIE.replace("&", "%26")) == (42, "Ana@BigCo.com")
    assert lead_for_cookie(quote(ANA_COOKIE, safe="")) == (42, "Ana@BigCo.com")


@pytest.mark.parametrize(
    "cookie",
    [
        "",
        "hello",
        ANA_TOKEN,  # the token alone, without "token:"
        f"id:561-HYG-937&token:{ANA_TOKEN}&token:{BOB_TOKEN}",
        f"id:561 HYG&token:{ANA_TOKEN}",
        f"id:561-HYG-937&token:{ANA_TOKEN}'; DROP TABLE lead; --",
        "id:561-HYG-937&token:_mch-",
        "%E0%A4%A",
    ],
)
def test_a_malformed_cookie_resolves_to_nobody_without_a_query(
    ana, cookie, django_assert_num_queries
):
    with django_assert_num_queries(0):
        assert lead_for_cookie(cookie) is None


def test_a_cookie_no_synced_lead_holds_resolves_to_nobody(ana):
    assert lead_for_cookie(BOB_COOKIE) is None


# --- targeting at session time ------------------------------------------------------------------


def test_a_new_visitor_bringing_a_synced_leads_cookie_gets_the_dialogue_targeted_at_that_lead(
    acme_widget, acme, ana
):
    france_only(acme)

    assert session(acme_widget, ANA_COOKIE)["dialogue"]["name"] == "For France"
    assert session(acme_widget)["dialogue"] is None
    assert session(acme_widget, BOB_COOKIE)["dialogue"] is None


def test_a_malformed_cookie_neither_breaks_the_chat_nor_targets_anyone(acme_widget, acme, ana):
    france_only(acme)
    targeted(acme, "Everyone", priority=-1)

    assert session(acme_widget, "not a munchkin cookie")["dialogue"]["name"] == "Everyone"
    assert session(acme_widget, ANA_TOKEN)["dialogue"]["name"] == "Everyone"


def test_a_cookie_longer_than_300_characters_or_not_text_is_refused_clearly(acme_widget, acme):
    for bad in ("x" * 301, 42):
        response = acme_widget.post("/sessions", {"page_url": PAGE_URL, "mkto_trk": bad})

        assert response.status_code == 400
        assert response.json()["error"]["field"] == "mkto_trk"


def test_a_new_visitors_cookie_costs_two_reads_only_when_a_dialogue_has_audience_conditions(
    acme_widget, acme, ana, memo_on, django_assert_num_queries
):
    targeted(acme, "Everyone")
    session(acme_widget, ANA_COOKIE)  # fills the memo of the site's offers
    with django_assert_num_queries(0):
        assert session(acme_widget, ANA_COOKIE)["dialogue"]["name"] == "Everyone"

    france_only(acme)
    selectors._offers.clear()
    session(acme_widget)  # fills the memo again
    with django_assert_num_queries(0):
        assert session(acme_widget)["dialogue"]["name"] == "Everyone"
    with django_assert_num_queries(2):  # her lead by its cookie, her company
        assert session(acme_widget, ANA_COOKIE)["dialogue"]["name"] == "For France"


# --- conversation start ----------------------------------------------------------------------


def test_starting_a_conversation_stores_the_cookie_and_the_lead_it_resolves_to(
    acme_widget, acme, acme_dialogue, ana
):
    visitor_id = session(acme_widget, ANA_COOKIE)["visitor_id"]

    started = start(acme_widget, acme_dialogue, visitor_id, ANA_COOKIE.replace("&", "%26"))

    # The first message already knows her name from Marketo.
    assert texts(started)[0] == "Hi Ana!"
    visitor = Visitor.objects.get(conversations__pk=started["conversation_id"])
    assert visitor.marketo_cookie == ANA_COOKIE
    assert visitor.marketo_lead_id == 42
    assert visitor.email == ""


def test_a_malformed_or_unknown_cookie_starts_the_conversation_as_an_anonymous_visitors(
    acme_widget, acme, acme_dialogue, ana
):
    for cookie, stored in (("garbage", ""), (BOB_COOKIE, BOB_COOKIE)):
        visitor_id = session(acme_widget)["visitor_id"]

        started = start(acme_widget, acme_dialogue, visitor_id, cookie)

        assert texts(started)[0] == "Hi there!"
        visitor = Visitor.objects.get(conversations__pk=started["conversation_id"])
        assert (visitor.marketo_cookie, visitor.marketo_lead_id) == (stored, None)


def test_a_visitor_who_gave_an_email_keeps_their_own_lead_whatever_cookie_comes(
    acme_widget, acme, acme_dialogue, ana
):
    visitor_id = session(acme_widget)["visitor_id"]
    told = {"visitor_id": visitor_id, "email": "zoe@otherco.com"}
    assert acme_widget.post("/visitors/identify", told).status_code == 200

    started = start(acme_widget, acme_dialogue, visitor_id, ANA_COOKIE)

    assert texts(started)[0] == "Hi there!"  # not Ana: the email says who this is
    visitor = Visitor.objects.get(conversations__pk=started["conversation_id"])
    assert (visitor.marketo_cookie, visitor.marketo_lead_id) == (ANA_COOKIE, None)


# --- an email typed into the chat ------------------------------------------------------------


def test_an_email_typed_into_the_chat_lets_the_next_branch_see_the_synced_lead(
    acme_widget, acme, ana
):
    dialogue = make_published_dialogue(acme, name="Where from", flow=EMAIL_THEN_COUNTRY)
    visitor_id = session(acme_widget)["visitor_id"]
    conversation = start(acme_widget, dialogue, visitor_id)

    answered = say(acme_widget, conversation, "ana@bigco.com")

    assert texts(answered) == ["Bonjour Ana, our Paris team looks after BigCo."]
    visitor = Visitor.objects.get(conversations__pk=conversation["conversation_id"])
    assert visitor.email == "ana@bigco.com"


def test_an_email_no_synced_lead_has_takes_the_default_branch(acme_widget, acme, ana):
    dialogue = make_published_dialogue(acme, name="Where from", flow=EMAIL_THEN_COUNTRY)
    # Even with Ana's cookie: whoever types another email is someone else.
    visitor_id = session(acme_widget, ANA_COOKIE)["visitor_id"]
    conversation = start(acme_widget, dialogue, visitor_id, ANA_COOKIE)

    answered = say(acme_widget, conversation, "newcomer@startup.com")

    assert texts(answered) == ["Thanks, talk soon."]


def test_a_refused_email_is_asked_again_and_changes_nothing(acme_widget, acme, ana):
    dialogue = make_published_dialogue(acme, name="Where from", flow=EMAIL_THEN_COUNTRY)
    conversation = start(acme_widget, dialogue, session(acme_widget)["visitor_id"])

    response = acme_widget.answer(conversation, "ana at bigco")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_email"
    assert Visitor.objects.get().email == ""


def test_a_cookie_resolved_visitors_branches_see_their_lead_before_any_email(
    acme_widget, acme, ana
):
    flow = {
        "start": "where",
        "cards": [
            {**EMAIL_THEN_COUNTRY["cards"][1]},
            *EMAIL_THEN_COUNTRY["cards"][2:],
        ],
    }
    dialogue = make_published_dialogue(acme, name="Where from", flow=flow)

    started = start(acme_widget, dialogue, session(acme_widget)["visitor_id"], ANA_COOKIE)

    assert texts(started) == ["Bonjour Ana, our Paris team looks after BigCo."]


# --- DynChat.identify ------------------------------------------------------------------------


def test_identify_with_an_email_attaches_the_visitor_to_the_synced_lead(
    acme_widget, acme, acme_dialogue, ana
):
    france_only(acme)
    visitor_id = session(acme_widget)["visitor_id"]

    response = acme_widget.post(
        "/visitors/identify",
        {"visitor_id": visitor_id, "email": "ANA@bigco.com", "mkto_trk": ANA_COOKIE},
    )

    assert response.status_code == 200
    assert response.json() == {"identified": ["email"]}
    visitor = Visitor.objects.get()
    assert (visitor.email, visitor.marketo_cookie) == ("ana@bigco.com", ANA_COOKIE)
    assert session(acme_widget, visitor_id=visitor_id)["dialogue"]["name"] == "For France"
    assert texts(start(acme_widget, acme_dialogue, visitor_id))[0] == "Hi Ana!"


def test_identify_with_only_the_cookie_resolves_an_anonymous_visitor(acme_widget, acme, ana):
    france_only(acme)
    visitor_id = session(acme_widget)["visitor_id"]

    response = acme_widget.post(
        "/visitors/identify", {"visitor_id": visitor_id, "mkto_trk": ANA_COOKIE}
    )

    assert response.json() == {"identified": []}
    assert Visitor.objects.get().marketo_lead_id == 42
    # Back without the cookie (Munchkin blocked on this page): still known as Ana.
    assert session(acme_widget, visitor_id=visitor_id)["dialogue"]["name"] == "For France"


# --- Marketo write-back ----------------------------------------------------------------------


@pytest.fixture
def writeback_on(settings):
    """Marketo configured (nothing is sent: these tests only read the outbox)."""
    settings.MARKETO_BASE_URL = "http://127.0.0.1:9"
    settings.MARKETO_CLIENT_ID = "dynchat-identity"
    settings.MARKETO_CLIENT_SECRET = "s3cret"
    settings.CELERY_TASK_ALWAYS_EAGER = True


def outbox():
    return [(r.kind, r.status, r.lead_key) for r in OutboxRecord.objects.order_by("id")]


Kind, Status = OutboxRecord.Kind, OutboxRecord.Status


def test_an_anonymous_visitors_records_go_to_the_lead_of_the_email_they_give(
    writeback_on, acme_widget, acme, acme_dialogue, ana
):
    visitor_id = session(acme_widget)["visitor_id"]
    conversation = say(acme_widget, start(acme_widget, acme_dialogue, visitor_id), "yes", "Ana")
    assert outbox() == [(Kind.ACTIVITY, Status.WAITING, "")]  # engaged, nobody to send it to

    say(acme_widget, conversation, "ana@bigco.com")

    assert outbox()[0] == (Kind.ACTIVITY, Status.PENDING, "ana@bigco.com")
    assert {status for _, status, _ in outbox()} == {Status.PENDING}
    assert {key for _, _, key in outbox()} == {"ana@bigco.com"}


def test_an_anonymous_visitors_records_go_to_the_lead_their_cookie_resolves_to(
    writeback_on, acme_widget, acme, acme_dialogue, ana
):
    # Bob's cookie is not synced yet: his engagement waits.
    visitor_id = session(acme_widget, BOB_COOKIE)["visitor_id"]
    say(acme_widget, start(acme_widget, acme_dialogue, visitor_id, BOB_COOKIE), "yes")
    assert outbox() == [(Kind.ACTIVITY, Status.WAITING, "")]

    # The sync brings his lead, cookie and all; his next conversation resolves him.
    Lead.objects.create(id=77, email="bob@bigco.com", cookies=BOB_TOKEN, attributes={})
    other = make_published_dialogue(acme, name="Other")
    start(acme_widget, other, visitor_id, BOB_COOKIE)

    assert outbox() == [(Kind.ACTIVITY, Status.PENDING, "id:77")]
    assert Visitor.objects.get().marketo_lead_id == 77


def test_a_cookie_resolved_visitors_engagement_is_pending_at_once(
    writeback_on, acme_widget, acme, acme_dialogue, ana
):
    visitor_id = session(acme_widget, ANA_COOKIE)["visitor_id"]

    say(acme_widget, start(acme_widget, acme_dialogue, visitor_id, ANA_COOKIE), "yes")

    assert outbox() == [(Kind.ACTIVITY, Status.PENDING, "id:42")]


def test_a_visitor_who_gives_an_email_has_their_cookie_associated_with_their_lead(
    writeback_on, acme_widget, acme, acme_dialogue, ana
):
    visitor_id = session(acme_widget, BOB_COOKIE)["visitor_id"]
    conversation = start(acme_widget, acme_dialogue, visitor_id, BOB_COOKIE)

    say(acme_widget, conversation, "yes", "Bob", "bob@bigco.com")

    [cookie] = OutboxRecord.objects.filter(kind=Kind.COOKIE)
    assert (cookie.status, cookie.lead_key) == (Status.PENDING, "bob@bigco.com")
    assert cookie.payload == {"cookie": BOB_COOKIE}


def test_a_new_cookie_of_a_visitor_who_is_a_lead_is_associated_too(
    writeback_on, acme_widget, acme, acme_dialogue, ana
):
    visitor_id = session(acme_widget, BOB_COOKIE)["visitor_id"]
    conversation = start(acme_widget, acme_dialogue, visitor_id, BOB_COOKIE)
    say(acme_widget, conversation, "yes", "Bob", "bob@bigco.com")
    other = BOB_COOKIE.replace("-777", "-778")

    start(acme_widget, acme_dialogue, visitor_id, other)
    start(acme_widget, acme_dialogue, visitor_id, other)  # the same cookie again: nothing new

    cookies = OutboxRecord.objects.filter(kind=Kind.COOKIE).order_by("id")
    assert [(c.payload["cookie"], c.lead_key) for c in cookies] == [
        (BOB_COOKIE, "bob@bigco.com"),
        (other, "bob@bigco.com"),
    ]


def test_a_cookie_resolved_visitor_books_as_their_lead_without_typing_an_email(
    acme_widget, acme, ana, alex
):
    """The email card skips a known email; booking then uses the synced lead's."""
    import copy

    from routing.models import QueueMember
    from tests.conftest import EVERY_CARD_FLOW
    from tests.test_routing import book, hours_from_now

    flow = copy.deepcopy(EVERY_CARD_FLOW)
    next(c for c in flow["cards"] if c["id"] == "email")["skip_if_known"] = True
    dialogue = make_published_dialogue(acme, name="Known leads book", flow=flow)
    QueueMember.objects.get_or_create(site=acme, user=alex, defaults={"position": 1})
    visitor_id = session(acme_widget, ANA_COOKIE)["visitor_id"]
    started = start(acme_widget, dialogue, visitor_id, ANA_COOKIE)

    # Name and email are known from Marketo: the visitor is asked only for a phone.
    at_phone = say(acme_widget, started, "yes")
    assert at_phone["prompt"]["card_id"] == "phone"
    at_booking = say(acme_widget, at_phone, "+1 415 555 2671")
    prompt = at_booking["prompt"]
    assert prompt["kind"] == "booking"

    chat = (started["conversation_id"], started["token"], prompt["card_id"], prompt["step"])
    booked = book(acme, chat, hours_from_now(26))

    assert booked.meeting.lead_email == "ana@bigco.com"
    assert booked.meeting.lead_first_name == "Ana"
