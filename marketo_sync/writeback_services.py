"""The write-back pages' writes: a site's lead field mapping, sending parked outbox records
again or discarding them, and a dialogue's Marketo actions. Keyword-only, each in a
transaction; the views (marketo_sync/writeback_views.py) validate input with the forms first,
and these re-check what the database must hold (a record is still parked, an action is the
only one for its event) under row locks."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from dialogues.models import Dialogue, Site
from marketo_sync import writeback
from marketo_sync.delivery import LEAD_PARKED
from marketo_sync.models import (
    DEFAULT_FIELD_MAPPING,
    LeadFieldMapping,
    MarketoAction,
    OutboxRecord,
)

Kind = OutboxRecord.Kind
Status = OutboxRecord.Status


class WritebackRefused(ValueError):
    """The change cannot be made; the message says why, for the user."""


# --- Field mapping ---------------------------------------------------------------------------


@transaction.atomic
def save_field_mapping(*, site: Site, fields: dict[str, str]) -> LeadFieldMapping:
    """Map chat attributes to Marketo lead fields ("" = not sent). Attributes not in `fields`
    keep their mapping (a dialogue that no longer captures one may capture it again). The
    delivery maps records when it sends them, so this applies to every unsent record too."""
    mapping, _ = LeadFieldMapping.objects.select_for_update().get_or_create(
        site=site, defaults={"fields": dict(DEFAULT_FIELD_MAPPING)}
    )
    mapping.fields = {**mapping.fields, **fields}
    mapping.fields.pop("email", None)  # the lookup field, always sent as itself
    mapping.save(update_fields=["fields", "updated_at"])
    return mapping


# --- The outbox ------------------------------------------------------------------------------


@transaction.atomic
def retry_parked(*, site: Site, record_ids: list[int] | None = None) -> int:
    """Send the site's parked records again (`record_ids`, or all of them): pending, due now,
    attempts and errors cleared. A lead upsert takes along that lead's records of the site
    parked because of it (lead_parked), which go after it in the lead's order. Returns how many
    records were queued; records that are not (or no longer) parked are left alone. Starts a
    delivery once committed."""
    parked = OutboxRecord.objects.select_for_update().filter(site=site, status=Status.PARKED)
    chosen = parked if record_ids is None else parked.filter(id__in=record_ids)
    ids = set(chosen.values_list("id", flat=True))
    lead_keys = set(
        chosen.filter(kind=Kind.LEAD).exclude(lead_key="").values_list("lead_key", flat=True)
    )
    if lead_keys:
        ids |= set(
            parked.filter(lead_key__in=lead_keys, error_code=LEAD_PARKED).values_list(
                "id", flat=True
            )
        )
    if not ids:
        return 0
    queued = OutboxRecord.objects.filter(id__in=ids).update(
        status=Status.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        claimed_until=None,
        error_code="",
        error_message="",
    )
    transaction.on_commit(writeback.kick)
    return queued


@transaction.atomic
def discard(*, site: Site, record_id: int) -> OutboxRecord:
    """Delete one of the site's parked records: it is never sent. Raises
    OutboxRecord.DoesNotExist for another site's (or no) record, WritebackRefused when it is
    not parked (pending and waiting records may still go out; delivered ones are history).
    Returns the deleted record (without its id)."""
    record = OutboxRecord.objects.select_for_update().get(site=site, pk=record_id)
    if record.status != Status.PARKED:
        raise WritebackRefused("Only parked records can be discarded.")
    record.delete()
    return record


# --- Dialogue actions ------------------------------------------------------------------------


@transaction.atomic
def save_action(
    *,
    dialogue: Dialogue,
    action_id: int | None = None,
    on: str,
    goal: str = "",
    program_id: int | None = None,
    program_name: str = "",
    program_status: str = "",
    campaign_id: int | None = None,
    campaign_name: str = "",
    tokens: list[dict] | None = None,
) -> MarketoAction:
    """Create (`action_id` None) or change one of the dialogue's Marketo actions, as the form
    validated it. Raises MarketoAction.DoesNotExist for another dialogue's action, and
    WritebackRefused when the dialogue already has an action for that event (also when another
    user saved one meanwhile) or the action would do nothing."""
    if on not in MarketoAction.On.values:
        raise WritebackRefused("Choose when the action runs.")
    if on != MarketoAction.On.GOAL:
        goal = ""
    if program_id is None and campaign_id is None:
        raise WritebackRefused("Choose a program status to set, a campaign to request, or both.")
    if program_id is not None and not program_status:
        raise WritebackRefused("Choose the program status to set.")
    if action_id is None:
        action = MarketoAction(dialogue=dialogue)
    else:
        action = MarketoAction.objects.select_for_update().get(dialogue=dialogue, pk=action_id)
    others = MarketoAction.objects.filter(dialogue=dialogue, on=on, goal=goal)
    if action.pk:
        others = others.exclude(pk=action.pk)
    if others.exists():
        raise WritebackRefused(already_there(on, goal))
    action.on, action.goal = on, goal
    action.program_id = program_id
    action.program_name = program_name if program_id is not None else ""
    action.program_status = program_status if program_id is not None else ""
    action.campaign_id = campaign_id
    action.campaign_name = campaign_name if campaign_id is not None else ""
    action.tokens = list(tokens or []) if campaign_id is not None else []
    try:
        # A savepoint, so a lost race leaves the outer transaction usable.
        with transaction.atomic():
            action.save()
    except IntegrityError:
        raise WritebackRefused(already_there(on, goal)) from None
    return action


def already_there(on: str, goal: str) -> str:
    """What the form says when the dialogue has an action for this event already."""
    if on == MarketoAction.On.GOAL:
        which = f"reaching the goal “{goal}”" if goal else "reaching any goal"
    elif on == MarketoAction.On.MEETING:
        which = "booking a meeting"
    else:
        which = "engaging"
    return f"This dialogue already has an action on {which}: edit that one instead."


@transaction.atomic
def delete_action(*, dialogue: Dialogue, action_id: int) -> MarketoAction:
    """Delete one of the dialogue's actions (MarketoAction.DoesNotExist for another's)."""
    action = MarketoAction.objects.select_for_update().get(dialogue=dialogue, pk=action_id)
    action.delete()
    return action
