"""Every state change of sites and dialogues goes through here."""

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from dialogues.flow.cards import parse_flow
from dialogues.models import Dialogue, DialogueVersion, Membership, Site
from dialogues.origins import origin_problem
from dialogues.theme import Theme


@transaction.atomic
def publish_dialogue(*, dialogue_id: int, user=None) -> DialogueVersion:
    """Freeze the dialogue's draft flow into the next numbered version and make it live.

    Raises FlowInvalid (nothing changes) when the draft does not validate. The dialogue row is
    locked so two publishers cannot both take the same version number.
    """
    dialogue = Dialogue.objects.select_for_update().get(pk=dialogue_id)
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
