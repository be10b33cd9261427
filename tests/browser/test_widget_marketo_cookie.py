"""The widget knows a visitor Marketo knows: the host page's Munchkin cookie (`_mkto_trk`) gets
them the dialogue targeted at their synced lead, and an email typed into the chat lets the very
next card speak with what Marketo has on them."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dialogues.models import Dialogue
from marketo_sync.models import Lead
from tests.conftest import make_published_dialogue
from widget.models import Visitor

pytestmark = pytest.mark.browser

ANA_TOKEN = "_mch-localhost-1718000000000-12345"
ANA_COOKIE = f"id:561-HYG-937&token:{ANA_TOKEN}"
DEMO_GREETING = "Hi there! I'm the DynChat assistant."

SAYS_BONJOUR = {
    "start": "bonjour",
    "cards": [
        {"id": "bonjour", "type": "end", "text": "Bonjour {{lead.firstName}}, welcome from Paris."}
    ],
}

ASKS_EMAIL = {
    "start": "email",
    "cards": [
        {
            "id": "email",
            "type": "capture",
            "text": "Your work email?",
            "input_type": "email",
            "attribute": "email",
            "placeholder": "you@company.com",
            "next": "known",
        },
        {
            "id": "known",
            "type": "end",
            "text": 'Good to see you again, {{lead.firstName}} from {{lead.company | "nowhere"}}.',
        },
    ],
}


@pytest.fixture
def ana(db):
    """A lead synced from Marketo, with the Munchkin cookie of her browser."""
    return Lead.objects.create(
        id=42,
        email="ana@bigco.com",
        cookies=ANA_TOKEN,
        updated_at=timezone.now(),
        attributes={"country": "France", "firstName": "Ana", "company": "BigCo"},
    )


@pytest.fixture
def for_france(demo_site):
    dialogue = make_published_dialogue(demo_site, name="For France", flow=SAYS_BONJOUR, priority=20)
    condition = {"subject": "lead.country", "operator": "equals", "value": "France"}
    Dialogue.objects.filter(pk=dialogue.pk).update(
        targeting={"audience": [{"conditions": [condition]}]}
    )
    return dialogue


def test_a_visitor_with_a_synced_leads_cookie_gets_the_dialogue_targeted_at_that_lead(
    chat, page_url, ana, for_france
):
    # Munchkin set its cookie on the host page (the widget's API is on another origin).
    chat.page.context.add_cookies([{"name": "_mkto_trk", "value": ANA_COOKIE, "url": page_url}])

    chat.visit()

    chat.bot_says("Bonjour Ana, welcome from Paris.")
    expect(chat.log.get_by_text(DEMO_GREETING)).to_have_count(0)
    visitor = Visitor.objects.get()
    assert (visitor.marketo_cookie, visitor.marketo_lead_id) == (ANA_COOKIE, 42)


def test_a_visitor_without_the_cookie_gets_the_dialogue_for_everyone(chat, ana, for_france):
    chat.visit()

    chat.bot_says(DEMO_GREETING)
    expect(chat.log.get_by_text("Bonjour")).to_have_count(0)


def test_a_cookie_that_is_not_munchkins_changes_nothing(chat, page_url, ana, for_france):
    chat.page.context.add_cookies([{"name": "_mkto_trk", "value": "x" * 400, "url": page_url}])

    chat.visit()

    chat.bot_says(DEMO_GREETING)


def test_a_visitor_who_types_their_email_is_greeted_with_what_marketo_knows(chat, demo_site, ana):
    make_published_dialogue(demo_site, name="Who are you", flow=ASKS_EMAIL, priority=20)
    chat.visit()
    chat.bot_says("Your work email?")

    chat.type("ana@bigco.com", placeholder="you@company.com")

    chat.bot_says("Good to see you again, Ana from BigCo.")
    assert Visitor.objects.get().email == "ana@bigco.com"
