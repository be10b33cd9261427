"""Erasing a person at their request: everything DynChat holds about one email address.

`erase_person()` is the one write path (the privacy page and `manage.py erase_person` call
it); `erasure_preview()` counts what it would erase, and `was_erased()` answers "was this
address erased?" afterwards without the address being kept.

Who the person is, within the site (the page) or on every site (the command):
- the visitors who gave the email (any case), and the still anonymous visitors whose Marketo
  cookie resolved to the person's lead (a synced lead with that email, or the lead id
  learnt from an upsert with it);
- the conversations of those visitors, and any conversation in which the email was captured
  or a meeting was booked with it (a visitor who later gave another address);
- outbox records of those visitors and conversations, or for the lead (the email as lead
  key, or "id:<lead id>");
- meetings of those conversations or booked with the email.

What happens to it, in one transaction: visitors, conversations, transcript lines, events and
outbox records are deleted; meetings are kept for the agents' counts with the person's
details blanked (email, names, company, cancellation reason); the synced Marketo lead and its
activities are deleted (instance-wide data, but the same person), and so is the Marketo id
learnt for the email, unless another site's records still need it to be sent. Events are
counted into the daily report tables first, so reports keep their anonymous figures.

Not here: Marketo itself (the next sync brings back a lead that is still there) and the
agents' calendars (the meeting's event and its invitation). docs/retention.md says so.
"""

import hashlib
import hmac
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from dialogues.models import Dialogue, Site
from marketo_sync.models import Activity, KnownLead, Lead, OutboxRecord
from meetings.models import Meeting
from reports import rollup
from reports.models import Erasure
from reports.retention import counted_list, delete_by_ids, delete_rows
from widget.models import Conversation, ConversationEvent, TranscriptEntry, Visitor

COMMAND_NAME = "manage.py erase_person"

# The kinds an erasure counts, in the order pages and the command show them: (singular, plural).
KINDS = {
    "visitors": ("visitor", "visitors"),
    "conversations": ("conversation", "conversations"),
    "transcript_entries": ("transcript line", "transcript lines"),
    "events": ("chat event", "chat events"),
    "outbox_records": ("Marketo outbox record", "Marketo outbox records"),
    "meetings_anonymised": ("meeting anonymised", "meetings anonymised"),
    "marketo_leads": ("synced Marketo lead", "synced Marketo leads"),
    "marketo_activities": ("synced Marketo activity", "synced Marketo activities"),
    "known_leads": ("learnt Marketo id", "learnt Marketo ids"),
}


class InvalidErasure(ValueError):
    """The request cannot be carried out as given (a bad email, a reference naming it)."""


def normalised_email(email: str) -> str:
    """The address as DynChat stores it (trimmed, lower case). Raises InvalidErasure."""
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidErasure("Enter a valid email address.") from None
    return email


def email_digest(email: str, *, key: str | None = None) -> str:
    """HMAC-SHA256 of the lower-case address keyed by SECRET_KEY (hex): what an Erasure keeps.
    Without the key the digest cannot be turned back into the address by trying addresses."""
    key = settings.SECRET_KEY if key is None else key
    message = email.strip().lower().encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def was_erased(email: str, *, site: Site | None = None) -> list[Erasure]:
    """The erasures of this address, newest first: every one, or with `site` those that
    covered that site (its own, and the command's erasures on every site). Digests made with
    SECRET_KEY_FALLBACKS count too, so a rotated key does not forget them."""
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    erasures = Erasure.objects.filter(email_digest__in=[email_digest(email, key=k) for k in keys])
    if site is not None:
        erasures = erasures.filter(Q(site=site) | Q(site__isnull=True))
    return list(erasures.select_related("site").order_by("-created_at", "-pk"))


# --- finding the person -----------------------------------------------------------------------


@dataclass
class _Person:
    """The rows that are one person's, by id."""

    email: str
    site: Site | None
    lead_ids: set[int] = field(default_factory=set)
    visitor_ids: set[int] = field(default_factory=set)
    conversation_ids: set = field(default_factory=set)

    def lead_keys(self) -> list[str]:
        return [self.email, *(f"id:{pk}" for pk in sorted(self.lead_ids))]

    def scoped(self, rows: QuerySet) -> QuerySet:
        return rows.filter(site=self.site) if self.site is not None else rows

    def outbox_records(self) -> QuerySet:
        return self.scoped(OutboxRecord.objects.all()).filter(
            Q(visitor_id__in=self.visitor_ids)
            | Q(conversation_id__in=self.conversation_ids)
            | Q(lead_key__in=self.lead_keys())
        )

    def meetings(self) -> QuerySet:
        return (
            self.scoped(Meeting.objects.all())
            .alias(email_lower=Lower("lead_email"))
            .filter(Q(conversation_id__in=self.conversation_ids) | Q(email_lower=self.email))
        )

    def marketo_leads(self) -> QuerySet:
        return Lead.objects.alias(email_lower=Lower("email")).filter(
            Q(email_lower=self.email) | Q(pk__in=self.lead_ids)
        )

    def known_leads(self) -> QuerySet:
        """The Marketo ids learnt for the person's lead keys; on a site-scoped erasure, not
        those another site's outbox records still need to be delivered (that site keeps the
        person's data, and the address with it)."""
        known = KnownLead.objects.filter(lead_key__in=self.lead_keys())
        if self.site is not None:
            needed = (
                OutboxRecord.objects.filter(lead_key__in=self.lead_keys())
                .exclude(site=self.site)
                .values("lead_key")
            )
            known = known.exclude(lead_key__in=needed)
        return known


def _find(email: str, site: Site | None, *, lock: bool = False) -> _Person:
    person = _Person(email=email, site=site)
    person.lead_ids = set(
        Lead.objects.alias(email_lower=Lower("email"))
        .filter(email_lower=email)
        .values_list("pk", flat=True)
    ) | set(KnownLead.objects.filter(lead_key=email).values_list("lead_id", flat=True))
    # Visitor.email is stored in lower case; Lower() also finds a row written otherwise.
    visitors = person.scoped(Visitor.objects.all()).alias(email_lower=Lower("email"))
    visitors = visitors.filter(
        Q(email_lower=email) | Q(email="", marketo_lead_id__in=person.lead_ids)
    )
    if lock:
        # A request of theirs under way (an answer, identify) finishes first, or waits and
        # then finds nothing.
        visitors = visitors.select_for_update()
    person.visitor_ids = set(visitors.values_list("pk", flat=True))
    conversations = set(
        Conversation.objects.filter(visitor_id__in=person.visitor_ids).values_list("pk", flat=True)
    )
    # Conversations in which the address was typed (the index on dialogue, kind, time).
    dialogues = person.scoped(Dialogue.objects.all()).values_list("pk", flat=True)
    conversations |= set(
        ConversationEvent.objects.filter(
            dialogue_id__in=list(dialogues),
            kind=ConversationEvent.Kind.FIELD_CAPTURED,
            data__value__iexact=email,
        ).values_list("conversation_id", flat=True)
    )
    conversations |= set(
        person.scoped(Meeting.objects.all())
        .alias(email_lower=Lower("lead_email"))
        .filter(email_lower=email, conversation__isnull=False)
        .values_list("conversation_id", flat=True)
    )
    if lock and conversations:
        conversations = set(
            Conversation.objects.filter(pk__in=conversations)
            .select_for_update()
            .values_list("pk", flat=True)
        )
    person.conversation_ids = conversations
    return person


# --- previewing and erasing ---------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    counts: dict[str, int]
    # Booked meetings still to come: their agent's calendar and the visitor's invitation keep
    # the address; cancel them first if they will not take place.
    upcoming_meetings: int


def erasure_preview(email: str, *, site: Site | None = None) -> Preview:
    """What erase_person() would erase now, by kind; writes nothing."""
    person = _find(normalised_email(email), site)
    ids = person.conversation_ids
    counts = {
        "visitors": len(person.visitor_ids),
        "conversations": len(ids),
        "transcript_entries": TranscriptEntry.objects.filter(conversation_id__in=ids).count(),
        "events": ConversationEvent.objects.filter(conversation_id__in=ids).count(),
        "outbox_records": person.outbox_records().count(),
        "meetings_anonymised": person.meetings().count(),
        "marketo_leads": person.marketo_leads().count(),
        "marketo_activities": Activity.objects.filter(
            lead_id__in=person.marketo_leads().values("pk")
        ).count(),
        "known_leads": person.known_leads().count(),
    }
    upcoming = (
        person.meetings().filter(status=Meeting.Status.BOOKED, end__gt=timezone.now()).count()
    )
    return Preview(counts=counts, upcoming_meetings=upcoming)


def erase_person(
    email: str,
    *,
    site: Site | None = None,
    requested_by=None,
    requested_by_name: str = "",
    reference: str = "",
) -> Erasure:
    """Erase everything DynChat holds about `email` (on `site`, or on every site) and record
    the erasure: its counts, who asked and their reference, and a keyed digest of the address,
    never the address. Raises InvalidErasure for a bad address, or a reference that holds it
    (the log would keep what was erased), before anything changes.

    Concurrency: the person's visitors and conversations are locked first, so a chat step of
    theirs under way commits before (and is erased) or fails after (nothing left to answer)."""
    email = normalised_email(email)
    reference = (reference or "").strip()
    if email in reference.lower():
        raise InvalidErasure("Leave the address out of the reference: it would be kept.")
    if requested_by is not None and not requested_by_name:
        requested_by_name = requested_by.get_full_name() or requested_by.get_username()
    # Count their events into the daily report tables before they go (its own transactions).
    rollup.roll_up()
    with transaction.atomic():
        person = _find(email, site, lock=True)
        counts = _erase(person)
        return Erasure.objects.create(
            site=site,
            email_digest=email_digest(email),
            requested_by=requested_by,
            requested_by_name=requested_by_name or COMMAND_NAME,
            reference=reference[: Erasure._meta.get_field("reference").max_length],
            counts=counts,
        )


def _erase(person: _Person) -> dict[str, int]:
    """Delete and blank the person's rows, children before parents. The caller holds the
    transaction and the locks."""
    conversations = list(person.conversation_ids)
    counts = dict.fromkeys(KINDS, 0)
    counts["outbox_records"] = delete_rows(person.outbox_records())
    counts["meetings_anonymised"] = person.meetings().update(
        lead_email="",
        lead_first_name="",
        lead_last_name="",
        lead_company="",
        cancel_reason="",
        conversation=None,
        updated_at=timezone.now(),
    )
    counts["events"] = delete_rows(
        ConversationEvent.objects.filter(conversation_id__in=conversations)
    )
    counts["transcript_entries"] = delete_rows(
        TranscriptEntry.objects.filter(conversation_id__in=conversations)
    )
    # Records of other visitors may name these conversations or visitors: none do today
    # (records are their visitor's), but a dangling reference must not block the delete.
    OutboxRecord.objects.filter(conversation_id__in=conversations).update(conversation=None)
    counts["conversations"] = delete_by_ids(Conversation, conversations)
    OutboxRecord.objects.filter(visitor_id__in=person.visitor_ids).update(visitor=None)
    counts["visitors"] = delete_by_ids(Visitor, list(person.visitor_ids))
    counts["known_leads"] = delete_rows(person.known_leads())
    leads = list(person.marketo_leads().values_list("pk", flat=True))
    counts["marketo_activities"] = delete_rows(Activity.objects.filter(lead_id__in=leads))
    counts["marketo_leads"] = delete_by_ids(Lead, leads)
    return counts


def describe(counts: dict[str, int]) -> str:
    """ "1 visitor, 3 conversations, ..." for the kinds with a count; "nothing" if none."""
    return counted_list(counts, KINDS)
