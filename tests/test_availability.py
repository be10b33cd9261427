"""Who a visitor on Acme's site can book, and when (calendars.availability, on the database).

Acme's sales agents: Ana and Ben use DynChat's built-in calendar; Gil signed in with Google.
The real Google client runs against the fake Google on loopback (tests/fakes/google_calendar),
so busy times come through calendars.busy's cache and its "unknown is never free" rule as in
production.

Unless a test says otherwise an agent takes 30-minute meetings Monday to Friday 9:00-12:00 UTC,
no notice, one day ahead, and "now" is Monday 1 June 2026, 00:00 UTC.
"""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from calendars.availability import (
    agent_is_free,
    agent_slots,
    busy_window,
    rules_for,
)
from calendars.models import Availability, CalendarConnection
from dialogues.models import Membership
from dialogues.targeting import ANONYMOUS
from meetings.models import Meeting
from routing.routes import bookable_queue, offer
from routing.services import join_queues
from tests.conftest import sign_in

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

NOW = datetime(2026, 6, 1, tzinfo=UTC)
MORNING = [["09:00", "12:00"]]


def offered_slots(site, **kwargs):
    """What an anonymous visitor is offered: the whole queue's free slots."""
    return offer(site, ANONYMOUS, **kwargs).slots


def at(hour, minute=0, day=1):
    return datetime(2026, 6, day, hour, minute, tzinfo=UTC)


ALL_MORNING = [at(9), at(9, 30), at(10), at(10, 30), at(11), at(11, 30)]


def make_agent(
    site,
    name,
    *,
    provider="builtin",
    status=CalendarConnection.Status.CONNECTED,
    hours=MORNING,
    role=Membership.Role.AGENT,
    availability=True,
    calendar=True,
    **rules,
):
    user = get_user_model().objects.create(username=name, email=f"{name}@acme.test")
    Membership.objects.create(user=user, site=site, role=role)
    if calendar:
        CalendarConnection.objects.create(user=user, provider=provider, status=status)
        join_queues(user)  # as connecting one does
    if availability:
        Availability.objects.create(
            user=user,
            time_zone=rules.pop("time_zone", "UTC"),
            weekly_hours={str(day): hours for day in range(1, 6)},
            minimum_notice_minutes=rules.pop("minimum_notice_minutes", 0),
            booking_horizon_days=rules.pop("booking_horizon_days", 1),
            **rules,
        )
    return user


def book(agent, start, minutes=30, status=Meeting.Status.BOOKED):
    return Meeting.objects.create(
        site=Membership.objects.filter(user=agent).first().site,
        agent=agent,
        agent_name=agent.username,
        agent_email=agent.email,
        lead_email="lead@bigco.test",
        visitor_time_zone="Europe/Paris",
        start=start,
        end=start + timedelta(minutes=minutes),
        status=status,
    )


@pytest.fixture
def ana(acme):
    return make_agent(acme, "ana")


@pytest.fixture
def ben(acme):
    return make_agent(acme, "ben", hours=[["11:00", "13:00"]])


@pytest.fixture
def gil(acme, fake_google):
    agent = make_agent(acme, "gil", calendar=False)
    sign_in(agent, fake_google, "google", "gus@acme.test")
    return agent


def freebusy_window(fake_google) -> tuple[str, str]:
    body = fake_google.last("freebusy.query")["json"]
    return body["timeMin"], body["timeMax"]


# --- Who is bookable -------------------------------------------------------------------------


def test_agents_with_a_calendar_and_hours_are_bookable_in_queue_order(acme, ben, ana, gil):
    assert bookable_queue(acme) == [ben, ana, gil]


def test_an_agent_without_a_calendar_is_not_bookable(acme, ana):
    make_agent(acme, "nocal", calendar=False)
    assert bookable_queue(acme) == [ana]


def test_an_agent_whose_calendar_needs_reconnecting_is_not_bookable(acme, ana):
    make_agent(
        acme,
        "broken",
        provider=CalendarConnection.Provider.GOOGLE,
        status=CalendarConnection.Status.NEEDS_RECONNECT,
    )
    assert bookable_queue(acme) == [ana]


def test_an_agent_without_availability_is_not_bookable(acme, ana):
    make_agent(acme, "nohours", availability=False)
    assert bookable_queue(acme) == [ana]


def test_marketers_and_deactivated_accounts_are_not_bookable(acme, ana):
    make_agent(acme, "marketer", role=Membership.Role.MARKETER)
    gone = make_agent(acme, "gone")
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    assert bookable_queue(acme) == [ana]


def test_another_sites_agents_never_appear(acme, globex, ana):
    make_agent(globex, "globex-agent", hours=[["14:00", "15:00"]])
    assert bookable_queue(acme) == [ana]
    assert offered_slots(acme, now=NOW) == {start: [ana.pk] for start in ALL_MORNING}


def test_an_agent_on_two_sites_is_bookable_once_on_each(acme, globex, ana, ben):
    Membership.objects.create(user=ana, site=globex, role=Membership.Role.AGENT)
    join_queues(ana)
    assert bookable_queue(acme) == [ana, ben]
    assert bookable_queue(globex) == [ana]


# --- Slots -----------------------------------------------------------------------------------


def test_offered_slots_unions_agents_and_lists_both_on_a_shared_slot(acme, ana, ben):
    # Ana 9:00-12:00, Ben 11:00-13:00: 11:00 and 11:30 are both theirs, Ana first (queue order).
    assert offered_slots(acme, now=NOW) == {
        at(9): [ana.pk],
        at(9, 30): [ana.pk],
        at(10): [ana.pk],
        at(10, 30): [ana.pk],
        at(11): [ana.pk, ben.pk],
        at(11, 30): [ana.pk, ben.pk],
        at(12): [ben.pk],
        at(12, 30): [ben.pk],
    }


def test_offered_slots_are_in_time_order(acme, ana, ben):
    starts = list(offered_slots(acme, now=NOW))
    assert starts == sorted(starts)


def test_a_booked_meeting_removes_its_slot_and_a_cancelled_one_does_not(acme, ana):
    book(ana, at(10))
    book(ana, at(11), status=Meeting.Status.CANCELLED)
    assert agent_slots([ana], now=NOW) == {
        ana.pk: [at(9), at(9, 30), at(10, 30), at(11), at(11, 30)]
    }


def test_a_booked_meeting_keeps_the_agents_buffers_clear(acme):
    # 10 minutes after each meeting: booked 10:00-10:30 blocks until 10:40, so 10:30 goes too.
    eve = make_agent(acme, "eve", buffer_after_minutes=10)
    book(eve, at(10))
    assert agent_slots([eve], now=NOW)[eve.pk] == [at(9), at(11), at(11, 30)]


def test_meetings_of_other_agents_do_not_matter(acme, ana, ben):
    book(ben, at(11))
    assert agent_slots([ana], now=NOW)[ana.pk] == ALL_MORNING


def test_until_cuts_the_slots(acme, ana):
    assert agent_slots([ana], now=NOW, until=at(10))[ana.pk] == [at(9), at(9, 30)]


def test_an_agent_who_cannot_be_booked_gets_an_empty_list(acme, ana):
    nocal = make_agent(acme, "nocal", calendar=False)
    assert agent_slots([ana, nocal], now=NOW) == {ana.pk: ALL_MORNING, nocal.pk: []}


def test_unusable_availability_offers_no_slots_and_says_why_in_the_log(acme, ana, caplog):
    odd = make_agent(acme, "odd")
    Availability.objects.filter(user=odd).update(weekly_hours={"1": [["25:00", "26:00"]]})
    with caplog.at_level(logging.WARNING, logger="calendars.availability"):
        assert agent_slots([ana, odd], now=NOW) == {ana.pk: ALL_MORNING, odd.pk: []}
    assert f"agent {odd.pk} offers no slots" in caplog.text
    assert "'25:00' is not a time" in caplog.text


def test_rules_for_reads_every_field_of_the_row(acme):
    agent = make_agent(
        acme,
        "kathmandu",
        time_zone="Asia/Kathmandu",
        meeting_minutes=45,
        buffer_before_minutes=5,
        buffer_after_minutes=10,
        minimum_notice_minutes=120,
        booking_horizon_days=7,
    )
    Availability.objects.filter(user=agent).update(date_overrides={"2026-06-02": []})
    rules = rules_for(Availability.objects.get(user=agent))
    assert str(rules.time_zone) == "Asia/Kathmandu"
    assert (rules.meeting_minutes, rules.buffer_before_minutes, rules.buffer_after_minutes) == (
        45,
        5,
        10,
    )
    assert (rules.minimum_notice_minutes, rules.booking_horizon_days) == (120, 7)
    assert rules.date_overrides == {datetime(2026, 6, 2).date(): ()}
    assert len(rules.weekly_hours) == 5


# --- Provider busy times ---------------------------------------------------------------------


def test_provider_busy_times_remove_slots(acme, gil, fake_google):
    fake_google.set_busy("primary", [(at(9, 15), at(10))])
    assert agent_slots([gil], now=NOW)[gil.pk] == [at(10), at(10, 30), at(11), at(11, 30)]


def test_unknown_busy_times_mean_no_slots_for_that_agent_only(acme, ana, gil, fake_google):
    fake_google.set_freebusy_error("notFound")
    assert offered_slots(acme, now=NOW) == {start: [ana.pk] for start in ALL_MORNING}


def test_a_provider_not_answering_means_no_slots_for_that_agent(acme, ana, gil, fake_google):
    fake_google.fail_next("freebusy.query", 503)
    assert offered_slots(acme, now=NOW) == {start: [ana.pk] for start in ALL_MORNING}


def test_busy_times_are_read_from_the_cache_within_the_hour(acme, gil, fake_google):
    offered_slots(acme, now=NOW + timedelta(minutes=1))
    fake_google.set_busy("primary", [(at(9), at(12))])  # Google says busy; the cache, free
    slots = offered_slots(acme, now=NOW + timedelta(minutes=59, seconds=59, microseconds=5))
    assert fake_google.count("freebusy.query") == 1
    assert list(slots) == ALL_MORNING


def test_the_busy_window_is_whole_hours_and_days_from_the_notice_to_the_horizon(acme, ana):
    rules = rules_for(Availability.objects.get(user=ana))
    # No notice, no buffers, one day ahead, 30-minute meetings: 10:17 -> 10:00 to the end of
    # the day the last slot's end falls on (Tuesday 10:47 -> Wednesday 00:00).
    assert busy_window(rules, at(10, 17)) == (at(10), at(0, day=3))
    # A day of notice and a 15-minute buffer before: the window starts at Tuesday 10:00.
    rules = rules_for(Availability(minimum_notice_minutes=1440, buffer_before_minutes=15))
    assert busy_window(rules, at(10, 17))[0] == at(10, day=2)


def test_the_provider_is_asked_for_the_agents_busy_window(acme, gil, fake_google):
    agent_slots([gil], now=at(0, 17))
    assert freebusy_window(fake_google) == ("2026-06-01T00:00:00Z", "2026-06-03T00:00:00Z")


# --- Queries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 10])
def test_warm_slots_take_few_queries_whatever_the_number_of_agents(
    acme, count, fake_google, django_assert_num_queries
):
    agents = [make_agent(acme, f"agent{n}", calendar=n % 2 == 1) for n in range(count)]
    for agent in agents[::2]:  # every other one on Google, the others on the built-in calendar
        sign_in(agent, fake_google, "google", "gus@acme.test")
    for agent in agents:
        book(agent, at(10))
    offered_slots(acme, now=NOW)  # a cold call also asks Google, which reads each connection
    # The queue with calendars and hours, the site's custom rules, the booked meetings.
    with django_assert_num_queries(3):
        offered = offered_slots(acme, now=NOW)
    queue = bookable_queue(acme)
    assert sorted(queue, key=lambda agent: agent.pk) == agents
    assert offered[at(9)] == [agent.pk for agent in queue]
    with django_assert_num_queries(2):
        slots = agent_slots(agents, now=NOW)
    assert all(at(10) not in slots[agent.pk] for agent in agents)


# --- At booking time -------------------------------------------------------------------------


def test_a_free_slot_is_free_at_booking_time(acme, ana):
    assert agent_is_free(ana, at(10), at(10, 30), now=NOW)


def test_a_slot_booked_meanwhile_is_not_free(acme, ana):
    book(ana, at(10))
    assert not agent_is_free(ana, at(10), at(10, 30), now=NOW)
    assert agent_is_free(ana, at(10, 30), at(11), now=NOW)


def test_a_slot_of_the_wrong_length_or_off_the_grid_is_not_free(acme, ana):
    assert not agent_is_free(ana, at(10), at(11), now=NOW)
    assert not agent_is_free(ana, at(10, 10), at(10, 40), now=NOW)
    assert not agent_is_free(ana, at(13), at(13, 30), now=NOW)  # outside her hours


def test_a_slot_too_soon_is_not_free(acme, ana):
    assert not agent_is_free(ana, at(10), at(10, 30), now=at(10, 1))


def test_booking_time_asks_the_provider_live_over_just_the_slot(acme, gil, fake_google):
    agent_slots([gil], now=NOW)  # fills the cache with "free all morning"
    fake_google.set_busy("primary", [(at(10), at(10, 30))])  # then a meeting lands in Google
    assert not agent_is_free(gil, at(10), at(10, 30), now=NOW)
    assert freebusy_window(fake_google) == ("2026-06-01T10:00:00Z", "2026-06-01T10:30:00Z")
    assert agent_is_free(gil, at(10, 30), at(11), now=NOW)


def test_booking_time_with_the_provider_not_answering_is_not_free(acme, gil, fake_google):
    agent_slots([gil], now=NOW)  # the cache says free
    fake_google.fail_next("freebusy.query", 503)
    assert not agent_is_free(gil, at(10), at(10, 30), now=NOW)
    assert fake_google.count("freebusy.query") == 2


def test_booking_time_with_the_provider_unsure_is_not_free(acme, gil, fake_google):
    fake_google.set_freebusy_error("backendError")
    assert not agent_is_free(gil, at(10), at(10, 30), now=NOW)


def test_booking_time_does_not_ask_the_provider_for_a_slot_dynchat_already_booked(
    acme, gil, fake_google
):
    book(gil, at(10))
    assert not agent_is_free(gil, at(10), at(10, 30), now=NOW)
    assert fake_google.count("freebusy.query") == 0


def test_an_agent_whose_calendar_broke_is_not_free(acme, gil):
    CalendarConnection.objects.filter(user=gil).update(
        status=CalendarConnection.Status.NEEDS_RECONNECT
    )
    assert not agent_is_free(gil, at(10), at(10, 30), now=NOW)


def test_naive_times_are_refused(acme, ana):
    with pytest.raises(ValueError, match="aware"):
        agent_is_free(ana, datetime(2026, 6, 1, 10), datetime(2026, 6, 1, 10, 30), now=NOW)
    with pytest.raises(ValueError, match="aware"):
        offered_slots(acme, now=datetime(2026, 6, 1))
