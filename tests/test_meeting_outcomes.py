"""Whether a meeting took place, and cancelling one, from the meeting's page and the list.

Personas: Maya is Acme's marketing admin, Mia a marketing user of Acme, Alex and Bea Acme's
sales agents."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from meetings import outcomes
from meetings.models import Meeting
from tests.conftest import make_agent
from tests.meeting_factories import make_meeting

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

HOUR = timedelta(hours=1)


@pytest.fixture
def bea(acme):
    return make_agent(acme, "bea")


@pytest.fixture
def ended(acme, alex):
    """Alex's meeting with Raj, over an hour ago, not marked."""
    return make_meeting(acme, alex, start=timezone.now() - 2 * HOUR, lead_email="raj@smallco.io")


@pytest.fixture
def upcoming(acme, alex):
    return make_meeting(acme, alex, start=timezone.now() + 24 * HOUR, lead_email="ann@bigco.com")


def stored(meeting) -> tuple:
    meeting.refresh_from_db()
    return (
        meeting.status,
        meeting.outcome,
        meeting.outcome_marked_at,
        meeting.outcome_marked_by_id,
        meeting.cancelled_at,
    )


def outcome_url(meeting) -> str:
    return f"/sites/{meeting.site_id}/meetings/{meeting.pk}/outcome/"


def detail_url(meeting) -> str:
    return f"/sites/{meeting.site_id}/meetings/{meeting.pk}/"


def cancel_url(meeting) -> str:
    return f"/sites/{meeting.site_id}/meetings/{meeting.pk}/cancel/"


# --- the service --------------------------------------------------------------------------------


def test_an_ended_meeting_is_marked_and_unmarked(ended, alex):
    now = timezone.now()

    meeting = outcomes.mark_outcome(meeting_id=ended.pk, outcome="no_show", by=alex, now=now)

    assert (meeting.outcome, meeting.outcome_marked_at, meeting.outcome_marked_by) == (
        "no_show",
        now,
        alex,
    )
    assert stored(ended)[1:4] == ("no_show", now, alex.pk)

    outcomes.mark_outcome(meeting_id=ended.pk, outcome="", by=alex, now=now + HOUR)
    assert stored(ended)[1:4] == ("", None, None)


def test_marking_the_same_outcome_again_keeps_who_marked_it_and_when(ended, alex, maya):
    first = timezone.now()
    outcomes.mark_outcome(meeting_id=ended.pk, outcome="happened", by=alex, now=first)

    outcomes.mark_outcome(meeting_id=ended.pk, outcome="happened", by=maya, now=first + HOUR)

    assert stored(ended)[1:4] == ("happened", first, alex.pk)


@pytest.mark.parametrize(
    ("start", "status", "outcome", "message"),
    [
        (
            HOUR,
            "booked",
            "happened",
            "This meeting has not ended yet: mark whether it happened once it is over.",
        ),
        # Under way: it has started but not ended.
        (
            -10 * timedelta(minutes=1),
            "booked",
            "no_show",
            "This meeting has not ended yet: mark whether it happened once it is over.",
        ),
        (
            -2 * HOUR,
            "cancelled",
            "happened",
            "This meeting was cancelled: there is no outcome to mark.",
        ),
        (-2 * HOUR, "booked", "maybe", "'maybe' is not an outcome of a meeting."),
    ],
)
def test_it_refuses_what_cannot_be_marked_and_changes_nothing(
    acme, alex, start, status, outcome, message
):
    meeting = make_meeting(acme, alex, start=timezone.now() + start, status=status)
    before = stored(meeting)

    with pytest.raises(outcomes.CannotMarkOutcome) as refusal:
        outcomes.mark_outcome(meeting_id=meeting.pk, outcome=outcome, by=alex)

    assert str(refusal.value) == message
    assert stored(meeting) == before


def test_it_locks_the_meetings_row_while_marking(ended, alex):
    with CaptureQueriesContext(connection) as queries:
        outcomes.mark_outcome(meeting_id=ended.pk, outcome="happened", by=alex)

    (read,) = [q["sql"] for q in queries if 'FROM "meetings_meeting"' in q["sql"]]
    assert read.endswith("FOR UPDATE")


# --- marking from the meeting's page ------------------------------------------------------------


def test_the_agent_marks_a_no_show_without_javascript(client, alex, ended):
    client.force_login(alex)
    page = client.get(detail_url(ended)).content.decode()
    assert "Save outcome" in page
    assert '<span class="status status-awaiting_outcome" id="outcome-status">' in page

    response = client.post(outcome_url(ended), {"outcome": "no_show"})

    assert (response.status_code, response.url) == (302, detail_url(ended))
    assert stored(ended)[1] == "no_show" and stored(ended)[3] == alex.pk
    page = client.get(response.url).content.decode()
    assert "The meeting with raj@smallco.io is now marked “No-show”." in page
    assert '<span class="status status-no_show" id="outcome-status">No-show</span>' in page
    assert '<input type="radio" name="outcome" value="no_show" checked>' in page
    assert "Marked " in page and " by Alex Agent." in page


def test_marking_with_htmx_swaps_the_outcome_section(client, alex, ended):
    client.force_login(alex)

    response = client.post(outcome_url(ended), {"outcome": "happened"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    section = response.content.decode()
    assert section.lstrip().startswith('<section id="meeting-outcome"')
    assert '<span class="status status-happened" id="outcome-status">Happened</span>' in section
    assert '<span class="ok" role="status">Saved.</span>' in section
    assert stored(ended)[1] == "happened"


def test_marking_from_the_list_swaps_the_row(client, alex, ended):
    client.force_login(alex)
    list_url = f"/sites/{ended.site_id}/meetings/?q=raj"

    response = client.post(
        outcome_url(ended),
        {"outcome": "no_show", "row": "1", "next": list_url},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    row = response.content.decode()
    assert row.lstrip().startswith(f'<tr id="meeting-{ended.pk}">')
    assert '<span class="status status-no_show">No-show</span>' in row
    # What is left to do from the row: say it happened after all.
    assert "Mark the meeting with raj@smallco.io as happened" in row
    assert "as no-show" not in row
    assert f'name="next" value="{list_url}"' in row
    assert stored(ended)[1] == "no_show"


def test_marking_from_the_list_without_javascript_goes_back_to_the_list(client, alex, ended):
    client.force_login(alex)
    list_url = f"/sites/{ended.site_id}/meetings/?q=raj"

    response = client.post(
        outcome_url(ended), {"outcome": "happened", "row": "1", "next": list_url}
    )

    assert (response.status_code, response.url) == (302, list_url)
    assert stored(ended)[1] == "happened"


def test_it_goes_back_only_to_its_own_pages(client, alex, ended):
    client.force_login(alex)

    response = client.post(
        outcome_url(ended), {"outcome": "happened", "next": "https://evil.test/phish"}
    )

    assert response.url == detail_url(ended)


def test_a_site_admin_marks_any_agents_meeting(client, maya, ended):
    client.force_login(maya)
    assert "Save outcome" in client.get(detail_url(ended)).content.decode()

    assert client.post(outcome_url(ended), {"outcome": "no_show"}).status_code == 302
    assert stored(ended)[1:4:2] == ("no_show", maya.pk)


def test_a_marketing_user_sees_the_outcome_but_cannot_mark_it(client, mia, ended):
    client.force_login(mia)
    page = client.get(detail_url(ended)).content.decode()
    assert "Ended, not marked yet" in page
    assert "Save outcome" not in page
    assert "The meeting's agent or a site admin marks whether it took place." in page
    before = stored(ended)

    assert client.post(outcome_url(ended), {"outcome": "no_show"}).status_code == 403
    assert stored(ended) == before


def test_another_agent_gets_nothing(client, bea, ended):
    client.force_login(bea)
    before = stored(ended)

    assert client.get(detail_url(ended)).status_code == 404
    assert client.post(outcome_url(ended), {"outcome": "no_show"}).status_code == 404
    assert client.post(cancel_url(ended)).status_code == 404
    assert stored(ended) == before


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"outcome": "maybe"}, "Select a valid choice. maybe is not one of the available choices."),
        ({}, "Choose whether the meeting happened."),
    ],
)
def test_bad_input_is_refused_with_the_form_error(client, alex, ended, data, error):
    client.force_login(alex)
    before = stored(ended)

    response = client.post(outcome_url(ended), data)

    assert response.status_code == 400
    assert error in response.content.decode()
    assert "Nothing was changed." in response.content.decode()
    assert stored(ended) == before


def test_an_upcoming_meeting_cannot_be_marked(client, alex, upcoming):
    client.force_login(alex)
    page = client.get(detail_url(upcoming)).content.decode()
    assert "Save outcome" not in page
    assert "Whether it took place can be marked once it has ended." in page
    before = stored(upcoming)

    response = client.post(outcome_url(upcoming), {"outcome": "happened"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 400  # the section with the error, swapped in by hx-on
    assert "This meeting has not ended yet" in response.content.decode()
    assert stored(upcoming) == before


def test_a_refused_row_mark_shows_the_error_in_the_row(client, alex, acme):
    cancelled = make_meeting(
        acme, alex, start=timezone.now() - 3 * HOUR, status=Meeting.Status.CANCELLED
    )
    client.force_login(alex)

    response = client.post(
        outcome_url(cancelled), {"outcome": "happened", "row": "1"}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 400
    row = response.content.decode()
    assert row.lstrip().startswith(f'<tr id="meeting-{cancelled.pk}">')
    assert (
        '<span class="error" role="alert">This meeting was cancelled: there is no outcome to '
        "mark.</span>"
    ) in row
    assert stored(cancelled)[1] == ""


# --- cancelling ---------------------------------------------------------------------------------


def test_the_agent_cancels_an_upcoming_meeting_after_confirming(
    client, alex, upcoming, django_capture_on_commit_callbacks
):
    client.force_login(alex)
    page = client.get(detail_url(upcoming)).content.decode()
    assert f'href="{cancel_url(upcoming)}"' in page

    confirm = client.get(cancel_url(upcoming)).content.decode()
    assert "Cancel the meeting with Ann Lee?" in confirm
    assert "Cancel the meeting</button>" in confirm
    assert stored(upcoming)[0] == "booked"  # asking is not cancelling

    with django_capture_on_commit_callbacks() as after_commit:
        response = client.post(cancel_url(upcoming), {"reason": "I am ill, sorry."})

    assert (response.status_code, response.url) == (302, detail_url(upcoming))
    upcoming.refresh_from_db()
    assert (upcoming.status, upcoming.cancelled_by, upcoming.cancel_reason) == (
        "cancelled",
        alex,
        "I am ill, sorry.",
    )
    assert len(after_commit) == 2  # the calendar event and the emails, queued after commit
    page = client.get(response.url).content.decode()
    assert "The meeting with ann@bigco.com is cancelled." in page
    assert "by Alex Agent: “I am ill, sorry.”" in page
    assert f'href="{cancel_url(upcoming)}"' not in page


def test_a_meeting_that_has_started_is_not_cancelled(client, maya, ended):
    client.force_login(maya)
    assert f'href="{cancel_url(ended)}"' not in client.get(detail_url(ended)).content.decode()
    before = stored(ended)

    response = client.post(cancel_url(ended), {"reason": ""})

    assert response.status_code == 400
    assert "This meeting has already started" in response.content.decode()
    assert stored(ended) == before


def test_a_too_long_reason_is_refused(client, alex, upcoming):
    client.force_login(alex)
    before = stored(upcoming)

    response = client.post(cancel_url(upcoming), {"reason": "x" * 501})

    assert response.status_code == 400
    assert "Ensure this value has at most 500 characters (it has 501)." in response.content.decode()
    assert stored(upcoming) == before


def test_a_marketing_user_cannot_cancel(client, mia, upcoming):
    client.force_login(mia)
    assert f'href="{cancel_url(upcoming)}"' not in client.get(detail_url(upcoming)).content.decode()
    before = stored(upcoming)

    assert client.get(cancel_url(upcoming)).status_code == 403
    assert client.post(cancel_url(upcoming), {"reason": ""}).status_code == 403
    assert stored(upcoming) == before
