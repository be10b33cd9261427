"""Celery entry points. They only decide whether to run and call services.run_sync."""

import logging

from celery import shared_task
from django.conf import settings

from marketo_sync import services
from marketo_sync.models import SyncRun

logger = logging.getLogger(__name__)

# A full sync of a large instance outlives the default task limits; Marketo's own pace (bulk
# jobs refreshed once a minute) sets its length, and the run resumes if it is ever cut.
FULL_SYNC_TIME_LIMIT = 12 * 3600


@shared_task(time_limit=FULL_SYNC_TIME_LIMIT, soft_time_limit=FULL_SYNC_TIME_LIMIT - 60)
def full_sync(started_by: str = "", fresh: bool = False) -> int | None:
    """Run (or resume) the full sync. Returns the run's id, None when one was already running."""
    try:
        return services.run_sync(kind=SyncRun.Kind.FULL, started_by=started_by, fresh=fresh).pk
    except services.SyncBusy:
        logger.info("A Marketo sync is already running; this full sync request is dropped.")
        return None


@shared_task
def incremental_sync(started_by: str = "schedule") -> int | None:
    """Bring the database up to date with Marketo's changes since the last run (beat, every
    MARKETO_INCREMENTAL_MINUTES). Does nothing until Marketo is configured and a full sync
    has succeeded."""
    if not services.marketo_configured() or services.last_successful_full_run() is None:
        return None
    try:
        return services.run_sync(kind=SyncRun.Kind.INCREMENTAL, started_by=started_by).pk
    except services.SyncBusy:
        return None


@shared_task(time_limit=settings.MARKETO_OUTBOX_RUN_SECONDS + 120)
def deliver_outbox() -> dict | None:
    """Send what the outbox holds (beat, every minute, and a few seconds after chat events).
    One delivery runs at a time; a second one finds the lock taken and returns at once."""
    from marketo_sync import delivery

    report = delivery.deliver()
    return None if report is None else report.as_dict()


@shared_task
def purge_delivered() -> int:
    """Delete delivered records older than MARKETO_OUTBOX_KEEP_DAYS."""
    from marketo_sync import delivery

    return delivery.purge_delivered()
