import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q


def new_public_key() -> str:
    # Public (it sits in the customer's page source), but unguessable so sites cannot be enumerated.
    return secrets.token_urlsafe(12)


class Site(models.Model):
    """A website the widget is installed on."""

    name = models.CharField(max_length=100)
    public_key = models.CharField(max_length=40, unique=True, default=new_public_key)
    # Exact origins ("https://www.example.com") the widget API answers to.
    allowed_origins = models.JSONField(default=list, blank=True)
    chat_enabled = models.BooleanField(default=True)
    theme = models.JSONField(default=dict, blank=True)
    # Shown as a link in the widget's footer when set.
    privacy_url = models.URLField(max_length=500, blank=True)
    # Email domains the email capture card refuses ("gmail.com"), lower case, without "@".
    blocked_email_domains = models.JSONField(default=list, blank=True)
    # The bot's avatar, kept in the database (a few kilobytes, validated on upload) so that every
    # web process can serve it without shared media storage.
    avatar = models.BinaryField(null=True, blank=True, editable=True)
    avatar_content_type = models.CharField(max_length=20, blank=True)
    # A digest of the avatar's bytes, put in its URL so browsers fetch a changed avatar at once
    # and may cache each version for good.
    avatar_version = models.CharField(max_length=16, blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="sites"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Marketing admin"
        MARKETER = "marketer", "Marketing user"
        AGENT = "agent", "Sales agent"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    site = models.ForeignKey(Site, on_delete=models.CASCADE)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MARKETER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "site"], name="one_membership_per_site")
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}) on {self.site}"


def default_trigger() -> dict:
    return {"type": "time_on_page", "seconds": 0}


class Dialogue(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        PUBLISHED = "published"
        UNPUBLISHED = "unpublished"
        ARCHIVED = "archived"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="dialogues")
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    # Higher wins when several dialogues qualify for the same page and visitor.
    priority = models.IntegerField(default=0)
    # The draft flow being edited; visitors only ever run a published DialogueVersion.
    flow = models.JSONField(default=dict)
    trigger = models.JSONField(default=default_trigger)
    # Who sees the dialogue, where and when: dialogues.targeting.Targeting as JSON.
    targeting = models.JSONField(default=dict, blank=True)
    current_version = models.ForeignKey(
        "DialogueVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["site", "-priority"],
                name="published_by_priority",
                condition=Q(status="published"),
            )
        ]

    def __str__(self) -> str:
        return self.name


class DialogueVersion(models.Model):
    """A published flow, frozen. Conversations point here, so they finish on the version they
    started with whatever happens to the dialogue afterwards."""

    dialogue = models.ForeignKey(Dialogue, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    flow = models.JSONField()
    published_at = models.DateTimeField()
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dialogue", "number"], name="one_number_per_version")
        ]
        ordering = ["dialogue", "-number"]

    def __str__(self) -> str:
        return f"{self.dialogue} v{self.number}"
