"""What the report pages show, read from the daily tables (reports.models) only.

The dialogue report and the overall dashboard sum the same DialogueDay rows, so their figures
always agree. Definitions (as Marketo's Dynamic Chat has them):

- triggered: conversations started (the dialogue was shown);
- engaged: conversations in which the visitor answered at least one card;
- completed: conversations that ran to the end of the flow;
- people captured: conversations in which a visitor who had given no email gave one;
- engagement rate = engaged / triggered; conversion rate = captured / engaged.

Every count is by the day the event happened, in settings.REPORTS_TIME_ZONE.
"""

from dataclasses import dataclass, fields
from datetime import date, datetime

from django.db.models import QuerySet, Sum

from dialogues.flow.cards import (
    BookingCard,
    CaptureCard,
    EndCard,
    GoalCard,
    MessageCard,
    QuestionCard,
)
from dialogues.models import Dialogue, DialogueVersion, Site
from dialogues.selectors import version_flow
from reports.filters import ReportFilters
from reports.models import CardDay, DialogueDay, PageDay


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Figures:
    triggered: int = 0
    engaged: int = 0
    completed: int = 0
    captured: int = 0
    meetings: int = 0
    goals: int = 0
    fallbacks: int = 0

    @property
    def engagement_rate(self) -> float | None:
        return _rate(self.engaged, self.triggered)

    @property
    def conversion_rate(self) -> float | None:
        return _rate(self.captured, self.engaged)

    @property
    def completion_rate(self) -> float | None:
        return _rate(self.completed, self.engaged)

    @classmethod
    def of(cls, row: dict) -> "Figures":
        return cls(**{name: row.get(name) or 0 for name in FIGURES})


FIGURES = tuple(f.name for f in fields(Figures))
PAGE_FIGURES = ("triggered", "engaged", "completed", "captured")


def _sums(names=FIGURES) -> dict:
    return {name: Sum(name) for name in names}


def _narrowed(rows: QuerySet, site: Site, filters: ReportFilters, *, dialogue=True) -> QuerySet:
    rows = rows.filter(site=site, day__gte=filters.start, day__lte=filters.end)
    if dialogue and filters.dialogue_id:
        rows = rows.filter(dialogue_id=filters.dialogue_id)
    if filters.known is not None:
        rows = rows.filter(known=filters.known)
    return rows


def dialogue_days(site: Site, filters: ReportFilters) -> QuerySet:
    return _narrowed(DialogueDay.objects.all(), site, filters)


def totals(site: Site, filters: ReportFilters) -> Figures:
    return Figures.of(dialogue_days(site, filters).aggregate(**_sums()))


def daily(site: Site, filters: ReportFilters) -> list[tuple[date, Figures]]:
    """Every day of the range with its figures (zeros on days with none)."""
    rows = {
        row["day"]: Figures.of(row)
        for row in dialogue_days(site, filters).values("day").annotate(**_sums()).order_by()
    }
    return [(day, rows.get(day, Figures())) for day in filters.days]


@dataclass(frozen=True)
class DialogueFigures:
    dialogue_id: int
    name: str
    status: str
    figures: Figures


def top_dialogues(site: Site, filters: ReportFilters, limit: int | None = 10) -> list:
    """The site's dialogues with any figures in the range, most triggered first."""
    rows = list(
        dialogue_days(site, filters)
        .values("dialogue_id")
        .annotate(**_sums())
        .order_by("-triggered", "dialogue_id")
    )
    if limit is not None:
        rows = rows[:limit]
    found = {
        pk: (name, status)
        for pk, name, status in Dialogue.objects.filter(
            pk__in=[r["dialogue_id"] for r in rows]
        ).values_list("pk", "name", "status")
    }
    return [
        DialogueFigures(r["dialogue_id"], *found.get(r["dialogue_id"], ("", "")), Figures.of(r))
        for r in rows
    ]


@dataclass(frozen=True)
class PageFigures:
    page: str
    figures: Figures


def top_pages(site: Site, filters: ReportFilters, limit: int | None = 10) -> list[PageFigures]:
    """The pages dialogues were shown on, most triggered first."""
    rows = (
        _narrowed(PageDay.objects.all(), site, filters)
        .values("page")
        .annotate(**_sums(PAGE_FIGURES))
        .order_by("-triggered", "page")
    )
    if limit is not None:
        rows = rows[:limit]
    return [PageFigures(r["page"], Figures.of(r)) for r in rows]


@dataclass(frozen=True)
class VersionFigures:
    version_id: int
    number: int
    published_at: datetime
    figures: Figures


def by_version(site: Site, dialogue: Dialogue, filters: ReportFilters) -> list[VersionFigures]:
    """The dialogue's figures per published version (newest first), for the versions that
    have any in the range, so a change can be compared with the version before."""
    rows = {
        r["version_id"]: Figures.of(r)
        for r in dialogue_days(site, filters)
        .filter(dialogue=dialogue)
        .values("version_id")
        .annotate(**_sums())
        .order_by()
    }
    versions = DialogueVersion.objects.filter(pk__in=rows).order_by("-number")
    return [
        VersionFigures(v.pk, v.number, v.published_at, rows[v.pk])
        for v in versions.only("pk", "number", "published_at")
    ]


@dataclass(frozen=True)
class FunnelStep:
    """One card of a version in the funnel. `dropped` is how many conversations were shown an
    input card and never answered it (they left there); None for cards that take no answer."""

    card_id: str
    kind: str  # "message", "question", "capture", "booking", "goal", "end"
    label: str
    reached: int
    answered: int | None
    dropped: int | None

    @property
    def drop_rate(self) -> float | None:
        return None if self.dropped is None else _rate(self.dropped, self.reached)


KIND_NAMES = {
    MessageCard: "message",
    QuestionCard: "question",
    CaptureCard: "capture",
    BookingCard: "booking",
    GoalCard: "goal",
    EndCard: "end",
}
INPUT_CARDS = (QuestionCard, CaptureCard, BookingCard)
LABEL_LENGTH = 60


def _label(card) -> str:
    if isinstance(card, GoalCard):
        return card.name
    text = " ".join(getattr(card, "text", "").split())
    if len(text) > LABEL_LENGTH:
        text = text[: LABEL_LENGTH - 1] + "…"
    return text or card.id


def funnel(site: Site, version: DialogueVersion, filters: ReportFilters) -> list[FunnelStep]:
    """The version's cards in the order the flow lists them (branch cards, which show
    nothing, are left out), with how many conversations reached and answered each."""
    counts = {
        r["card_id"]: r
        for r in _narrowed(CardDay.objects.filter(version=version), site, filters, dialogue=False)
        .values("card_id")
        .annotate(reached=Sum("reached"), answered=Sum("answered"))
        .order_by()
    }
    steps = []
    for card in version_flow(version).cards:
        kind = KIND_NAMES.get(type(card))
        if kind is None:
            continue
        row = counts.get(card.id, {})
        reached, answered = row.get("reached") or 0, row.get("answered") or 0
        takes_answer = isinstance(card, INPUT_CARDS)
        steps.append(
            FunnelStep(
                card_id=card.id,
                kind=kind,
                label=_label(card),
                reached=reached,
                answered=answered if takes_answer else None,
                dropped=max(reached - answered, 0) if takes_answer else None,
            )
        )
    return steps


@dataclass(frozen=True)
class GoalFigures:
    name: str
    reached: int


def goals(site: Site, dialogue: Dialogue, filters: ReportFilters) -> list[GoalFigures]:
    """How often each goal of the dialogue was reached in the range, across its versions (a
    goal keeps its name from version to version), most reached first."""
    rows = (
        _narrowed(CardDay.objects.filter(dialogue=dialogue), site, filters, dialogue=False)
        .values("version_id", "card_id")
        .annotate(reached=Sum("reached"))
        .order_by()
    )
    by_version: dict[int, dict[str, int]] = {}
    for r in rows:
        by_version.setdefault(r["version_id"], {})[r["card_id"]] = r["reached"]
    reached: dict[str, int] = {}
    for version in DialogueVersion.objects.filter(pk__in=by_version):
        cards = by_version[version.pk]
        for card in version_flow(version).cards:
            if isinstance(card, GoalCard) and card.id in cards:
                reached[card.name] = reached.get(card.name, 0) + cards[card.id]
    return [GoalFigures(n, c) for n, c in sorted(reached.items(), key=lambda i: (-i[1], i[0]))]


def published_versions(site: Site, dialogue: Dialogue) -> list[DialogueVersion]:
    """The dialogue's published versions, newest first (the funnel's version picker)."""
    return list(dialogue.versions.only("pk", "number", "published_at", "dialogue_id"))
