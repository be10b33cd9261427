"""Reads for the write-back pages (marketo_sync/writeback_views.py): what a site's chats can
capture and where it goes in Marketo, how the site's outbox is doing, its records, and what a
dialogue can trigger (its goals, Marketo's programs and campaigns as last read).

Flows are read as stored JSON, not parsed: a draft being edited may not validate yet, and its
capture and goal cards still count."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q, QuerySet

from dialogues.flow.cards import CUSTOM_ATTRIBUTE, STANDARD_ATTRIBUTES
from dialogues.models import Dialogue, DialogueVersion, Site
from marketo_sync.models import (
    DEFAULT_FIELD_MAPPING,
    LeadFieldMapping,
    MarketoAction,
    MarketoCampaign,
    MarketoProgram,
    OutboxRecord,
    SyncSettings,
)
from marketo_sync.writeback import ACTIVITY_TYPES, TOKEN_VALUES

Kind = OutboxRecord.Kind
Status = OutboxRecord.Status
# The lookup field: always sent, never mapped.
LOOKUP_ATTRIBUTE = "email"


# --- Field mapping ---------------------------------------------------------------------------


def _cards(flow) -> list[dict]:
    cards = flow.get("cards", []) if isinstance(flow, dict) else []
    return [card for card in cards if isinstance(card, dict)]


def _site_flows(site: Site):
    """The draft flow of each of the site's dialogues, then every published version's flow."""
    yield from Dialogue.objects.filter(site=site).values_list("flow", flat=True).iterator()
    yield from (
        DialogueVersion.objects.filter(dialogue__site=site)
        .values_list("flow", flat=True)
        .iterator()
    )


def capturable_attributes(site: Site) -> list[str]:
    """The chat attributes the site's dialogues can capture, as write-back names them (a custom
    attribute without "custom:"): the standard ones in their usual order, then the custom ones
    used by a capture card of a draft or published flow, alphabetically. Email included."""
    custom = set()
    for flow in _site_flows(site):
        for card in _cards(flow):
            attribute = card.get("attribute")
            if card.get("type") == "capture" and CUSTOM_ATTRIBUTE.match(str(attribute)):
                custom.add(attribute.removeprefix("custom:"))
    standard = list(STANDARD_ATTRIBUTES)
    return standard + sorted(custom - set(standard), key=str.lower)


def field_mapping(site: Site) -> dict[str, str]:
    """Chat attribute -> Marketo field ("" = not sent), as saved or the defaults."""
    saved = LeadFieldMapping.objects.filter(site=site).values_list("fields", flat=True).first()
    return dict(DEFAULT_FIELD_MAPPING if saved is None else saved)


def known_marketo_fields() -> list[str]:
    """The lead fields the sync learnt from Marketo's describe, to suggest as targets."""
    return sorted(SyncSettings.load().field_types, key=str.lower)


# --- Delivery status -------------------------------------------------------------------------


@dataclass(frozen=True)
class KindCounts:
    kind: str
    label: str
    waiting: int = 0
    pending: int = 0
    parked: int = 0
    delivered_day: int = 0
    delivered_week: int = 0


def delivery_counts(site: Site, *, now: datetime) -> list[KindCounts]:
    """The site's records by kind (in Kind order, every kind listed): waiting, pending, parked,
    and delivered in the last 24 hours and 7 days. One query."""
    day, week = now - timedelta(hours=24), now - timedelta(days=7)
    delivered = Q(status=Status.DELIVERED)
    rows = (
        OutboxRecord.objects.filter(site=site)
        # Older delivered records are not counted: leave them out of the scan.
        .filter(~delivered | Q(delivered_at__gte=week))
        .values("kind")
        .annotate(
            waiting=Count("id", filter=Q(status=Status.WAITING)),
            pending=Count("id", filter=Q(status=Status.PENDING)),
            parked=Count("id", filter=Q(status=Status.PARKED)),
            delivered_day=Count("id", filter=delivered & Q(delivered_at__gte=day)),
            delivered_week=Count("id", filter=delivered & Q(delivered_at__gte=week)),
        )
        .order_by()
    )
    found = {row.pop("kind"): row for row in rows}
    return [KindCounts(kind, label, **found.get(kind, {})) for kind, label in Kind.choices]


def totals(counts: list[KindCounts]) -> KindCounts:
    def total(name):
        return sum(getattr(c, name) for c in counts)

    names = ("waiting", "pending", "parked", "delivered_day", "delivered_week")
    return KindCounts("", "All", **{name: total(name) for name in names})


def oldest_pending_at(site: Site) -> datetime | None:
    return OutboxRecord.objects.filter(site=site, status=Status.PENDING).aggregate(
        oldest=Min("created_at")
    )["oldest"]


# --- The outbox ------------------------------------------------------------------------------


def outbox_records(site: Site, *, status: str, kind: str = "") -> QuerySet[OutboxRecord]:
    """The site's records with `status` (and `kind`, if given), newest first."""
    records = OutboxRecord.objects.filter(site=site, status=status)
    if kind:
        records = records.filter(kind=kind)
    return records.order_by("-id")


def parked_count(site: Site) -> int:
    return OutboxRecord.objects.filter(site=site, status=Status.PARKED).count()


ACTIVITY_NAMES = {event: spec.name for event, spec in ACTIVITY_TYPES.items()}


def describe_payload(record: OutboxRecord) -> str:
    """What the record sends, in a line a marketer reads (plain text; the template escapes)."""
    payload = record.payload or {}
    if record.kind == Kind.LEAD:
        told = payload.get("attributes") or {}
        fields = ", ".join(f"{name} “{value}”" for name, value in told.items())
        return f"{payload.get('email', '')}: {fields}" if fields else payload.get("email", "")
    if record.kind == Kind.COOKIE:
        return "The visitor's Munchkin cookie"
    if record.kind == Kind.ACTIVITY:
        what = payload.get("type", "")
        text = f"{ACTIVITY_NAMES.get(what, what)}: {payload.get('primary', '')}"
        goal = (payload.get("attributes") or {}).get("goalName")
        return f"{text}, goal “{goal}”" if goal else text
    if record.kind == Kind.PROGRAM_STATUS:
        name = payload.get("program_name") or f"program {payload.get('program_id', '?')}"
        return f"{name} → {payload.get('status', '')}"
    if record.kind == Kind.CAMPAIGN:
        name = payload.get("campaign_name") or f"campaign {payload.get('campaign_id', '?')}"
        tokens = payload.get("tokens") or []
        if not tokens:
            return name
        values = ", ".join(
            f"{t.get('name', '')} = "
            + (f"“{t['value']}”" if "value" in t else TOKEN_VALUES.get(t.get("bind"), "?"))
            for t in tokens
        )
        return f"{name} with {values}"
    return ""


# --- Dialogue actions ------------------------------------------------------------------------


def goal_names(dialogue: Dialogue) -> list[str]:
    """The names of the goal cards of the dialogue's draft and published versions."""
    flows = [dialogue.flow, *dialogue.versions.values_list("flow", flat=True)]
    names = {
        card["name"]
        for flow in flows
        for card in _cards(flow)
        if card.get("type") == "goal" and isinstance(card.get("name"), str) and card["name"]
    }
    return sorted(names, key=str.lower)


def dialogue_actions(dialogue: Dialogue) -> list[MarketoAction]:
    order = {value: index for index, value in enumerate(MarketoAction.On.values)}
    actions = list(MarketoAction.objects.filter(dialogue=dialogue))
    return sorted(actions, key=lambda a: (order.get(a.on, 99), a.goal.lower()))


def programs() -> QuerySet[MarketoProgram]:
    return MarketoProgram.objects.all()


def active_campaigns() -> QuerySet[MarketoCampaign]:
    return MarketoCampaign.objects.filter(active=True)


def catalogue_counts() -> tuple[int, int]:
    """How many programs and active campaigns the pickers offer."""
    return MarketoProgram.objects.count(), active_campaigns().count()
