"""Reads for the routing pages: the queue with each agent's calendar state, the site's agents,
the account list, the rules and the fallback message."""

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Lower

from calendars.models import CREDENTIAL_FIELDS, Availability, CalendarConnection
from dialogues.models import Membership, Site
from routing.accounts_csv import AccountRow, RowError
from routing.models import AccountOwner, QueueMember, RoutingRule, RoutingSettings, company_key

User = get_user_model()


def site_agents(site: Site) -> QuerySet:
    """The site's sales agents, by name."""
    agents = User.objects.filter(membership__site=site, membership__role=Membership.Role.AGENT)
    return agents.order_by("first_name", "last_name", "email", "pk")


def _with_calendar(users: QuerySet) -> QuerySet:
    # The calendar's status and provider, not its tokens (decrypting them is wasted work).
    return users.select_related("calendar_connection").defer(
        *(f"calendar_connection__{name}" for name in CREDENTIAL_FIELDS)
    )


def _calendar(user) -> CalendarConnection | None:
    # A missing reverse one-to-one raises a DoesNotExist that is also an AttributeError.
    return getattr(user, "calendar_connection", None)


def queue(site: Site) -> list[QueueMember]:
    """The site's queue in order (one query). Each place carries `calendar` (the agent's
    connection or None), `has_hours` (whether they set their hours) and `skipped_because`: why
    routing passes them by whatever the order says, or "" when it does not."""
    has_hours = Availability.objects.filter(user=OuterRef("user"))
    members = list(
        QueueMember.objects.filter(site=site)
        .select_related("user__calendar_connection")
        # The calendar's status and provider, not its tokens (decrypting them is wasted work).
        .defer(*(f"user__calendar_connection__{name}" for name in CREDENTIAL_FIELDS))
        .annotate(has_hours=Exists(has_hours))
        .order_by("position", "pk")
    )
    for member in members:
        member.calendar = _calendar(member.user)
        member.skipped_because = _skipped_because(member)
    return members


def _skipped_because(member: QueueMember) -> str:
    calendar = member.calendar
    if calendar is None:
        return "no calendar connected"
    if not calendar.bookable:
        return "their calendar needs reconnecting"
    if not member.has_hours:
        return "no hours set"
    if not member.user.is_active:
        return "their account is deactivated"
    if member.paused:
        return "paused"
    return ""


def agents_outside_queue(site: Site) -> list:
    """The site's agents without a place in its queue, each with `calendar` (or None) and
    `can_join` (a connected calendar: "Add to queue" is offered)."""
    placed = QueueMember.objects.filter(site=site, user=OuterRef("pk"))
    agents = list(_with_calendar(site_agents(site).exclude(Exists(placed))))
    for agent in agents:
        agent.calendar = _calendar(agent)
        agent.can_join = agent.calendar is not None and agent.calendar.bookable
    return agents


def account_owners(site: Site, *, query: str = "") -> QuerySet:
    """The site's account entries by company name then domain, searched by company, domain or
    the owner's name or email."""
    accounts = AccountOwner.objects.filter(site=site).select_related("owner")
    if query:
        accounts = accounts.filter(
            Q(company_name__icontains=query)
            | Q(domain__icontains=query)
            | Q(owner__email__icontains=query)
            | Q(owner__first_name__icontains=query)
            | Q(owner__last_name__icontains=query)
        )
    return accounts.order_by("company_key", "domain", "pk")


def account_rows(site: Site) -> list[tuple[str, str, str]]:
    """(company, domain, owner_email) of every entry, for the CSV download."""
    return list(
        AccountOwner.objects.filter(site=site)
        .order_by("company_key", "domain", "pk")
        .values_list("company_name", "domain", "owner__email")
    )


def listed_account(*, site: Site, company_name: str, domain: str) -> tuple[str, str] | None:
    """Why an entry with this company name or domain cannot be added, as (the field at fault:
    "domain" or "company_name", the message), or None when it can."""
    key = company_key(company_name)
    conditions = Q()
    if key:
        conditions |= Q(company_key=key)
    if domain:
        conditions |= Q(domain=domain)
    if not conditions:
        return None
    listed = AccountOwner.objects.filter(site=site).filter(conditions).select_related("owner")
    for account in listed:
        owner = account.owner.get_full_name() or account.owner.email
        if domain and account.domain == domain:
            return "domain", f"{domain} is listed already (owner: {owner})."
        return "company_name", f"“{account.company_name}” is listed already (owner: {owner})."
    return None


def resolve_owners(*, site: Site, rows: list[AccountRow]) -> tuple[dict, list[RowError]]:
    """The owners of uploaded rows by email (lower-cased) among the site's agents, and an error
    for each row whose owner is nobody or not a sales agent of the site. Two queries."""
    emails = {row.owner_email for row in rows}
    agents = set(site_agents(site).values_list("pk", flat=True))
    owners, others = {}, set()
    users = (
        User.objects.annotate(email_lower=Lower("email"))
        .filter(email_lower__in=emails)
        .order_by("pk")
    )
    for user in users:
        if user.pk in agents:
            owners.setdefault(user.email_lower, user)
        else:
            others.add(user.email_lower)
    errors = []
    for row in rows:
        if row.owner_email in owners:
            continue
        if row.owner_email in others:
            message = f"{row.owner_email} is not a sales agent of {site.name}."
        else:
            message = f"Nobody has the email {row.owner_email}."
        errors.append(RowError(row.row, "owner_email", message))
    return owners, errors


def rules(site: Site) -> list[RoutingRule]:
    """The site's custom rules by priority, with their agents (two queries)."""
    return list(
        RoutingRule.objects.filter(site=site).prefetch_related("agents").order_by("priority", "pk")
    )


def fallback_message(site: Site) -> str:
    """What a booking card says when nobody can take the visitor."""
    saved = RoutingSettings.objects.filter(site=site).values_list("fallback_message", flat=True)
    return saved.first() or RoutingSettings.DEFAULT_FALLBACK
