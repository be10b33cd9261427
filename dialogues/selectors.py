"""Reads of sites and dialogues used on hot paths."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from threading import Lock
from typing import TypeVar

from django.conf import settings
from django.utils import timezone

from dialogues.flow.cards import Flow, parse_flow
from dialogues.models import Dialogue, DialogueVersion, Site
from dialogues.targeting import ANONYMOUS, EVERYWHERE, Rules, VisitorFacts, compile_targeting

_flows: dict[int, Flow] = {}
_flows_lock = Lock()
_FLOW_CACHE_SIZE = 1000


def version_flow(version: DialogueVersion) -> Flow:
    """The parsed flow of a published version.

    Versions never change once written, so each process parses a version once and keeps it.
    """
    flow = _flows.get(version.pk)
    if flow is None:
        flow = parse_flow(version.flow)
        with _flows_lock:
            if len(_flows) >= _FLOW_CACHE_SIZE:
                _flows.clear()
            _flows[version.pk] = flow
    return flow


T = TypeVar("T")


class _ShortCache:
    """Per-process memo with a time limit, for what every widget request reads and marketers
    rarely change (a site, its published dialogues). A change reaches the widget API within
    WIDGET_CACHE_SECONDS; 0 turns the memo off. Cached objects are shared between threads and
    must be treated as read-only."""

    MAX_ENTRIES = 10_000

    def __init__(self):
        self._entries: dict[object, tuple[float, object]] = {}
        self._lock = Lock()

    def get(self, key: object, load: Callable[[], T]) -> T:
        ttl = settings.WIDGET_CACHE_SECONDS
        if ttl <= 0:
            return load()
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = load()
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (now + ttl, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_sites = _ShortCache()
_offers = _ShortCache()


def site_for_key(public_key: str) -> Site | None:
    """The site with this public key (None if none), from the short per-process cache."""
    # The avatar (up to 256 KB) is served by its own route; sessions only need its version.
    return _sites.get(
        public_key, lambda: Site.objects.defer("avatar").filter(public_key=public_key).first()
    )


def version_flow_by_id(version_id: int) -> Flow:
    """version_flow() for callers holding only the id; reads the version row only when this
    process has not parsed it yet."""
    flow = _flows.get(version_id)
    if flow is None:
        flow = version_flow(DialogueVersion.objects.only("flow").get(pk=version_id))
    return flow


@dataclass(frozen=True)
class DialogueOffer:
    """The dialogue a page should show: what the widget needs to trigger it."""

    dialogue_id: int
    name: str
    version: int
    trigger: dict
    rules: Rules = field(default=EVERYWHERE, compare=False, repr=False)


def dialogue_to_offer(
    *,
    site: Site,
    excluded_dialogue_ids: set[int],
    page_url: str = "",
    visitor_facts: Callable[[], VisitorFacts] = lambda: ANONYMOUS,
) -> DialogueOffer | None:
    """The highest-priority published dialogue of the site that targets this page, this visitor
    and this moment, leaving out excluded_dialogue_ids (the ones the visitor completed).

    At most one query for the dialogues, whatever their number (the partial index
    published_by_priority), and none while the site's offers are in the short cache; their
    targeting is compiled once with them. `visitor_facts` is called at most once, and only when
    a dialogue that passed the page and schedule rules has audience conditions.
    """
    if not site.chat_enabled:
        return None
    now = timezone.now()
    facts = None
    for offer in _offers.get(site.pk, lambda: _published_offers(site)):
        rules = offer.rules
        if offer.dialogue_id in excluded_dialogue_ids or not rules.in_schedule(now):
            continue
        if page_url and not rules.admits_page(page_url):
            continue
        if rules.needs_facts:
            if facts is None:
                facts = visitor_facts()
            if not rules.admits_visitor(facts):
                continue
        return offer
    return None


def _published_offers(site: Site) -> tuple[DialogueOffer, ...]:
    rows = (
        Dialogue.objects.filter(
            site=site, status=Dialogue.Status.PUBLISHED, current_version__isnull=False
        )
        .order_by("-priority", "id")
        .values_list("id", "name", "trigger", "targeting", "current_version__number")
    )
    return tuple(
        DialogueOffer(pk, name, number, trigger, compile_targeting(targeting))
        for pk, name, trigger, targeting, number in rows
    )


def sites_for_user(user) -> list[Site]:
    return list(Site.objects.filter(members=user).order_by("name"))


METRICS_DAYS = 30


def dialogue_list(site, *, status: str = "", query: str = "") -> list:
    """The site's dialogues for the builder's list, highest priority first, each with its
    last 30 days' headline figures (`triggered`, `engaged`, `completed`) in one query of the
    daily report tables (the same figures the reports show)."""
    from datetime import timedelta

    from django.db.models import Sum

    from reports.models import DialogueDay
    from reports.rollup import report_day

    dialogues = site.dialogues.select_related("current_version").order_by("-priority", "name")
    if status:
        dialogues = dialogues.filter(status=status)
    else:
        # Archived dialogues are out of the way unless asked for.
        dialogues = dialogues.exclude(status=Dialogue.Status.ARCHIVED)
    if query:
        dialogues = dialogues.filter(name__icontains=query)
    dialogues = list(dialogues)
    since = report_day(timezone.now()) - timedelta(days=METRICS_DAYS - 1)
    figures = {
        row["dialogue"]: row
        for row in DialogueDay.objects.filter(site=site, dialogue__in=dialogues, day__gte=since)
        .values("dialogue")
        .annotate(triggered=Sum("triggered"), engaged=Sum("engaged"), completed=Sum("completed"))
        .order_by()
    }
    for dialogue in dialogues:
        row = figures.get(dialogue.pk, {})
        dialogue.triggered = row.get("triggered", 0)
        dialogue.engaged = row.get("engaged", 0)
        dialogue.completed = row.get("completed", 0)
    return dialogues
