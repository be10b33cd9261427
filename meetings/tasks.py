import random

from celery import shared_task
from django.conf import settings

from calendars.providers.base import TransientCalendarError
from meetings import calendar_events


def retry_delay(exc: TransientCalendarError, *, retries: int) -> float | None:
    """Seconds to wait before try number `retries + 2`, or None to give up: the provider's
    Retry-After when it sent one, else 30 s, 1 min, 2 min, ... capped at 10 minutes, with
    jitter so that many meetings failing together do not retry together."""
    if retries >= settings.CALENDAR_EVENT_MAX_RETRIES:
        return None
    if exc.retry_after is not None:
        return exc.retry_after
    return min(600, 30 * 2**retries) * random.uniform(0.8, 1.2)  # noqa: S311 - not a secret


@shared_task(bind=True, acks_late=True, max_retries=None)
def add_meeting_to_calendar(self, meeting_id: str) -> None:
    """Idempotent (see meetings.calendar_events), so acks_late is safe: a worker lost mid-task
    means the task runs again and finds what the first run did."""
    try:
        calendar_events.add_to_calendar(meeting_id)
    except TransientCalendarError as exc:
        delay = retry_delay(exc, retries=self.request.retries)
        if delay is None:
            tries = self.request.retries + 1
            calendar_events.fail(meeting_id, f"gave up after {tries} tries: {exc}")
            calendar_events.add_to_calendar(meeting_id)  # still invites the visitor
            return
        raise self.retry(countdown=delay, exc=exc) from exc
