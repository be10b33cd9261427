"""Every state change of sites and dialogues goes through here."""

import copy
import hashlib

from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from dialogues.avatars import avatar_content_type
from dialogues.email_domains import normalise_domains
from dialogues.flow import edits
from dialogues.flow.cards import FlowInvalid, parse_flow
from dialogues.models import Dialogue, DialogueVersion, Membership, Site
from dialogues.origins import origin_problem, privacy_url_problem
from dialogues.starters import STARTERS
from dialogues.targeting import parse_targeting
from dialogues.theme import Theme
from dialogues.trigger import Trigger
from dialogues.validation import draft_problems
from routing import services as routing


@transaction.atomic
def publish_dialogue(*, dialogue_id: int, user=None) -> DialogueVersion:
    """Freeze the dialogue's draft flow into the next numbered version and make it live.

    Raises FlowInvalid (nothing changes) when the draft is not ready: every problem of
    dialogues/flow/checks.py, each with its card. The dialogue row is locked so two publishers
    cannot both take the same version number.
    """
    dialogue = Dialogue.objects.select_for_update().get(pk=dialogue_id)
    problems = draft_problems(dialogue.flow)
    if problems:
        raise FlowInvalid(problems)
    flow = parse_flow(dialogue.flow)
    last = dialogue.versions.aggregate(last=Max("number"))["last"] or 0
    version = DialogueVersion.objects.create(
        dialogue=dialogue,
        number=last + 1,
        flow=flow.model_dump(mode="json"),
        published_at=timezone.now(),
        published_by=user,
    )
    dialogue.current_version = version
    dialogue.status = Dialogue.Status.PUBLISHED
    dialogue.save(update_fields=["current_version", "status", "updated_at"])
    return version


@transaction.atomic
def unpublish_dialogue(*, dialogue_id: int) -> Dialogue:
    """Stop showing the dialogue to new visitors; conversations already under way finish."""
    dialogue = Dialogue.objects.select_for_update().get(pk=dialogue_id)
    dialogue.status = Dialogue.Status.UNPUBLISHED
    dialogue.save(update_fields=["status", "updated_at"])
    return dialogue


@transaction.atomic
def create_dialogue(*, site: Site, name: str, starter: str = "blank") -> Dialogue:
    """A new draft dialogue on `site`, its flow copied from a starter (dialogues/starters.py),
    below the site's other dialogues in priority. Raises ValueError on an unknown starter."""
    if starter not in STARTERS:
        raise ValueError(f"Unknown starting point {starter!r}.")
    lowest = site.dialogues.aggregate(lowest=Min("priority"))["lowest"]
    return Dialogue.objects.create(
        site=site,
        name=name,
        flow=copy.deepcopy(STARTERS[starter][1]),
        priority=0 if lowest is None else lowest - 1,
    )


@transaction.atomic
def duplicate_dialogue(*, dialogue_id: int) -> Dialogue:
    """A draft copy of a dialogue's draft flow and trigger, named "Copy of ...", just below it."""
    original = Dialogue.objects.select_for_update().get(pk=dialogue_id)
    return Dialogue.objects.create(
        site=original.site,
        name=f"Copy of {original.name}"[:100],
        flow=copy.deepcopy(original.flow),
        trigger=copy.deepcopy(original.trigger),
        priority=original.priority - 1,
    )


@transaction.atomic
def restore_version(*, dialogue_id: int, version_id: int) -> Dialogue:
    """Make a published version's flow the dialogue's draft again (what is live is unchanged
    until the draft is published). Raises DialogueVersion.DoesNotExist for another dialogue's
    version."""
    dialogue = Dialogue.objects.select_for_update().get(pk=dialogue_id)
    version = dialogue.versions.get(pk=version_id)
    dialogue.flow = copy.deepcopy(version.flow)
    dialogue.save(update_fields=["flow", "updated_at"])
    return dialogue


@transaction.atomic
def archive_dialogue(*, dialogue_id: int) -> Dialogue:
    """Take a dialogue out of use and out of the default list; conversations under way finish
    on their version. Its versions and reports are kept."""
    dialogue = Dialogue.objects.select_for_update().get(pk=dialogue_id)
    dialogue.status = Dialogue.Status.ARCHIVED
    dialogue.save(update_fields=["status", "updated_at"])
    return dialogue


@transaction.atomic
def create_site(
    *, name: str, allowed_origins: list[str], owner=None, theme: dict | None = None
) -> Site:
    """Create a site; `owner` becomes its marketing admin. Raises ValueError on a bad origin."""
    problems = [p for p in map(origin_problem, allowed_origins) if p]
    if problems:
        raise ValueError("; ".join(problems))
    site = Site.objects.create(
        name=name,
        allowed_origins=list(allowed_origins),
        theme=Theme.model_validate(theme or {}).model_dump(),
    )
    if owner is not None:
        add_member(site=site, user=owner, role=Membership.Role.ADMIN)
    return site


@transaction.atomic
def add_member(*, site: Site, user, role: str) -> Membership:
    """Give `user` a role on `site`; an existing membership keeps its role. A new sales agent
    with a connected calendar joins the site's routing queue."""
    membership, created = Membership.objects.get_or_create(
        user=user, site=site, defaults={"role": role}
    )
    if created and membership.role == Membership.Role.AGENT:
        routing.join_site_queue(site=site, user=user)
    return membership


@transaction.atomic
def update_branding(
    *, site_id: int, theme: dict, avatar: bytes | None = None, remove_avatar: bool = False
) -> Site:
    """Set the site's widget theme and, when given, its avatar (or remove it).

    Raises pydantic.ValidationError for a bad theme and avatars.AvatarInvalid for a bad image,
    before anything is written. The avatar's version changes with its bytes, so the widget's
    next session points browsers at the new image.
    """
    site = Site.objects.select_for_update().get(pk=site_id)
    site.theme = Theme.model_validate(theme).model_dump()
    fields = ["theme"]
    if avatar is not None:
        site.avatar = avatar
        site.avatar_content_type = avatar_content_type(avatar)
        site.avatar_version = hashlib.sha256(avatar).hexdigest()[:16]
        fields += ["avatar", "avatar_content_type", "avatar_version"]
    elif remove_avatar:
        site.avatar, site.avatar_content_type, site.avatar_version = None, "", ""
        fields += ["avatar", "avatar_content_type", "avatar_version"]
    site.save(update_fields=fields)
    return site


@transaction.atomic
def update_site_settings(
    *,
    site_id: int,
    allowed_origins: list[str],
    chat_enabled: bool,
    blocked_email_domains: list[str],
    privacy_url: str,
) -> Site:
    """Set who may embed the widget, whether it chats at all, the email domains its capture
    cards refuse, and its privacy link. Raises ValueError (email_domains.DomainInvalid for a
    domain) before anything is written. Domains are stored normalised (email_domains)."""
    problems = [p for p in map(origin_problem, allowed_origins) if p]
    if problems:
        raise ValueError("; ".join(problems))
    if problem := privacy_url_problem(privacy_url):
        raise ValueError(problem)
    domains = normalise_domains(blocked_email_domains)
    site = Site.objects.select_for_update().get(pk=site_id)
    site.allowed_origins = list(dict.fromkeys(o.rstrip("/") for o in allowed_origins))
    site.chat_enabled = chat_enabled
    site.blocked_email_domains = domains
    site.privacy_url = privacy_url
    site.save(
        update_fields=["allowed_origins", "chat_enabled", "blocked_email_domains", "privacy_url"]
    )
    return site


@transaction.atomic
def update_targeting(*, dialogue_id: int, targeting: dict, trigger: dict) -> Dialogue:
    """Store who sees the dialogue, where, when, and after which behaviour. Takes effect for
    new sessions at once (within WIDGET_CACHE_SECONDS), without republishing the flow.
    Raises pydantic's ValidationError, changing nothing, when either is invalid."""
    targeting = parse_targeting(targeting).model_dump(mode="json", exclude_defaults=True)
    trigger = Trigger.model_validate(trigger).model_dump(mode="json")
    dialogue = Dialogue.objects.select_for_update().get(pk=dialogue_id)
    dialogue.targeting = targeting
    dialogue.trigger = trigger
    dialogue.save(update_fields=["targeting", "trigger", "updated_at"])
    return dialogue


@transaction.atomic
def reorder_priorities(*, site: Site, dialogue_ids: list[int]) -> None:
    """Give the site's dialogues priorities in the order of `dialogue_ids`, first highest.

    The ids must be exactly the site's non-archived dialogues (the list as the marketer sees
    it); anything else raises ValueError and changes nothing, so a stale page cannot reorder
    dialogues it did not show. Archived dialogues keep their priority."""
    dialogues = {
        d.pk: d
        for d in Dialogue.objects.select_for_update()
        .filter(site=site)
        .exclude(status=Dialogue.Status.ARCHIVED)
    }
    if len(set(dialogue_ids)) != len(dialogue_ids) or set(dialogue_ids) != set(dialogues):
        raise ValueError("the order must list each of the site's dialogues once")
    changed = []
    for rank, dialogue_id in enumerate(dialogue_ids):
        dialogue = dialogues[dialogue_id]
        priority = len(dialogue_ids) - rank
        if dialogue.priority != priority:
            dialogue.priority = priority
            changed.append(dialogue)
    Dialogue.objects.bulk_update(changed, ["priority"])


# --- The flow editor: each change to a draft card, under a lock on the dialogue row ------------


class StaleCard(Exception):
    """The card changed since its edit form was opened (another marketer saved it); nothing
    was saved."""


def _change_draft(dialogue_id: int, change) -> tuple[Dialogue, object]:
    """Lock the dialogue, apply `change(flow) -> (new flow, result)`, store the flow. Callers
    are atomic. Raises what `change` raises (edits.CardNotFound, ValueError) before writing."""
    dialogue = Dialogue.objects.select_for_update().get(pk=dialogue_id)
    flow, result = change(dialogue.flow)
    dialogue.flow = flow
    dialogue.save(update_fields=["flow", "updated_at"])
    return dialogue, result


@transaction.atomic
def add_card(*, dialogue_id: int, card_type: str, after: str | None = None) -> dict:
    """Add a new, empty card of `card_type` after card `after` (at the end when None) and
    return it (see flow.edits.add_card for how it is linked in)."""
    _, card = _change_draft(
        dialogue_id, lambda flow: edits.add_card(flow, card_type=card_type, after=after)
    )
    return card


@transaction.atomic
def update_draft_card(*, dialogue_id: int, card: dict, revision: str) -> dict:
    """Replace the draft's card with the same id by `card`. `revision` is the
    edits.card_revision() of the card the form was opened with: if the stored card differs,
    StaleCard is raised and nothing changes, so two marketers cannot overwrite each other."""

    def change(flow):
        _, stored = edits.find(flow, card["id"])
        if edits.card_revision(stored) != revision:
            raise StaleCard(card["id"])
        return edits.replace_card(flow, card=card), card

    return _change_draft(dialogue_id, change)[1]


@transaction.atomic
def delete_card(*, dialogue_id: int, card_id: str) -> dict:
    """Remove a card and empty the links to it; returns what undo_delete_card needs."""
    return _change_draft(dialogue_id, lambda flow: edits.delete_card(flow, card_id=card_id))[1]


@transaction.atomic
def undo_delete_card(*, dialogue_id: int, deleted: dict) -> dict:
    """Put a deleted card back (ValueError when its id is taken again); returns the card."""
    _change_draft(dialogue_id, lambda flow: (edits.restore_card(flow, deleted=deleted), None))
    return deleted["card"]


@transaction.atomic
def move_card(*, dialogue_id: int, card_id: str, offset: int) -> None:
    _change_draft(
        dialogue_id, lambda flow: (edits.move_card(flow, card_id=card_id, offset=offset), None)
    )


@transaction.atomic
def set_start_card(*, dialogue_id: int, card_id: str) -> None:
    _change_draft(dialogue_id, lambda flow: (edits.set_start(flow, card_id=card_id), None))


class MembershipRefused(ValueError):
    """A membership change that would leave the site without a marketing admin, or repeat one."""


@transaction.atomic
def invite_member(*, site: Site, email: str, role: str) -> tuple[Membership, bool]:
    """Give the person with this email a role on `site`, creating their account (without a
    password: they choose it through a set-password link) when there is none.

    Returns the membership and whether the account is new. Raises MembershipRefused when they
    already belong to the site."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email__iexact=email).order_by("pk").first()
    created = user is None
    if created:
        user = User.objects.create_user(username=email, email=email)
        user.set_unusable_password()
        user.save(update_fields=["password"])
    elif Membership.objects.filter(site=site, user=user).exists():
        raise MembershipRefused(f"{email} already belongs to {site.name}.")
    membership = Membership.objects.create(site=site, user=user, role=role)
    if role == Membership.Role.AGENT:
        # Someone who connected a calendar as another site's agent is bookable here at once.
        routing.join_site_queue(site=site, user=user)
    return membership, created


def _site_memberships_locked(site: Site) -> dict[int, Membership]:
    # Every membership of the site, locked, so that two admins demoting each other at the same
    # moment cannot both succeed and leave the site without one.
    return {m.pk: m for m in Membership.objects.select_for_update().filter(site=site)}


@transaction.atomic
def change_member_role(
    *, site: Site, membership_id: int, role: str
) -> tuple[Membership, routing.Released]:
    """Change a member's role. Raises Membership.DoesNotExist for another site's membership and
    MembershipRefused when the site would be left without a marketing admin.

    A member who stops being a sales agent leaves the site's routing (queue place, custom
    rules, owned accounts: returned, for the admin to be told); one who becomes a sales agent
    with a connected calendar joins the queue."""
    memberships = _site_memberships_locked(site)
    membership = memberships.get(membership_id)
    if membership is None:
        raise Membership.DoesNotExist
    admins = [m for m in memberships.values() if m.role == Membership.Role.ADMIN]
    if admins == [membership] and role != Membership.Role.ADMIN:
        raise MembershipRefused("A site needs at least one marketing admin.")
    was_agent = membership.role == Membership.Role.AGENT
    membership.role = role
    membership.save(update_fields=["role"])
    released = routing.Released()
    if role != Membership.Role.AGENT:
        released = routing.leave_site_routing(site=site, user=membership.user)
    elif not was_agent:
        routing.join_site_queue(site=site, user=membership.user)
    return membership, released


@transaction.atomic
def remove_member(*, site: Site, membership_id: int) -> routing.Released:
    """Take a member off the site (their account stays). Same refusals as change_member_role.
    They leave the site's routing too; returns what they lost there."""
    memberships = _site_memberships_locked(site)
    membership = memberships.get(membership_id)
    if membership is None:
        raise Membership.DoesNotExist
    admins = [m for m in memberships.values() if m.role == Membership.Role.ADMIN]
    if admins == [membership]:
        raise MembershipRefused("A site needs at least one marketing admin.")
    membership.delete()
    return routing.leave_site_routing(site=site, user=membership.user)
