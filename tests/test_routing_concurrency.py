"""Round robin under load, on PostgreSQL with real threads: exact turns whatever the
concurrency, and never two meetings of one agent at once.

100 bookings are made at once by 50 threads (two each, all released together by a barrier):
PostgreSQL here allows 100 connections, which the test run itself shares, so 100 threads
would each need one more than there is. 50 contenders for the pointer's lock at every moment
is the load the routing benchmark (bench/routing.py) measures too."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection

from dialogues.targeting import ANONYMOUS
from meetings import services as booking
from meetings.models import Meeting
from routing import routes
from routing.models import Pointer
from tests.conftest import make_agent
from tests.test_routing import book, chat_at_booking, hours_from_now

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 50
BOOKINGS = 100


@pytest.fixture
def five(acme):
    return [make_agent(acme, name) for name in ("ada", "bo", "cy", "di", "ed")]


def book_all_at_once(site, jobs):
    """Run `jobs` ([(chat, start)]) from THREADS threads released together; the results (a
    Booked or the exception) in job order."""
    results: list = [None] * len(jobs)
    barrier = threading.Barrier(THREADS)

    def worker(indexes):
        try:
            barrier.wait()
            for i in indexes:
                chat, start = jobs[i]
                try:
                    results[i] = book(site, chat, start)
                except booking.SlotTaken as exc:
                    results[i] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(range(n, len(jobs), THREADS),))
        for n in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_simultaneous_bookings_of_distinct_times_follow_the_queue_exactly(
    acme, acme_dialogue, five
):
    starts = list(routes.offer(acme, ANONYMOUS).slots)[:BOOKINGS]  # each one everybody's
    jobs = [
        (chat_at_booking(acme, acme_dialogue, email=f"v{n}@bigco.com"), starts[n])
        for n in range(BOOKINGS)
    ]

    results = book_all_at_once(acme, jobs)

    assert all(isinstance(result, booking.Booked) for result in results), [
        r for r in results if not isinstance(r, booking.Booked)
    ]
    meetings = list(Meeting.objects.order_by("assignment"))
    assert Counter(m.agent for m in meetings) == {agent: BOOKINGS // 5 for agent in five}
    # In the order the bookings committed (the pointer's lock serialises them, and each one
    # numbers its meeting under it), the agents go round the queue exactly.
    assert [m.assignment for m in meetings] == list(range(1, BOOKINGS + 1))
    assert [m.agent for m in meetings] == [five[n % 5] for n in range(BOOKINGS)]
    # The numbers are the commit order: each meeting was inserted after the one before it.
    assert [m.created_at for m in meetings] == sorted(m.created_at for m in meetings)
    pointer = Pointer.objects.get(site=acme, rule=None)
    assert (pointer.last_agent, pointer.assignments) == (five[4], BOOKINGS)


def test_simultaneous_bookings_of_one_time_give_each_agent_one_meeting_at_most(
    acme, acme_dialogue, five
):
    start = hours_from_now(4)
    jobs = [
        (chat_at_booking(acme, acme_dialogue, email=f"v{n}@bigco.com"), start)
        for n in range(BOOKINGS)
    ]

    results = book_all_at_once(acme, jobs)

    booked = [r for r in results if isinstance(r, booking.Booked)]
    assert len(booked) == 5
    assert sum(isinstance(r, booking.SlotTaken) for r in results) == BOOKINGS - 5
    meetings = list(Meeting.objects.order_by("assignment"))
    assert [m.agent for m in meetings] == five  # one each, in turn
    assert {(m.start, m.end) for m in meetings} == {(start, start + timedelta(minutes=30))}
    # Nobody got a second meeting overlapping their first; the losers left nothing behind.
    assert Meeting.objects.count() == 5
    assert Pointer.objects.get(site=acme, rule=None).assignments == 5


def test_a_second_click_on_the_same_booking_loses_and_takes_no_turn(acme, acme_dialogue, five):
    chat = chat_at_booking(acme, acme_dialogue)
    results = []

    def click():
        try:
            results.append(book(acme, chat, hours_from_now(3)))
        except Exception as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(isinstance(r, booking.Booked) for r in results) == 1
    assert Meeting.objects.count() == 1
    assert Pointer.objects.get(site=acme, rule=None).assignments == 1
