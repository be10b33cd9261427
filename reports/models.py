"""Daily report tables, kept after the raw events they count are purged.

reports.rollup adds each ConversationEvent into them once. A day is a calendar day in
settings.REPORTS_TIME_ZONE; `known` says whether the visitor was known (an email or a Marketo
lead) when the conversation started. Reports sum these rows; they never scan raw events.
"""

from django.conf import settings
from django.db import models

from dialogues.models import Dialogue, DialogueVersion, Site


class DialogueDay(models.Model):
    """One published version's headline figures for a day."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    dialogue = models.ForeignKey(Dialogue, on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(DialogueVersion, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    known = models.BooleanField()
    triggered = models.PositiveIntegerField(default=0)
    engaged = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    # Conversations in which a visitor with no email yet gave one (people captured).
    captured = models.PositiveIntegerField(default=0)
    meetings = models.PositiveIntegerField(default=0)
    goals = models.PositiveIntegerField(default=0)
    # Visitors shown the routing fallback message at a booking card (nobody free).
    fallbacks = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "day", "known"], name="dialogue_day_unique")
        ]
        indexes = [
            models.Index(fields=["site", "day"], name="dialogue_day_site"),
            models.Index(fields=["dialogue", "day"], name="dialogue_day_dialogue"),
        ]

    def __str__(self) -> str:
        return f"dialogue {self.dialogue_id} v{self.version_id} on {self.day}"


class CardDay(models.Model):
    """How many times a version's card was shown (`reached`) and answered on a day: the
    funnel. Goal cards count as reached when a conversation passes them."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    dialogue = models.ForeignKey(Dialogue, on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(DialogueVersion, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    known = models.BooleanField()
    card_id = models.CharField(max_length=40)
    reached = models.PositiveIntegerField(default=0)
    answered = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["version", "day", "known", "card_id"], name="card_day_unique"
            )
        ]
        indexes = [models.Index(fields=["dialogue", "day"], name="card_day_dialogue")]

    def __str__(self) -> str:
        return f"card {self.card_id} of v{self.version_id} on {self.day}"


class PageDay(models.Model):
    """A dialogue's figures on one page (host and path; no query string, which can carry
    personal data) for a day."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    dialogue = models.ForeignKey(Dialogue, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    known = models.BooleanField()
    page = models.CharField(max_length=500)
    triggered = models.PositiveIntegerField(default=0)
    engaged = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    captured = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dialogue", "day", "known", "page"], name="page_day_unique"
            )
        ]
        indexes = [models.Index(fields=["site", "day"], name="page_day_site")]

    def __str__(self) -> str:
        return f"{self.page} on {self.day}"


class Erasure(models.Model):
    """A person erased at their request. The email itself is not kept (that would be a trace
    of them): only a keyed digest, so "was this address erased?" can still be answered."""

    site = models.ForeignKey(
        Site, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    email_digest = models.CharField(max_length=64, db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who asked, as text: the user's name, or "manage.py erase_person" for the command.
    requested_by_name = models.CharField(max_length=300)
    # The privacy request's reference (a ticket number), as the marketer typed it.
    reference = models.CharField(max_length=200, blank=True)
    # What was deleted, by kind: {"visitors": 1, "conversations": 3, ...}.
    counts = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"erasure {self.pk} on {self.created_at:%Y-%m-%d}"
