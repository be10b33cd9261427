"""What chat engagement sends to Marketo, written to the outbox (models.OutboxRecord) in the
very transaction of the chat event that causes it: an event is never sent without having
happened, and never lost once it has. delivery.py sends the records.

- A visitor who gives an email (in the chat, or DynChat.identify) becomes a lead: an upsert of
  what they told the chat (mapped to Marketo fields per site when it is sent, so a fixed mapping
  applies to a retried record), then their Munchkin cookie is associated with the lead.
- Engaging with a dialogue, reaching a goal and booking a meeting each become one of DynChat's
  custom activities (ACTIVITY_TYPES), followed by the program status changes and campaign
  requests the dialogue asks for on that event (models.MarketoAction).
- An anonymous visitor's records wait without a lead until the visitor gives an email, or their
  cookie resolves to a synced lead; they are then released, in the order they happened.

Nothing is written while Marketo is not configured.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse

from marketo_sync.models import MarketoAction, OutboxRecord

Kind = OutboxRecord.Kind
Status = OutboxRecord.Status


@dataclass(frozen=True)
class Attribute:
    api_name: str
    name: str
    data_type: str
    description: str = ""


@dataclass(frozen=True)
class ActivityTypeSpec:
    """One of DynChat's custom activity types, as created in Marketo (delivery.ensure_types)."""

    event: str  # the chat event it records: engaged, goal, meeting
    api_name: str
    name: str
    trigger_name: str
    filter_name: str
    description: str
    attributes: tuple[Attribute, ...]


# The primary attribute, what Marketo's activity log and smart list constraints show first.
PRIMARY = Attribute("dialogueName", "Dialogue", "string", "The dialogue's name")
# Written on every DynChat activity.
COMMON = (
    Attribute("dialogueId", "Dialogue ID", "integer", "The dialogue's id in DynChat"),
    Attribute("dialogueVersion", "Dialogue Version", "integer", "The published version run"),
    Attribute("pageUrl", "Page URL", "link", "The page the conversation took place on"),
    Attribute("transcriptUrl", "Transcript Link", "link", "The conversation's transcript"),
    Attribute("conversationId", "Conversation ID", "string", "The conversation's id in DynChat"),
    Attribute(
        "dynchatEventId",
        "DynChat Event ID",
        "string",
        "Unique per event: DynChat looks for it before sending an activity again",
    ),
)

# Named like Marketo's own Dynamic Chat activities (Engaged with a Dialogue, Reached Dialogue
# Goal, Scheduled Meeting in Dialogue); trigger and filter names say DynChat, as they must be
# unique in the instance.
ACTIVITY_TYPES = {
    spec.event: spec
    for spec in (
        ActivityTypeSpec(
            event="engaged",
            api_name="dynchatEngagedWithDialogue",
            name="Engaged with a Dialogue",
            trigger_name="Engages with a DynChat Dialogue",
            filter_name="Engaged with a DynChat Dialogue",
            description="The visitor answered a dialogue's first question in DynChat",
            attributes=COMMON,
        ),
        ActivityTypeSpec(
            event="goal",
            api_name="dynchatReachedDialogueGoal",
            name="Reached Dialogue Goal",
            trigger_name="Reaches a DynChat Dialogue Goal",
            filter_name="Reached a DynChat Dialogue Goal",
            description="The visitor reached a goal card of a DynChat dialogue",
            attributes=(*COMMON, Attribute("goalName", "Goal Name", "string", "The goal's name")),
        ),
        ActivityTypeSpec(
            event="meeting",
            api_name="dynchatScheduledMeetingInDialogue",
            name="Scheduled Meeting in Dialogue",
            trigger_name="Schedules a Meeting in a DynChat Dialogue",
            filter_name="Scheduled a Meeting in a DynChat Dialogue",
            description="The visitor booked a meeting with a sales agent in a DynChat dialogue",
            attributes=(
                *COMMON,
                Attribute("meetingTime", "Meeting Time", "datetime", "When the meeting starts"),
                Attribute("agentName", "Agent Name", "string", "The sales agent's name"),
                Attribute("agentEmail", "Agent Email", "email", "The sales agent's email"),
                Attribute("meetingId", "Meeting ID", "string", "The meeting's id in DynChat"),
            ),
        ),
    )
}

# The chat events that are written back, by ConversationEvent kind.
EVENTS = {"engaged": "engaged", "goal_reached": "goal", "meeting_booked": "meeting"}

# What a campaign token can carry, for the dialogue's Marketo actions: value -> label. The agent's
# name and email are filled in when the record is sent (the meeting's agent is chosen after the
# event is written).
TOKEN_VALUES = {
    "dialogue": "Dialogue name",
    "goal": "Goal name",
    "page_url": "Page URL",
    "transcript_url": "Transcript link",
    "meeting_time": "Meeting time",
    "agent_name": "Agent name",
    "agent_email": "Agent email",
}
LATE_TOKENS = frozenset({"agent_name", "agent_email"})


def enabled() -> bool:
    """Write-back is on once Marketo is configured (the same settings as the sync)."""
    from marketo_sync.services import marketo_configured

    return marketo_configured()


def lead_key_for(visitor) -> str:
    """Whose records these are in Marketo: the email the visitor gave (lower case), else the
    lead their cookie resolved to; "" while anonymous."""
    if visitor.email:
        return visitor.email.lower()
    if visitor.marketo_lead_id:
        return f"id:{visitor.marketo_lead_id}"
    return ""


def chat_step(conversation, events, *, told: dict, email_before: str, now: datetime) -> None:
    """Write the outbox records of one conversation step: what the visitor told (`told`, already
    stored on the visitor, whose email was `email_before` until this step) and the step's events
    (engine.Event or ConversationEvent). Called inside the step's transaction."""
    if not enabled():
        return
    visitor = conversation.visitor
    records = []
    if told:
        records += _told(visitor, conversation.site_id, told, email_before=email_before, now=now)
    written = [e for e in events if str(e.kind) in EVENTS]
    if written:
        key = lead_key_for(visitor) or _locked_lead_key(visitor)
        for event in written:
            records += _event_records(conversation, event, key, now)
    _save(records)


def visitor_told(visitor, *, site_id: int, told: dict, email_before: str, now: datetime) -> None:
    """Write the records of what a host page told about its visitor (DynChat.identify)."""
    if enabled():
        _save(_told(visitor, site_id, told, email_before=email_before, now=now))


def visitor_resolved(visitor) -> None:
    """The visitor's lead became known (their cookie resolved to a synced lead): release their
    waiting records to that lead. The caller holds the visitor's row lock."""
    if enabled():
        _release(visitor)


def cookie_changed(visitor, *, now: datetime) -> None:
    """A visitor who is a lead already brings a new Munchkin cookie (cleared cookies, another
    browser): associate it with their lead too. The caller holds the visitor's row lock."""
    if enabled() and visitor.email and visitor.marketo_cookie:
        cookie = {"cookie": visitor.marketo_cookie}
        _save([_record(visitor, visitor.site_id, kind=Kind.COOKIE, payload=cookie, now=now)])


def _told(visitor, site_id, told, *, email_before, now) -> list[OutboxRecord]:
    if not visitor.email:
        # Marketo finds and creates leads by email; until then what they told stays with them.
        return []
    records = []
    became_lead = visitor.email.lower() != (email_before or "").lower()
    told_now = visitor.attributes if became_lead else told
    fields = {k: v for k, v in told_now.items() if k != "email"}
    if not fields and not became_lead:
        return []  # the email they had already, nothing new
    records.append(
        _record(
            visitor,
            site_id,
            kind=Kind.LEAD,
            payload={
                "email": visitor.email,
                "attributes": fields,
            },
            now=now,
        )
    )
    if became_lead:
        if visitor.marketo_cookie:
            records.append(
                _record(
                    visitor,
                    site_id,
                    kind=Kind.COOKIE,
                    payload={"cookie": visitor.marketo_cookie},
                    now=now,
                )
            )
        _release(visitor)
    return records


def _release(visitor) -> int:
    key = lead_key_for(visitor)
    if not key:
        return 0
    released = OutboxRecord.objects.filter(visitor=visitor, status=Status.WAITING).update(
        status=Status.PENDING, lead_key=key
    )
    if released:
        transaction.on_commit(kick)
    return released


def _locked_lead_key(visitor) -> str:
    """An anonymous visitor's key, read again under their row lock: if another conversation of
    theirs is giving an email right now, its release waits for these records (or they see it)."""
    from widget.models import Visitor

    row = Visitor.objects.select_for_update().filter(pk=visitor.pk).values("email").first()
    if row and row["email"]:
        visitor.email = row["email"]
    return lead_key_for(visitor)


def _event_records(conversation, event, key, now) -> list[OutboxRecord]:
    what = EVENTS[str(event.kind)]
    data = event.data or {}
    dialogue = conversation.dialogue
    transcript = transcript_url(conversation)
    attributes = {
        "dialogueId": conversation.dialogue_id,
        "dialogueVersion": conversation.version.number,
        "pageUrl": conversation.page_url,
        "transcriptUrl": transcript,
        "conversationId": str(conversation.pk),
    }
    if what == "goal":
        attributes["goalName"] = data.get("goal", "")
    meeting_id = data.get("meeting_id", "")
    if what == "meeting":
        attributes["meetingTime"] = data.get("start", "")
        attributes["meetingId"] = meeting_id
    site_id, visitor = conversation.site_id, conversation.visitor
    common = {"key": key, "conversation": conversation, "now": now}
    records = [
        _record(
            visitor,
            site_id,
            kind=Kind.ACTIVITY,
            payload={
                "type": what,
                "activityDate": _iso(now),
                "primary": dialogue.name,
                "attributes": attributes,
                "meeting_id": meeting_id,
            },
            **common,
        )
    ]
    facts = {
        "dialogue": dialogue.name,
        "goal": data.get("goal", ""),
        "page_url": conversation.page_url,
        "transcript_url": transcript,
        "meeting_time": data.get("start", ""),
    }
    for action in _actions(conversation.dialogue_id, what, data.get("goal", "")):
        if action.program_id:
            records.append(
                _record(
                    visitor,
                    site_id,
                    kind=Kind.PROGRAM_STATUS,
                    payload={
                        "program_id": action.program_id,
                        "program_name": action.program_name,
                        "status": action.program_status,
                    },
                    **common,
                )
            )
        if action.campaign_id:
            tokens = []
            for token in action.tokens:
                value = token.get("value", "")
                if value in LATE_TOKENS:
                    tokens.append({"name": token["name"], "bind": value})
                else:
                    tokens.append({"name": token["name"], "value": str(facts.get(value, ""))})
            records.append(
                _record(
                    visitor,
                    site_id,
                    kind=Kind.CAMPAIGN,
                    payload={
                        "campaign_id": action.campaign_id,
                        "campaign_name": action.campaign_name,
                        "tokens": tokens,
                        "meeting_id": meeting_id,
                    },
                    **common,
                )
            )
    return records


def _actions(dialogue_id: int, on: str, goal: str) -> list[MarketoAction]:
    actions = MarketoAction.objects.filter(dialogue_id=dialogue_id, on=on)
    if on == "goal":
        actions = actions.filter(goal__in=("", goal))
    return list(actions)


def transcript_url(conversation) -> str:
    path = reverse("dialogues:conversation", args=[conversation.site_id, conversation.pk])
    return settings.SITE_ROOT.rstrip("/") + path


def _record(visitor, site_id, *, kind, payload, now, key=None, conversation=None) -> OutboxRecord:
    if key is None:
        key = lead_key_for(visitor)
    return OutboxRecord(
        site_id=site_id,
        visitor=visitor,
        conversation=conversation,
        lead_key=key,
        kind=kind,
        rank=OutboxRecord.RANKS.get(kind, 1),
        call_group=call_group(kind, payload),
        payload=payload,
        status=Status.PENDING if key else Status.WAITING,
        next_attempt_at=now,
        created_at=now,
    )


def call_group(kind: str, payload: dict) -> str:
    """Records with the same group can go in the same Marketo call: "<kind>", or for program
    statuses and campaign requests "<kind>:<digest of what the call says>" (one program and
    status; one campaign and its tokens, with the meeting when a token is filled in at sending,
    as it differs from meeting to meeting)."""
    if kind == Kind.PROGRAM_STATUS:
        said = [payload["program_id"], payload["status"]]
    elif kind == Kind.CAMPAIGN:
        late = any("bind" in t for t in payload["tokens"])
        said = [payload["campaign_id"], payload["tokens"], payload["meeting_id"] if late else ""]
    else:
        return kind
    digest = hashlib.sha256(json.dumps(said, sort_keys=True).encode()).hexdigest()[:40]
    return f"{kind}:{digest}"


def _save(records: list[OutboxRecord]) -> None:
    if not records:
        return
    OutboxRecord.objects.bulk_create(records)
    if any(r.status == Status.PENDING for r in records):
        transaction.on_commit(kick)


# Chat events close together start one delivery, not one each.
KICK_KEY = "marketo_sync:outbox:kick"
KICK_DELAY_SECONDS = 2


def kick() -> None:
    """Start a delivery soon (after the transaction that wrote records has committed). In the
    embedded mode (Celery eager, no worker) nothing is started: a request must not wait on
    Marketo; deliveries need a worker (docs/marketo-sync.md)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return
    if cache.add(KICK_KEY, 1, timeout=KICK_DELAY_SECONDS):
        from marketo_sync.tasks import deliver_outbox

        deliver_outbox.apply_async(countdown=KICK_DELAY_SECONDS)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
