"""Whether a meeting took place: the one write path for `Meeting.outcome`.

Callers check who may mark (the meeting's agent or a site admin: meetings.listing.Viewer);
this module checks that the meeting is one whose outcome can be marked.
"""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from meetings.models import Meeting

log = logging.getLogger(__name__)


class CannotMarkOutcome(Exception):
    """The meeting's outcome cannot be marked; the message says why, for the person trying."""


@transaction.atomic
def mark_outcome(*, meeting_id, outcome: str, by, now: datetime | None = None) -> Meeting:
    """Mark meeting `meeting_id` as happened, a no-show, or back to unmarked ("") by `by`.

    Only a meeting that has ended and was not cancelled has an outcome; otherwise raises
    CannotMarkOutcome and writes nothing. The row is locked while it is read and written, so
    a cancellation or another mark committing meanwhile is seen, not overwritten unseen.
    Marking the outcome a meeting already has changes nothing (who marked it and when stay).
    Raises Meeting.DoesNotExist for an unknown id. Returns the meeting as stored.
    """
    if outcome not in Meeting.Outcome.values:
        raise CannotMarkOutcome(f"{outcome!r} is not an outcome of a meeting.")
    now = now or timezone.now()
    meeting = Meeting.objects.select_for_update().get(pk=meeting_id)
    if meeting.status == Meeting.Status.CANCELLED:
        raise CannotMarkOutcome("This meeting was cancelled: there is no outcome to mark.")
    if meeting.end > now:
        raise CannotMarkOutcome(
            "This meeting has not ended yet: mark whether it happened once it is over."
        )
    if meeting.outcome == outcome:
        return meeting
    meeting.outcome = outcome
    # Unmarking forgets who marked it: the meeting is back to "happened unless told otherwise".
    meeting.outcome_marked_at = now if outcome else None
    meeting.outcome_marked_by = by if outcome else None
    meeting.save(update_fields=["outcome", "outcome_marked_at", "outcome_marked_by", "updated_at"])
    log.info("meeting %s marked %r by user %s", meeting.pk, outcome, getattr(by, "pk", None))
    return meeting
