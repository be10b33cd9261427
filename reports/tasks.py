"""Celery entry points for the reports: the rollup (beat, every minute, and after chat steps)
and the nightly retention purge."""

from celery import shared_task


@shared_task
def roll_up() -> int:
    """Count new chat events into the daily report tables. Returns how many."""
    from reports import rollup

    return rollup.roll_up()


@shared_task(time_limit=3 * 3600, soft_time_limit=3 * 3600 - 60)
def purge_expired() -> dict:
    """Delete raw data older than RETENTION_DAYS (reports.retention)."""
    from reports import retention

    return retention.purge_expired().as_dict()
