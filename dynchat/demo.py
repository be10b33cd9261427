"""The demo: a site, a marketer, and a published dialogue that uses every card type."""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from calendars.models import Availability, CalendarConnection
from calendars.services import save_connection
from dialogues import services
from dialogues.models import Dialogue, Membership, Site
from dynchat.views import DEMO_SITE_NAME
from routing import services as routing
from routing.models import RoutingRule

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "dynchat-demo"  # noqa: S105 - printed by `make run`; a demo, not a secret
DEMO_DIALOGUE_NAME = "Welcome and book a demo"

DEMO_FLOW = {
    "start": "welcome",
    "cards": [
        {
            "id": "welcome",
            "type": "message",
            "text": 'Hi {{lead.firstName | "there"}}! I\'m the DynChat assistant.',
            "next": "intent",
        },
        {
            "id": "intent",
            "type": "question",
            "text": "What brings you here today?",
            "choices": [
                {"label": "I'd like a demo", "value": "demo", "next": "ask-name"},
                {"label": "Just browsing", "value": "browsing", "next": "goodbye"},
            ],
        },
        {
            "id": "ask-name",
            "type": "capture",
            "text": "Great! What's your first name?",
            "input_type": "text",
            "attribute": "firstName",
            "placeholder": "First name",
            "skip_if_known": True,
            "next": "ask-email",
        },
        {
            "id": "ask-email",
            "type": "capture",
            "text": 'Thanks {{lead.firstName | "friend"}}. What\'s your work email?',
            "input_type": "email",
            "attribute": "email",
            "placeholder": "you@company.com",
            "skip_if_known": True,
            "next": "email-goal",
        },
        {"id": "email-goal", "type": "goal", "name": "Email captured", "next": "ask-phone"},
        {
            "id": "ask-phone",
            "type": "capture",
            "text": "And a phone number we can reach you on?",
            "input_type": "phone",
            "attribute": "phone",
            "placeholder": "+1 415 555 2671",
            "next": "ask-size",
        },
        {
            "id": "ask-size",
            "type": "question",
            "text": "How big is your team?",
            "choices": [
                {"label": "1-50", "value": "small", "next": "route"},
                {"label": "51-500", "value": "mid", "next": "route"},
                {"label": "500+", "value": "large", "next": "route"},
            ],
        },
        {
            "id": "route",
            "type": "branch",
            "rules": [
                {
                    "match": "any",
                    "conditions": [
                        {
                            "subject": "answer.ask-size",
                            "operator": "in_list",
                            "value": ["mid", "large"],
                        }
                    ],
                    "next": "book",
                }
            ],
            "default_next": "ask-notes",
        },
        {
            "id": "ask-notes",
            "type": "capture",
            "text": "Anything you'd like us to know before we call?",
            "input_type": "text",
            "attribute": "freeText",
            "placeholder": "Your message",
            "next": "thanks",
        },
        {"id": "thanks", "type": "end", "text": "Thanks! Someone from our team will be in touch."},
        {
            "id": "book",
            "type": "booking",
            "text": "Pick a time for a 30-minute demo with our team.",
            "days": 5,
            "skip_label": "None of these times work",
            "next": "booked",
            "skip_next": "ask-notes",
        },
        {
            "id": "booked",
            "type": "end",
            "text": "You're booked for {{answer.book}}. Your invitation is on its way.",
        },
        {"id": "goodbye", "type": "end", "text": "Enjoy looking around. I'm here if you need me."},
    ],
}


# Sales agents on the built-in calendar (no Google or Microsoft account needed), in two zones, so
# visitors see times from both; they log in with DEMO_PASSWORD to see their calendar page.
DEMO_RULE_NAME = "UK and Ireland"
DEMO_AGENTS = (
    {
        "username": "sam",
        "first_name": "Sam",
        "last_name": "Rivera",
        "time_zone": "America/New_York",
        "weekly_hours": {str(d): [["09:00", "12:00"], ["13:00", "17:00"]] for d in range(1, 6)},
    },
    {
        "username": "priya",
        "first_name": "Priya",
        "last_name": "Shah",
        "time_zone": "Europe/London",
        "weekly_hours": {str(d): [["08:30", "12:30"], ["13:30", "16:30"]] for d in range(1, 7)},
    },
)


def demo_origins() -> list[str]:
    """SITE_ROOT's origin, and the same port on localhost and 127.0.0.1, so the demo page works
    whichever of the two a newcomer types."""
    root = urlsplit(settings.SITE_ROOT)
    port = f":{root.port}" if root.port else ""
    origins = {f"{root.scheme}://{root.hostname}{port}"}
    for host in ("localhost", "127.0.0.1"):
        origins.add(f"{root.scheme}://{host}{port}")
    return sorted(origins)


@transaction.atomic
def seed_demo() -> Site:
    """Create the demo, or bring an existing one back to its seeded state. Idempotent."""
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(
        username=DEMO_USERNAME, defaults={"email": "demo@example.com"}
    )
    user.set_password(DEMO_PASSWORD)
    # Until roles arrive with the builder, the demo marketer runs everything through the admin.
    user.is_staff = user.is_superuser = True
    user.save()

    site = Site.objects.filter(name=DEMO_SITE_NAME).first()
    if site is None:
        site = services.create_site(name=DEMO_SITE_NAME, allowed_origins=demo_origins(), owner=user)
    else:
        site.allowed_origins = sorted(set(site.allowed_origins) | set(demo_origins()))
        site.save(update_fields=["allowed_origins"])
        services.add_member(site=site, user=user, role=Membership.Role.ADMIN)

    for agent in DEMO_AGENTS:
        _seed_agent(site, **agent)
    _seed_routing(site)

    dialogue, created = Dialogue.objects.get_or_create(
        site=site, name=DEMO_DIALOGUE_NAME, defaults={"flow": DEMO_FLOW, "priority": 10}
    )
    # Publish a first version, or a new one only when the seeded flow changed.
    if created or dialogue.current_version is None or dialogue.flow != DEMO_FLOW:
        dialogue.flow = DEMO_FLOW
        dialogue.save(update_fields=["flow"])
        services.publish_dialogue(dialogue_id=dialogue.pk, user=user)
    return site


def _seed_routing(site: Site) -> None:
    """A custom rule to show on the routing page: visitors from the UK and Ireland (a synced
    lead's country) go to Priya, in London. Everyone else takes turns with Sam and Priya."""
    if RoutingRule.objects.filter(site=site, name=DEMO_RULE_NAME).exists():
        return
    routing.save_rule(
        site=site,
        name=DEMO_RULE_NAME,
        description="Leads in the UK and Ireland meet our London team.",
        match="all",
        conditions=[{"subject": "lead.country", "operator": "in_list", "value": ["GB", "IE"]}],
        agent_ids=[get_user_model().objects.get(username="priya").pk],
    )


def _seed_agent(site: Site, *, username, first_name, last_name, time_zone, weekly_hours) -> None:
    agent, _ = get_user_model().objects.get_or_create(
        username=username, defaults={"email": f"{username}@example.com"}
    )
    agent.first_name, agent.last_name = first_name, last_name
    agent.set_password(DEMO_PASSWORD)
    agent.save()
    services.add_member(site=site, user=agent, role=Membership.Role.AGENT)
    if not CalendarConnection.objects.filter(user=agent).exists():
        save_connection(agent, CalendarConnection.Provider.BUILTIN, account_email=agent.email)
    Availability.objects.update_or_create(
        user=agent,
        defaults={
            "time_zone": time_zone,
            "weekly_hours": weekly_hours,
            "date_overrides": {},
            "meeting_minutes": 30,
            "buffer_after_minutes": 10,
            "minimum_notice_minutes": 4 * 60,
            "booking_horizon_days": 21,
        },
    )
