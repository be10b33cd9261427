"""The emails a booking sends: the visitor's invitation (the site's template plus an .ics), and
the alert when a meeting could not be put on the agent's calendar."""

import logging
from email.mime.text import MIMEText

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone
from icalendar import Calendar, Event, vCalAddress, vText

from calendars.display import when_label, zone_named
from dialogues.models import Membership
from meetings.invitation_text import InvitationContext, render
from meetings.models import (
    DEFAULT_INVITATION_BODY,
    DEFAULT_INVITATION_SUBJECT,
    InvitationTemplate,
    Meeting,
)

log = logging.getLogger(__name__)
PRODID = "-//DynChat//Meeting booking//EN"


def lead_name(meeting: Meeting) -> str:
    return " ".join(p for p in (meeting.lead_first_name, meeting.lead_last_name) if p)


def event_summary(meeting: Meeting) -> str:
    who = lead_name(meeting) or meeting.lead_email
    company = f" ({meeting.lead_company})" if meeting.lead_company else ""
    return f"{meeting.site.name}: meeting with {who}{company}"


def event_description(meeting: Meeting) -> str:
    return (
        f"Booked in the {meeting.site.name} chat by {meeting.lead_email}.\n"
        f"Visitor's time: {when_label(meeting.start, _zone(meeting))}."
    )


def _zone(meeting: Meeting):
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
    )


def ics(meeting: Meeting, *, method: str = "REQUEST") -> bytes:
    """The meeting as iCalendar. Its UID is the provider event's iCalUID when there is one, so
    a calendar that also got the provider's own invitation merges the two."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", method)
    event = Event()
    event.add("uid", meeting.ical_uid or f"{meeting.pk.hex}@dynchat")
    event.add("dtstamp", timezone.now())
    event.add("dtstart", meeting.start)
    event.add("dtend", meeting.end)
    event.add("sequence", 0)
    event.add("status", "CONFIRMED")
    event.add("summary", f"Meeting with {meeting.agent_name}")
    event.add("description", event_description(meeting))
    if meeting.join_url:
        event.add("location", meeting.join_url)
        event.add("url", meeting.join_url)
    organizer = vCalAddress(f"mailto:{meeting.agent_email}")
    organizer.params["cn"] = vText(meeting.agent_name)
    event["organizer"] = organizer
    attendee = vCalAddress(f"mailto:{meeting.lead_email}")
    attendee.params.update(
        {
            "cn": vText(lead_name(meeting) or meeting.lead_email),
            "role": vText("REQ-PARTICIPANT"),
            "partstat": vText("NEEDS-ACTION"),
            "rsvp": vText("TRUE"),
        }
    )
    event.add("attendee", attendee, encode=0)
    cal.add_component(event)
    return cal.to_ical()


def _calendar_part(data: bytes, method: str) -> MIMEText:
    # The explicit part carries method=REQUEST, which Outlook needs to offer Accept/Decline.
    part = MIMEText(data.decode(), "calendar", "utf-8")
    part.set_param("method", method)
    part.add_header("Content-Disposition", "attachment", filename="invite.ics")
    return part


def invitation_email(meeting: Meeting) -> EmailMessage:
    template = InvitationTemplate.objects.filter(site_id=meeting.site_id).first()
    subject = template.subject if template else DEFAULT_INVITATION_SUBJECT
    body = template.body if template else DEFAULT_INVITATION_BODY
    values = context(meeting)
    message = EmailMessage(
        # A subject is one line whatever the template's tokens hold.
        subject=" ".join(render(subject, values).split()),
        body=render(body, values),
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
