"""Reads for the sync's status page and `marketo_sync status`."""

from django.core.cache import cache
from django.db import connection
from django.db.models import Max, Min

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
