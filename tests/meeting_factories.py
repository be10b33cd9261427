"""Meetings at chosen times, for the meetings list, outcome and browser tests.

Most of those tests are about time (a meeting that ended 47 or 49 hours ago), which booking
through the widget cannot give: it books only future free times. So these rows are written
directly, with the fields the booking service fills in; the tests that need a meeting with a
real conversation behind it book one through the widget (tests/test_booking.py's helpers).
"""

from datetime import datetime, timedelta

from meetings.models import Meeting


def make_meeting(
    site,
    agent,
    *,
    start: datetime,
    minutes: int = 30,
    lead_email: str = "ann@bigco.com",
    first_name: str = "Ann",
    last_name: str = "Lee",
    company: str = "BigCo",
    dialogue=None,
    **fields,
) -> Meeting:
    """A meeting of `agent` on `site` from `start`, `minutes` long (or until `end=`)."""
    end = fields.pop("end", None) or start + timedelta(minutes=minutes)
    return Meeting.objects.create(
        site=site,
        agent=agent,
        agent_name=agent.get_full_name(),
        agent_email=agent.email,
        dialogue=dialogue,
        lead_email=lead_email,
        lead_first_name=first_name,
        lead_last_name=last_name,
        lead_company=company,
        visitor_time_zone=fields.pop("visitor_time_zone", "Europe/Paris"),
        start=start,
        end=end,
        calendar_status=fields.pop("calendar_status", Meeting.CalendarStatus.BUILTIN),
        **fields,
    )
