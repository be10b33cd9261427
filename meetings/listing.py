"""Reading meetings: the meetings list, a meeting's page and the CSV export (selectors).

Who sees what (`viewer_for`): a site's marketing admins and marketing users see every meeting
of the site, its sales agents only their own; anyone else gets a 404 (dialogues.access).
Superusers see everything.

A meeting's status in the list is computed by the database from `now`
(`status_expression`), so filtering, counting and paging by status need no Python pass:

- `cancelled`: cancelled, whenever it was to take place;
- `upcoming`: not ended yet (a meeting under way is still upcoming);
- `no_show` / `happened`: ended and marked so by its agent or an admin;
- `awaiting_outcome`: ended, unmarked, and less than MEETING_OUTCOME_GRACE_HOURS ago;
- `happened`: ended, unmarked, and the grace period is over (meetings happen unless someone
  says otherwise).
"""

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Case, CharField, Count, F, IntegerField, Q, QuerySet, Value, When
from django.shortcuts import get_object_or_404

from dialogues.access import MANAGE_DIALOGUES, site_for
from dialogues.models import Membership, Site
from meetings.models import Meeting
from widget.models import TranscriptEntry

# Everyone with a role on the site opens its meetings pages; agents see only their own rows.
MEETING_ROLES = frozenset(Membership.Role.values)


class ListStatus:
    """The statuses the meetings list shows and filters on (see the module's docstring)."""

    UPCOMING = "upcoming"
    AWAITING_OUTCOME = "awaiting_outcome"
    HAPPENED = "happened"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"

    choices = [
        (UPCOMING, "Upcoming"),
        (AWAITING_OUTCOME, "Ended, not marked yet"),
        (HAPPENED, "Happened"),
        (NO_SHOW, "No-show"),
        (CANCELLED, "Cancelled"),
    ]
    labels = dict(choices)
    values = [value for value, _ in choices]


# What the list's "Took place" column and the CSV's `took_place` say per status. A meeting
# awaiting its outcome has not been decided yet: blank, like an upcoming or cancelled one.
TOOK_PLACE = {ListStatus.HAPPENED: "yes", ListStatus.NO_SHOW: "no"}

PAGE_SIZE = 50


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a site's meetings, and what their role lets them do."""

    site: Site
    user: object
    sees_every_agent: bool  # marketing admins and users, superusers; agents see their own
    is_site_admin: bool  # marketing admins and superusers

    def may_act_on(self, meeting: Meeting) -> bool:
        """Whether the viewer may mark the meeting's outcome or cancel it: its agent, a site
        admin or a superuser. Marketing users only look."""
        return self.is_site_admin or meeting.agent_id == self.user.pk


def viewer_for(user, site_id: int) -> Viewer:
    """The viewer of `site_id`'s meetings, or a 404 for anyone without a role on the site."""
    site = site_for(user, site_id, roles=MEETING_ROLES)
    if user.is_superuser:
        role = Membership.Role.ADMIN
    else:
        role = Membership.objects.filter(site=site, user=user).values_list("role", flat=True)[0]
    return Viewer(
        site=site,
        user=user,
        sees_every_agent=role in MANAGE_DIALOGUES,
        is_site_admin=role == Membership.Role.ADMIN,
    )


def grace_period() -> timedelta:
    return timedelta(hours=settings.MEETING_OUTCOME_GRACE_HOURS)


def status_expression(now: datetime) -> Case:
    """The list status of a meeting at `now`, as SQL (the order of the branches matters)."""
    return Case(
        When(status=Meeting.Status.CANCELLED, then=Value(ListStatus.CANCELLED)),
        When(end__gt=now, then=Value(ListStatus.UPCOMING)),
        When(outcome=Meeting.Outcome.NO_SHOW, then=Value(ListStatus.NO_SHOW)),
        When(outcome=Meeting.Outcome.HAPPENED, then=Value(ListStatus.HAPPENED)),
        When(end__gt=now - grace_period(), then=Value(ListStatus.AWAITING_OUTCOME)),
        default=Value(ListStatus.HAPPENED),
        output_field=CharField(),
    )


@dataclass(frozen=True)
class MeetingFilters:
    """What the list is narrowed to. Dates are days in the viewer's zone, both included."""

    agent_id: int | None = None
    dialogue_id: int | None = None
    status: str = ""
    date_from: date | None = None
    date_to: date | None = None
    query: str = ""


def _visible(viewer: Viewer) -> QuerySet:
    meetings = Meeting.objects.filter(site=viewer.site)
    if not viewer.sees_every_agent:
        meetings = meetings.filter(agent=viewer.user)
    return meetings


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    # zoneinfo resolves a midnight that a DST change skips to the instant after the gap.
    return datetime.combine(day, time.min, tzinfo=zone)


def _narrowed(meetings: QuerySet, filters: MeetingFilters, zone: ZoneInfo) -> QuerySet:
    """Every filter but the status (the status counts are taken before it)."""
    if filters.agent_id is not None:
        meetings = meetings.filter(agent_id=filters.agent_id)
    if filters.dialogue_id is not None:
        meetings = meetings.filter(dialogue_id=filters.dialogue_id)
    if filters.date_from is not None:
        meetings = meetings.filter(start__gte=_local_midnight(filters.date_from, zone))
    if filters.date_to is not None:
        next_day = filters.date_to + timedelta(days=1)
        meetings = meetings.filter(start__lt=_local_midnight(next_day, zone))
    # Every word must be found in one of the fields: "ann bigco" finds Ann at BigCo.
    for word in filters.query.split():
        meetings = meetings.filter(
            Q(lead_email__icontains=word)
            | Q(lead_first_name__icontains=word)
            | Q(lead_last_name__icontains=word)
            | Q(lead_company__icontains=word)
        )
    return meetings


def meetings_for(
    viewer: Viewer, *, filters: MeetingFilters, zone: ZoneInfo, now: datetime
) -> QuerySet:
    """The viewer's meetings matching `filters`, each annotated with `list_status` at `now`.

    Order: meetings that have not ended, soonest first, then the others, latest first (what
    an agent needs next at the top, then what just happened); ties by id, so pages are stable.
    """
    meetings = _narrowed(_visible(viewer), filters, zone).annotate(
        list_status=status_expression(now)
    )
    if filters.status:
        meetings = meetings.filter(list_status=filters.status)
    not_ended = Q(end__gt=now)
    return meetings.select_related("dialogue").order_by(
        Case(When(not_ended, then=Value(0)), default=Value(1), output_field=IntegerField()),
        Case(When(not_ended, then=F("start"))).asc(nulls_last=True),
        F("start").desc(),
        "pk",
    )


def status_counts(
    viewer: Viewer, *, filters: MeetingFilters, zone: ZoneInfo, now: datetime
) -> dict[str, int]:
    """How many of the viewer's meetings matching `filters` (the status aside) have each
    status: one aggregate query."""
    meetings = _narrowed(_visible(viewer), filters, zone).annotate(
        list_status=status_expression(now)
    )
    return meetings.aggregate(
        **{value: Count("pk", filter=Q(list_status=value)) for value in ListStatus.values}
    )


def meeting_for(viewer: Viewer, *, meeting_id, now: datetime) -> Meeting:
    """One meeting the viewer may see, annotated with `list_status` at `now`; a 404 for a
    meeting of another site or, for an agent, of another agent."""
    meetings = _visible(viewer).annotate(list_status=status_expression(now))
    return get_object_or_404(
        meetings.select_related("dialogue", "outcome_marked_by", "cancelled_by"), pk=meeting_id
    )


def transcript_of(meeting: Meeting) -> list[TranscriptEntry] | None:
    """The conversation that led to the meeting, in order; None once the conversation has
    been deleted (conversations are purged after the retention period, meetings are kept)."""
    if meeting.conversation_id is None:
        return None
    return list(
        TranscriptEntry.objects.filter(conversation_id=meeting.conversation_id).order_by("seq")
    )


# --- CSV export --------------------------------------------------------------------------------

CSV_COLUMNS = [
    "meeting_id",
    "lead_email",
    "first_name",
    "last_name",
    "company",
    "agent_name",
    "agent_email",
    "dialogue",
    "start",
    "start_utc",
    "duration_minutes",
    "status",
    "took_place",
    "routed_by",
    "booked_at",
]

# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    """`value` made safe to open in a spreadsheet: a leading apostrophe if it could be read as
    a formula."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def csv_row(meeting: Meeting, zone: ZoneInfo) -> list[str]:
    """One meeting (annotated with `list_status`) as a CSV row of CSV_COLUMNS; times in `zone`
    with their offset, and the start once more in UTC."""
    values = [
        str(meeting.pk),
        meeting.lead_email,
        meeting.lead_first_name,
        meeting.lead_last_name,
        meeting.lead_company,
        meeting.agent_name,
        meeting.agent_email,
        meeting.dialogue.name if meeting.dialogue else "",
        meeting.start.astimezone(zone).isoformat(),
        _utc(meeting.start),
        str(int((meeting.end - meeting.start).total_seconds() // 60)),
        meeting.list_status,
        TOOK_PLACE.get(meeting.list_status, ""),
        meeting.routed_by,
        meeting.created_at.astimezone(zone).isoformat(),
    ]
    return [csv_cell(value) for value in values]


class _Echo:
    """A file-like object whose write returns the line, for csv.writer to stream through."""

    def write(self, value: str) -> str:
        return value


def csv_lines(meetings: Iterable[Meeting], zone: ZoneInfo) -> Iterator[str]:
    """The export as CSV lines: a byte-order mark (so Excel reads UTF-8), the header, then one
    line per meeting, read from the database in chunks."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(CSV_COLUMNS)
    for meeting in meetings:
        yield writer.writerow(csv_row(meeting, zone))
