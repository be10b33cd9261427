"""What the Marketo sync keeps: leads, companies, activities and the activity-type catalogue,
plus the bookkeeping that makes a sync resumable (runs, export windows, paging cursors).

Marketo's ids are our primary keys, so re-reading a record can only update it, never copy it.
Fields the marketer picked live in `attributes` (JSON, keyed by Marketo's REST field name); the
columns are the ones targeting and routing look up by.
"""

from django.db import models
from django.db.models.functions import Lower

# Kept whatever the marketer picks: ids, email, timestamps, the company link, Munchkin cookies.
LEAD_SYSTEM_FIELDS = ("id", "email", "createdAt", "updatedAt", "externalCompanyId", "cookies")
COMPANY_SYSTEM_FIELDS = ("id", "externalCompanyId", "createdAt", "updatedAt")
# Marketo's standard activity types worth having for targeting and reporting: Visit Webpage,
# Fill Out Form, Click Link, Open Email, Click Email, New Lead, Change Data Value,
# Interesting Moment, Change Status in Progression.
DEFAULT_ACTIVITY_TYPE_IDS = [1, 2, 3, 10, 11, 12, 13, 46, 104]
DEFAULT_PERSON_FIELDS = ["firstName", "lastName", "title", "phone", "country", "leadScore"]
DEFAULT_COMPANY_FIELDS = ["company", "industry", "numberOfEmployees", "annualRevenue"]
MAX_SYNCED_FIELDS = 50


def _default_person_fields():
    return list(DEFAULT_PERSON_FIELDS)


def _default_company_fields():
    return list(DEFAULT_COMPANY_FIELDS)


def _default_activity_types():
    return list(DEFAULT_ACTIVITY_TYPE_IDS)


class SyncSettings(models.Model):
    """What to sync (one row, pk=1). Edited on the Marketo settings page."""

    person_fields = models.JSONField(default=_default_person_fields)
    company_fields = models.JSONField(default=_default_company_fields)
    # Field name -> Marketo dataType, from the describe endpoints, so values keep their type.
    field_types = models.JSONField(default=dict)
    activity_type_ids = models.JSONField(default=_default_activity_types)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "sync settings"

    def __str__(self):
        return "Marketo sync settings"

    @classmethod
    def load(cls) -> "SyncSettings":
        return cls.objects.get_or_create(pk=1)[0]

    def lead_fields(self) -> list[str]:
        """Every lead field requested from Marketo: the system ones, then the picked ones."""
        picked = [f for f in self.person_fields if f not in LEAD_SYSTEM_FIELDS]
        return [*LEAD_SYSTEM_FIELDS, *picked]

    def all_company_fields(self) -> list[str]:
        picked = [f for f in self.company_fields if f not in COMPANY_SYSTEM_FIELDS]
        return [*COMPANY_SYSTEM_FIELDS, *picked]


class Lead(models.Model):
    id = models.BigIntegerField(primary_key=True, help_text="Marketo lead id")
    email = models.CharField(max_length=255, blank=True, default="")
    external_company_id = models.CharField(max_length=255, blank=True, default="")
    # Munchkin cookie token(s) (`_mch-<domain>-<ms>-<n>`), how a browser is matched to a lead.
    cookies = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(null=True)
    attributes = models.JSONField(default=dict)

    class Meta:
        indexes = [
            models.Index(Lower("email"), name="lead_email_lower"),
            models.Index(fields=["external_company_id"], name="lead_company_link"),
            models.Index(fields=["cookies"], name="lead_cookies"),
        ]

    def __str__(self):
        return self.email or f"Lead {self.id}"


class Company(models.Model):
    id = models.BigIntegerField(primary_key=True, help_text="Marketo company id")
    external_company_id = models.CharField(max_length=255, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(null=True)
    attributes = models.JSONField(default=dict)
    # When we last read it from Marketo: company edits make no lead activity, so the incremental
    # sync re-reads the least recently read companies a few batches at a time.
    synced_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "companies"
        indexes = [
            models.Index(fields=["external_company_id"], name="company_external_id"),
            models.Index(fields=["synced_at"], name="company_synced_at"),
        ]

    def __str__(self):
        return self.name or self.external_company_id or f"Company {self.id}"


class ActivityType(models.Model):
    id = models.IntegerField(primary_key=True)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    primary_attribute = models.JSONField(null=True, blank=True)
    attributes = models.JSONField(default=list)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.name} ({self.id})"


class Activity(models.Model):
    # marketoGUID, not the integer id, is the key Marketo guarantees unique.
    marketo_guid = models.CharField(max_length=64, primary_key=True)
    lead_id = models.BigIntegerField()
    activity_date = models.DateTimeField()
    activity_type_id = models.IntegerField()
    campaign_id = models.BigIntegerField(null=True)
    primary_attribute_value_id = models.BigIntegerField(null=True)
    # Null when Marketo writes none (its literal `null`), as a first load's COPY stores it.
    primary_attribute_value = models.TextField(null=True, blank=True)  # noqa: DJ001
    # Keyed by the attribute's display name ("Webpage URL"), as Marketo's bulk export writes it.
    attributes = models.JSONField(default=dict)

    class Meta:
        verbose_name_plural = "activities"
        # Also a BRIN index on activity_date (PostgreSQL only, see migration 0002): activities
        # arrive roughly in date order, so it finds a date range for the retention purge at
        # almost no cost per insert, where a btree doubled the cost of loading activities.
        indexes = [
            models.Index(fields=["lead_id", "activity_date"], name="activity_lead_date"),
        ]

    def __str__(self):
        return f"Activity {self.marketo_guid}"


class SyncRun(models.Model):
    """One run of the full or incremental sync: what the status page and `status` command show."""

    class Kind(models.TextChoices):
        FULL = "full", "Full"
        INCREMENTAL = "incremental", "Incremental"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        # The worker died (or the machine restarted) while it ran; the next full run resumes it.
        INTERRUPTED = "interrupted", "Interrupted"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    phase = models.CharField(max_length=64, blank=True, default="")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # A full run that continues an earlier one, whose finished windows it does not redo.
    resumed_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)
    # Where the incremental sync starts reading changes once this full run has succeeded.
    changes_since = models.DateTimeField(null=True, blank=True)
    # The database held no leads or activities when this full sync began: windows are written
    # with plain inserts (no row can exist yet) and lookup indexes are built at the end.
    first_load = models.BooleanField(default=False)
    counts = models.JSONField(default=dict)
    bytes_downloaded = models.BigIntegerField(default=0)
    windows_total = models.PositiveIntegerField(default=0)
    windows_done = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    started_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["kind", "status"], name="syncrun_kind_status")]

    def __str__(self):
        return f"{self.get_kind_display()} sync #{self.pk} ({self.status})"

    @property
    def duration(self):
        if self.finished_at:
            return self.finished_at - self.started_at
        return None


class ExportWindow(models.Model):
    """One bulk export job of a full sync: an entity over a creation-date window.

    Its status only moves forward and is saved as each step completes, so a restarted run picks
    up the job where it was (re-polls it, re-downloads it) and never redoes an ingested window.
    """

    class Entity(models.TextChoices):
        LEADS = "leads", "Leads"
        ACTIVITIES = "activities", "Activities"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CREATED = "created", "Created"
        QUEUED = "queued", "Queued"
        INGESTED = "ingested", "Ingested"

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="windows")
    entity = models.CharField(max_length=16, choices=Entity.choices)
    # Both ends inclusive, as Marketo's createdAt filter is.
    start_at = models.DateTimeField()
    end_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    export_id = models.CharField(max_length=64, blank=True, default="")
    job_created_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    records = models.BigIntegerField(default=0)
    rows = models.BigIntegerField(default=0, help_text="Rows written when ingested")
    file_size = models.BigIntegerField(default=0)
    ingested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["entity", "start_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "entity", "start_at"], name="one_window_per_start"
            )
        ]

    def __str__(self):
        return f"{self.entity} {self.start_at:%Y-%m-%d}..{self.end_at:%Y-%m-%d} ({self.status})"


class SyncCursor(models.Model):
    """Where an incremental stream stopped: Marketo's last `nextPageToken` for it."""

    name = models.CharField(max_length=128, primary_key=True)
    token = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.name


# --- Write-back: what DynChat sends to Marketo (marketo_sync/writeback.py, delivery.py) -------

# Chat attribute (a capture card's lead field, "custom:" dropped) -> Marketo REST field name.
# Email is the lookup field and always sent; an attribute mapped to "" is not sent.
DEFAULT_FIELD_MAPPING = {
    "firstName": "firstName",
    "lastName": "lastName",
    "phone": "phone",
    "company": "company",
    "freeText": "",
}


def _default_field_mapping():
    return dict(DEFAULT_FIELD_MAPPING)


class LeadFieldMapping(models.Model):
    """Per site: which captured chat fields update which fields of the lead in Marketo."""

    site = models.OneToOneField(
        "dialogues.Site", on_delete=models.CASCADE, related_name="marketo_field_mapping"
    )
    fields = models.JSONField(default=_default_field_mapping)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"Marketo field mapping of {self.site}"


class MarketoProgram(models.Model):
    """A program read from Marketo's asset API, with the statuses of its channel, for pickers."""

    id = models.BigIntegerField(primary_key=True, help_text="Marketo program id")
    name = models.CharField(max_length=255)
    program_type = models.CharField(max_length=64, blank=True, default="")
    channel = models.CharField(max_length=255, blank=True, default="")
    workspace = models.CharField(max_length=255, blank=True, default="")
    # Progression status names of the program's channel, in step order.
    statuses = models.JSONField(default=list)
    synced_at = models.DateTimeField()

    class Meta:
        ordering = [Lower("name"), "id"]

    def __str__(self):
        return self.name


class MarketoCampaign(models.Model):
    """A smart campaign that can be requested through the API (a "Campaign is Requested"
    trigger with the Web Service API source), read from Marketo for pickers."""

    id = models.BigIntegerField(primary_key=True, help_text="Marketo campaign id")
    name = models.CharField(max_length=255)
    program_id = models.BigIntegerField(null=True, blank=True)
    program_name = models.CharField(max_length=255, blank=True, default="")
    workspace = models.CharField(max_length=255, blank=True, default="")
    active = models.BooleanField(default=True)
    synced_at = models.DateTimeField()

    class Meta:
        ordering = [Lower("name"), "id"]

    def __str__(self):
        return self.name


class MarketoAction(models.Model):
    """Per dialogue: on engagement, a goal or a booked meeting, change the lead's status in a
    program and/or request a smart campaign."""

    class On(models.TextChoices):
        ENGAGED = "engaged", "Visitor engages"
        GOAL = "goal", "Visitor reaches a goal"
        MEETING = "meeting", "Visitor books a meeting"

    dialogue = models.ForeignKey(
        "dialogues.Dialogue", on_delete=models.CASCADE, related_name="marketo_actions"
    )
    on = models.CharField(max_length=16, choices=On.choices)
    # For `goal`: the goal card's name it fires on, or "" for any goal.
    goal = models.CharField(max_length=200, blank=True, default="")
    program_id = models.BigIntegerField(null=True, blank=True)
    # Names as read from Marketo when picked, shown even if the program is gone since.
    program_name = models.CharField(max_length=255, blank=True, default="")
    program_status = models.CharField(max_length=255, blank=True, default="")
    campaign_id = models.BigIntegerField(null=True, blank=True)
    campaign_name = models.CharField(max_length=255, blank=True, default="")
    # [{"name": "{{my.Goal}}", "value": "<one of writeback.TOKEN_VALUES>"}]
    tokens = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["dialogue", "on", "goal"]
        constraints = [
            models.UniqueConstraint(fields=["dialogue", "on", "goal"], name="one_action_per_event"),
            models.CheckConstraint(
                condition=models.Q(program_id__isnull=False) | models.Q(campaign_id__isnull=False),
                name="action_does_something",
            ),
            models.CheckConstraint(
                condition=models.Q(program_id__isnull=True) | ~models.Q(program_status=""),
                name="program_needs_status",
            ),
        ]

    def __str__(self):
        return f"{self.dialogue}: {self.get_on_display()}"


class CustomActivityType(models.Model):
    """One of DynChat's custom activity types as created in Marketo (writeback.ACTIVITY_TYPES)."""

    api_name = models.CharField(max_length=255, primary_key=True)
    marketo_id = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=32, blank=True, default="")
    # Secondary attribute apiNames the approved type has.
    attributes = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.api_name} ({self.marketo_id})"


class KnownLead(models.Model):
    """A lead's Marketo id as DynChat learnt it (an upsert's answer), by outbox lead key."""

    lead_key = models.CharField(max_length=255, primary_key=True)
    lead_id = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.lead_key} = lead {self.lead_id}"


class OutboxRecord(models.Model):
    """One thing to send to Marketo, written in the transaction of the chat event that caused it.

    Records of one lead (`lead_key`: the email in lower case, or "id:<lead id>") are delivered in
    (rank, id) order: the lead's upserts first, then the rest as they happened.
    A visitor's records wait (`waiting`, no lead key) until the visitor gives an email."""

    class Kind(models.TextChoices):
        LEAD = "lead", "Lead upsert"
        COOKIE = "cookie", "Cookie association"
        ACTIVITY = "activity", "Activity"
        PROGRAM_STATUS = "program_status", "Program status"
        CAMPAIGN = "campaign", "Campaign request"

    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting for the visitor's email"
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        PARKED = "parked", "Parked"

    # The lead's upsert goes before anything else of the lead (which needs its Marketo id).
    RANKS = {Kind.LEAD: 0}

    id = models.BigAutoField(primary_key=True)
    site = models.ForeignKey("dialogues.Site", on_delete=models.CASCADE, related_name="+")
    visitor = models.ForeignKey(
        "widget.Visitor", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    conversation = models.ForeignKey(
        "widget.Conversation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    lead_key = models.CharField(max_length=255, blank=True, default="")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    rank = models.PositiveSmallIntegerField(default=1)
    # Records with the same group go in the same call (writeback.call_group).
    call_group = models.CharField(max_length=64, default="")
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # Set while a worker sends the record; a worker that dies leaves it to expire.
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    # What Marketo answered: the lead id, the activity's marketoGUID, the campaign id.
    marketo_id = models.CharField(max_length=64, blank=True, default="")
    # The last failure (pending records) or Marketo's reason (parked records).
    error_code = models.CharField(max_length=32, blank=True, default="")
    error_message = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            # The delivery's window: due records in (rank, id) order.
            models.Index(
                fields=["rank", "id"],
                name="outbox_pending",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=["lead_key", "rank", "id"],
                name="outbox_lead_order",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=["visitor"], name="outbox_waiting", condition=models.Q(status="waiting")
            ),
            # Records tried before and still pending: what may hold a lead's later records back.
            models.Index(
                fields=["lead_key"],
                name="outbox_retried",
                condition=models.Q(status="pending", attempts__gt=0),
            ),
            models.Index(fields=["site", "status", "id"], name="outbox_site_status"),
            models.Index(
                fields=["delivered_at"],
                name="outbox_delivered_at",
                condition=models.Q(status="delivered"),
            ),
            # Deleting a conversation (the retention purge, an erasure) makes PostgreSQL look
            # for records still naming it, once per conversation: a scan of the whole outbox
            # without this index.
            models.Index(
                fields=["conversation"],
                name="outbox_conversation",
                condition=models.Q(conversation__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"


class DeliveryState(models.Model):
    """How the outbox's delivery is going (one row, pk=1), for the delivery status page."""

    last_run_at = models.DateTimeField(null=True, blank=True)
    last_delivered_at = models.DateTimeField(null=True, blank=True)
    # What stops delivery as a whole (Marketo unreachable, no permission, daily quota), if
    # anything; records wait meanwhile, none is parked for it.
    problem_code = models.CharField(max_length=32, blank=True, default="")
    problem_message = models.TextField(blank=True, default="")
    problem_since = models.DateTimeField(null=True, blank=True)
    # The daily quota is spent: nothing is sent before this time.
    resume_at = models.DateTimeField(null=True, blank=True)
    calls = models.BigIntegerField(default=0, help_text="API calls made by deliveries")

    def __str__(self):
        return "Outbox delivery state"

    @classmethod
    def load(cls) -> "DeliveryState":
        return cls.objects.get_or_create(pk=1)[0]
