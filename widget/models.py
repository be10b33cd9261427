import uuid

from django.db import models

from dialogues.models import Dialogue, DialogueVersion, Site


class Visitor(models.Model):
    """A browser on a site. The widget holds a random key; we store only its SHA-256."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="visitors")
    key_hash = models.CharField(max_length=64, unique=True)
    # Lead attributes the visitor told us (chat captures, DynChat.identify), by lead field name.
    attributes = models.JSONField(default=dict, blank=True)
    email = models.CharField(max_length=254, blank=True, db_index=True)
    # Marketo's Munchkin cookie (`_mkto_trk`: "id:<munchkin id>&token:_mch-<domain>-<ms>-<n>")
    # as the widget last sent it, and the Marketo lead it resolved to (by cookie or email).
    marketo_cookie = models.CharField(max_length=255, blank=True, default="")
    marketo_lead_id = models.BigIntegerField(null=True, blank=True)
    # Dialogues this visitor finished, never offered to them again. Kept on the row (written in
    # the transaction that completes the conversation) so a page view reads one row, not a join.
    completed_dialogue_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The retention purge finds anonymous visitors by age (created_at never changes, so
        # the index costs nothing when last_seen_at is touched).
        indexes = [models.Index(fields=["created_at"], name="visitor_created")]

    def __str__(self) -> str:
        return self.email or f"anonymous visitor {self.pk}"


class Conversation(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        COMPLETED = "completed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="conversations")
    visitor = models.ForeignKey(Visitor, on_delete=models.CASCADE, related_name="conversations")
    dialogue = models.ForeignKey(Dialogue, on_delete=models.CASCADE, related_name="conversations")
    version = models.ForeignKey(DialogueVersion, on_delete=models.PROTECT, related_name="+")
    token_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    # The flow engine's State.to_dict().
    state = models.JSONField(default=dict)
    # How many transcript entries exist; the next one gets this number (we hold the row lock).
    transcript_length = models.PositiveIntegerField(default=0)
    page_url = models.CharField(max_length=2000)
    # Whether the visitor was known (an email, or a Marketo lead) when the conversation
    # started: the reports' "known or anonymous visitor" filter.
    visitor_known = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    engaged_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["visitor", "dialogue", "status"], name="visitor_dialogue_status"),
            # The conversations page (newest first) and the retention purge (oldest first).
            models.Index(fields=["site", "started_at"], name="conversation_site_started"),
            models.Index(fields=["started_at"], name="conversation_started"),
        ]

    def __str__(self) -> str:
        return f"conversation {self.pk}"


class TranscriptEntry(models.Model):
    class Author(models.TextChoices):
        BOT = "bot"
        VISITOR = "visitor"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="entries")
    seq = models.PositiveIntegerField()
    author = models.CharField(max_length=10, choices=Author.choices)
    card_id = models.CharField(max_length=40)
    text = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="one_entry_per_seq")
        ]
        ordering = ["conversation", "seq"]

    def __str__(self) -> str:
        return f"{self.author}: {self.text[:40]}"


class ConversationEvent(models.Model):
    """Engagement facts for reporting, stamped with the dialogue version, page and time."""

    class Kind(models.TextChoices):
        TRIGGERED = "triggered"
        ENGAGED = "engaged"
        COMPLETED = "completed"
        GOAL_REACHED = "goal_reached"
        FIELD_CAPTURED = "field_captured"
        MEETING_BOOKED = "meeting_booked"
        # Nobody could take the visitor at a booking card: they were shown the site's
        # routing fallback message instead of times.
        ROUTING_FALLBACK = "routing_fallback"
        # One step of the conversation, for the per-card funnel: `card_id` is the card the
        # visitor answered ("" when the conversation started) and data["shown"] the cards
        # shown to them in this step, in order.
        STEP = "step"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    dialogue = models.ForeignKey(Dialogue, on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(DialogueVersion, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    card_id = models.CharField(max_length=40, blank=True)
    data = models.JSONField(default=dict, blank=True)
    page_url = models.CharField(max_length=2000)
    created_at = models.DateTimeField()
    # Counted into the daily report tables (reports.rollup) yet. Events are counted once, in
    # the transaction that sets this; the retention purge deletes only counted events.
    rolled_up = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(
                fields=["dialogue", "kind", "created_at"], name="event_dialogue_kind_time"
            ),
            # What the rollup has still to count: a handful of rows at any moment.
            models.Index(
                fields=["id"], name="event_not_rolled_up", condition=models.Q(rolled_up=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} in conversation {self.conversation_id}"
