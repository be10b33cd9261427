"""Which agents may take a visitor's meeting, and in which order they take turns (selectors and
pure functions; the only writes are routing.assign's, inside the booking transaction).

Routing is checked in this order, as in Marketo:

1. **Account owner**: the visitor's email domain (or a parent domain of it, or their company's
   website) or company name is on the site's account list: its owner, alone.
2. **Custom rules**, active ones by priority: the first rule whose conditions the visitor meets
   names a set of agents, who take turns (each rule has its own round-robin pointer).
3. **The whole queue**, taking turns (the site's pointer).

A step counts only if some of its agents can be booked: in the queue and not paused, with a
connected calendar and saved hours. The visitor is offered the free times of the first step
that has any (so an account owner fully booked for the next weeks, or a rule whose agents are
all away, does not leave the visitor without a meeting): the union of that step's agents' free
slots. When no step has any, the visitor gets the site's fallback message instead.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.db.models import Q

from calendars import availability
from calendars.models import CREDENTIAL_FIELDS, CalendarConnection
from dialogues.flow.conditions import compare
from dialogues.models import Membership
from dialogues.targeting import AudienceCondition, VisitorFacts
from meetings.models import Meeting
from routing.models import (
    AccountOwner,
    Pointer,
    QueueMember,
    RoutingRule,
    RoutingSettings,
    company_key,
)

User = get_user_model()
RoutedBy = Meeting.RoutedBy


@dataclass(frozen=True)
class Route:
    """One routing step's bookable agents, in queue order."""

    kind: str  # a Meeting.RoutedBy value
    agent_ids: tuple[int, ...]
    rule_id: int | None = None  # the custom rule (and its pointer); None for the others
    rule_name: str = ""
    # The agents' places in the site's queue, as agent_ids: where the pointer goes on from
    # when the last agent to get a meeting has left.
    positions: tuple[int, ...] = ()

    @property
    def takes_turns(self) -> bool:
        """Whether the route's agents take turns (an account has one owner: no pointer)."""
        return self.kind != RoutedBy.ACCOUNT


@dataclass(frozen=True)
class Offer:
    """What a visitor may book: the chosen route, and each free slot start (aware UTC, in time
    order) with the route's agents free then, in queue order. Empty slots and no route when
    nobody can take the visitor."""

    route: Route | None
    slots: dict[datetime, list[int]]
    agents: dict[int, object]  # the route's agents by id, with availability and calendar loaded


NOBODY = Offer(route=None, slots={}, agents={})


def bookable_queue(site) -> list:
    """The site's queue as users who can be booked now, in queue order: not paused, an active
    account that is still one of the site's sales agents, a connected calendar (the built-in
    one counts) and saved hours. One query; each user comes with `availability`,
    `calendar_connection` (credentials left unread) and `queue_position`."""
    members = (
        QueueMember.objects.filter(
            site=site,
            paused=False,
            user__is_active=True,
            user__membership__site=site,
            user__membership__role=Membership.Role.AGENT,
            user__calendar_connection__status=CalendarConnection.Status.CONNECTED,
            user__availability__isnull=False,
        )
        .select_related("user__calendar_connection", "user__availability")
        .defer(*(f"user__calendar_connection__{name}" for name in CREDENTIAL_FIELDS))
        .order_by("position", "pk")
    )
    users = []
    for member in members:
        member.user.queue_position = member.position
        users.append(member.user)
    return users


def routes_for(site, facts: VisitorFacts, queue: Sequence) -> list[Route]:
    """The routing steps open to a visitor with `facts`, in the order they are tried, each with
    its agents from `queue` (bookable_queue's answer). At most two queries (account list,
    custom rules with their agents), none when the site has no accounts or rules to match."""
    order = [user.pk for user in queue]
    if not order:
        return []
    places = {user.pk: getattr(user, "queue_position", n) for n, user in enumerate(queue)}
    routes = []
    owner_id = account_owner_id(site, facts)
    if owner_id in places:
        routes.append(
            Route(kind=RoutedBy.ACCOUNT, agent_ids=(owner_id,), positions=(places[owner_id],))
        )
    for rule, agent_ids in _active_rules(site):
        if not _rule_matches(rule, facts):
            continue
        agents = tuple(pk for pk in order if pk in agent_ids)
        if agents:
            routes.append(
                Route(
                    kind=RoutedBy.RULE,
                    agent_ids=agents,
                    rule_id=rule.pk,
                    rule_name=rule.name,
                    positions=tuple(places[pk] for pk in agents),
                )
            )
    routes.append(
        Route(
            kind=RoutedBy.ROUND_ROBIN,
            agent_ids=tuple(order),
            positions=tuple(places[pk] for pk in order),
        )
    )
    return routes


def offer(
    site, facts: VisitorFacts, *, now: datetime | None = None, until: datetime | None = None
) -> Offer:
    """The times a visitor with `facts` may book, through the first routing step that has any.
    Agents' slots are computed step by step, each agent once (a visitor whose account owner is
    free costs one agent's slots, not the whole queue's)."""
    queue = bookable_queue(site)
    users = {user.pk: user for user in queue}
    computed: dict[int, list[datetime]] = {}
    for route in routes_for(site, facts, queue):
        missing = [users[pk] for pk in route.agent_ids if pk not in computed]
        if missing:
            computed.update(availability.slots_of(missing, now=now, until=until))
        slots: dict[datetime, list[int]] = defaultdict(list)
        for pk in route.agent_ids:  # queue order, so each slot lists its agents in that order
            for start in computed[pk]:
                slots[start].append(pk)
        if slots:
            return Offer(
                route=route,
                slots=dict(sorted(slots.items())),
                agents={pk: users[pk] for pk in route.agent_ids},
            )
    return NOBODY


class NoRoute(Exception):
    """Nobody routing could give this visitor to is free at that time."""


@dataclass(frozen=True)
class SlotRoute:
    """Who may take a booking at one time: the route the visitor was offered and those of its
    agents free then, by a live check ({user id: (user, meeting end)})."""

    route: Route
    free: dict[int, tuple]


def route_for_slot(
    site, facts: VisitorFacts, start: datetime, *, now: datetime | None = None
) -> SlotRoute:
    """The route a visitor with `facts` booking at `start` goes through, with its agents who are
    free then, asked live (calendars.availability.agents_free: each provider-backed agent is
    one API call; call this outside any lock). The same route offer() shows the visitor: the
    first one with any free time; a route passed over for having none costs a cached slot
    computation. Raises NoRoute when the time is not (any more) free for the visitor's route."""
    queue = bookable_queue(site)
    users = {user.pk: user for user in queue}
    for route in routes_for(site, facts, queue):
        agents = [users[pk] for pk in route.agent_ids]
        free = availability.agents_free(agents, start, now=now)
        if free:
            return SlotRoute(route=route, free={pk: (users[pk], end) for pk, end in free.items()})
        if any(availability.slots_of(agents, now=now).values()):
            break  # the visitor was offered this route's times, and this one is gone
    raise NoRoute


def fallback_message(site) -> str:
    """What a visitor nobody can take is told at a booking card."""
    message = (
        RoutingSettings.objects.filter(site=site).values_list("fallback_message", flat=True).first()
    )
    return message or RoutingSettings.DEFAULT_FALLBACK


def rotation(
    order: Sequence[int],
    positions: Sequence[int],
    *,
    last_agent_id: int | None,
    last_position: int | None,
) -> list[int]:
    """`order` (agent ids in queue order, with their queue `positions`) turned to start with
    the agent after the pointer: the one after the last agent to get a meeting, or, when that
    agent has left this queue, the first one placed after where they were."""
    if not order:
        return []
    if last_agent_id in order:
        first = order.index(last_agent_id) + 1
    elif last_position is not None:
        first = next((i for i, pos in enumerate(positions) if pos > last_position), 0)
    else:
        first = 0
    first %= len(order)
    return [*order[first:], *order[:first]]


def next_up(site):
    """The agent the site's next round-robin meeting goes to if everyone is free at the time
    the visitor picks, or None when nobody can be booked. For the routing page."""
    queue = bookable_queue(site)
    pointer = Pointer.objects.filter(site=site, rule__isnull=True).first()
    turns = rotation(
        [user.pk for user in queue],
        [user.queue_position for user in queue],
        last_agent_id=pointer.last_agent_id if pointer else None,
        last_position=pointer.last_position if pointer else None,
    )
    return next(user for user in queue if user.pk == turns[0]) if turns else None


def account_owner_id(site, facts: VisitorFacts) -> int | None:
    """The owner of the visitor's account: by the most specific matching domain (their email's,
    a parent of it, or their company's website), else by company name. One query, none when
    nothing identifies the visitor's company."""
    domains = _candidate_domains(facts)
    names = {
        key
        for key in (
            company_key(facts.lead.get("company")),
            company_key(facts.company.get("company")),
        )
        if key
    }
    if not domains and not names:
        return None
    rows = list(
        AccountOwner.objects.filter(site=site)
        .filter(Q(domain__in=domains) | Q(company_key__in=names))
        .values_list("domain", "company_key", "owner_id")
    )
    by_domain = {domain: owner for domain, _, owner in rows if domain}
    for domain in domains:  # most specific first
        if domain in by_domain:
            return by_domain[domain]
    by_name = {key: owner for _, key, owner in rows if key in names}
    for key in sorted(by_name):
        return by_name[key]
    return None


def _candidate_domains(facts: VisitorFacts) -> list[str]:
    """Domains the visitor's account may be listed under, most specific first: their email's
    domain and its parents (eu.acme.com, acme.com; never a bare top-level domain), then their
    company's website host and its parents."""
    hosts = []
    email = str(facts.lead.get("email") or "").strip().lower()
    if "@" in email:
        hosts.append(email.rpartition("@")[2])
    website = str(facts.company.get("website") or facts.lead.get("website") or "").strip()
    if website:
        host = urlsplit(website if "//" in website else f"//{website}").hostname or ""
        hosts.append(host.lower().removeprefix("www."))
    found: list[str] = []
    for host in hosts:
        labels = [label for label in host.strip(".").split(".") if label]
        for i in range(len(labels) - 1):
            domain = ".".join(labels[i:])
            if domain not in found:
                found.append(domain)
    return found


def _active_rules(site) -> list[tuple[RoutingRule, set[int]]]:
    """The site's active custom rules by priority, each with its agents' ids: two queries, or
    one when the site has none."""
    rules = list(RoutingRule.objects.filter(site=site, active=True).order_by("priority", "pk"))
    if not rules:
        return []
    agents: dict[int, set[int]] = defaultdict(set)
    through = RoutingRule.agents.through.objects.filter(routingrule__in=rules)
    for rule_id, user_id in through.values_list("routingrule_id", "user_id"):
        agents[rule_id].add(user_id)
    return [(rule, agents[rule.pk]) for rule in rules]


def _rule_matches(rule: RoutingRule, facts: VisitorFacts) -> bool:
    """Whether the visitor meets the rule's conditions. A stored condition that no longer
    validates never holds (the rule then matches only through its other conditions)."""
    results = []
    for data in rule.conditions or []:
        try:
            condition = AudienceCondition.model_validate(data)
        except ValueError:
            results.append(False)
            continue
        namespace, _, name = condition.subject.partition(".")
        source = facts.company if namespace == "company" else facts.lead
        results.append(compare(condition.operator, source.get(name), condition.value))
    if not results:
        return False  # a rule without conditions would catch everyone: never meant
    return all(results) if rule.match == RoutingRule.Match.ALL else any(results)
