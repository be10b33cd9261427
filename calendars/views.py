"""The agent's calendar page: which calendar their meetings go to, the hours they take them,
and the times visitors are offered this week.

For anyone with a sales agent membership on at least one site; everyone else gets a 404, as on
the marketer pages. Every page is the signed-in agent's own: no URL names another agent.
"""

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from calendars import providers
from calendars.availability import agent_slots, rules_for
from calendars.availability_services import (
    disconnect_calendar,
    save_availability,
    use_builtin_calendar,
)
from calendars.forms import AvailabilityForm, HoursRows
from calendars.models import Availability, CalendarConnection
from calendars.providers.base import AuthorizationFailed
from calendars.slots import RulesInvalid, group_by_day
from dialogues.models import Membership

log = logging.getLogger(__name__)
Provider = CalendarConnection.Provider

# The providers an agent signs in to, and the setting without which they cannot.
OAUTH_CLIENT_SETTINGS = {
    Provider.GOOGLE: "GOOGLE_CLIENT_ID",
    Provider.MICROSOFT: "MICROSOFT_CLIENT_ID",
}
PREVIEW_DAYS = 7


def _require_agent(user) -> None:
    """404 unless `user` is a sales agent somewhere (the page names nothing else to hide)."""
    if not Membership.objects.filter(user=user, role=Membership.Role.AGENT).exists():
        raise Http404("No such page.")


def _configured(name: str) -> bool:
    return bool(getattr(settings, OAUTH_CLIENT_SETTINGS[name], ""))


def _redirect_uri(name: str) -> str:
    # The address registered with the provider: SITE_ROOT, not the Host this request came on.
    return settings.SITE_ROOT.rstrip("/") + reverse("calendars:callback", args=[name])


def _today_in(zone_name: str):
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return timezone.now().astimezone(zone).date()


@require_http_methods(["GET", "POST"])
@login_required
def calendar_settings(request):
    """The connection, and the availability form. Add/remove buttons redisplay the form (the
    fragment alone for htmx) without saving; Save stores everything or, on any error, nothing."""
    _require_agent(request.user)
    saved = Availability.objects.filter(user=request.user).first()
    if request.method == "GET":
        availability = saved or Availability(user=request.user)  # the model's defaults
        form = AvailabilityForm(initial=AvailabilityForm.initial_for(availability))
        hours = HoursRows.from_availability(availability, today=_today_in(availability.time_zone))
        return _render(request, form, hours, saved)

    form = AvailabilityForm(request.POST)
    hours = HoursRows.from_post(request.POST)
    if hours.apply_button(request.POST):
        return _render(request, form, hours, saved)
    form_valid = form.is_valid()
    # Past dates are judged in the agent's zone: the one they chose, else the saved one.
    zone_name = form.cleaned_data.get("time_zone") or (saved.time_zone if saved else "UTC")
    weekly_hours, date_overrides = hours.cleaned(today=_today_in(zone_name))
    if form_valid and hours.valid:
        data = form.cleaned_data
        try:
            save_availability(
                user=request.user,
                cleaned={
                    "time_zone": data["time_zone"],
                    "weekly_hours": weekly_hours,
                    "date_overrides": date_overrides,
                    "meeting_minutes": data["meeting_minutes"],
                    "buffer_before_minutes": data["buffer_before_minutes"],
                    "buffer_after_minutes": data["buffer_after_minutes"],
                    "minimum_notice_minutes": form.minimum_notice_minutes(),
                    "booking_horizon_days": data["booking_horizon_days"],
                },
            )
        except RulesInvalid as exc:
            # The form says everything the slot engine checks; this is the safety net.
            form.add_error(None, f"Your hours could not be used: {exc.message}.")
        else:
            messages.success(request, "Your hours are saved.")
            url = reverse("calendars:settings")
            # htmx would swap the whole page into the form: have it load the page instead.
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    return _render(request, form, hours, saved, status=400)


def _render(request, form, hours, saved, *, status=200):
    template = "calendars/_availability_form.html" if request.htmx else "calendars/settings.html"
    connection = CalendarConnection.objects.filter(user=request.user).first()
    context = {
        "form": form,
        "hours": hours,
        "saved_availability": saved,
        "connection": connection,
        "oauth_providers": [
            {
                "name": name,
                "label": Provider(name).label,
                "configured": _configured(name),
                "setting": setting,
            }
            for name, setting in OAUTH_CLIENT_SETTINGS.items()
        ],
    }
    return render(request, template, context, status=status)


@require_POST
@login_required
def connect(request, provider_name):
    """Start connecting a calendar: the built-in one at once, Google or Microsoft by sending
    the agent to the provider's consent page (which comes back to `callback`)."""
    _require_agent(request.user)
    if provider_name == Provider.BUILTIN:
        use_builtin_calendar(user=request.user)
        messages.success(
            request,
            "You now use the DynChat calendar: your DynChat meetings are your only busy times.",
        )
        return redirect("calendars:settings")
    if provider_name not in OAUTH_CLIENT_SETTINGS:
        raise Http404("No such calendar provider.")
    label = Provider(provider_name).label
    if not _configured(provider_name):
        messages.error(request, f"{label} cannot be connected: it is not set up on this DynChat.")
        return redirect("calendars:settings")
    try:
        url = providers.provider(provider_name).authorization_url(
            request.user, _redirect_uri(provider_name)
        )
    except AuthorizationFailed as exc:
        messages.error(request, f"{label} could not be connected: {exc}")
        return redirect("calendars:settings")
    return redirect(url)


@require_GET
@login_required
def callback(request, provider_name):
    """Where the provider sends the agent back after consent (or refusal)."""
    _require_agent(request.user)
    if provider_name not in OAUTH_CLIENT_SETTINGS:
        raise Http404("No such calendar provider.")
    label = Provider(provider_name).label
    try:
        connection = providers.provider(provider_name).finish_authorization(
            request.user, request.GET.dict(), _redirect_uri(provider_name)
        )
    except AuthorizationFailed as exc:
        messages.error(request, f"{label} was not connected: {exc}")
    else:
        account = f" ({connection.account_email})" if connection.account_email else ""
        messages.success(
            request, f"{label}{account} connected: visitors can book meetings with you."
        )
    return redirect("calendars:settings")


@require_POST
@login_required
def disconnect(request):
    _require_agent(request.user)
    connection = disconnect_calendar(user=request.user)
    if connection is None:
        messages.info(request, "No calendar was connected.")
    else:
        messages.success(
            request,
            f"{connection.get_provider_display()} disconnected. Visitors cannot book meetings "
            "with you until you connect a calendar.",
        )
    return redirect("calendars:settings")


@require_GET
@login_required
def preview(request):
    """What visitors see this week: the agent's free slots for the next seven days, by day in
    the agent's zone, or why there are none. Loaded by the settings page after it shows (a
    provider's busy times can take a moment); a page of its own without htmx."""
    _require_agent(request.user)
    context = week_preview(request.user, now=timezone.now())
    template = "calendars/_preview.html" if request.htmx else "calendars/preview.html"
    return render(request, template, context)


def week_preview(user, *, now) -> dict:
    """The preview's context: `days` [(date, [slot starts])] in the agent's zone `zone`, and
    `reason` (why there is nothing to offer) when there are no slots."""
    until = now + timedelta(days=PREVIEW_DAYS)
    starts = agent_slots([user], now=now, until=until).get(user.pk, [])
    availability = Availability.objects.filter(user=user).first()
    zone_name = availability.time_zone if availability else "UTC"
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return {
        "zone": zone.key,
        "days": group_by_day(starts, zone),
        "reason": "" if starts else _why_no_slots(user, availability, now=now, until=until),
    }


def _why_no_slots(user, availability, *, now, until) -> str:
    connection = CalendarConnection.objects.filter(user=user).first()
    if connection is None:
        return "You have no calendar connected, so visitors cannot book meetings with you."
    if not connection.bookable:
        return (
            f"Your {connection.get_provider_display()} needs reconnecting: visitors see no "
            "times with you until you reconnect it."
        )
    if availability is None:
        return "You have not saved your hours yet."
    try:
        rules = rules_for(availability)
    except RulesInvalid as exc:
        return f"Your saved hours cannot be used ({exc.message}): save them again below."
    # The working blocks of the coming days, as instants, to tell "no hours" from "too soon".
    zone = rules.time_zone
    first = now.astimezone(zone).date()
    ends = []
    for offset in range((until - now).days + 2):
        day = first + timedelta(days=offset)
        for start, end in rules.blocks_on(day):
            start, end = (datetime.combine(day, t, tzinfo=zone) for t in (start, end))
            if start < until and now < end:
                ends.append(end)
    if not ends:
        return "You have no working hours in the next 7 days."
    notice = timedelta(minutes=rules.minimum_notice_minutes)
    if notice and max(ends) <= now + notice:
        hours = rules.minimum_notice_minutes / 60
        return f"Your minimum notice of {hours:g} hours leaves none of this week's hours to book."
    return (
        "Nothing is free this week: your calendar is busy during your hours, your blocks are "
        "shorter than a meeting with its buffers, or your calendar could not be read just now."
    )
