"""The meetings dashboard of a site: how many meetings were booked, cancelled, happened, were
no-shows or still wait for their outcome, per agent, per dialogue and per week, each table
also as CSV (`?table=<name>&format=csv` with the page's filters, like the other report pages).

For the site's marketing admins and marketing users (dialogues.access.site_for); anyone else,
agents included, gets a 404. The figures are read by reports.meeting_stats; the filters are
the report pages' (reports.filters) without the visitors filter, which does not apply to
meetings: the form does not show it and the figures ignore it.
"""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from dialogues.access import site_for
from dynchat.querystrings import export_refused
from reports import meeting_stats
from reports.csv import csv_response
from reports.filters import ReportFilters, filters_from
from reports.meeting_stats import MeetingCounts

COUNT_HEADER = [
    "Booked",
    "Upcoming",
    "Awaiting outcome",
    "Happened",
    "No-show",
    "Cancelled",
    "No-show rate",
]
TABLES = ("totals", "weeks", "agents", "dialogues")


def _count_cells(counts: MeetingCounts) -> list:
    rate = counts.no_show_rate
    return [
        counts.booked,
        counts.upcoming,
        counts.awaiting_outcome,
        counts.happened,
        counts.no_show,
        counts.cancelled,
        "" if rate is None else f"{rate:.4f}",
    ]


def percent(rate: float | None) -> str:
    """0.25 → "25.0%"; None (no settled meeting to divide by) → an en dash."""
    return "\u2013" if rate is None else f"{rate * 100:.1f}%"


def _query(filters: ReportFilters) -> str:
    """The filters as a query string to prefix with more parameters ("start=…&end=…&"),
    without the visitors filter (meetings ignore it)."""
    values = filters.query(visitors="")
    return urlencode(values) + "&" if values else ""


@require_GET
@login_required
def meetings_dashboard(request, site_id):
    site = site_for(request.user, site_id)
    form, filters = filters_from(request, site, with_dialogue=True)
    now = timezone.now()
    if request.GET.get("format") == "csv":
        return _csv(site, form, filters, request.GET.get("table", ""), now)
    totals = meeting_stats.totals(site, filters=filters, now=now)
    context = {
        "site": site,
        "form": form,
        "filters": filters,
        "totals": totals,
        "no_show_rate": percent(totals.no_show_rate),
        "show_rate": percent(totals.show_rate),
        "weeks": _with_rates(meeting_stats.by_week(site, filters=filters, now=now)),
        "agents": _with_rates(meeting_stats.by_agent(site, filters=filters, now=now)),
        "dialogues": _with_rates(meeting_stats.by_dialogue(site, filters=filters, now=now)),
        "csv_base": _query(filters),
        "report_zone": settings.REPORTS_TIME_ZONE,
        "grace_hours": settings.MEETING_OUTCOME_GRACE_HOURS,
    }
    return render(request, "reports/meetings.html", context)


def _with_rates(rows: list) -> list[tuple]:
    """Each row with its no-show rate as the page writes it."""
    return [(row, percent(row.counts.no_show_rate)) for row in rows]


def _csv(site, form, filters: ReportFilters, table: str, now):
    if table not in TABLES:
        raise Http404("No such table.")
    if refused := export_refused(form):
        return refused
    name = f"{slugify(site.name) or 'site'}-meetings-{table}-{filters.start}-{filters.end}.csv"
    if table == "totals":
        totals = meeting_stats.totals(site, filters=filters, now=now)
        return csv_response(
            name,
            ["From", "To", *COUNT_HEADER],
            [[filters.start, filters.end, *_count_cells(totals)]],
        )
    if table == "weeks":
        rows = (
            [row.week, *_count_cells(row.counts)]
            for row in meeting_stats.by_week(site, filters=filters, now=now)
        )
        return csv_response(name, ["Week from", *COUNT_HEADER], rows)
    if table == "agents":
        rows = (
            [row.name, row.email, row.removed, *_count_cells(row.counts)]
            for row in meeting_stats.by_agent(site, filters=filters, now=now)
        )
        return csv_response(name, ["Agent", "Email", "Account removed", *COUNT_HEADER], rows)
    rows = (
        [row.name if row.dialogue_id else "Deleted dialogues", *_count_cells(row.counts)]
        for row in meeting_stats.by_dialogue(site, filters=filters, now=now)
    )
    return csv_response(name, ["Dialogue", *COUNT_HEADER], rows)
