"""Changes to routing: the one write path for queues, account owners, custom rules and the
fallback message. (The round-robin pointer is moved only by routing.assign, inside the booking
transaction.)

Every write of a site's routing locks the site's row first (`_lock_site`), so two admins (or an
admin and an agent connecting a calendar) never interleave: queue positions stay 0..n-1 with no
gaps or repeats, rule priorities 1..n, and an account import sees the list it checked."""

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Max
from pydantic import ValidationError

from calendars.models import CalendarConnection
from dialogues.models import Membership, Site
from dialogues.targeting import AudienceCondition
from routing import selectors
from routing.accounts_csv import AccountRow, RowError
from routing.models import (
    AccountOwner,
    QueueMember,
    RoutingRule,
    RoutingSettings,
    company_key,
)

User = get_user_model()
RULE_SOURCES = ("lead", "company")


@transaction.atomic
def join_queues(user) -> list[QueueMember]:
    """Put `user` at the end of the queue of every site they are a sales agent on, unless they
    are in it already (in place, paused or not). Called when they connect a calendar: the
    product's promise is that connecting one is what puts an agent in the routing queue."""
    joined = []
    site_ids = Membership.objects.filter(user=user, role=Membership.Role.AGENT).values_list(
        "site_id", flat=True
    )
    for site_id in site_ids:
        if QueueMember.objects.filter(site_id=site_id, user=user).exists():
            continue
        joined.append(_append(site_id, user))
    return joined


def _append(site_id: int, user) -> QueueMember:
    """A new place at the end of the site's queue. The caller holds a transaction; the site's
    row is locked so two agents joining at once do not share a position."""
    Site.objects.select_for_update().only("pk").get(pk=site_id)
    last = QueueMember.objects.filter(site_id=site_id).aggregate(last=Max("position"))["last"]
    return QueueMember.objects.create(
        site_id=site_id, user=user, position=0 if last is None else last + 1
    )


class RoutingRefused(ValueError):
    """A routing change that cannot be made; the message says why, for the admin. Nothing was
    changed."""


class StaleOrder(RoutingRefused):
    """The order sent is not the order stored (the page was stale): nothing was changed."""


def _lock_site(site_id: int) -> None:
    Site.objects.select_for_update().only("pk").get(pk=site_id)


def _renumber_queue(site_id: int) -> None:
    """Positions 0..n-1 in the current order. The caller holds the site's lock."""
    members = list(QueueMember.objects.filter(site_id=site_id).order_by("position", "pk"))
    changed = []
    for position, member in enumerate(members):
        if member.position != position:
            member.position = position
            changed.append(member)
    QueueMember.objects.bulk_update(changed, ["position"])


def _is_agent(site: Site, user_id: int) -> bool:
    return Membership.objects.filter(
        site=site, user_id=user_id, role=Membership.Role.AGENT
    ).exists()


# --- Team changes -------------------------------------------------------------------------------


@dataclass
class Released:
    """What a person lost in a site's routing when they stopped being one of its agents."""

    queue_place: bool = False
    rules: list[str] = field(default_factory=list)  # names of the rules they were an agent of
    rules_switched_off: list[str] = field(default_factory=list)  # left without any agent
    accounts: int = 0  # account entries they owned, deleted

    def __bool__(self) -> bool:
        return self.queue_place or bool(self.rules) or bool(self.accounts)


@transaction.atomic
def join_site_queue(*, site: Site, user) -> QueueMember | None:
    """Put a new sales agent of `site` at the end of its queue if they already have a connected
    calendar (otherwise connecting one will: join_queues). Returns their place, or None."""
    connected = CalendarConnection.objects.filter(
        user=user, status=CalendarConnection.Status.CONNECTED
    ).exists()
    if not connected or not _is_agent(site, user.pk):
        return None
    _lock_site(site.pk)
    existing = QueueMember.objects.filter(site=site, user=user).first()
    return existing or _append(site.pk, user)


@transaction.atomic
def leave_site_routing(*, site: Site, user) -> Released:
    """Take `user` out of `site`'s routing: their queue place, their seat in its custom rules
    and the accounts they own (deleted: an account without an owner routes like any visitor,
    by the rules and the queue). A rule left without agents is switched off, since it could
    take nobody. Called when they leave the site or stop being a sales agent on it."""
    _lock_site(site.pk)
    released = Released()
    released.queue_place = bool(QueueMember.objects.filter(site=site, user=user).delete()[0])
    if released.queue_place:
        _renumber_queue(site.pk)
    for rule in RoutingRule.objects.filter(site=site, agents=user).order_by("priority"):
        rule.agents.remove(user)
        released.rules.append(rule.name)
        if rule.active and not rule.agents.exists():
            rule.active = False
            rule.save(update_fields=["active", "updated_at"])
            released.rules_switched_off.append(rule.name)
    released.accounts = AccountOwner.objects.filter(site=site, owner=user).delete()[0]
    return released


# --- The queue ----------------------------------------------------------------------------------


@transaction.atomic
def reorder_queue(*, site: Site, user_ids: list[int], expected: list[int] | None = None) -> None:
    """Put the site's queue in the order of `user_ids` (first: position 0).

    `user_ids` must list every agent in the queue once, and `expected` (when given) must be the
    order stored now: the order the page showed before the move. Otherwise StaleOrder is raised
    and nothing changes, so a page that is out of date never reorders what it did not show."""
    _lock_site(site.pk)
    members = {m.user_id: m for m in QueueMember.objects.filter(site=site)}
    current = [m.user_id for m in sorted(members.values(), key=lambda m: (m.position, m.pk))]
    if expected is not None and list(expected) != current:
        raise StaleOrder("The queue changed meanwhile; reload the page and try again.")
    if len(set(user_ids)) != len(user_ids) or set(user_ids) != set(members):
        raise StaleOrder("The queue changed meanwhile; reload the page and try again.")
    changed = []
    for position, user_id in enumerate(user_ids):
        member = members[user_id]
        if member.position != position:
            member.position = position
            changed.append(member)
    QueueMember.objects.bulk_update(changed, ["position"])


def _member(site: Site, member_id: int) -> QueueMember:
    """The site's queue place `member_id` (raises QueueMember.DoesNotExist for another site's)."""
    return QueueMember.objects.select_related("user").get(pk=member_id, site=site)


@transaction.atomic
def set_paused(*, site: Site, member_id: int, paused: bool) -> QueueMember:
    """Pause an agent (they keep their place but get no meetings) or resume them."""
    _lock_site(site.pk)
    member = _member(site, member_id)
    if member.paused != paused:
        member.paused = paused
        member.save(update_fields=["paused"])
    return member


@transaction.atomic
def remove_from_queue(*, site: Site, member_id: int) -> QueueMember:
    """Take an agent out of the queue (their row is deleted; "Add to queue" or connecting a
    calendar again brings them back at the end). Returns the deleted place."""
    _lock_site(site.pk)
    member = _member(site, member_id)
    member.delete()
    _renumber_queue(site.pk)
    return member


@transaction.atomic
def add_to_queue(*, site: Site, user_id: int) -> QueueMember:
    """Put one of the site's agents with a connected calendar at the end of its queue. Raises
    RoutingRefused for anyone else, or someone already in it."""
    _lock_site(site.pk)
    user = User.objects.filter(pk=user_id).first()
    if user is None or not _is_agent(site, user_id):
        raise RoutingRefused("Only the site's sales agents can be in its queue.")
    if not CalendarConnection.objects.filter(
        user_id=user_id, status=CalendarConnection.Status.CONNECTED
    ).exists():
        raise RoutingRefused(
            "Only an agent with a connected calendar can join the queue: they join when they "
            "connect one."
        )
    if QueueMember.objects.filter(site=site, user_id=user_id).exists():
        raise RoutingRefused("They are in the queue already.")
    return _append(site.pk, user)


# --- Account routing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportCounts:
    added: int
    updated: int
    unchanged: int


class AccountImportRefused(Exception):
    """Rows that cannot be imported, each with its row and column; nothing was imported."""

    def __init__(self, errors: list[RowError]):
        super().__init__(f"{len(errors)} rows cannot be imported")
        self.errors = errors


@transaction.atomic
def save_account_owner(*, site: Site, company_name: str, domain: str, owner) -> AccountOwner:
    """A new account entry: visitors of this company (by name) or domain go to `owner`.
    `domain` must be normalised (routing.accounts_csv.normalise_domain). Raises RoutingRefused
    when the owner is not an agent of the site, or the name or domain is listed already."""
    company_name, domain = company_name.strip(), domain.strip()
    if not company_name and not domain:
        raise RoutingRefused("Give a company name, a domain or both.")
    _lock_site(site.pk)
    if not _is_agent(site, owner.pk):
        raise RoutingRefused("The owner must be a sales agent of the site.")
    duplicate = selectors.listed_account(site=site, company_name=company_name, domain=domain)
    if duplicate:
        raise RoutingRefused(duplicate[1])
    try:
        with transaction.atomic():
            return AccountOwner.objects.create(
                site=site, company_name=company_name, domain=domain, owner=owner
            )
    except IntegrityError:  # the database's own uniqueness, should the check above miss
        raise RoutingRefused("This company or domain is listed already.") from None


@transaction.atomic
def delete_account_owner(*, site: Site, account_id: int) -> AccountOwner:
    """Remove an account entry (raises AccountOwner.DoesNotExist for another site's)."""
    _lock_site(site.pk)
    account = AccountOwner.objects.get(pk=account_id, site=site)
    account.delete()
    return account


@transaction.atomic
def import_account_owners(*, site: Site, rows: list[AccountRow]) -> ImportCounts:
    """Upsert an uploaded list (routing.accounts_csv.read_accounts' rows), all or nothing.

    A row updates the entry with its domain, or else the one with its company name: the owner
    becomes the row's, a company name or domain the entry lacked is filled in. Other rows are
    added. Raises AccountImportRefused with every row's problem (an owner who is not an agent
    of the site; a company name already listed with another domain or apart from the row's
    domain), and then nothing is written."""
    _lock_site(site.pk)
    owners, errors = selectors.resolve_owners(site=site, rows=rows)
    existing = list(AccountOwner.objects.filter(site=site))
    by_domain = {a.domain: a for a in existing if a.domain}
    by_key = {a.company_key: a for a in existing if a.company_key}
    creates, renamed, reassigned = [], [], []
    unchanged = 0
    for row in rows:
        key = company_key(row.company)
        by_its_domain = by_domain.get(row.domain) if row.domain else None
        by_its_name = by_key.get(key) if key else None
        if by_its_domain and by_its_name and by_its_domain is not by_its_name:
            errors.append(
                RowError(
                    row.row,
                    "company",
                    f"“{row.company}” is already listed apart from {row.domain}; "
                    "delete one of the two entries first.",
                )
            )
            continue
        if by_its_name and not by_its_domain and row.domain and by_its_name.domain:
            errors.append(
                RowError(
                    row.row,
                    "company",
                    f"“{row.company}” is already listed with the domain {by_its_name.domain}.",
                )
            )
            continue
        owner = owners.get(row.owner_email)
        if owner is None:
            continue  # its error is in `errors` already
        entry = by_its_domain or by_its_name
        if entry is None:
            entry = AccountOwner(
                site=site, company_name=row.company, company_key=key, domain=row.domain
            )
            entry.owner = owner
            creates.append(entry)
            by_key.update({key: entry} if key else {})
            by_domain.update({row.domain: entry} if row.domain else {})
            continue
        identity = False
        if key and entry.company_name != row.company:
            by_key.pop(entry.company_key, None)
            entry.company_name, entry.company_key = row.company, key
            by_key[key] = entry
            identity = True
        if row.domain and not entry.domain:
            entry.domain = row.domain
            by_domain[row.domain] = entry
            identity = True
        if identity:
            entry.owner = owner
            renamed.append(entry)
        elif entry.owner_id != owner.pk:
            entry.owner = owner
            reassigned.append(entry)
        else:
            unchanged += 1
    if errors:
        raise AccountImportRefused(sorted(errors, key=lambda e: (e.row, e.column)))
    # Renames one by one and in row order, each valid when it is made (a name another row
    # frees comes free first), and before the new entries that may take a freed name.
    for entry in renamed:
        entry.save(update_fields=["company_name", "company_key", "domain", "owner"])
    AccountOwner.objects.bulk_create(creates, batch_size=1000)
    AccountOwner.objects.bulk_update(reassigned, ["owner"], batch_size=1000)
    return ImportCounts(
        added=len(creates), updated=len(renamed) + len(reassigned), unchanged=unchanged
    )


# --- Custom rules -------------------------------------------------------------------------------


def _checked_conditions(conditions: list[dict]) -> list[dict]:
    if not conditions:
        raise RoutingRefused("A rule needs at least one condition.")
    checked = []
    for condition in conditions:
        try:
            parsed = AudienceCondition.model_validate(condition)
        except ValidationError as exc:
            raise RoutingRefused(f"A condition is not valid: {exc.errors()[0]['msg']}") from None
        if parsed.subject.partition(".")[0] not in RULE_SOURCES:
            raise RoutingRefused("Rules look at person (lead.) and company (company.) fields.")
        checked.append(parsed.model_dump())
    return checked


@transaction.atomic
def save_rule(
    *,
    site: Site,
    name: str,
    description: str,
    match: str,
    conditions: list[dict],
    agent_ids: list[int],
    rule_id: int | None = None,
) -> RoutingRule:
    """Create a custom rule (checked after the others: last priority) or change rule `rule_id`.

    Raises RoutingRefused (nothing saved) for a condition that is not valid or not on a person
    or company field, no condition, no agent or someone who is not an agent of the site, or a
    name another of the site's rules has; RoutingRule.DoesNotExist for another site's rule."""
    _lock_site(site.pk)
    name = name.strip()
    if not name:
        raise RoutingRefused("Give the rule a name.")
    if match not in RoutingRule.Match.values:
        raise RoutingRefused("Choose whether all or any of the conditions must hold.")
    conditions = _checked_conditions(conditions)
    agent_ids = sorted(set(agent_ids))
    if not agent_ids:
        raise RoutingRefused("Choose at least one agent.")
    if set(agent_ids) - set(selectors.site_agents(site).values_list("pk", flat=True)):
        raise RoutingRefused("Only the site's sales agents can take a rule's visitors.")
    others = RoutingRule.objects.filter(site=site, name__iexact=name)
    if rule_id is not None:
        others = others.exclude(pk=rule_id)
    if others.exists():
        raise RoutingRefused(f"Another rule is called “{name}”.")
    if rule_id is None:
        last = RoutingRule.objects.filter(site=site).aggregate(last=Max("priority"))["last"]
        rule = RoutingRule(site=site, priority=(last or 0) + 1)
    else:
        rule = RoutingRule.objects.get(pk=rule_id, site=site)
    rule.name, rule.description, rule.match = name, description.strip(), match
    rule.conditions = conditions
    rule.save()
    rule.agents.set(agent_ids)
    return rule


def _rules_locked(site: Site) -> list[RoutingRule]:
    _lock_site(site.pk)
    return list(RoutingRule.objects.filter(site=site).order_by("priority", "pk"))


def _renumber_rules(rules: list[RoutingRule]) -> None:
    changed = []
    for priority, rule in enumerate(rules, start=1):
        if rule.priority != priority:
            rule.priority = priority
            changed.append(rule)
    RoutingRule.objects.bulk_update(changed, ["priority"])


@transaction.atomic
def move_rule(*, site: Site, rule_id: int, offset: int) -> RoutingRule:
    """Move a rule up (offset -1: checked earlier) or down (+1); at either end it stays put.
    Priorities are 1..n afterwards. Raises RoutingRule.DoesNotExist for another site's rule."""
    rules = _rules_locked(site)
    index = next((i for i, rule in enumerate(rules) if rule.pk == rule_id), None)
    if index is None:
        raise RoutingRule.DoesNotExist
    to = min(max(index + offset, 0), len(rules) - 1)
    rules.insert(to, rules.pop(index))
    _renumber_rules(rules)
    return rules[to]


@transaction.atomic
def set_rule_active(*, site: Site, rule_id: int, active: bool) -> RoutingRule:
    """Switch a rule on or off (an inactive rule keeps its place but is not checked)."""
    _lock_site(site.pk)
    rule = RoutingRule.objects.get(pk=rule_id, site=site)
    if active and not rule.agents.exists():
        raise RoutingRefused(f"“{rule.name}” has no agents: choose some before switching it on.")
    if rule.active != active:
        rule.active = active
        rule.save(update_fields=["active", "updated_at"])
    return rule


@transaction.atomic
def delete_rule(*, site: Site, rule_id: int) -> RoutingRule:
    """Delete a rule (and its round-robin pointer); the others keep their order, 1..n."""
    rules = _rules_locked(site)
    rule = next((rule for rule in rules if rule.pk == rule_id), None)
    if rule is None:
        raise RoutingRule.DoesNotExist
    others = [r for r in rules if r.pk != rule_id]
    rule.delete()
    _renumber_rules(others)
    return rule


# --- Fallback -----------------------------------------------------------------------------------

MAX_FALLBACK_LENGTH = 500


@transaction.atomic
def save_fallback_message(*, site: Site, message: str) -> RoutingSettings:
    """The text a booking card shows when nobody can take the visitor (the site's routing
    settings row is created on the first save). Raises RoutingRefused when empty or too long."""
    message = message.strip()
    if not message:
        raise RoutingRefused("Write the message visitors see.")
    if len(message) > MAX_FALLBACK_LENGTH:
        raise RoutingRefused(f"At most {MAX_FALLBACK_LENGTH} characters.")
    settings, _ = RoutingSettings.objects.update_or_create(
        site=site, defaults={"fallback_message": message}
    )
    return settings
