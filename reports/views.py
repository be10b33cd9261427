"""The report pages of a site: the overall dashboard and a dialogue's report, each with its
tables as CSV (`?table=<name>&format=csv`, with the page's filters).

For the site's marketing admins and marketing users (dialogues.access.site_for: anyone else,
and another site's dialogue under this site's address, gets a 404). Everything is read from
the daily tables (reports.selectors); charts are SVG drawn here (reports.charts), each with
the table of its numbers beside it.
"""

from dataclasses import replace

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils.http import urlencode
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from dialogues.access import dialogue_for, site_for
from dynchat.querystrings import export_refused
from reports import charts, selectors
from reports.csv import csv_response
from reports.filters import ReportFilters, filters_from

# The trend chart's lines, in the order the legend lists them.
TREND = (
    ("triggered", "Triggered"),
    ("engaged", "Engaged"),
    ("completed", "Completed"),
    ("captured", "People captured"),
    ("meetings", "Meetings booked"),
)
FIGURE_HEADER = [
    "Triggered",
    "Engaged",
    "Completed",
    "People captured",
    "Meetings booked",
    "Goals reached",
    "Nobody free",
    "Engagement rate",
    "Conversion rate",
]


def _figure_cells(figures: selectors.Figures) -> list:
    return [
        figures.triggered,
        figures.engaged,
        figures.completed,
        figures.captured,
        figures.meetings,
        figures.goals,
        figures.fallbacks,
        _ratio(figures.engagement_rate),
        _ratio(figures.conversion_rate),
    ]


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def trend_chart(days: list, *, title: str):
    return charts.line_chart(
        [day for day, _ in days],
        [charts.Series(label, [getattr(f, name) for _, f in days]) for name, label in TREND],
        title=title,
        chart_id="trend-chart",
    )


@require_GET
@login_required
def overview(request, site_id):
    site = site_for(request.user, site_id)
    form, filters = filters_from(request, site)
    if request.GET.get("format") == "csv":
        return export_refused(form) or _overview_csv(site, filters, request.GET.get("table", ""))
    days = selectors.daily(site, filters)
    context = {
        "site": site,
        "form": form,
        "filters": filters,
        "totals": selectors.totals(site, filters),
        "days": days,
        "trend_chart": trend_chart(days, title="Daily trend, all dialogues"),
        "top_dialogues": selectors.top_dialogues(site, filters),
        "top_pages": selectors.top_pages(site, filters),
        "csv_base": _query(filters.query()),
        "report_zone": settings.REPORTS_TIME_ZONE,
    }
    return render(request, "reports/overview.html", context)


def _overview_csv(site, filters: ReportFilters, table: str):
    name = f"{slugify(site.name) or 'site'}-{table}-{filters.start}-{filters.end}.csv"
    if table == "trend":
        rows = ([day.isoformat(), *_figure_cells(f)] for day, f in selectors.daily(site, filters))
        return csv_response(name, ["Day", *FIGURE_HEADER], rows)
    if table == "dialogues":
        rows = (
            [d.name, d.status, *_figure_cells(d.figures)]
            for d in selectors.top_dialogues(site, filters, limit=None)
        )
        return csv_response(name, ["Dialogue", "Status", *FIGURE_HEADER], rows)
    if table == "pages":
        return _pages_csv(name, selectors.top_pages(site, filters, limit=None))
    raise Http404("No such table.")


PAGE_HEADER = ["Page", "Triggered", "Engaged", "Completed", "People captured"]


def _pages_csv(name: str, pages):
    rows = (
        [p.page, p.figures.triggered, p.figures.engaged, p.figures.completed, p.figures.captured]
        for p in pages
    )
    return csv_response(name, PAGE_HEADER, rows)


@require_GET
@login_required
def dialogue_report(request, site_id, dialogue_id):
    site, dialogue = dialogue_for(request.user, site_id, dialogue_id)
    form, filters = filters_from(request, site, with_dialogue=False)
    filters = replace(filters, dialogue_id=dialogue.pk)
    versions = selectors.published_versions(site, dialogue)
    version = _chosen_version(request, dialogue, versions)
    if request.GET.get("format") == "csv":
        return export_refused(form) or _dialogue_csv(
            site, dialogue, version, filters, request.GET.get("table", "")
        )
    days = selectors.daily(site, filters)
    funnel = selectors.funnel(site, version, filters) if version else []
    context = {
        "site": site,
        "dialogue": dialogue,
        "form": form,
        "filters": filters,
        "totals": selectors.totals(site, filters),
        "days": days,
        "trend_chart": trend_chart(days, title=f"Daily trend of {dialogue.name}"),
        "by_version": selectors.by_version(site, dialogue, filters),
        "versions": versions,
        "version": version,
        "funnel": funnel,
        "funnel_chart": _funnel_chart(funnel, version) if funnel else "",
        "goals": selectors.goals(site, dialogue, filters),
        "top_pages": selectors.top_pages(site, filters),
        "query": filters.query(dialogue=""),
        "csv_base": _query(filters.query(dialogue="")),
        "report_zone": settings.REPORTS_TIME_ZONE,
    }
    return render(request, "reports/dialogue.html", context)


def _query(values: dict) -> str:
    """A query string to prefix with more parameters ("start=…&end=…&")."""
    return urlencode(values) + "&" if values else ""


def _chosen_version(request, dialogue, versions):
    """The version whose funnel to show: `?version=<number>`, else the one visitors get now,
    else the newest."""
    wanted = request.GET.get("version", "")
    by_number = {str(v.number): v for v in versions}
    if wanted in by_number:
        chosen = by_number[wanted]
    else:
        current = dialogue.current_version_id
        chosen = next((v for v in versions if v.pk == current), versions[0] if versions else None)
    if chosen is None:
        return None
    # Its flow names the funnel's cards (the list above was read without it).
    return dialogue.versions.get(pk=chosen.pk)


def _funnel_chart(funnel: list, version):
    bars = [
        charts.Bar(
            label=f"{step.label} ({step.kind})", value=step.reached, secondary=step.dropped or 0
        )
        for step in funnel
    ]
    return charts.bar_chart(
        bars,
        title=f"Funnel of version {version.number}: cards reached",
        secondary_label="left here",
        chart_id="funnel-chart",
    )


def _dialogue_csv(site, dialogue, version, filters: ReportFilters, table: str):
    base = f"{slugify(dialogue.name) or 'dialogue'}-{table}-{filters.start}-{filters.end}"
    if table == "trend":
        rows = ([day.isoformat(), *_figure_cells(f)] for day, f in selectors.daily(site, filters))
        return csv_response(f"{base}.csv", ["Day", *FIGURE_HEADER], rows)
    if table == "versions":
        rows = (
            [v.number, v.published_at.isoformat(), *_figure_cells(v.figures)]
            for v in selectors.by_version(site, dialogue, filters)
        )
        return csv_response(f"{base}.csv", ["Version", "Published", *FIGURE_HEADER], rows)
    if table == "funnel" and version is not None:
        rows = (
            [
                s.card_id,
                s.kind,
                s.label,
                s.reached,
                "" if s.answered is None else s.answered,
                "" if s.dropped is None else s.dropped,
                _ratio(s.drop_rate),
            ]
            for s in selectors.funnel(site, version, filters)
        )
        header = ["Card", "Type", "Text", "Reached", "Answered", "Left here", "Drop-off rate"]
        return csv_response(f"{base}-v{version.number}.csv", header, rows)
    if table == "goals":
        rows = ([g.name, g.reached] for g in selectors.goals(site, dialogue, filters))
        return csv_response(f"{base}.csv", ["Goal", "Reached"], rows)
    if table == "pages":
        return _pages_csv(f"{base}.csv", selectors.top_pages(site, filters, limit=None))
    raise Http404("No such table.")
