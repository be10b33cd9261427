"""Every state change of sites and dialogues goes through here."""

import copy

from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from dialogues.flow.cards import FlowInvalid, parse_flow
from dialogues.models import Dialogue, DialogueVersion, Membership, Site
from dialogues.origins import origin_problem
from dialogues.starters import STARTERS
from dialogues.theme import Theme
from dialogues.validation import draft_problems


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


def add_member(*, site: Site, user, role: str) -> Membership:
    """Give `user` a role on `site`; an existing membership keeps its role."""
    membership, _ = Membership.objects.get_or_create(user=user, site=site, defaults={"role": role})
    return membership
