from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.db import connection, transaction
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from marketo_sync import selectors, services, tasks
from marketo_sync.access import marketo_admin_required
from marketo_sync.errors import HINTS
from marketo_sync.forms import SyncSettingsForm
from marketo_sync.models import ActivityType, SyncRun, SyncSettings

DESCRIBE_CACHE_KEY = "marketo_sync:describe"
DESCRIBE_CACHE_SECONDS = 600


@marketo_admin_required
def status(request):
    """The sync status page. htmx polls the status fragment while a run is going."""
    run = selectors.current_run()
    context = {
        "run": run,
        "live": selectors.live_figures(run) if run else None,
        "runs": selectors.recent_runs(),
        "configured": services.marketo_configured(),
        "postgresql": connection.vendor == "postgresql",
        "resumable": services.resumable_full_run(),
        "full_done": services.last_successful_full_run(),
        "hints": HINTS,
    }
    if request.htmx:
        return render(request, "marketo_sync/_status.html", context)
    context["stored"] = selectors.stored_counts()
    return render(request, "marketo_sync/status.html", context)


@require_POST
@marketo_admin_required
def start_sync(request):
    kind = request.POST.get("kind")
    if kind not in SyncRun.Kind.values:
        messages.error(request, "Choose a full or an incremental sync.")
        return redirect("marketo_sync:status")
    if not services.marketo_configured():
        messages.error(request, f"Marketo is not configured. {HINTS['not_configured']}")
        return redirect("marketo_sync:status")
    if connection.vendor != "postgresql":
        messages.error(request, HINTS["requires_postgresql"])
        return redirect("marketo_sync:status")
    if selectors.current_run():
        messages.error(request, "A sync is already running; it is shown below.")
        return redirect("marketo_sync:status")
    who = request.user.get_username()
    if kind == SyncRun.Kind.FULL:
        fresh = request.POST.get("fresh") == "1"
        transaction.on_commit(lambda: tasks.full_sync.delay(started_by=who, fresh=fresh))
    else:
        transaction.on_commit(lambda: tasks.incremental_sync.delay(started_by=who))
    messages.success(request, f"The {kind} sync has been queued.")
    return redirect("marketo_sync:status")


@marketo_admin_required
def sync_settings(request):
    """Connection details, "Test connection", and which fields and activities to sync."""
    current = SyncSettings.load()
    lead_fields, company_fields, problem = _describe()
    if problem:
        # Marketo cannot be read now: still offer what is picked, so nothing is lost on save.
        lead_fields = [_field(name) for name in current.person_fields]
        company_fields = [_field(name) for name in current.company_fields]
    activity_types = list(ActivityType.objects.all()) or [
        ActivityType(id=i, name=f"Activity type {i}") for i in current.activity_type_ids
    ]
    form = SyncSettingsForm(
        request.POST or None,
        initial={
            "person_fields": current.person_fields,
            "company_fields": current.company_fields,
            "activity_type_ids": current.activity_type_ids,
        },
        lead_fields=lead_fields,
        company_fields=company_fields,
        activity_types=activity_types,
    )
    if request.method == "POST" and form.is_valid():
        services.save_sync_settings(
            person_fields=form.cleaned_data["person_fields"],
            company_fields=form.cleaned_data["company_fields"],
            activity_type_ids=form.cleaned_data["activity_type_ids"],
        )
        messages.success(
            request,
            "Saved. New fields fill in at the next full sync; changes to synced fields arrive "
            "with the incremental sync.",
        )
        return redirect("marketo_sync:settings")
    return render(
        request,
        "marketo_sync/settings.html",
        {
            "form": form,
            "problem": problem,
            "configured": services.marketo_configured(),
            "base_url": settings.MARKETO_BASE_URL,
            "client_id": settings.MARKETO_CLIENT_ID,
            "picked": len(current.person_fields) + len(current.company_fields),
        },
    )


@require_POST
@marketo_admin_required
def test_connection(request):
    check = services.check_connection()
    if check.ok:
        cache.set(
            DESCRIBE_CACHE_KEY,
            (check.lead_fields, check.company_fields),
            DESCRIBE_CACHE_SECONDS,
        )
    return render(request, "marketo_sync/_connection.html", {"check": check})


def _describe():
    """Marketo's person and company fields (cached ten minutes), or the problem reading them."""
    cached = cache.get(DESCRIBE_CACHE_KEY)
    if cached:
        return cached[0], cached[1], None
    check = services.check_connection()
    if not check.ok:
        return [], [], check
    cache.set(DESCRIBE_CACHE_KEY, (check.lead_fields, check.company_fields), DESCRIBE_CACHE_SECONDS)
    return check.lead_fields, check.company_fields, None


def _field(name: str) -> dict:
    return {"name": name, "displayName": name, "dataType": "unknown"}
