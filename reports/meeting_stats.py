"""Figures of a site's meetings for the meetings dashboard (selectors).

Meetings are kept forever and there is one row per meeting, so the figures are counted from
the Meeting table itself, grouped in SQL (one query per table), not from the daily report
tables. Each meeting is counted under its status at `now` as the meetings list computes it
(meetings.listing.status_expression), so the dashboard and the list always agree:

- `booked`: every meeting booked in the range, cancelled or not (the sum of the five below);
- `cancelled`: cancelled by the visitor, the agent or an admin;
- `upcoming`: not ended yet (a meeting under way is still upcoming);
- `awaiting_outcome`: ended, not marked, within MEETING_OUTCOME_GRACE_HOURS of its end;
- `happened`: marked as happened, or ended unmarked and the grace period is over;
- `no_show`: marked as a no-show;
- `no_show_rate`: no-shows among the meetings whose outcome is settled (happened + no-show);
  None when there are none.

The range is on the meeting's start, in days of settings.REPORTS_TIME_ZONE (like the other
report pages), both ends included; the dialogue filter keeps the meetings booked from that
dialogue. Visitors (known or anonymous) is a filter of conversations: meetings ignore it (every
meeting was booked by a visitor who gave their email).
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Case, CharField, Count, F, Max, Q, QuerySet, Value, When
from django.db.models.fields import DateField
from django.db.models.functions import TruncWeek

from dialogues.models import Site
from meetings.listing import ListStatus, status_expression
from meetings.models import Meeting
from reports.filters import ReportFilters


@dataclass(frozen=True)
class MeetingCounts:
    booked: int = 0
    cancelled: int = 0
    upcoming: int = 0
    awaiting_outcome: int = 0
    happened: int = 0
    no_show: int = 0

    @property
    def settled(self) -> int:
        """Meetings whose outcome is known: they happened or were a no-show."""
        return self.happened + self.no_show

    @property
    def no_show_rate(self) -> float | None:
        """No-shows among the settled meetings (0.25 is one in four); None with none settled."""
        return self.no_show / self.settled if self.settled else None

    @property
    def show_rate(self) -> float | None:
        return self.happened / self.settled if self.settled else None


@dataclass(frozen=True)
class AgentRow:
    """One agent's meetings. `agent_id` is None for an agent whose account was deleted since:
    they are told apart by the email they had (`removed` is then True)."""

    agent_id: int | None
    name: str
    email: str
    removed: bool
    counts: MeetingCounts


@dataclass(frozen=True)
class DialogueRow:
    """One dialogue's meetings; `dialogue_id` None for meetings whose dialogue was deleted."""

    dialogue_id: int | None
    name: str
    counts: MeetingCounts


@dataclass(frozen=True)
class WeekRow:
    """The meetings that started in the week from `week` (a Monday, REPORTS_TIME_ZONE)."""

    week: date
    counts: MeetingCounts


def report_zone() -> ZoneInfo:
    return ZoneInfo(settings.REPORTS_TIME_ZONE)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    # zoneinfo resolves a midnight that a DST change skips to the instant after the gap.
    return datetime.combine(day, time.min, tzinfo=zone)


def meetings_in(site: Site, *, filters: ReportFilters, now: datetime) -> QuerySet[Meeting]:
    """The site's meetings starting within the filters' days (and from their dialogue), each
    annotated with `list_status` at `now`. Served by the index on (site, -start)."""
    zone = report_zone()
    meetings = Meeting.objects.filter(
        site=site,
        start__gte=_midnight(filters.start, zone),
        start__lt=_midnight(filters.end + timedelta(days=1), zone),
    )
    if filters.dialogue_id is not None:
        meetings = meetings.filter(dialogue_id=filters.dialogue_id)
    return meetings.annotate(list_status=status_expression(now))


def _counting() -> dict:
    """The aggregates that make a MeetingCounts, by field name."""
    return {
        "booked": Count("pk"),
        **{
            status: Count("pk", filter=Q(list_status=status))
            for status in (
                ListStatus.CANCELLED,
                ListStatus.UPCOMING,
                ListStatus.AWAITING_OUTCOME,
                ListStatus.HAPPENED,
                ListStatus.NO_SHOW,
            )
        },
    }


def _counts(row: dict) -> MeetingCounts:
    return MeetingCounts(**{name: row[name] for name in _counting()})


def totals(site: Site, *, filters: ReportFilters, now: datetime) -> MeetingCounts:
    """The range's meetings, counted by status: one query."""
    return _counts(meetings_in(site, filters=filters, now=now).aggregate(**_counting()))


def by_agent(site: Site, *, filters: ReportFilters, now: datetime) -> list[AgentRow]:
    """One row per agent with meetings in the range, most meetings first: one query.

    An agent still on file is named as their account is now; one whose account was deleted
    by the name and email the meeting kept (the latest name if it changed)."""
    removed_email = Case(
        When(agent__isnull=True, then=F("agent_email")), default=Value(""), output_field=CharField()
    )
    rows = (
        meetings_in(site, filters=filters, now=now)
        .values(
            "agent_id",
            "agent__first_name",
            "agent__last_name",
            "agent__username",
            "agent__email",
            removed_email=removed_email,
        )
        .annotate(kept_name=Max("agent_name"), **_counting())
        .order_by()
    )
    agents = []
    for row in rows:
        if row["agent_id"] is None:
            name, email = row["kept_name"] or row["removed_email"], row["removed_email"]
        else:
            full_name = f"{row['agent__first_name']} {row['agent__last_name']}".strip()
            name, email = full_name or row["agent__username"], row["agent__email"]
        agents.append(
            AgentRow(
                agent_id=row["agent_id"],
                name=name,
                email=email,
                removed=row["agent_id"] is None,
                counts=_counts(row),
            )
        )
    return sorted(agents, key=lambda a: (-a.counts.booked, a.name.lower(), a.email))


def by_dialogue(site: Site, *, filters: ReportFilters, now: datetime) -> list[DialogueRow]:
    """One row per dialogue with meetings in the range, most meetings first: one query.
    Meetings whose dialogue was deleted share one row (`dialogue_id` None)."""
    rows = (
        meetings_in(site, filters=filters, now=now)
        .values("dialogue_id", "dialogue__name")
        .annotate(**_counting())
        .order_by()
    )
    dialogues = [
        DialogueRow(
            dialogue_id=row["dialogue_id"],
            name=row["dialogue__name"] or "",
            counts=_counts(row),
        )
        for row in rows
    ]
    return sorted(
        dialogues, key=lambda d: (-d.counts.booked, d.dialogue_id is None, d.name.lower())
    )


def week_of(day: date) -> date:
    """The Monday of `day`'s week."""
    return day - timedelta(days=day.weekday())


def by_week(site: Site, *, filters: ReportFilters, now: datetime) -> list[WeekRow]:
    """One row per week (Monday to Sunday, in REPORTS_TIME_ZONE) that the range touches,
    oldest first, weeks without meetings included: one query. The first and last weeks count
    only the range's days."""
    week = TruncWeek("start", output_field=DateField(), tzinfo=report_zone())
    rows = (
        meetings_in(site, filters=filters, now=now)
        .annotate(week=week)
        .values("week")
        .annotate(**_counting())
        .order_by()
    )
    counted = {row["week"]: _counts(row) for row in rows}
    weeks, monday = [], week_of(filters.start)
    while monday <= filters.end:
        weeks.append(WeekRow(week=monday, counts=counted.get(monday, MeetingCounts())))
        monday += timedelta(days=7)
    return weeks
