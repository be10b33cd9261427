"""Reading a site's conversations for the conversations page and its CSV export (selectors).

A conversation's outcomes are read from its ConversationEvents, each as an EXISTS subquery
annotated on the row, so a page of 50 costs the same few queries as a page of 5:

- `completed`: the conversation's status (the visitor reached an end card);
- `email_captured`: an email captured from a visitor who had given none before
  (field_captured with data.new_email, the reports' "people captured"); a known visitor who
  types their email again does not count;
- `goal_reached`: a goal_reached event; the goals' names are read for a batch of rows at once
  (`with_goals`);
- `meeting_booked`: a meeting_booked event (the meeting may have been cancelled since);
- `nobody_free`: a routing_fallback event: nobody could take the visitor at a booking card.

Conversations older than settings.RETENTION_DAYS are deleted by the retention purge, so this
lists only those kept.
"""

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

from django.db.models import Exists, OuterRef, QuerySet

from dialogues.models import Site
from widget.models import Conversation, ConversationEvent

Kind = ConversationEvent.Kind
PAGE_SIZE = 50


class Outcome:
    """What the page's outcome filter offers (see the module's docstring for each one)."""

    ANY = ""
    COMPLETED = "completed"
    NOT_COMPLETED = "not_completed"
    EMAIL_CAPTURED = "email_captured"
    GOAL_REACHED = "goal_reached"
    MEETING_BOOKED = "meeting_booked"
    NOBODY_FREE = "nobody_free"

    choices = [
        (ANY, "Any outcome"),
        (COMPLETED, "Completed"),
        (NOT_COMPLETED, "Not completed (dropped off)"),
        (EMAIL_CAPTURED, "Email captured"),
        (GOAL_REACHED, "Goal reached"),
        (MEETING_BOOKED, "Meeting booked"),
        (NOBODY_FREE, "Nobody free to meet"),
    ]


@dataclass(frozen=True)
class ConversationFilters:
    """What the list is narrowed to. Dates are days in the viewer's zone, both included."""

    email: str = ""
    dialogue_id: int | None = None
    outcome: str = Outcome.ANY
    date_from: date | None = None
    date_to: date | None = None


def _event(kind: str, **data) -> Exists:
    events = ConversationEvent.objects.filter(conversation=OuterRef("pk"), kind=kind)
    if data:
        events = events.filter(**{f"data__{key}": value for key, value in data.items()})
    return Exists(events)


def outcome_flags() -> dict[str, Exists]:
    """The outcome flags annotated on each conversation (see the module's docstring)."""
    return {
        "email_captured": _event(Kind.FIELD_CAPTURED, new_email=True),
        "goal_reached": _event(Kind.GOAL_REACHED),
        "meeting_booked": _event(Kind.MEETING_BOOKED),
        "nobody_free": _event(Kind.ROUTING_FALLBACK),
    }


# The filter each outcome applies, on the flags or the status.
OUTCOME_FILTERS = {
    Outcome.COMPLETED: {"status": Conversation.Status.COMPLETED},
    Outcome.NOT_COMPLETED: {"status": Conversation.Status.OPEN},
    Outcome.EMAIL_CAPTURED: {"email_captured": True},
    Outcome.GOAL_REACHED: {"goal_reached": True},
    Outcome.MEETING_BOOKED: {"meeting_booked": True},
    Outcome.NOBODY_FREE: {"nobody_free": True},
}


UNSHOWN = (
    "state",
    "dialogue__flow",
    "dialogue__targeting",
    "version__flow",
    "visitor__attributes",
    "visitor__completed_dialogue_ids",
)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    # zoneinfo resolves a midnight that a DST change skips to the instant after the gap.
    return datetime.combine(day, time.min, tzinfo=zone)


def email_condition(search: str) -> dict:
    """The lookup that finds visitors by `search`: a whole address (something@something.tld)
    finds exactly that visitor (emails are stored in lower case, so the index on
    Visitor.email serves it, and ann@bigco.com does not also find joann@bigco.com); anything
    else finds every email containing it, whatever the case."""
    search = search.strip()
    local, at, domain = search.partition("@")
    if local and at and "." in domain.strip(".") and " " not in search:
        return {"visitor__email": search.lower()}
    return {"visitor__email__icontains": search}


def conversations_for(
    site: Site, *, filters: ConversationFilters, zone: ZoneInfo
) -> QuerySet[Conversation]:
    """The site's conversations matching `filters`, newest first (ties by id, so pages are
    stable), with their dialogue, version and visitor joined and the outcome_flags()
    annotated. Served by the index on (site, started_at)."""
    conversations = Conversation.objects.filter(site=site)
    if filters.date_from is not None:
        conversations = conversations.filter(
            started_at__gte=_local_midnight(filters.date_from, zone)
        )
    if filters.date_to is not None:
        next_day = filters.date_to + timedelta(days=1)
        conversations = conversations.filter(started_at__lt=_local_midnight(next_day, zone))
    if filters.dialogue_id is not None:
        conversations = conversations.filter(dialogue_id=filters.dialogue_id)
    if filters.email.strip():
        conversations = conversations.filter(**email_condition(filters.email))
    conversations = conversations.annotate(**outcome_flags())
    if filters.outcome in OUTCOME_FILTERS:
        conversations = conversations.filter(**OUTCOME_FILTERS[filters.outcome])
    return (
        conversations.select_related("dialogue", "version", "visitor")
        # The flows and states are JSON documents the list never shows: not read for 50 rows.
        .defer(*UNSHOWN)
        .order_by("-started_at", "-pk")
    )


def goals_of(conversation_ids: Iterable) -> dict:
    """The names of the goals each conversation reached, in the order reached: one query."""
    conversation_ids = list(conversation_ids)
    goals = defaultdict(list)
    if not conversation_ids:
        return goals
    events = ConversationEvent.objects.filter(
        conversation_id__in=conversation_ids, kind=Kind.GOAL_REACHED
    ).order_by("created_at", "pk")
    for conversation_id, name in events.values_list("conversation_id", "data__goal"):
        if name and name not in goals[conversation_id]:
            goals[conversation_id].append(str(name))
    return goals


def with_goals(conversations: Iterable[Conversation], *, batch: int = 500) -> Iterator:
    """The conversations, each with `goals` (list of names) set, reading the goals of `batch`
    conversations per query: for a page, and for a streamed export of any length."""
    rows = iter(conversations)
    while chunk := list(islice(rows, batch)):
        goals = goals_of(c.pk for c in chunk if c.goal_reached)
        for conversation in chunk:
            conversation.goals = goals.get(conversation.pk, [])
            yield conversation
