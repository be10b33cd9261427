"""The emails a visitor gets about their meeting: the invitation (the site's template plus an
.ics, with the link to cancel), the cancellation (an .ics that takes the meeting out of their
calendar); and the alert when a meeting could not be put on the agent's calendar.

Each visitor email is sent at most once per meeting, under the meeting's row lock, and stamped.
"""

import logging
from email.mime.text import MIMEText

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.signing import b64_encode
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from icalendar import Calendar, Event, vCalAddress, vText

from calendars.display import when_label, zone_named
from dialogues.models import Membership
from meetings.invitation_text import (
    InvitationContext,
    format_date,
    format_time,
    render_body,
    render_subject,
)
from meetings.models import (
    DEFAULT_INVITATION_BODY,
    DEFAULT_INVITATION_SUBJECT,
    InvitationTemplate,
    Meeting,
)

log = logging.getLogger(__name__)
PRODID = "-//DynChat//Meeting booking//EN"
# The invitation is SEQUENCE 0; the cancellation must be higher for calendars to apply it.
CANCEL_SEQUENCE = 1
CANCEL_TOKEN_SALT = "dynchat.meetings.cancel"  # noqa: S105 - an HMAC's salt, not a secret


# --- the cancel link -----------------------------------------------------------------------------


def _cancel_signature(meeting_id, secret: str) -> str:
    mac = salted_hmac(CANCEL_TOKEN_SALT, str(meeting_id), secret, algorithm="sha256")
    return b64_encode(mac.digest()).decode()


def cancel_token(meeting_id) -> str:
    """The secret part of the meeting's cancel link: an HMAC of its id (43 URL-safe
    characters). Nothing is stored: whoever holds the invitation holds the link."""
    return _cancel_signature(meeting_id, settings.SECRET_KEY)


def cancel_token_is_valid(meeting_id, token: str) -> bool:
    """Whether `token` is the meeting's, compared in constant time. Links signed with a key in
    SECRET_KEY_FALLBACKS still work, so rotating SECRET_KEY does not break sent invitations."""
    return any(
        constant_time_compare(token, _cancel_signature(meeting_id, secret))
        for secret in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)
    )


def cancel_url(meeting: Meeting) -> str:
    path = reverse("meetings:visitor_cancel", args=[meeting.pk, cancel_token(meeting.pk)])
    return settings.SITE_ROOT.rstrip("/") + path


def written_time(moment, zone) -> str:
    """'Monday, 23 November 2026 at 9:00 AM (Europe/Paris)': emails are read days later, so
    the year is in it (calendars.display's labels are for the widget, where it is not)."""
    local = moment.astimezone(zone)
    return f"{format_date(local)} at {format_time(local)} ({zone.key})"


# --- the invitation ------------------------------------------------------------------------------


def lead_name(meeting: Meeting) -> str:
    return " ".join(p for p in (meeting.lead_first_name, meeting.lead_last_name) if p)


def event_summary(meeting: Meeting) -> str:
    who = lead_name(meeting) or meeting.lead_email
    company = f" ({meeting.lead_company})" if meeting.lead_company else ""
    return f"{meeting.site.name}: meeting with {who}{company}"


def event_description(meeting: Meeting) -> str:
    return (
        f"Booked in the {meeting.site.name} chat by {meeting.lead_email}.\n"
        f"Visitor's time: {when_label(meeting.start, visitor_zone(meeting))}."
    )


def visitor_zone(meeting: Meeting):
    return zone_named(meeting.visitor_time_zone) or zone_named("UTC")


def context(meeting: Meeting) -> InvitationContext:
    return InvitationContext(
        person_first_name=meeting.lead_first_name,
        person_last_name=meeting.lead_last_name,
        person_email=meeting.lead_email,
        company_name=meeting.lead_company,
        agent_name=meeting.agent_name,
        agent_email=meeting.agent_email,
        start=meeting.start,
        end=meeting.end,
        time_zone=meeting.visitor_time_zone,
        join_url=meeting.join_url,
        cancel_url=cancel_url(meeting),
    )


def ics(meeting: Meeting, *, method: str = "REQUEST") -> bytes:
    """The meeting as iCalendar. Its UID is the provider event's iCalUID when there is one, so
    a calendar that also got the provider's own invitation merges the two.

    METHOD:CANCEL (the visitor's cancellation) carries the same UID, STATUS:CANCELLED and a
    higher SEQUENCE, which is what makes a calendar take the invited event out."""
    cancelling = method == "CANCEL"
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", method)
    event = Event()
    event.add("uid", meeting.ical_uid or f"{meeting.pk.hex}@dynchat")
    event.add("dtstamp", timezone.now())
    event.add("dtstart", meeting.start)
    event.add("dtend", meeting.end)
    event.add("sequence", CANCEL_SEQUENCE if cancelling else 0)
    event.add("status", "CANCELLED" if cancelling else "CONFIRMED")
    event.add("summary", f"Meeting with {meeting.agent_name}")
    description = event_description(meeting)
    if method == "REQUEST":
        # Only the visitor's copy: the agent's provider event and the hand-add .ics must not
        # hand the visitor's cancel link around.
        description += f"\nCan't make it? Cancel the meeting: {cancel_url(meeting)}"
    event.add("description", description)
    if meeting.join_url and not cancelling:
        event.add("location", meeting.join_url)
        event.add("url", meeting.join_url)
    organizer = vCalAddress(f"mailto:{meeting.agent_email}")
    organizer.params["cn"] = vText(meeting.agent_name)
    event["organizer"] = organizer
    attendee = vCalAddress(f"mailto:{meeting.lead_email}")
    attendee.params.update(
        {"cn": vText(lead_name(meeting) or meeting.lead_email), "role": vText("REQ-PARTICIPANT")}
    )
    if not cancelling:
        attendee.params.update({"partstat": vText("NEEDS-ACTION"), "rsvp": vText("TRUE")})
    event.add("attendee", attendee, encode=0)
    cal.add_component(event)
    return cal.to_ical()


def _calendar_part(data: bytes, method: str, filename: str = "invite.ics") -> MIMEText:
    # The explicit part carries method=REQUEST (or CANCEL), which Outlook needs to offer
    # Accept/Decline, or to take the event out.
    part = MIMEText(data.decode(), "calendar", "utf-8")
    part.set_param("method", method)
    part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


def invitation_email(meeting: Meeting) -> EmailMessage:
    template = InvitationTemplate.objects.filter(site_id=meeting.site_id).first()
    subject = template.subject if template else DEFAULT_INVITATION_SUBJECT
    body = template.body if template else DEFAULT_INVITATION_BODY
    values = context(meeting)
    message = EmailMessage(
        # A subject is one line whatever the template's tokens hold.
        subject=render_subject(subject, values),
        # With the cancel link at the end when the marketer's text does not place it.
        body=render_body(body, values),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[meeting.lead_email],
        reply_to=[meeting.agent_email] if meeting.agent_email else None,
    )
    message.attach(_calendar_part(ics(meeting), "REQUEST"))
    return message


def send_invitation(meeting_id) -> bool:
    """Email the visitor their invitation, once. True when this call sent it.

    The meeting's row lock is held while sending, so two runs of the task cannot both send;
    the mark is written after the mail server took the message, so a crash in between sends
    it again on the retry (the same UID, so the calendar still shows one meeting) rather
    than never."""
    with transaction.atomic():
        meeting = (
            Meeting.objects.select_for_update(of=("self",))
            .select_related("site")
            .filter(pk=meeting_id)
            .first()
        )
        if meeting is None or meeting.invitation_sent_at or meeting.status != Meeting.Status.BOOKED:
            return False
        invitation_email(meeting).send()
        meeting.invitation_sent_at = timezone.now()
        meeting.save(update_fields=["invitation_sent_at", "updated_at"])
    return True


def send_calendar_failure(meeting_id) -> None:
    """Tell the agent and the site's admins that a meeting is not on the agent's calendar,
    with the .ics to add by hand."""
    meeting = Meeting.objects.select_related("site").filter(pk=meeting_id).first()
    if meeting is None:
        return
    admins = Membership.objects.filter(
        site_id=meeting.site_id, role=Membership.Role.ADMIN
    ).values_list("user__email", flat=True)
    recipients = sorted({e for e in (meeting.agent_email, *admins) if e})
    if not recipients:
        return
    when = when_label(meeting.start, zone_named("UTC"))
    message = EmailMessage(
        subject=f"Action needed: a meeting with {meeting.lead_email} is not on the calendar",
        body=(
            f"{meeting.lead_email} booked a meeting with {meeting.agent_name} for {when} in "
            f"the {meeting.site.name} chat, but it could not be added to "
            f"{meeting.agent_name}'s calendar:\n\n    {meeting.calendar_error}\n\n"
            "The time is held in DynChat and the visitor has their invitation. Add the "
            "attached event to the calendar by hand, and reconnect the calendar if it asks.\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
    )
    message.attach(_calendar_part(ics(meeting, method="PUBLISH"), "PUBLISH"))
    message.send()


# --- the cancellation ----------------------------------------------------------------------------


def visitor_cancellation_email(meeting: Meeting) -> EmailMessage:
    """The visitor's notice that their meeting is off. With the .ics CANCEL when they were
    invited (it takes the event out of their calendar); without one when the meeting was
    cancelled before the invitation went out, as there is nothing in their calendar."""
    when = written_time(meeting.start, visitor_zone(meeting))
    meeting_with = f"your meeting with {meeting.agent_name} on {when}"
    if meeting.cancelled_by_id is None:
        what = f"As you asked, {meeting_with} is cancelled."
    else:
        # The visitor does not know our admins: it is the agent or "the team" that cancelled.
        by = (
            meeting.agent_name
            if meeting.cancelled_by_id == meeting.agent_id
            else f"the {meeting.site.name} team"
        )
        what = f"Sorry: {meeting_with} was cancelled by {by}."
    lines = [f"Hi {meeting.lead_first_name or 'there'},", "", what]
    if meeting.cancelled_by_id is not None and meeting.cancel_reason:
        lines += ["", f"Reason: {meeting.cancel_reason}"]
    if meeting.invitation_sent_at is not None:
        lines += ["", "The attached update removes it from your calendar."]
    lines += [
        "",
        f"To find another time, reply to this email or visit {meeting.site.name} again.",
    ]
    message = EmailMessage(
        subject=" ".join(f"Cancelled: {meeting_with}".split()),
        body="\n".join(lines) + "\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[meeting.lead_email],
        reply_to=[meeting.agent_email] if meeting.agent_email else None,
    )
    if meeting.invitation_sent_at is not None:
        message.attach(_calendar_part(ics(meeting, method="CANCEL"), "CANCEL", "cancel.ics"))
    return message


def send_visitor_cancellation(meeting_id) -> bool:
    """Tell the visitor their meeting is cancelled, once. True when this call sent it.

    Under the meeting's row lock, like send_invitation: the invitation and the cancellation
    cannot cross (an invitation is only sent to a booked meeting, and cancelling takes the
    same lock), so the cancellation knows whether there is an invitation to take back."""
    with transaction.atomic():
        meeting = (
            Meeting.objects.select_for_update(of=("self",))
            .select_related("site")
            .filter(pk=meeting_id)
            .first()
        )
        if (
            meeting is None
            or meeting.status != Meeting.Status.CANCELLED
            or meeting.visitor_cancellation_sent_at
        ):
            return False
        visitor_cancellation_email(meeting).send()
        meeting.visitor_cancellation_sent_at = timezone.now()
        meeting.save(update_fields=["visitor_cancellation_sent_at", "updated_at"])
    return True
