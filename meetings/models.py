"""Meetings visitors booked with agents."""

import uuid

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, RangeBoundary, RangeOperators
from django.db import models
from django.db.models import F, Func, Q

from dialogues.models import Dialogue, Site


class TsTzRange(Func):
    function = "TSTZRANGE"
    output_field = DateTimeRangeField()


class PostgresExclusionConstraint(ExclusionConstraint):
    """An exclusion constraint on PostgreSQL, nothing elsewhere.

    `make run` uses SQLite, which has no exclusion constraints; there the booking service's own
    overlap check inside its transaction is the guard (SQLite runs one writer at a time).
    """

    def create_sql(self, model, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return None
        return super().create_sql(model, schema_editor)

    def remove_sql(self, model, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return None
        return super().remove_sql(model, schema_editor)

    def constraint_sql(self, model, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return None
        return super().constraint_sql(model, schema_editor)

    def validate(self, *args, **kwargs):
        # Enforced by the database; model validation would need PostgreSQL's range operators.
        return None


class Meeting(models.Model):
    class Status(models.TextChoices):
        BOOKED = "booked", "Booked"
        CANCELLED = "cancelled", "Cancelled"

    class CalendarStatus(models.TextChoices):
        PENDING = "pending", "Being added to the calendar"
        CREATED = "created", "On the agent's calendar"
        BUILTIN = "builtin", "In the DynChat calendar"
        FAILED = "failed", "Could not be added to the calendar"
        REMOVED = "removed", "Removed from the agent's calendar"
        REMOVE_FAILED = "remove_failed", "Could not be removed from the calendar"

    class Outcome(models.TextChoices):
        """Whether a past meeting took place, as its agent or an admin marked it. Unmarked
        meetings count as having happened once the grace period after their end is over."""

        UNMARKED = "", "Not marked"
        HAPPENED = "happened", "Happened"
        NO_SHOW = "no_show", "No-show"

    class RoutedBy(models.TextChoices):
        ACCOUNT = "account", "Account owner"
        RULE = "rule", "Custom rule"
        ROUND_ROBIN = "round_robin", "Round robin"

    # Also the Google event id (hex is base32hex) and the Graph transactionId: a retried
    # insert finds the event made by the first attempt instead of making a second one.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="meetings")
    # Kept when the agent's account goes (the meeting happened with them); agent_email says who.
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="meetings",
    )
    agent_name = models.CharField(max_length=300)
    agent_email = models.CharField(max_length=254)
    # Conversations are purged after the retention period; meetings are kept.
    conversation = models.ForeignKey(
        "widget.Conversation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="meetings",
    )
    dialogue = models.ForeignKey(
        Dialogue, null=True, blank=True, on_delete=models.SET_NULL, related_name="meetings"
    )
    lead_email = models.CharField(max_length=254)
    lead_first_name = models.CharField(max_length=255, blank=True)
    lead_last_name = models.CharField(max_length=255, blank=True)
    lead_company = models.CharField(max_length=255, blank=True)
    # The zone the visitor booked in, for the times written to them.
    visitor_time_zone = models.CharField(max_length=64)
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.BOOKED)
    calendar_status = models.CharField(
        max_length=20, choices=CalendarStatus.choices, default=CalendarStatus.PENDING
    )
    calendar_error = models.TextField(blank=True)
    calendar_attempts = models.PositiveSmallIntegerField(default=0)
    provider = models.CharField(max_length=20, blank=True)
    provider_event_id = models.CharField(max_length=1024, blank=True)
    # The UID the invitation's .ics carries: the provider event's iCalUID when there is one,
    # so the visitor's calendar merges the two instead of showing the meeting twice.
    ical_uid = models.CharField(max_length=1024, blank=True)
    join_url = models.URLField(max_length=2000, blank=True)
    invitation_sent_at = models.DateTimeField(null=True, blank=True)
    # The agent's "new meeting" email, sent at most once.
    agent_notified_at = models.DateTimeField(null=True, blank=True)

    # How routing chose the agent: the step, the rule's name when a custom rule did, and the
    # queue's assignment counter (1, 2, 3 ... per queue, in commit order) for round robin.
    routed_by = models.CharField(max_length=20, choices=RoutedBy.choices, blank=True)
    routing_rule_name = models.CharField(max_length=100, blank=True)
    assignment = models.PositiveBigIntegerField(null=True, blank=True)

    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)
    outcome_marked_at = models.DateTimeField(null=True, blank=True)
    outcome_marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Who cancelled: empty with cancelled_at set means the visitor, from their invitation.
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    cancel_reason = models.CharField(max_length=500, blank=True)
    # The cancellation emails (the agent's, the visitor's), each sent at most once.
    agent_cancellation_sent_at = models.DateTimeField(null=True, blank=True)
    visitor_cancellation_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gt=F("start")), name="meeting_ends_after_start"
            ),
            # No agent can have two booked meetings that overlap, whatever races the code loses.
            PostgresExclusionConstraint(
                name="no_overlapping_meetings_per_agent",
                expressions=[
                    ("agent", RangeOperators.EQUAL),
                    (TsTzRange("start", "end", RangeBoundary()), RangeOperators.OVERLAPS),
                ],
                condition=Q(status="booked"),
            ),
        ]
        indexes = [
            models.Index(fields=["agent", "start"], name="meeting_agent_start"),
            models.Index(fields=["site", "-start"], name="meeting_site_start"),
        ]
        ordering = ["-start"]

    def __str__(self) -> str:
        return f"meeting with {self.lead_email} at {self.start:%Y-%m-%d %H:%M} UTC"


DEFAULT_INVITATION_SUBJECT = "Your meeting with {{agent.name}} on {{meeting.date}}"
DEFAULT_INVITATION_BODY = """Hi {{person.firstName | "there"}},

Thanks for booking time with {{agent.name}}. You're confirmed for {{meeting.time}}.

{{meeting.link | "We'll send joining details before the meeting."}}

The invitation is attached; add it to your calendar so you don't miss it.

Can't make it? Cancel the meeting here: {{meeting.cancel_link}}

See you then!
"""


class InvitationTemplate(models.Model):
    """The email a visitor gets when they book: the site's marketers write it."""

    site = models.OneToOneField(Site, on_delete=models.CASCADE, related_name="invitation_template")
    subject = models.CharField(max_length=200, default=DEFAULT_INVITATION_SUBJECT)
    body = models.TextField(max_length=5000, default=DEFAULT_INVITATION_BODY)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"invitation template of {self.site}"
