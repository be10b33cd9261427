"""Sam, a sales agent on Acme's site, sets up his calendar page: he connects a calendar (Google
through its sign-in, or DynChat's own), sets the hours he takes meetings, and sees the times
visitors will be offered this week. A broken calendar is flagged to him and to Maya, Acme's
marketing admin, on the team page. Nobody but an agent has a calendar page."""

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import calendars.views
from calendars import providers
from calendars.models import Availability, CalendarConnection
from calendars.providers.base import AuthorizationFailed
from calendars.services import mark_needs_reconnect, save_connection
from calendars.views import week_preview
from dialogues import services
from dialogues.models import Membership
from meetings.models import Meeting
from tests.conftest import PASSWORD

pytestmark = pytest.mark.usefixtures("fast_password_hashing")
Role = Membership.Role
SETTINGS_URL = "/calendar/"
# Saturday 21 November 2026, noon UTC: the preview's "now" where a test fixes it.
SATURDAY_NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def agent_on(site, name):
    user = get_user_model().objects.create_user(
        username=name, email=f"{name}@acme.test", password=PASSWORD, first_name=name.title()
    )
    services.add_member(site=site, user=user, role=Role.AGENT)
    return user


@pytest.fixture
def sam(acme):
    return agent_on(acme, "sam")


@pytest.fixture
def sam_client(client, sam):
    client.force_login(sam)
    return client


def page_of(response) -> str:
    return response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')


def later(days: int) -> str:
    return (timezone.now().date() + timedelta(days=days)).isoformat()


# --- Who has a calendar page -------------------------------------------------------------------


def test_people_who_are_not_agents_anywhere_get_a_404_on_every_calendar_page(
    client, maya, outsider, acme
):
    urls = [
        SETTINGS_URL,
        "/calendar/preview/",
        "/calendar/connect/builtin/",
        "/calendar/connect/google/",
        "/calendar/callback/google/?code=x",
        "/calendar/disconnect/",
    ]
    for user in (maya, outsider):  # Maya is Acme's admin, not an agent
        client.force_login(user)
        for url in urls:
            statuses = {client.get(url).status_code, client.post(url).status_code}
            assert 404 in statuses and statuses <= {404, 405}, url
    client.logout()
    assert client.get(SETTINGS_URL).status_code == 302  # to sign in
    assert not CalendarConnection.objects.exists()
    assert not Availability.objects.exists()


def test_an_agent_sees_only_their_own_calendar(sam_client, sam, acme):
    ana = agent_on(acme, "ana")
    save_connection(ana, "google", account_email="ana.private@gmail.test")

    page = page_of(sam_client.get(SETTINGS_URL))

    assert "ana.private@gmail.test" not in page
    assert "No calendar connected:" in page
    assert "visitors cannot book meetings with you" in page


# --- Connecting a calendar ---------------------------------------------------------------------


class StandInProvider:
    """A provider module as calendars/providers/base.py describes it, recording its calls.

    Installed by replacing calendars.providers.provider, the one seam through which the views
    and services reach a provider; Google's and Microsoft's own modules are tested against
    fake servers in their own test modules."""

    def __init__(self):
        self.calls = []
        self.failure = ""
        self.revoke_error = None

    def authorization_url(self, user, redirect_uri):
        self.calls.append(("authorize", user.username, redirect_uri))
        return "https://consent.example.test/authorize?state=abc"

    def finish_authorization(self, user, params, redirect_uri):
        self.calls.append(("finish", user.username, params, redirect_uri))
        if self.failure:
            raise AuthorizationFailed(self.failure)
        return save_connection(
            user, "google", account_email="sam.work@gmail.test", refresh_token="refresh-1"
        )

    def revoke(self, connection):
        self.calls.append(("revoke", connection.user.username, connection.provider))
        if self.revoke_error:
            raise self.revoke_error


@pytest.fixture
def stand_in(monkeypatch, settings):
    settings.GOOGLE_CLIENT_ID = "dynchat-test-client"
    settings.SITE_ROOT = "https://dynchat.example.test"
    provider = StandInProvider()
    monkeypatch.setattr(providers, "provider", lambda name: provider)
    return provider


def test_sam_connects_google_calendar_through_its_sign_in(sam_client, sam, stand_in):
    response = sam_client.post("/calendar/connect/google/")

    assert response.status_code == 302
    assert response["Location"] == "https://consent.example.test/authorize?state=abc"
    callback = "https://dynchat.example.test/calendar/callback/google/"
    assert stand_in.calls == [("authorize", "sam", callback)]
    assert not CalendarConnection.objects.exists()  # nothing until Google sends him back

    response = sam_client.get(
        "/calendar/callback/google/?code=4/xyz&state=abc&scope=calendar", follow=True
    )

    assert stand_in.calls[1] == (
        "finish",
        "sam",
        {"code": "4/xyz", "state": "abc", "scope": "calendar"},
        callback,
    )
    connection = CalendarConnection.objects.get(user=sam)
    assert (connection.provider, connection.account_email) == ("google", "sam.work@gmail.test")
    page = page_of(response)
    assert "Google Calendar (sam.work@gmail.test) connected: visitors can book meetings" in page
    assert "Your meetings go to <strong>Google Calendar</strong> (sam.work@gmail.test)" in page


def test_a_refused_sign_in_shows_why_and_stores_nothing(sam_client, sam, stand_in):
    stand_in.failure = "Google did not give access: you declined (access_denied)."

    response = sam_client.get("/calendar/callback/google/?error=access_denied", follow=True)

    assert response.redirect_chain[-1][0] == SETTINGS_URL
    assert (
        "Google Calendar was not connected: Google did not give access: you declined "
        "(access_denied)." in page_of(response)
    )
    assert not CalendarConnection.objects.exists()


def test_a_refused_sign_in_leaves_the_calendar_he_had(sam_client, sam, stand_in):
    save_connection(sam, "builtin", account_email=sam.email)
    stand_in.failure = "The sign-in expired: start again."

    sam_client.get("/calendar/callback/google/?code=old&state=gone")

    assert CalendarConnection.objects.get(user=sam).provider == "builtin"


def test_a_provider_without_a_client_id_cannot_be_connected_and_says_why(
    sam_client, sam, settings, stand_in
):
    settings.GOOGLE_CLIENT_ID = ""
    settings.MICROSOFT_CLIENT_ID = ""

    page = page_of(sam_client.get(SETTINGS_URL))
    assert 'disabled aria-describedby="google-not-set-up">Connect Google Calendar' in page
    assert "no Google Calendar sign-in set up (GOOGLE_CLIENT_ID is empty)" in page
    assert (
        'disabled aria-describedby="microsoft-not-set-up">Connect Outlook / Microsoft 365' in page
    )

    response = sam_client.post("/calendar/connect/google/", follow=True)
    assert "Google Calendar cannot be connected: it is not set up on this DynChat." in page_of(
        response
    )
    assert stand_in.calls == []
    assert not CalendarConnection.objects.exists()


def test_unknown_providers_are_404s(sam_client, stand_in):
    assert sam_client.post("/calendar/connect/yahoo/").status_code == 404
    assert sam_client.get("/calendar/callback/yahoo/?code=x").status_code == 404
    # The built-in calendar has no sign-in to come back from.
    assert sam_client.get("/calendar/callback/builtin/?code=x").status_code == 404
    assert sam_client.get("/calendar/connect/google/").status_code == 405
    assert stand_in.calls == []


def test_sam_switches_to_the_dynchat_calendar_and_his_google_grant_is_revoked(
    sam_client, sam, stand_in
):
    save_connection(sam, "google", account_email="sam.work@gmail.test", refresh_token="r")

    response = sam_client.post("/calendar/connect/builtin/", follow=True)

    connection = CalendarConnection.objects.get(user=sam)
    assert (connection.provider, connection.account_email) == ("builtin", "sam@acme.test")
    assert connection.refresh_token == ""
    assert stand_in.calls == [("revoke", "sam", "google")]
    page = page_of(response)
    assert "You now use the DynChat calendar" in page
    assert "Your meetings go to <strong>DynChat calendar</strong>" in page


def test_disconnecting_revokes_deletes_and_takes_sam_out_of_booking(sam_client, sam, stand_in):
    save_connection(sam, "google", account_email="sam.work@gmail.test", refresh_token="r")

    response = sam_client.post("/calendar/disconnect/", follow=True)

    assert stand_in.calls == [("revoke", "sam", "google")]
    assert not CalendarConnection.objects.filter(user=sam).exists()
    page = page_of(response)
    assert (
        "Google Calendar disconnected. Visitors cannot book meetings with you until you "
        "connect a calendar." in page
    )
    assert "No calendar connected:" in page


def test_a_failed_revoke_still_disconnects(sam_client, sam, stand_in):
    save_connection(sam, "google", account_email="sam.work@gmail.test", refresh_token="r")
    stand_in.revoke_error = OSError("network unreachable")

    sam_client.post("/calendar/disconnect/")

    assert not CalendarConnection.objects.filter(user=sam).exists()


def test_disconnecting_with_no_calendar_changes_nothing(sam_client, sam):
    response = sam_client.post("/calendar/disconnect/", follow=True)
    assert "No calendar was connected." in page_of(response)


def test_a_calendar_that_needs_reconnecting_is_flagged_with_a_reconnect_button(
    sam_client, sam, settings
):
    settings.GOOGLE_CLIENT_ID = "dynchat-test-client"
    connection = save_connection(sam, "google", account_email="sam.work@gmail.test")
    mark_needs_reconnect(connection.pk, "invalid_grant: Token has been expired or revoked.")

    page = page_of(sam_client.get(SETTINGS_URL))

    assert (
        "Your Google Calendar needs reconnecting: visitors cannot book meetings with you "
        "until you reconnect." in page
    )
    assert "Last error: invalid_grant: Token has been expired or revoked." in page
    assert 'action="/calendar/connect/google/"' in page
    assert "Reconnect Google Calendar</button>" in page


# --- Hours -------------------------------------------------------------------------------------


def hours(**changes) -> dict:
    data = {
        "time_zone": "Europe/Berlin",
        "meeting_minutes": "45",
        "buffer_before_minutes": "5",
        "buffer_after_minutes": "10",
        "minimum_notice_hours": "1.5",
        "booking_horizon_days": "30",
        "w1-0-start": "09:00",
        "w1-0-end": "12:00",
        "w1-1-start": "13:00",
        "w1-1-end": "17:00",
        "w2-0-start": "",  # a row left empty: ignored
        "w2-0-end": "",
        "w3-0-start": "8:30",
        "w3-0-end": "11:00",
        "o0-date": later(10),
        "o0-off": "1",
        "o1-date": later(12),
        "o1-0-start": "10:00",
        "o1-0-end": "12:00",
        "save": "1",
    }
    return {key: value for key, value in {**data, **changes}.items() if value is not None}


def saved(user) -> dict | None:
    return Availability.objects.filter(user=user).values().first()


def test_sam_sees_the_usual_hours_before_saving_his_own(sam_client):
    page = page_of(sam_client.get(SETTINGS_URL))

    assert "You have not saved your hours yet" in page
    assert 'name="w1-0-start" id="w1-0-start" value="09:00"' in page
    assert 'name="w5-1-end" id="w5-1-end" value="17:00"' in page
    assert 'name="w6-0-start"' not in page
    assert '<option value="Europe/Berlin">Europe/Berlin</option>' in page
    assert 'name="minimum_notice_hours" value="24"' in page


def test_sam_saves_his_hours_and_sees_them_again(sam_client, sam):
    response = sam_client.post(SETTINGS_URL, hours())

    assert response.status_code == 302
    availability = Availability.objects.get(user=sam)
    assert availability.time_zone == "Europe/Berlin"
    assert availability.weekly_hours == {
        "1": [["09:00", "12:00"], ["13:00", "17:00"]],
        "3": [["08:30", "11:00"]],
    }
    assert availability.date_overrides == {later(10): [], later(12): [["10:00", "12:00"]]}
    assert (
        availability.meeting_minutes,
        availability.buffer_before_minutes,
        availability.buffer_after_minutes,
        availability.minimum_notice_minutes,
        availability.booking_horizon_days,
    ) == (45, 5, 10, 90, 30)

    page = page_of(sam_client.get(SETTINGS_URL))
    assert "Your hours are saved." in page
    assert '<option value="Europe/Berlin" selected>' in page
    assert 'name="w3-0-start" id="w3-0-start" value="08:30"' in page
    assert f'name="o0-date" id="o0-date" value="{later(10)}"' in page
    assert 'name="o0-off" value="1" checked' in page
    assert 'name="minimum_notice_hours" value="1.5"' in page


def test_a_second_save_replaces_the_hours(sam_client, sam):
    sam_client.post(SETTINGS_URL, hours())
    sam_client.post(
        SETTINGS_URL,
        hours(**{"w1-1-start": "", "w1-1-end": "", "o0-date": "", "o0-off": None}),
    )

    availability = Availability.objects.get(user=sam)
    assert availability.weekly_hours["1"] == [["09:00", "12:00"]]
    assert availability.date_overrides == {later(12): [["10:00", "12:00"]]}
    assert Availability.objects.count() == 1


@pytest.mark.parametrize(("minutes", "shown"), [(0, "0"), (90, "1.5"), (240, "4"), (43200, "720")])
def test_minimum_notice_reads_in_hours(sam_client, sam, minutes, shown):
    Availability.objects.create(user=sam, minimum_notice_minutes=minutes)

    page = page_of(sam_client.get(SETTINGS_URL))

    assert f'name="minimum_notice_hours" value="{shown}"' in page


def test_dates_already_past_drop_out_of_the_form(sam_client, sam):
    Availability.objects.create(
        user=sam, date_overrides={"2020-01-01": [], later(3): [["10:00", "11:00"]]}
    )

    page = page_of(sam_client.get(SETTINGS_URL))

    assert "2020-01-01" not in page
    assert f'value="{later(3)}"' in page


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"w1-0-start": "25:00"}, "“25:00” is not a time: use HH:MM, e.g. 09:00 or 17:30."),
        ({"w1-0-end": "noon"}, "“noon” is not a time"),
        ({"w1-0-start": "17:00", "w1-0-end": "09:00"}, "The end (09:00) must be after the start"),
        ({"w1-0-end": "09:00"}, "The end (09:00) must be after the start (09:00)."),
        ({"w1-0-end": ""}, "Give both a start and an end time."),
        ({"w1-1-start": "11:00"}, "09:00 to 12:00 and 11:00 to 17:00 overlap: change or"),
        ({"o1-date": later(10)}, f"{later(10)} is listed twice: put all its hours in one row."),
        ({"o0-date": "2020-01-01"}, "2020-01-01 has passed: choose today or a later date."),
        ({"o0-date": "24/12/2026"}, "“24/12/2026” is not a date: use YYYY-MM-DD"),
        ({"o0-date": "2026-02-30"}, "“2026-02-30” is not a date"),
        ({"o0-date": "", "o0-off": "1"}, "Enter the date."),
        ({"o1-0-start": "", "o1-0-end": ""}, "Give this date its hours, or tick “Day off”."),
        ({"o1-0-start": "12:00"}, "The end (12:00) must be after the start (12:00)."),
        (
            {"time_zone": "Mars/Olympus"},
            "Choose your time zone from the list (e.g. Europe/Berlin).",
        ),
        ({"time_zone": "../../etc/passwd"}, "Choose your time zone from the list"),
        ({"meeting_minutes": "4"}, "Enter a whole number of minutes from 5 to 480."),
        ({"meeting_minutes": "481"}, "Enter a whole number of minutes from 5 to 480."),
        ({"meeting_minutes": "half an hour"}, "Enter a whole number of minutes from 5 to 480."),
        ({"buffer_before_minutes": "-1"}, "Enter a whole number of minutes from 0 to 240."),
        ({"buffer_after_minutes": "241"}, "Enter a whole number of minutes from 0 to 240."),
        ({"minimum_notice_hours": "721"}, "Enter a number of hours from 0 to 720, e.g. 24"),
        ({"minimum_notice_hours": "1.001"}, "Enter a number of hours from 0 to 720"),
        ({"booking_horizon_days": "0"}, "Enter a whole number of days from 1 to 365."),
        ({"booking_horizon_days": "366"}, "Enter a whole number of days from 1 to 365."),
    ],
)
def test_bad_input_is_explained_next_to_the_field_and_nothing_is_saved(
    sam_client, sam, changes, message
):
    sam_client.post(SETTINGS_URL, hours())
    before = saved(sam)

    response = sam_client.post(SETTINGS_URL, hours(**changes))

    assert response.status_code == 400
    page = page_of(response)
    assert "Nothing was saved. Please fix the fields marked below." in page
    assert message in page
    assert saved(sam) == before


def test_bad_input_on_a_first_save_creates_no_row(sam_client, sam):
    response = sam_client.post(SETTINGS_URL, hours(**{"w1-0-start": "9h"}))

    assert response.status_code == 400
    assert not Availability.objects.exists()


def test_add_and_remove_buttons_redisplay_the_form_without_saving(sam_client, sam):
    response = sam_client.post(SETTINGS_URL, hours(save=None, add_block="w6"))
    page = page_of(response)
    assert response.status_code == 200
    assert 'name="w6-0-start"' in page and "<html" in page
    assert 'name="w3-0-start" id="w3-0-start" value="8:30"' in page  # as typed, kept

    response = sam_client.post(SETTINGS_URL, hours(save=None, remove_block="w1-0"))
    page = page_of(response)
    assert 'name="w1-0-start" id="w1-0-start" value="13:00"' in page
    assert 'name="w1-1-start"' not in page

    response = sam_client.post(SETTINGS_URL, hours(save=None, add_override="1"))
    assert 'name="o2-date"' in page_of(response)

    response = sam_client.post(SETTINGS_URL, hours(save=None, remove_override="0"))
    page = page_of(response)
    assert f'name="o0-date" id="o0-date" value="{later(12)}"' in page
    assert 'name="o1-date"' not in page

    assert not Availability.objects.exists()


def test_with_htmx_the_buttons_get_the_form_alone(sam_client, sam):
    response = sam_client.post(
        SETTINGS_URL, hours(save=None, add_block="o1"), headers={"HX-Request": "true"}
    )

    page = page_of(response)
    assert "<html" not in page
    assert '<form method="post" id="availability-form"' in page
    assert 'name="o1-1-start"' in page
    assert not Availability.objects.exists()


def test_saving_through_htmx_loads_the_page_again(sam_client, sam):
    response = sam_client.post(SETTINGS_URL, hours(), headers={"HX-Request": "true"})

    assert response["HX-Redirect"] == SETTINGS_URL
    assert Availability.objects.filter(user=sam).exists()


# --- What visitors see this week ---------------------------------------------------------------


@pytest.fixture
def sam_on_builtin(sam):
    """Sam on the DynChat calendar, in Berlin: Mondays 9:00-10:00, half-hour meetings, no
    notice, plus extra hours on Thursday 26 November and Tuesday 24 November off."""
    save_connection(sam, "builtin", account_email=sam.email)
    Availability.objects.create(
        user=sam,
        time_zone="Europe/Berlin",
        weekly_hours={"1": [["09:00", "10:00"]], "2": [["09:00", "10:00"]]},
        date_overrides={"2026-11-24": [], "2026-11-26": [["14:00", "15:00"]]},
        meeting_minutes=30,
        minimum_notice_minutes=0,
        booking_horizon_days=14,
    )
    return sam


def slot_labels(context) -> list[tuple[date, list[str]]]:
    return [(day, [f"{s:%H:%M}" for s in starts]) for day, starts in context["days"]]


def test_the_preview_lists_this_weeks_free_times_by_day_in_sams_zone(sam_on_builtin):
    context = week_preview(sam_on_builtin, now=SATURDAY_NOON)

    # UTC starts; Berlin is UTC+1 in November. Tuesday is off; next Monday is past the week.
    assert context["zone"] == "Europe/Berlin"
    assert slot_labels(context) == [
        (date(2026, 11, 23), ["08:00", "08:30"]),
        (date(2026, 11, 26), ["13:00", "13:30"]),
    ]


def test_the_preview_page_shows_the_times_as_sam_reads_them(
    sam_client, sam_on_builtin, monkeypatch
):
    # The view's clock, fixed: the preview is always "the next 7 days from now".
    monkeypatch.setattr(calendars.views, "timezone", SimpleNamespace(now=lambda: SATURDAY_NOON))

    fragment = page_of(sam_client.get("/calendar/preview/", headers={"HX-Request": "true"}))

    assert "<html" not in fragment
    assert "Times in your time zone, Europe/Berlin." in fragment
    assert "<dt>Monday, 23 November</dt>" in fragment
    assert "<li>9:00 AM</li><li>9:30 AM</li>" in fragment
    assert "<dt>Thursday, 26 November</dt>" in fragment
    assert "<li>2:00 PM</li><li>2:30 PM</li>" in fragment
    assert "Tuesday" not in fragment
    # Without htmx the same list is a page of its own, linked from the settings page.
    assert "<html" in sam_client.get("/calendar/preview/").content.decode()
    assert 'hx-get="/calendar/preview/" hx-trigger="load"' in page_of(sam_client.get(SETTINGS_URL))


def test_a_booked_meeting_takes_its_slot_out_of_the_preview(sam_on_builtin, acme):
    Meeting.objects.create(
        site=acme,
        agent=sam_on_builtin,
        agent_name="Sam",
        agent_email="sam@acme.test",
        lead_email="jamie@bigco.test",
        visitor_time_zone="Europe/Paris",
        start=datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
        end=datetime(2026, 11, 23, 8, 30, tzinfo=UTC),
    )

    assert slot_labels(week_preview(sam_on_builtin, now=SATURDAY_NOON))[0] == (
        date(2026, 11, 23),
        ["08:30"],
    )


@pytest.mark.parametrize(
    ("situation", "reason"),
    [
        ("no calendar", "You have no calendar connected, so visitors cannot book meetings"),
        ("needs reconnect", "Your Google Calendar needs reconnecting: visitors see no times"),
        ("no availability", "You have not saved your hours yet."),
        ("no hours", "You have no working hours in the next 7 days."),
        ("long notice", "Your minimum notice of 720 hours leaves none of this week's hours"),
        ("all booked", "Nothing is free this week: your calendar is busy during your hours"),
    ],
)
def test_an_empty_preview_says_why(sam_on_builtin, acme, situation, reason):
    sam = sam_on_builtin
    availability = Availability.objects.get(user=sam)
    if situation == "no calendar":
        CalendarConnection.objects.filter(user=sam).delete()
    elif situation == "needs reconnect":
        connection = save_connection(sam, "google", account_email="sam.work@gmail.test")
        mark_needs_reconnect(connection.pk, "invalid_grant")
    elif situation == "no availability":
        availability.delete()
    elif situation == "no hours":
        Availability.objects.filter(pk=availability.pk).update(weekly_hours={}, date_overrides={})
    elif situation == "long notice":
        Availability.objects.filter(pk=availability.pk).update(minimum_notice_minutes=720 * 60)
    elif situation == "all booked":
        for start in (
            datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
            datetime(2026, 11, 26, 13, 0, tzinfo=UTC),
        ):
            Meeting.objects.create(
                site=acme,
                agent=sam,
                agent_name="Sam",
                agent_email="sam@acme.test",
                lead_email="jamie@bigco.test",
                visitor_time_zone="Europe/Paris",
                start=start,
                end=start + timedelta(hours=1),
            )

    context = week_preview(sam, now=SATURDAY_NOON)

    assert context["days"] == []
    assert context["reason"].startswith(reason)


# --- The team page -----------------------------------------------------------------------------


def test_maya_sees_each_agents_calendar_on_the_team_page(client, maya, acme, sam):
    ana = agent_on(acme, "ana")
    agent_on(acme, "bo")
    save_connection(ana, "microsoft", account_email="ana@acme.test")
    connection = save_connection(sam, "google", account_email="sam.work@gmail.test")
    mark_needs_reconnect(connection.pk, "invalid_grant")
    client.force_login(maya)

    page = page_of(client.get(f"/sites/{acme.pk}/members/"))

    since = CalendarConnection.objects.get(user=sam).needs_reconnect_since
    assert (
        f"Google Calendar needs reconnecting since {since:%-d %b %Y, %H:%M} UTC — not bookable"
        in page
    )
    assert 'Outlook / Microsoft 365 <span class="muted">(ana@acme.test)</span>' in page
    assert page.count("No calendar connected — not bookable") == 1  # Bo; Maya is no agent


def test_the_team_page_reads_every_agents_calendar_in_the_same_query(client, maya, acme):
    client.force_login(maya)
    url = f"/sites/{acme.pk}/members/"
    save_connection(agent_on(acme, "ana"), "builtin", account_email="ana@acme.test")
    client.get(url)  # warm up the session and the like
    with CaptureQueriesContext(db_connection) as one_agent:
        client.get(url)
    for name in ("bo", "cy", "di"):
        save_connection(agent_on(acme, name), "builtin", account_email=f"{name}@acme.test")
    with CaptureQueriesContext(db_connection) as four_agents:
        client.get(url)

    assert len(four_agents) == len(one_agent)


def test_agents_find_their_calendar_page_in_the_top_bar_and_marketers_do_not(
    sam_client, client, maya
):
    link = '<a href="/calendar/">Your calendar</a>'

    assert link in page_of(sam_client.get("/"))
    client.force_login(maya)
    assert link not in page_of(client.get("/"))
