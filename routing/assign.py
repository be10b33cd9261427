"""Taking turns: the round-robin pointer, locked for the booking transaction that uses it.

The booking service (meetings.services) calls `take_turn` inside its transaction, after every
calendar provider has been asked (routing never calls one while it holds the lock). The pointer
row stays locked until that transaction commits, so bookings through one queue commit one after
another, each seeing where the previous one left the pointer: with every agent free, meetings
follow the queue order exactly, whatever the number of visitors booking at once.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from routing.models import Pointer
from routing.routes import Route, rotation


@dataclass
class Turn:
    """Who got the meeting: the agent's id, the queue's assignment number (None for an
    account owner, who takes no turns), and how long the pointer's lock took to get."""

    agent_id: int
    assignment: int | None
    lock_wait_seconds: float


def take_turn(site, route: Route, try_agent: Callable[[int, int | None], bool]) -> Turn | None:
    """Offer the meeting to the route's agents in turn, starting after the pointer, until
    `try_agent(agent_id, assignment)` takes it (True: the meeting is stored); then move the
    pointer to that agent. None when nobody took it; the pointer is left alone then.

    Must run inside the caller's transaction (the lock lasts until it ends). The route's order
    is the queue's as the booking read it a moment before (bookable_queue), so a change made
    on the routing page applies from the next booking on; nothing more is read under the
    lock than the pointer itself."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("take_turn must run inside the booking transaction")
    if not route.takes_turns:
        for agent_id in route.agent_ids:
            if try_agent(agent_id, None):
                return Turn(agent_id=agent_id, assignment=None, lock_wait_seconds=0.0)
        return None

    asked = time.perf_counter()
    pointer = _locked_pointer(site, route)
    waited = time.perf_counter() - asked
    places = dict(zip(route.agent_ids, route.positions, strict=True))
    turns = rotation(
        route.agent_ids,
        route.positions,
        last_agent_id=pointer.last_agent_id,
        last_position=pointer.last_position,
    )
    assignment = pointer.assignments + 1
    for agent_id in turns:
        if try_agent(agent_id, assignment):
            pointer.last_agent_id = agent_id
            pointer.last_position = places[agent_id]
            pointer.assignments = assignment
            pointer.save(update_fields=["last_agent", "last_position", "assignments"])
            return Turn(agent_id=agent_id, assignment=assignment, lock_wait_seconds=waited)
    return None


def _locked_pointer(site, route: Route) -> Pointer:
    """The route's pointer row, created on first use, locked FOR NO KEY UPDATE (meetings do not
    reference it, so nothing else needs the stronger lock)."""
    rows = Pointer.objects.filter(site=site, rule_id=route.rule_id).select_for_update(no_key=True)
    pointer = rows.first()
    if pointer is not None:
        return pointer
    try:
        with transaction.atomic():  # two first bookings at once: one insert wins
            Pointer.objects.create(site=site, rule_id=route.rule_id)
    except IntegrityError:
        pass
    return rows.get()
