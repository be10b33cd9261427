"""A site's meetings: the list (with filters, htmx and CSV export), a meeting's page with the
conversation that led to it, marking whether it took place, and cancelling it.

Access goes through meetings.listing.viewer_for: marketing admins and users see every meeting
of the site, sales agents their own (another agent's meeting is a 404), anyone else a 404.
Marking and cancelling are for the meeting's agent and the site's admins; a marketing user
asking gets a 403 (they may see the meeting, so a 404 would tell them nothing true).

Times are in the viewer's zone, which dynchat.timezones made the current one.
"""

from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from calendars.display import zone_named
from dialogues.models import Membership, Site
from dynchat.querystrings import export_refused, query_without_page
from meetings import listing, outcomes
from meetings.cancellation import CannotCancel, InvalidReason, cancel_meeting
from meetings.forms import CancelForm, MeetingFilterForm, OutcomeForm
from meetings.models import Meeting


def _filtered(request, viewer):
    """The filter form bound to the query string, and the valid filters it holds."""
    form = MeetingFilterForm(request.GET, viewer=viewer)
    form.is_valid()
    return form, form.filters()


# What the "Took place" column says per status (the CSV says yes / no / blank).
TOOK_PLACE_LABELS = {
    listing.ListStatus.HAPPENED: "Yes",
    listing.ListStatus.NO_SHOW: "No",
    listing.ListStatus.AWAITING_OUTCOME: "Not marked yet",
}


def _labelled(meeting: Meeting, viewer: listing.Viewer) -> Meeting:
    """The meeting (annotated with list_status) with what its row shows: the status's and
    "took place"'s wording, and whether the viewer may mark its outcome here."""
    meeting.status_label = listing.ListStatus.labels[meeting.list_status]
    meeting.took_place_label = TOOK_PLACE_LABELS.get(meeting.list_status, "—")
    meeting.may_mark = _markable(meeting) and viewer.may_act_on(meeting)
    return meeting


@require_GET
@login_required
def my_meetings(request):
    """Where the top bar's "Your meetings" leads a sales agent: their site's meetings, or the
    sites they are an agent of when there are several. Agents of no site get a 404."""
    sites = list(
        Site.objects.filter(
            membership__user=request.user, membership__role=Membership.Role.AGENT
        ).order_by("name", "pk")
    )
    if not sites:
        raise Http404("You are no sales agent.")
    if len(sites) == 1:
        return redirect("meetings:list", sites[0].pk)
    return render(request, "meetings/mine.html", {"sites": sites})


@require_GET
@login_required
def meeting_list(request, site_id):
    """The site's meetings the viewer may see, filtered, 50 a page. htmx requests (a filter
    changed, another page) get the results fragment alone."""
    viewer = listing.viewer_for(request.user, site_id)
    form, filters = _filtered(request, viewer)
    zone = timezone.get_current_timezone()
    now = timezone.now()
    meetings = listing.meetings_for(viewer, filters=filters, zone=zone, now=now)
    page = Paginator(meetings, listing.PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = [_labelled(meeting, viewer) for meeting in page.object_list]
    counts = listing.status_counts(viewer, filters=filters, zone=zone, now=now)
    context = {
        "site": viewer.site,
        "viewer": viewer,
        "form": form,
        "page": page,
        "counts": [(value, label, counts[value]) for value, label in listing.ListStatus.choices],
        "query": query_without_page(request),
        "filtered": any(request.GET.get(name) for name in form.fields),
        "list_url": request.get_full_path(),
    }
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "meetings/_meeting_results.html", context)
    else:
        response = render(request, "meetings/list.html", context)
    # The same URL answers a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
@login_required
def meeting_export(request, site_id):
    """The list's meetings under the same filters, as CSV (every page), streamed. Filters that
    do not validate are refused (400) rather than exporting something else than asked."""
    viewer = listing.viewer_for(request.user, site_id)
    form, filters = _filtered(request, viewer)
    if refused := export_refused(form):
        return refused
    zone = timezone.get_current_timezone()
    now = timezone.now()
    meetings = listing.meetings_for(viewer, filters=filters, zone=zone, now=now)
    response = StreamingHttpResponse(
        listing.csv_lines(meetings.iterator(chunk_size=500), zone),
        content_type="text/csv; charset=utf-8",
    )
    name = slugify(viewer.site.name) or f"site-{viewer.site.pk}"
    today = now.astimezone(zone).date().isoformat()
    response["Content-Disposition"] = f'attachment; filename="meetings-{name}-{today}.csv"'
    response["Cache-Control"] = "no-store"
    return response


def _detail_context(request, viewer, meeting, now: datetime, **extra) -> dict:
    _labelled(meeting, viewer)
    # Written by the calendar provider; only a web address becomes a link.
    join_url = meeting.join_url if meeting.join_url.startswith(("https://", "http://")) else ""
    return {
        "site": viewer.site,
        "viewer": viewer,
        "meeting": meeting,
        "may_mark": meeting.may_mark,
        "may_cancel": _cancellable(meeting, now) and viewer.may_act_on(meeting),
        "visitor_zone": zone_named(meeting.visitor_time_zone),
        "duration": int((meeting.end - meeting.start).total_seconds() // 60),
        "join_url": join_url,
        "grace_hours": settings.MEETING_OUTCOME_GRACE_HOURS,
        "outcome_form": OutcomeForm(),
        "outcomes": Meeting.Outcome.choices,
        **extra,
    }


def _markable(meeting) -> bool:
    return meeting.list_status not in (listing.ListStatus.UPCOMING, listing.ListStatus.CANCELLED)


def _cancellable(meeting, now: datetime) -> bool:
    return meeting.status == Meeting.Status.BOOKED and meeting.start > now


@require_GET
@login_required
def meeting_detail(request, site_id, meeting_id):
    """One meeting: who, when (in the viewer's and the visitor's zone), how it was routed,
    whether it took place, and the conversation that led to it."""
    viewer = listing.viewer_for(request.user, site_id)
    now = timezone.now()
    meeting = listing.meeting_for(viewer, meeting_id=meeting_id, now=now)
    context = _detail_context(
        request, viewer, meeting, now, transcript=listing.transcript_of(meeting)
    )
    return render(request, "meetings/detail.html", context)


def _next_url(request, default: str) -> str:
    """Where to go back to after a plain form post: the page the form was on, if it is ours."""
    candidate = request.POST.get("next", "")
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


@require_POST
@login_required
def meeting_outcome(request, site_id, meeting_id):
    """Mark a past meeting as happened, no-show or unmarked (outcomes.mark_outcome).

    Without JavaScript: a redirect back (`next`, else the meeting's page) with a message, or
    the meeting's page with the error (400). With htmx: the list row (`row` posted) or the
    page's outcome section, swapped in place, answering 400 when refused."""
    viewer = listing.viewer_for(request.user, site_id)
    now = timezone.now()
    meeting = listing.meeting_for(viewer, meeting_id=meeting_id, now=now)
    if not viewer.may_act_on(meeting):
        raise PermissionDenied("Only the meeting's agent or a site admin marks its outcome.")
    form = OutcomeForm(request.POST)
    if form.is_valid():
        try:
            outcomes.mark_outcome(
                meeting_id=meeting.pk,
                outcome=form.cleaned_data["outcome"],
                by=request.user,
                now=now,
            )
        except outcomes.CannotMarkOutcome as refusal:
            form.add_error(None, str(refusal))
    status = 400 if form.errors else 200
    detail_url = reverse("meetings:detail", args=[viewer.site.pk, meeting.pk])
    if not request.htmx:
        if form.errors:
            context = _detail_context(
                request, viewer, meeting, now, transcript=listing.transcript_of(meeting)
            )
            context["outcome_form"] = form
            return render(request, "meetings/detail.html", context, status=status)
        meeting = listing.meeting_for(viewer, meeting_id=meeting.pk, now=now)
        messages.success(
            request,
            f"The meeting with {meeting.lead_email or 'an erased visitor'} is now marked "
            f"“{listing.ListStatus.labels[meeting.list_status]}”.",
        )
        return redirect(_next_url(request, detail_url))
    meeting = listing.meeting_for(viewer, meeting_id=meeting.pk, now=now)
    if request.POST.get("row"):
        return render(
            request,
            "meetings/_meeting_row.html",
            {
                "site": viewer.site,
                "viewer": viewer,
                "meeting": _labelled(meeting, viewer),
                "row_errors": form.non_field_errors() + form["outcome"].errors,
                "list_url": _next_url(request, reverse("meetings:list", args=[viewer.site.pk])),
            },
            status=status,
        )
    context = _detail_context(request, viewer, meeting, now)
    context["outcome_form"] = form
    context["saved"] = status == 200
    return render(request, "meetings/_outcome.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def meeting_cancel(request, site_id, meeting_id):
    """Cancel a meeting that has not started: GET asks to confirm (with an optional reason for
    the visitor), POST cancels through meetings.cancellation and goes back to the meeting."""
    viewer = listing.viewer_for(request.user, site_id)
    now = timezone.now()
    meeting = listing.meeting_for(viewer, meeting_id=meeting_id, now=now)
    if not viewer.may_act_on(meeting):
        raise PermissionDenied("Only the meeting's agent or a site admin cancels it.")
    detail_url = reverse("meetings:detail", args=[viewer.site.pk, meeting.pk])
    form = CancelForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                cancel_meeting(
                    meeting_id=meeting.pk,
                    by=request.user,
                    reason=form.cleaned_data["reason"],
                    now=now,
                )
            except CannotCancel as refusal:
                form.add_error(None, refusal.message)
            except InvalidReason as refusal:
                form.add_error("reason", str(refusal))
            else:
                messages.success(
                    request,
                    f"The meeting with {meeting.lead_email or 'an erased visitor'} is cancelled.",
                )
                return redirect(detail_url)
        status = 400
    return render(
        request,
        "meetings/cancel.html",
        {
            "site": viewer.site,
            "meeting": meeting,
            "form": form,
            "cancellable": _cancellable(meeting, now),
        },
        status=status,
    )
