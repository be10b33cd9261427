"""Who gets a visitor's meeting: the round-robin pointer, busy, paused and disconnected agents
skipped, account owners, custom rules, and the fallback when nobody can take the visitor.

Bookings go through the real booking service (meetings.services.book_meeting) on PostgreSQL;
agents use DynChat's built-in calendar (every day 0:00-23:30 UTC, 30-minute meetings, an hour's
notice) unless a test says otherwise."""

from datetime import UTC, datetime, timedelta

import pytest

from calendars.models import CalendarConnection
from dialogues.targeting import ANONYMOUS, VisitorFacts
from meetings import services as booking
from meetings.models import Meeting
from routing import routes
from routing.models import AccountOwner, Pointer, QueueMember, RoutingRule, RoutingSettings
from routing.routes import rotation
from tests.conftest import make_agent
from widget import keys
from widget import services as conversations
from widget.models import ConversationEvent, TranscriptEntry

RoutedBy = Meeting.RoutedBy


def chat_at_booking(site, dialogue, *, email="ann@bigco.com", **attributes):
    """A conversation of the shared test flow at its booking card, by the widget's services:
    (conversation id, token, card id, step)."""
    visitor_key = keys.new_visitor_key(site.pk)
    step, token = conversations.start_conversation(
        site=site, visitor_key=visitor_key, dialogue_id=dialogue.pk, page_url="https://acme.test/"
    )
    conversation = step.conversation
    if attributes:
        conversations.identify_visitor(visitor=conversation.visitor, attributes=attributes)
    for value in ("yes", "Ann", email, "+1 415 555 2671"):
        state = step.outcome.state
        step = conversations.answer_conversation(
            site=site,
            conversation_id=str(conversation.pk),
            token=token,
            card_id=state.waiting_on,
            step=state.step,
            value=value,
        )
    state = step.outcome.state
    assert step.outcome.prompt.kind == "booking"
    return str(conversation.pk), token, state.waiting_on, state.step


def book(site, chat, start):
    conversation_id, token, card_id, step = chat
    return booking.book_meeting(
        site=site,
        conversation_id=conversation_id,
        token=token,
        card_id=card_id,
        step=step,
        start=start,
        time_zone="Europe/Paris",
    )


def hours_from_now(hours: int) -> datetime:
    """A slot start (on the hour, UTC) `hours` ahead: past everyone's hour of notice."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now + timedelta(hours=hours)


def book_in_turn(site, dialogue, count, *, first_hour=3, domain="bigco.com"):
    """`count` bookings one after another, each at its own time: the agents they went to."""
    agents = []
    for n in range(count):
        chat = chat_at_booking(site, dialogue, email=f"v{n}@{domain}")
        agents.append(book(site, chat, hours_from_now(first_hour + n)).meeting.agent)
    return agents


@pytest.fixture
def five(acme):
    """Five agents, queued in this order."""
    return [make_agent(acme, name) for name in ("ada", "bo", "cy", "di", "ed")]


def facts(*, email="", company="", website="", **lead):
    return VisitorFacts(
        lead={"email": email, "company": company, **lead},
        company={"website": website} if website else {},
        chat={},
    )


# --- The rotation, pure -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_agent", "last_position", "expected"),
    [
        (None, None, [1, 2, 3, 4, 5]),  # nobody booked yet: the first in the queue
        (3, 2, [4, 5, 1, 2, 3]),  # Marketo's example: agent three had the last, four is next
        (5, 4, [1, 2, 3, 4, 5]),  # after the last one, back to the first
        (9, 2, [4, 5, 1, 2, 3]),  # the last agent left the queue: whoever was placed after them
        (9, 7, [1, 2, 3, 4, 5]),  # ... and from the start when nobody was
    ],
)
def test_the_rotation_starts_after_the_pointer(last_agent, last_position, expected):
    order, positions = [1, 2, 3, 4, 5], [0, 1, 2, 3, 4]
    assert (
        rotation(order, positions, last_agent_id=last_agent, last_position=last_position)
        == expected
    )


def test_the_rotation_of_an_empty_queue_is_empty():
    assert rotation([], [], last_agent_id=3, last_position=1) == []


# --- Round robin through the booking service ------------------------------------------------


def test_meetings_go_round_the_queue_in_order(acme, acme_dialogue, five):
    assert book_in_turn(acme, acme_dialogue, 7) == [*five, *five[:2]]
    meetings = Meeting.objects.order_by("assignment")
    assert [m.assignment for m in meetings] == [1, 2, 3, 4, 5, 6, 7]
    assert {m.routed_by for m in meetings} == {RoutedBy.ROUND_ROBIN}
    pointer = Pointer.objects.get(site=acme, rule=None)
    assert (pointer.last_agent, pointer.assignments) == (five[1], 7)


def test_after_agent_three_comes_agent_four(acme, acme_dialogue, five):
    Pointer.objects.create(site=acme, last_agent=five[2], last_position=2)
    assert book_in_turn(acme, acme_dialogue, 3) == [five[3], five[4], five[0]]


def test_the_queue_order_not_the_joining_order_decides(acme, acme_dialogue, five):
    for position, agent in enumerate([five[4], five[2], five[0], five[1], five[3]]):
        QueueMember.objects.filter(site=acme, user=agent).update(position=position)
    assert book_in_turn(acme, acme_dialogue, 5) == [five[4], five[2], five[0], five[1], five[3]]


def test_a_busy_agent_is_skipped_and_the_pointer_moves_to_who_got_it(acme, acme_dialogue, five):
    start = hours_from_now(5)
    Pointer.objects.create(site=acme, last_agent=five[1], last_position=1)
    Meeting.objects.create(
        site=acme,
        agent=five[2],
        agent_name="Cy",
        agent_email=five[2].email,
        lead_email="earlier@bigco.com",
        visitor_time_zone="UTC",
        start=start - timedelta(minutes=15),
        end=start + timedelta(minutes=15),
    )

    got = book(acme, chat_at_booking(acme, acme_dialogue), start).meeting.agent

    assert got == five[3]  # Cy, whose turn it was, is busy then
    assert Pointer.objects.get(site=acme, rule=None).last_agent == five[3]
    # Cy is not owed a turn: the next visitor (at another time) goes on after Di.
    assert book_in_turn(acme, acme_dialogue, 1, first_hour=9) == [five[4]]


def test_paused_and_disconnected_agents_are_skipped(acme, acme_dialogue, five):
    QueueMember.objects.filter(site=acme, user=five[1]).update(paused=True)
    CalendarConnection.objects.filter(user=five[3]).update(
        status=CalendarConnection.Status.NEEDS_RECONNECT
    )
    assert book_in_turn(acme, acme_dialogue, 4) == [five[0], five[2], five[4], five[0]]


def test_an_agent_removed_from_the_queue_hands_on_to_whoever_was_after_them(
    acme, acme_dialogue, five
):
    assert book_in_turn(acme, acme_dialogue, 2) == five[:2]  # Bo had the last meeting
    QueueMember.objects.filter(site=acme, user=five[1]).delete()
    assert book_in_turn(acme, acme_dialogue, 2, first_hour=9) == [five[2], five[3]]


def test_next_up_is_who_the_next_meeting_goes_to_if_everyone_is_free(acme, acme_dialogue, five):
    assert routes.next_up(acme) == five[0]
    book_in_turn(acme, acme_dialogue, 2)
    assert routes.next_up(acme) == five[2]
    QueueMember.objects.filter(site=acme, user=five[2]).update(paused=True)
    assert routes.next_up(acme) == five[3]


def test_nobody_is_next_up_in_an_empty_queue(acme):
    assert routes.next_up(acme) is None


# --- Account routing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("visitor", "owner_index"),
    [
        (facts(email="ann@bigco.com"), 3),  # her email's domain
        (facts(email="ann@eu.bigco.com"), 3),  # a subdomain of it
        (facts(email="ann@gmail.com", company="  SMALL   co "), 1),  # the company, any case/spaces
        (facts(email="ann@gmail.com", website="https://www.bigco.com/about"), 3),  # its website
        (facts(email="ann@small.co", company="Small Co"), 1),
        (facts(email="ann@bigco.co.uk"), None),
        (ANONYMOUS, None),
    ],
)
def test_the_account_owner_is_found_by_domain_then_company_name(acme, five, visitor, owner_index):
    AccountOwner.objects.create(site=acme, domain="bigco.com", owner=five[3])
    AccountOwner.objects.create(site=acme, company_name="Small Co", owner=five[1])
    expected = five[owner_index].pk if owner_index is not None else None
    assert routes.account_owner_id(acme, visitor) == expected


def test_the_most_specific_domain_wins(acme, five):
    AccountOwner.objects.create(site=acme, domain="bigco.com", owner=five[0])
    AccountOwner.objects.create(site=acme, domain="eu.bigco.com", owner=five[4])
    assert routes.account_owner_id(acme, facts(email="ann@eu.bigco.com")) == five[4].pk
    assert routes.account_owner_id(acme, facts(email="ann@us.bigco.com")) == five[0].pk


def test_another_sites_account_list_is_never_used(acme, globex, five):
    other = make_agent(globex, "gia")
    AccountOwner.objects.create(site=globex, domain="bigco.com", owner=other)
    assert routes.account_owner_id(acme, facts(email="ann@bigco.com")) is None


def test_a_known_visitor_from_an_owned_account_books_its_owner_and_takes_no_turn(
    acme, acme_dialogue, five
):
    AccountOwner.objects.create(site=acme, domain="bigco.com", owner=five[3])

    meetings = [
        book(
            acme,
            chat_at_booking(acme, acme_dialogue, email=f"v{n}@bigco.com"),
            hours_from_now(3 + n),
        ).meeting
        for n in range(2)
    ]

    assert [m.agent for m in meetings] == [five[3], five[3]]
    assert {m.routed_by for m in meetings} == {RoutedBy.ACCOUNT}
    assert {m.assignment for m in meetings} == {None}
    assert not Pointer.objects.filter(site=acme).exists()  # the queue's turns are untouched
    assert book_in_turn(acme, acme_dialogue, 1, first_hour=9, domain="bigco.net") == [five[0]]


def test_visitors_of_an_owned_account_are_offered_only_their_owners_times(
    acme, acme_dialogue, five
):
    owner = five[2]
    AccountOwner.objects.create(site=acme, domain="bigco.com", owner=owner)
    Meeting.objects.create(
        site=acme,
        agent=owner,
        agent_name="Cy",
        agent_email=owner.email,
        lead_email="earlier@bigco.com",
        visitor_time_zone="UTC",
        start=hours_from_now(4),
        end=hours_from_now(4) + timedelta(minutes=30),
    )

    offer = routes.offer(acme, facts(email="ann@bigco.com"))

    assert offer.route.kind == RoutedBy.ACCOUNT
    assert set(offer.agents) == {owner.pk}
    assert hours_from_now(4) not in offer.slots  # her meeting; the others are free then
    assert all(agents == [owner.pk] for agents in offer.slots.values())
    with pytest.raises(booking.SlotTaken):  # and nobody else takes that time for her
        book(acme, chat_at_booking(acme, acme_dialogue), hours_from_now(4))


@pytest.mark.parametrize(
    "change",
    [
        lambda owner: QueueMember.objects.filter(user=owner).update(paused=True),
        lambda owner: QueueMember.objects.filter(user=owner).delete(),
        lambda owner: CalendarConnection.objects.filter(user=owner).update(
            status=CalendarConnection.Status.NEEDS_RECONNECT
        ),
        lambda owner: owner.availability.delete(),
    ],
    ids=["paused", "out of the queue", "needs reconnecting", "no hours"],
)
def test_an_owner_who_cannot_be_booked_leaves_the_visitor_to_the_queue(
    acme, acme_dialogue, five, change
):
    AccountOwner.objects.create(site=acme, domain="bigco.com", owner=five[3])
    change(five[3])
    chat = chat_at_booking(acme, acme_dialogue, email="ann@bigco.com")
    meeting = book(acme, chat, hours_from_now(3)).meeting
    assert (meeting.agent, meeting.routed_by) == (five[0], RoutedBy.ROUND_ROBIN)


def test_an_owner_without_a_free_time_in_the_horizon_leaves_the_visitor_to_the_queue(
    acme, acme_dialogue, five
):
    owner = five[3]
    AccountOwner.objects.create(site=acme, domain="bigco.com", owner=owner)
    owner.availability.weekly_hours = {}
    owner.availability.save()
    offer = routes.offer(acme, facts(email="ann@bigco.com"))
    assert offer.route.kind == RoutedBy.ROUND_ROBIN
    assert offer.route.agent_ids == tuple(agent.pk for agent in five)

    chat = chat_at_booking(acme, acme_dialogue, email="ann@bigco.com")
    meeting = book(acme, chat, hours_from_now(3)).meeting
    assert (meeting.agent, meeting.routed_by) == (five[0], RoutedBy.ROUND_ROBIN)


# --- Custom rules -------------------------------------------------------------------------------


def rule(site, name, priority, agents, conditions, *, match="all", active=True):
    made = RoutingRule.objects.create(
        site=site, name=name, priority=priority, match=match, conditions=conditions, active=active
    )
    made.agents.set(agents)
    return made


DACH = [{"subject": "lead.country", "operator": "in_list", "value": ["DE", "AT", "CH"]}]
BIG = [{"subject": "lead.employees", "operator": "greater_than", "value": "1000"}]


def test_the_first_matching_active_rule_by_priority_wins(acme, five):
    rule(acme, "Enterprise", 2, [five[0]], BIG)
    rule(acme, "DACH", 1, [five[3], five[1]], DACH)
    rule(acme, "Everyone big, but off", 0, [five[4]], BIG, active=False)

    german_giant = facts(country="de", employees="5,000")
    found = routes.routes_for(acme, german_giant, routes.bookable_queue(acme))

    assert [(r.kind, r.rule_name, r.agent_ids) for r in found] == [
        (RoutedBy.RULE, "DACH", (five[1].pk, five[3].pk)),  # in queue order
        (RoutedBy.RULE, "Enterprise", (five[0].pk,)),
        (RoutedBy.ROUND_ROBIN, "", tuple(agent.pk for agent in five)),
    ]
    assert [r.kind for r in routes.routes_for(acme, facts(country="FR"), five)] == [
        RoutedBy.ROUND_ROBIN
    ]


def test_any_and_all_rules_and_company_conditions(acme, five):
    either = [
        {"subject": "company.industry", "operator": "equals", "value": "Banking"},
        {"subject": "lead.country", "operator": "equals", "value": "US"},
    ]
    rule(acme, "Banks or US", 1, [five[2]], either, match="any")
    rule(acme, "US banks", 0, [five[4]], either, match="all")
    bank = VisitorFacts(lead={"country": "FR"}, company={"industry": "banking"}, chat={})
    us_bank = VisitorFacts(lead={"country": "US"}, company={"industry": "Banking"}, chat={})
    queue = routes.bookable_queue(acme)
    assert [r.rule_name for r in routes.routes_for(acme, bank, queue)] == ["Banks or US", ""]
    assert [r.rule_name for r in routes.routes_for(acme, us_bank, queue)] == [
        "US banks",
        "Banks or US",
        "",
    ]


def test_a_rule_whose_agents_cannot_be_booked_is_passed_over(acme, five):
    rule(acme, "DACH", 1, [five[1]], DACH)
    QueueMember.objects.filter(user=five[1]).update(paused=True)
    found = routes.routes_for(acme, facts(country="DE"), routes.bookable_queue(acme))
    assert [r.kind for r in found] == [RoutedBy.ROUND_ROBIN]


def test_a_stored_condition_that_no_longer_validates_never_matches(acme, five):
    rule(acme, "Broken", 1, [five[1]], [{"subject": "lead.country", "operator": "bogus"}])
    rule(acme, "Empty", 2, [five[1]], [])
    found = routes.routes_for(acme, facts(country="DE"), routes.bookable_queue(acme))
    assert [r.kind for r in found] == [RoutedBy.ROUND_ROBIN]


def test_a_rules_agents_take_turns_on_its_own_pointer(acme, acme_dialogue, five):
    dach = rule(acme, "DACH", 1, [five[1], five[3]], DACH)

    def german(n):
        return chat_at_booking(acme, acme_dialogue, email=f"g{n}@bigco.de", country="DE")

    meetings = [book(acme, german(n), hours_from_now(3 + n)).meeting for n in range(3)]

    assert [m.agent for m in meetings] == [five[1], five[3], five[1]]
    assert {(m.routed_by, m.routing_rule_name) for m in meetings} == {(RoutedBy.RULE, "DACH")}
    assert [m.assignment for m in meetings] == [1, 2, 3]
    assert Pointer.objects.get(rule=dach).last_agent == five[1]
    # The whole queue's turns are its own: the next anonymous visitor gets the first agent.
    assert book_in_turn(acme, acme_dialogue, 1, first_hour=9) == [five[0]]


# --- Nobody can take the visitor ----------------------------------------------------------------


def test_with_nobody_bookable_there_is_no_route_and_the_fallback_is_offered(acme, five):
    QueueMember.objects.filter(site=acme).update(paused=True)
    assert routes.offer(acme, ANONYMOUS) == routes.NOBODY
    assert routes.fallback_message(acme) == RoutingSettings.DEFAULT_FALLBACK
    RoutingSettings.objects.create(site=acme, fallback_message="Write to sales@acme.test.")
    assert routes.fallback_message(acme) == "Write to sales@acme.test."


def test_the_slots_endpoint_shows_the_fallback_once_in_the_conversation(
    acme, acme_widget, acme_dialogue, five
):
    RoutingSettings.objects.create(site=acme, fallback_message="Write to sales@acme.test.")
    QueueMember.objects.filter(site=acme).update(paused=True)
    conversation_id, token, card_id, step = chat_at_booking(acme, acme_dialogue)
    path = (
        f"/conversations/{conversation_id}/slots?card_id={card_id}&step={step}"
        "&time_zone=Europe/Paris"
    )

    for _ in range(2):  # the visitor asks again (or changes zone): recorded once
        response = acme_widget.get(path, token=token)
        assert response.status_code == 200, response.content
        assert response.json()["days"] == []
        assert response.json()["fallback"] == "Write to sales@acme.test."

    events = ConversationEvent.objects.filter(conversation_id=conversation_id)
    fallback = events.get(kind=ConversationEvent.Kind.ROUTING_FALLBACK)
    assert (fallback.card_id, fallback.data) == (card_id, {"step": step})
    last = TranscriptEntry.objects.filter(conversation_id=conversation_id).order_by("seq").last()
    assert (last.author, last.text) == ("bot", "Write to sales@acme.test.")


def test_with_times_there_is_no_fallback(acme, acme_widget, acme_dialogue, five):
    conversation_id, token, card_id, step = chat_at_booking(acme, acme_dialogue)
    path = (
        f"/conversations/{conversation_id}/slots?card_id={card_id}&step={step}"
        "&time_zone=Europe/Paris"
    )
    body = acme_widget.get(path, token=token).json()
    assert body["days"] and body["fallback"] is None
    assert not ConversationEvent.objects.filter(kind="routing_fallback").exists()


def test_the_booking_response_says_how_long_it_waited_for_its_turn(
    acme, acme_widget, acme_dialogue, five
):
    conversation_id, token, card_id, step = chat_at_booking(acme, acme_dialogue)
    response = acme_widget.post(
        f"/conversations/{conversation_id}/bookings",
        {
            "card_id": card_id,
            "step": step,
            "start": hours_from_now(3).isoformat(),
            "time_zone": "UTC",
        },
        token=token,
    )
    assert response.status_code == 201, response.content
    name, _, duration = response["Server-Timing"].partition(";dur=")
    assert name == "lock" and float(duration) >= 0
