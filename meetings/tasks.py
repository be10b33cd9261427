import random

from celery import shared_task
from django.conf import settings

from calendars.providers.base import TransientCalendarError
from meetings import calendar_events


def _backoff(retries: int) -> float:
    """30 s, 1 min, 2 min, ... capped at 10 minutes, with jitter so retries spread out."""
    return min(600, 30 * 2**retries) * random.uniform(0.8, 1.2)  # noqa: S311 - not a secret


@shared_task(bind=True, acks_late=True, max_retries=None)
def add_meeting_to_calendar(self, meeting_id: str) -> None:
    """Idempotent (see meetings.calendar_events), so acks_late is safe: a worker lost mid-task
    means the task runs again and finds what the first run did."""
    try:
        calendar_events.add_to_calendar(meeting_id)
    except TransientCalendarError as exc:
        if self.request.retries >= settings.CALENDAR_EVENT_MAX_RETRIES:
            calendar_events.fail(
                meeting_id, f"gave up after {self.request.retries + 1} tries: {exc}"
            )
            calendar_events.add_to_calendar(meeting_id)  # sends the visitor's invitation
            return
        countdown = (
            exc.retry_after if exc.retry_after is not None else _backoff(self.request.retries)
        )
        raise self.retry(countdown=countdown, exc=exc) from exc
