"""Reads for the sync's status page and `marketo_sync status`."""

from django.core.cache import cache
from django.db import connection
from django.db.models import F, Max, Min
from django.db.models.functions import Lower

from marketo_sync import services
from marketo_sync.models import Activity, ActivityType, Company, Lead, SyncCursor, SyncRun
from marketo_sync.sync import live_key


def current_run() -> SyncRun | None:
    """The running sync, if a worker is really running it: a "running" row whose worker died
    (the sync lock is free) is marked interrupted on the way."""
    run = SyncRun.objects.filter(status=SyncRun.Status.RUNNING).first()
    if run is not None and connection.vendor == "postgresql" and services.lock_is_free():
        services.mark_dead_runs_interrupted()
        return None
    return run


def live_figures(run: SyncRun) -> dict:
    """What the running worker reported last (bytes, rate, phase), else the row's figures."""
    live = cache.get(live_key(run.pk)) or {}
    return {
        "phase": live.get("phase") or run.phase,
        "bytes": live.get("bytes", run.bytes_downloaded),
        "bytes_per_second": live.get("bytes_per_second", 0),
        "counts": live.get("counts") or run.counts,
        "windows_done": live.get("windows_done", run.windows_done),
    }


def recent_runs(limit: int = 20) -> list[SyncRun]:
    return list(SyncRun.objects.all()[:limit])


def stored_counts() -> dict:
    activity_dates = Activity.objects.aggregate(
        first=Min("activity_date"), last=Max("activity_date")
    )
    return {
        "leads": Lead.objects.count(),
        "companies": Company.objects.count(),
        "activities": Activity.objects.count(),
        "activity_types": ActivityType.objects.count(),
        "first_activity": activity_dates["first"],
        "last_activity": activity_dates["last"],
    }


def cursors() -> dict[str, str]:
    return dict(SyncCursor.objects.values_list("name", "token"))


def person_and_company(email: str) -> tuple[dict, dict]:
    """The synced lead with this email and its company, as the attributes targeting and
    branching read (`lead.<field>`, `company.<field>`); empty dicts when nobody matches.

    Two indexed reads (lead_email_lower, company_external_id). Marketo allows several leads with
    one email; the most recently updated wins, as Marketo's own lookups by email do.
    """
    if not email:
        return {}, {}
    lead = (
        Lead.objects.alias(email_lower=Lower("email"))
        .filter(email_lower=email.lower())
        .order_by(F("updated_at").desc(nulls_last=True), "-id")
        .values("email", "external_company_id", "attributes")
        .first()
    )
    if lead is None:
        return {}, {}
    person = {**lead["attributes"], "email": lead["email"]}
    company = {}
    if lead["external_company_id"]:
        row = (
            Company.objects.filter(external_company_id=lead["external_company_id"])
            .values("name", "attributes")
            .first()
        )
        if row is not None:
            company = {**row["attributes"], "company": row["name"]}
    return person, company
