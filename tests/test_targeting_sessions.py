"""Which dialogue a visitor is offered when their session starts: page rules, audience rules
on the synced lead and company and on what they told the chat, schedules and priority, all
decided on the server with a fixed number of queries however many dialogues a site has."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dialogues.models import Dialogue
from marketo_sync.models import Company, Lead
from tests.conftest import make_published_dialogue

PRICING = "https://www.acme.test/pricing/team"
BLOG = "https://www.acme.test/blog/hello"

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def targeted(site, name, *, priority=0, **targeting):
    dialogue = make_published_dialogue(site, name=name, priority=priority)
    Dialogue.objects.filter(pk=dialogue.pk).update(targeting=targeting)
    return dialogue


def offered(widget, page_url, visitor_id=None):
    session = widget.start_session(visitor_id=visitor_id, page_url=page_url)
    return session["dialogue"] and session["dialogue"]["name"], session["visitor_id"]


def cond(subject, operator, value=""):
    return {"conditions": [{"subject": subject, "operator": operator, "value": value}]}


def test_a_page_rule_shows_a_dialogue_on_its_pages_only(acme_widget, acme):
    targeted(acme, "Pricing help", priority=10, include_urls=["https://www.acme.test/pricing/*"])
    targeted(acme, "Everywhere else", priority=1)
    assert offered(acme_widget, PRICING)[0] == "Pricing help"
    assert offered(acme_widget, BLOG)[0] == "Everywhere else"


def test_an_excluded_page_gets_the_next_dialogue_or_none(acme_widget, acme):
    targeted(acme, "Site wide", exclude_urls=["https://www.acme.test/blog/*"])
    assert offered(acme_widget, PRICING)[0] == "Site wide"
    assert offered(acme_widget, BLOG)[0] is None


def test_the_highest_priority_dialogue_that_qualifies_wins(acme_widget, acme):
    targeted(acme, "Low", priority=1)
    targeted(acme, "High", priority=50)
    targeted(acme, "Middle", priority=20)
    assert offered(acme_widget, PRICING)[0] == "High"


def test_an_anonymous_visitor_dialogue_stops_once_the_chat_learns_their_email(acme_widget, acme):
    targeted(acme, "Who are you?", priority=10, audience=[cond("lead.email", "is_empty")])
    targeted(acme, "Welcome back", priority=1)
    name, visitor = offered(acme_widget, PRICING)
    assert name == "Who are you?"
    response = acme_widget.post(
        "/visitors/identify", {"visitor_id": visitor, "email": "ana@bigco.com"}
    )
    assert response.status_code == 200
    assert offered(acme_widget, PRICING, visitor)[0] == "Welcome back"


@pytest.fixture
def french_lead(db):
    Company.objects.create(
        id=7,
        external_company_id="bigco",
        name="BigCo",
        attributes={"industry": "Banking", "numberOfEmployees": 1200},
        synced_at=timezone.now(),
    )
    return Lead.objects.create(
        id=42,
        email="Ana@BigCo.com",
        external_company_id="bigco",
        updated_at=timezone.now(),
        attributes={"country": "France", "firstName": "Ana"},
    )


def test_person_and_company_attributes_from_the_marketo_sync_target_a_known_visitor(
    acme_widget, acme, french_lead
):
    targeted(
        acme,
        "French banks",
        priority=10,
        audience=[
            cond("lead.country", "equals", "france"),
            cond("company.numberOfEmployees", "greater_than", "1000"),
        ],
    )
    _, visitor = offered(acme_widget, PRICING)
    assert offered(acme_widget, PRICING, visitor)[0] is None
    acme_widget.post("/visitors/identify", {"visitor_id": visitor, "email": "ana@bigco.com"})
    assert offered(acme_widget, PRICING, visitor)[0] == "French banks"


def test_what_the_visitor_told_the_chat_overrides_the_synced_lead(acme_widget, acme, french_lead):
    targeted(acme, "Spain", audience=[cond("lead.country", "equals", "Spain")])
    targeted(acme, "Told the chat", audience=[cond("chat.company", "starts_with", "big")])
    _, visitor = offered(acme_widget, PRICING)
    acme_widget.post(
        "/visitors/identify",
        {"visitor_id": visitor, "email": "ana@bigco.com", "company": "BigCo Europe"},
    )
    assert offered(acme_widget, PRICING, visitor)[0] == "Told the chat"


def test_a_scheduled_dialogue_shows_only_within_its_dates(acme_widget, acme):
    now = timezone.now()
    targeted(acme, "Not yet", priority=3, starts_at=(now + timedelta(days=1)).isoformat())
    targeted(acme, "Over", priority=2, ends_at=(now - timedelta(minutes=1)).isoformat())
    targeted(
        acme,
        "This week",
        priority=1,
        starts_at=(now - timedelta(days=1)).isoformat(),
        ends_at=(now + timedelta(days=6)).isoformat(),
    )
    assert offered(acme_widget, PRICING)[0] == "This week"


def test_a_completed_dialogue_gives_way_to_the_next_that_qualifies(acme_widget, acme):
    first = targeted(acme, "First", priority=10)
    targeted(acme, "Second", priority=1)
    visitor = acme_widget.start_session()["visitor_id"]
    conversation = acme_widget.start_conversation(first, visitor_id=visitor)
    response = acme_widget.answer(conversation, "no")
    assert response.json()["done"] is True
    assert offered(acme_widget, PRICING, visitor)[0] == "Second"


def test_another_sites_dialogues_are_never_offered(acme_widget, acme, globex):
    targeted(globex, "Globex only", priority=100)
    targeted(acme, "Acme", priority=1)
    assert offered(acme_widget, PRICING)[0] == "Acme"


def test_five_hundred_dialogues_cost_the_same_queries_as_one(
    acme_widget, acme, french_lead, memo_on, django_assert_num_queries
):
    audience = [cond("company.industry", "equals", "Retail")]
    dialogues = [
        Dialogue(
            site=acme,
            name=f"Campaign {n}",
            status=Dialogue.Status.PUBLISHED,
            priority=n,
            targeting={"include_urls": [f"https://www.acme.test/campaign-{n}/*"]}
            if n % 2
            else {"audience": audience},
        )
        for n in range(500)
    ]
    Dialogue.objects.bulk_create(dialogues)
    make_published_dialogue(acme, name="Fallback", priority=-1)
    Dialogue.objects.filter(site=acme, current_version=None).update(
        current_version=Dialogue.objects.get(name="Fallback").current_version
    )
    _, visitor = offered(acme_widget, PRICING)
    acme_widget.post("/visitors/identify", {"visitor_id": visitor, "email": "ana@bigco.com"})
    offered(acme_widget, PRICING, visitor)  # fills the per-process memo of the site's offers
    # An identified visitor: the site (memo), the visitor's row, their lead, their company.
    with django_assert_num_queries(3):
        assert offered(acme_widget, PRICING, visitor)[0] == "Fallback"
    # A new visitor is anonymous: no visitor, lead or company to read.
    with django_assert_num_queries(0):
        assert offered(acme_widget, "https://www.acme.test/campaign-499/x")[0] == "Campaign 499"
