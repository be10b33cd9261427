"""Who gets a visitor's meeting: the site's queue of agents, account owners, custom rules, and
the round-robin pointers.

Routing is checked in this order (routing.routes): an account owner whose company or domain
matches the visitor; then the site's active custom rules by priority, each a set of agents
taking turns; then the whole queue, taking turns. Each round robin has one Pointer row, locked
(SELECT ... FOR UPDATE) by the booking transaction that picks the agent and stores the meeting.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from dialogues.models import Site


class QueueMember(models.Model):
    """An agent in a site's routing queue. Agents join when they connect a calendar; removing
    one deletes the row (connecting again, or "Add to queue", brings them back at the end)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="queue_members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="queue_memberships"
    )
    position = models.PositiveIntegerField()
    # A paused agent keeps their place but is neither offered nor assigned.
    paused = models.BooleanField(default=False)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "user"], name="one_queue_place_per_agent"),
        ]
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return f"{self.user} at {self.position} in the queue of {self.site}"


class RoutingRule(models.Model):
    """A custom rule: visitors matching its conditions go to its agents, in turns."""

    class Match(models.TextChoices):
        ALL = "all", "all"
        ANY = "any", "any"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="routing_rules")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    # Lower numbers are checked first; 1, 2, 3 ... as shown on the routing page.
    priority = models.PositiveIntegerField()
    active = models.BooleanField(default=True)
    match = models.CharField(max_length=3, choices=Match.choices, default=Match.ALL)
    # [{"subject": "lead.country", "operator": "in_list", "value": ["DE", "FR"]}, ...]:
    # dialogues.targeting.AudienceCondition, with lead. and company. subjects.
    conditions = models.JSONField(default=list)
    agents = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="routing_rules")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="routing_rule_names_unique"),
        ]
        ordering = ["priority", "pk"]

    def __str__(self) -> str:
        return self.name


class Pointer(models.Model):
    """Where a round robin stands: the agent who got its last meeting. One row per queue: the
    site's whole queue (rule empty) or one custom rule's agents."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    rule = models.OneToOneField(
        RoutingRule, null=True, blank=True, on_delete=models.CASCADE, related_name="pointer"
    )
    last_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The last agent's queue position when they got the meeting: where to go on from if they
    # have left the queue since.
    last_position = models.PositiveIntegerField(null=True, blank=True)
    # Meetings this round robin has assigned; each meeting records its number.
    assignments = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site"], condition=Q(rule__isnull=True), name="one_site_pointer"
            ),
        ]

    def __str__(self) -> str:
        return f"round-robin pointer of {self.rule or self.site}"


class AccountOwner(models.Model):
    """Account routing: visitors from this company (by name) or domain go to its owner."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="account_owners")
    company_name = models.CharField(max_length=255, blank=True)
    # company_name case-folded with spaces collapsed: what visitors' company names are matched on.
    company_key = models.CharField(max_length=255, blank=True, editable=False)
    domain = models.CharField(max_length=253, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owned_accounts"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(company_key="") | ~Q(domain=""),
                name="account_has_name_or_domain",
            ),
            models.UniqueConstraint(
                fields=["site", "domain"],
                condition=~Q(domain=""),
                name="one_owner_per_domain",
            ),
            models.UniqueConstraint(
                fields=["site", "company_key"],
                condition=~Q(company_key=""),
                name="one_owner_per_company",
            ),
        ]
        ordering = ["company_key", "domain"]

    def __str__(self) -> str:
        return f"{self.company_name or self.domain} → {self.owner}"

    def save(self, *args, **kwargs):
        self.company_key = company_key(self.company_name)
        super().save(*args, **kwargs)


class RoutingSettings(models.Model):
    """A site's routing settings."""

    DEFAULT_FALLBACK = (
        "Sorry, nobody is available to meet right now. We'll be in touch by email soon."
    )

    site = models.OneToOneField(Site, on_delete=models.CASCADE, related_name="routing_settings")
    # Shown at a booking card instead of times when nobody can take the visitor.
    fallback_message = models.CharField(max_length=500, default=DEFAULT_FALLBACK)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"routing settings of {self.site}"


def company_key(name: str) -> str:
    """How company names are compared: case-folded, inner spaces collapsed."""
    return " ".join(str(name or "").split()).casefold()
