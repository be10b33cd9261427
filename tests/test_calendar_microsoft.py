"""Sam, a sales agent, connects an Outlook calendar: the sign-in, busy times, meetings, and what
happens when Microsoft throttles, fails or forgets the grant.

Everything runs through real MSAL, requests and httpx against tests/fakes/microsoft.py (HTTPS on
loopback), with the fake's addresses and CA put in the MICROSOFT_* settings.
"""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection as db_connection
from django.db import connections
from django.http import HttpResponse
from django.urls import NoReverseMatch, include, path, reverse

from calendars.busy import busy_times
from calendars.models import CalendarConnection, OAuthAttempt
from calendars.providers import microsoft
from calendars.providers.base import (
    AuthorizationFailed,
    BusyUnknown,
    Interval,
    NeedsReconnect,
    NewEvent,
    PermanentCalendarError,
    TransientCalendarError,
)
from tests.conftest import PASSWORD
from tests.fakes.microsoft import FakeMicrosoft

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

REDIRECT_URI = "https://dynchat.test/calendars/microsoft/callback"
SAM_MAILBOX = "sam@contoso.test"
DAY = datetime(2026, 12, 7, tzinfo=UTC)  # a Monday
WINDOW = (DAY, DAY + timedelta(days=1))


def at(hour: int, minute: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute)


# A stand-in for the calendar settings page the reconnect email links to, used only while the
# real page is not routed yet (see the reconnect_page fixture).
urlpatterns = [
    path(
        "calendars/",
        include(([path("", lambda request: HttpResponse(), name="settings")], "calendars")),
    )
]


@pytest.fixture
def sam(db):
    return get_user_model().objects.create_user(
        username="sam", email="sam@example.com", password=PASSWORD, first_name="Sam"
    )


@pytest.fixture
def reconnect_page(settings):
    try:
        reverse("calendars:settings")
    except NoReverseMatch:
        settings.ROOT_URLCONF = __name__


def connect(user, fake: FakeMicrosoft, mailbox: str = SAM_MAILBOX) -> CalendarConnection:
    url = microsoft.authorization_url(user, REDIRECT_URI)
    params = fake.sign_in(url, mailbox)
    return microsoft.finish_authorization(user, params, REDIRECT_URI)


def stored_refresh_token(connection: CalendarConnection) -> str:
    connection.refresh_from_db()
    tokens = json.loads(connection.token_cache)["RefreshToken"]
    (token,) = tokens.values()
    return token["secret"]


def meeting(key: str = "6f1c1a8e2b7d4c1e9f0a3b5c7d9e1f20", video_link: bool = True) -> NewEvent:
    return NewEvent(
        key=key,
        summary="Demo with Acme",
        description="Booked through DynChat.",
        start=at(14),
        end=at(14, 30),
        attendee_email="visitor@acme.test",
        attendee_name="Vic Visitor",
        video_link=video_link,
    )


# --- signing in ---------------------------------------------------------------------------------


def test_an_agent_connects_outlook_and_the_tokens_are_stored_encrypted(sam, fake_microsoft):
    connection = connect(sam, fake_microsoft)

    assert connection.provider == "microsoft"
    assert connection.status == CalendarConnection.Status.CONNECTED
    assert connection.account_email == SAM_MAILBOX
    (asked,) = fake_microsoft.authorize_requests
    assert asked["code_challenge_method"] == "S256" and asked["code_challenge"]
    assert asked["prompt"] == "select_account"
    assert set(asked["scope"].split()) == {
        "Calendars.ReadWrite",
        "User.Read",
        "openid",
        "profile",
        "offline_access",
    }
    assert fake_microsoft.counts["token.authorization_code"] == 1
    assert not OAuthAttempt.objects.exists()
    with db_connection.cursor() as cursor:
        cursor.execute(
            "SELECT token_cache FROM calendars_calendarconnection WHERE id = %s", [connection.pk]
        )
        (raw,) = cursor.fetchone()
    refresh_token = fake_microsoft.latest_refresh_token(SAM_MAILBOX)
    assert not raw.startswith("{") and refresh_token not in raw
    assert stored_refresh_token(CalendarConnection.objects.get(pk=connection.pk)) == refresh_token


def test_without_a_microsoft_app_the_sign_in_does_not_start(sam, settings):
    settings.MICROSOFT_CLIENT_ID = ""

    with pytest.raises(AuthorizationFailed, match="not set up"):
        microsoft.authorization_url(sam, REDIRECT_URI)
    assert not OAuthAttempt.objects.exists()


def test_a_callback_carrying_another_users_state_is_refused(sam, omar, fake_microsoft):
    params = fake_microsoft.sign_in(microsoft.authorization_url(sam, REDIRECT_URI), SAM_MAILBOX)

    with pytest.raises(AuthorizationFailed, match="start again"):
        microsoft.finish_authorization(omar, params, REDIRECT_URI)
    assert not CalendarConnection.objects.exists()
    assert fake_microsoft.counts["token.authorization_code"] == 0
    # Omar's attempt did not use up Sam's: Sam can still finish his own sign-in.
    assert microsoft.finish_authorization(sam, params, REDIRECT_URI).user == sam


def test_an_unknown_state_is_refused(sam, fake_microsoft):
    microsoft.authorization_url(sam, REDIRECT_URI)

    with pytest.raises(AuthorizationFailed, match="start again"):
        microsoft.finish_authorization(sam, {"code": "x", "state": "made-up"}, REDIRECT_URI)
    assert not CalendarConnection.objects.exists()


def test_a_sign_in_is_finished_only_once(sam, fake_microsoft):
    params = fake_microsoft.sign_in(microsoft.authorization_url(sam, REDIRECT_URI), SAM_MAILBOX)
    microsoft.finish_authorization(sam, params, REDIRECT_URI)

    with pytest.raises(AuthorizationFailed, match="start again"):
        microsoft.finish_authorization(sam, params, REDIRECT_URI)
    assert fake_microsoft.counts["token.authorization_code"] == 1


def test_a_sign_in_left_for_more_than_ten_minutes_is_refused(sam, fake_microsoft):
    params = fake_microsoft.sign_in(microsoft.authorization_url(sam, REDIRECT_URI), SAM_MAILBOX)
    OAuthAttempt.objects.update(created_at=datetime.now(UTC) - timedelta(minutes=11))

    with pytest.raises(AuthorizationFailed, match="start again"):
        microsoft.finish_authorization(sam, params, REDIRECT_URI)
    assert not CalendarConnection.objects.exists()
    assert not OAuthAttempt.objects.exists()


def test_an_agent_who_declines_consent_is_told_so_and_nothing_is_connected(sam, fake_microsoft):
    url = microsoft.authorization_url(sam, REDIRECT_URI)
    params = fake_microsoft.sign_in(url, SAM_MAILBOX, consent=False)
    assert params["error"] == "access_denied"

    with pytest.raises(AuthorizationFailed, match="did not give DynChat access"):
        microsoft.finish_authorization(sam, params, REDIRECT_URI)
    assert not CalendarConnection.objects.exists()
    assert fake_microsoft.counts["token"] == 0


# --- busy times ---------------------------------------------------------------------------------


def test_busy_times_come_from_get_schedule_read_in_utc(sam, fake_microsoft):
    connection = connect(sam, fake_microsoft)
    fake_microsoft.set_busy(
        SAM_MAILBOX,
        [
            (at(14), at(15), "busy"),
            (at(16), at(16, 30), "tentative"),
            (at(17), at(18), "oof"),
            (at(9), at(10), "free"),
            (at(10), at(11), "workingElsewhere"),
        ],
    )

    intervals = microsoft.busy(connection.pk, *WINDOW)

    assert intervals == [
        Interval(at(14), at(15)),
        Interval(at(16), at(16, 30)),
        Interval(at(17), at(18)),
    ]
    (request,) = [r for r in fake_microsoft.requests if r["route"] == "schedule"]
    assert request["headers"]["prefer"] == 'outlook.timezone="UTC"'
    body = json.loads(request["body"])
    assert body["schedules"] == [SAM_MAILBOX]
    assert body["availabilityViewInterval"] == 15
    assert body["startTime"] == {"dateTime": "2026-12-07T00:00:00", "timeZone": "UTC"}


def test_a_schedule_graph_cannot_read_makes_the_time_unknown_not_free(sam, fake_microsoft):
    connection = connect(sam, fake_microsoft)
    fake_microsoft.set_schedule_error(SAM_MAILBOX)

    with pytest.raises(BusyUnknown, match="5009"):
        microsoft.busy(connection.pk, *WINDOW)
    assert busy_times(connection, *WINDOW, live=True) is None


def test_a_personal_account_falls_back_to_calendar_view_and_remembers_it(sam, fake_microsoft):
    fake_microsoft.personal_account("sam@outlook.test")
    fake_microsoft.page_size = 2
    connection = connect(sam, fake_microsoft, "sam@outlook.test")
    fake_microsoft.set_busy(
        "sam@outlook.test",
        [
            (at(8), at(9)),
            (at(10), at(11), "tentative"),
            {"start": at(12), "end": at(13), "isCancelled": True},
            (at(13), at(14), "free"),
            (at(15), at(16), "oof"),
        ],
    )

    first = microsoft.busy(connection.pk, *WINDOW)
    again = microsoft.busy(connection.pk, *WINDOW)

    assert (
        first
        == again
        == [
            Interval(at(8), at(9)),
            Interval(at(10), at(11)),
            Interval(at(15), at(16)),
        ]
    )
    assert fake_microsoft.counts["schedule"] == 1  # refused once, then not asked again
    assert fake_microsoft.counts["calendarView"] == 6  # three pages of two, twice
    connection.refresh_from_db()
    assert connection.free_busy_api == CalendarConnection.FreeBusyApi.CALENDAR_VIEW
    assert connection.status == CalendarConnection.Status.CONNECTED


# --- tokens -------------------------------------------------------------------------------------


def test_an_expired_access_token_is_refreshed_and_the_new_refresh_token_kept(sam, fake_microsoft):
    fake_microsoft.access_token_ttl = 60  # MSAL treats tokens with < 5 minutes left as expired
    connection = connect(sam, fake_microsoft)
    first_refresh_token = stored_refresh_token(connection)

    microsoft.busy(connection.pk, *WINDOW)

    assert fake_microsoft.counts["token.refresh_token"] == 1
    assert stored_refresh_token(connection) == fake_microsoft.latest_refresh_token(SAM_MAILBOX)
    assert stored_refresh_token(connection) != first_refresh_token


def test_a_valid_access_token_is_reused_without_asking_microsoft(sam, fake_microsoft):
    connection = connect(sam, fake_microsoft)

    microsoft.busy(connection.pk, *WINDOW)
    microsoft.busy(connection.pk, *WINDOW)

    assert fake_microsoft.counts["token.refresh_token"] == 0
    assert fake_microsoft.counts["schedule"] == 2


def test_a_token_graph_no_longer_accepts_is_refreshed_once_and_the_call_retried(
    sam, fake_microsoft
):
    connection = connect(sam, fake_microsoft)
    fake_microsoft.set_busy(SAM_MAILBOX, [(at(14), at(15))])
    fake_microsoft.expire_access_tokens()

    assert microsoft.busy(connection.pk, *WINDOW) == [Interval(at(14), at(15))]
    assert fake_microsoft.counts["token.refresh_token"] == 1
    assert fake_microsoft.counts["schedule"] == 2


def test_a_second_401_after_the_forced_refresh_is_not_retried_again(sam, fake_microsoft):
    connection = connect(sam, fake_microsoft)
    fake_microsoft.fail_next("schedule", status=401, code="InvalidAuthenticationToken", times=2)

    with pytest.raises(PermanentCalendarError, match="401"):
        microsoft.busy(connection.pk, *WINDOW)
    assert fake_microsoft.counts["token.refresh_token"] == 1
    assert fake_microsoft.counts["schedule"] == 2


def test_a_revoked_grant_needs_reconnecting_and_emails_the_agent_once(
    sam, fake_microsoft, reconnect_page, django_capture_on_commit_callbacks
):
    fake_microsoft.access_token_ttl = 60
    connection = connect(sam, fake_microsoft)
    fake_microsoft.revoke_all()

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            with pytest.raises(NeedsReconnect, match="invalid_grant"):
                microsoft.busy(connection.pk, *WINDOW)

    connection.refresh_from_db()
    assert connection.status == CalendarConnection.Status.NEEDS_RECONNECT
    assert "AADSTS50173" in connection.last_error
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["sam@example.com"]
    assert "Reconnect your Outlook" in mail.outbox[0].subject
    assert fake_microsoft.counts["schedule"] == 0


def test_a_grant_that_needs_the_agent_to_sign_in_again_is_a_reconnect(
    sam, fake_microsoft, reconnect_page
):
    fake_microsoft.access_token_ttl = 60
    connection = connect(sam, fake_microsoft)
    fake_microsoft.fail_next(
        "token",
        status=400,
        code="interaction_required",
        message="AADSTS50076: you must use multi-factor authentication to access this resource.",
    )

    with pytest.raises(NeedsReconnect, match="interaction_required"):
        microsoft.busy(connection.pk, *WINDOW)
    connection.refresh_from_db()
    assert connection.status == CalendarConnection.Status.NEEDS_RECONNECT


def test_a_disconnected_calendar_forgets_its_tokens(sam, fake_microsoft, reconnect_page):
    connection = connect(sam, fake_microsoft)

    microsoft.revoke(connection)

    connection.refresh_from_db()
    stored = json.loads(connection.token_cache or "{}")
    assert not stored.get("Account") and not stored.get("RefreshToken")
    assert not stored.get("AccessToken")
    with pytest.raises(NeedsReconnect):
        microsoft.busy(connection.pk, *WINDOW)
    assert fake_microsoft.counts["token.refresh_token"] == 0


def test_a_token_endpoint_outage_is_transient(sam, fake_microsoft):
    fake_microsoft.access_token_ttl = 60
    connection = connect(sam, fake_microsoft)
    fake_microsoft.fail_next("token", status=503)

    with pytest.raises(TransientCalendarError):
        microsoft.busy(connection.pk, *WINDOW)
    connection.refresh_from_db()
    assert connection.status == CalendarConnection.Status.CONNECTED


# --- Graph failures -----------------------------------------------------------------------------


def test_throttling_hands_retry_after_to_the_task(sam, fake_microsoft):
    connection = connect(sam, fake_microsoft)
    fake_microsoft.fail_next("events.create", status=429, retry_after=3)

    with pytest.raises(TransientCalendarError) as raised:
        microsoft.create_event(connection.pk, meeting())
    assert raised.value.retry_after == 3
    assert fake_microsoft.counts["events.create"] == 1  # no retry inside: the task retries


@pytest.mark.parametrize(
    ("fault", "retry_after"),
    [
        ({"status": 500}, None),
        ({"status": 503, "retry_after": 7}, 7),
        ({"disconnect": True}, None),
    ],
    ids=["500", "503 with Retry-After", "connection dropped"],
)
def test_server_errors_and_dropped_connections_are_transient(
    sam, fake_microsoft, fault, retry_after
):
    connection = connect(sam, fake_microsoft)
    fake_microsoft.fail_next("schedule", **fault)

    with pytest.raises(TransientCalendarError) as raised:
        microsoft.busy(connection.pk, *WINDOW)
    assert raised.value.retry_after == retry_after


def test_a_graph_that_does_not_answer_in_time_is_transient(sam, fake_microsoft, settings):
    connection = connect(sam, fake_microsoft)
    settings.CALENDAR_TIMEOUT_SECONDS = 0.2
    fake_microsoft.delay("schedule", 0.5)

    with pytest.raises(TransientCalendarError, match="timed out"):
        microsoft.busy(connection.pk, *WINDOW)


def test_a_request_graph_refuses_is_permanent(sam, fake_microsoft):
    connection = connect(sam, fake_microsoft)
    fake_microsoft.fail_next("events.create", status=400, code="ErrorInvalidRequest")

    with pytest.raises(PermanentCalendarError, match="ErrorInvalidRequest"):
        microsoft.create_event(connection.pk, meeting())


# --- meetings -----------------------------------------------------------------------------------


def test_a_retried_event_creation_makes_one_event(sam, fake_microsoft):
    connection = connect(sam, fake_microsoft)

    first = microsoft.create_event(connection.pk, meeting(video_link=False))
    retried = microsoft.create_event(connection.pk, meeting(video_link=False))

    assert first == retried
    assert first.provider_event_id and first.ical_uid and first.join_url == ""
    (event,) = fake_microsoft.events(SAM_MAILBOX)
    assert event["transactionId"] == "6f1c1a8e2b7d4c1e9f0a3b5c7d9e1f20"
    assert event["start"] == {"dateTime": "2026-12-07T14:00:00.0000000", "timeZone": "UTC"}
    assert event["attendees"][0]["emailAddress"] == {
        "address": "visitor@acme.test",
        "name": "Vic Visitor",
    }
    assert event["body"] == {"contentType": "text", "content": "Booked through DynChat."}
    assert fake_microsoft.counts["calendar"] == 0  # no video link asked, no need to look


def test_a_teams_link_is_returned_when_the_calendar_allows_teams(sam, fake_microsoft):
    connection = connect(sam, fake_microsoft)

    created = microsoft.create_event(connection.pk, meeting())

    assert created.join_url.startswith("https://teams.microsoft.com/l/meetup-join/")
    (event,) = fake_microsoft.events(SAM_MAILBOX)
    assert event["isOnlineMeeting"] and event["onlineMeetingProvider"] == "teamsForBusiness"


def test_no_teams_link_is_asked_for_when_the_calendar_does_not_allow_teams(sam, fake_microsoft):
    connection = connect(sam, fake_microsoft)
    fake_microsoft.set_online_meeting_providers(SAM_MAILBOX, ["skypeForConsumer"])

    created = microsoft.create_event(connection.pk, meeting())

    assert created.join_url == ""
    (request,) = [r for r in fake_microsoft.requests if r["route"] == "events.create"]
    assert "isOnlineMeeting" not in json.loads(request["body"])


def test_cancelling_a_meeting_twice_is_fine(sam, fake_microsoft):
    connection = connect(sam, fake_microsoft)
    created = microsoft.create_event(connection.pk, meeting())

    microsoft.cancel_event(connection.pk, created.provider_event_id)
    microsoft.cancel_event(connection.pk, created.provider_event_id)

    assert fake_microsoft.events(SAM_MAILBOX) == []
    (deleted,) = fake_microsoft.cancelled_events(SAM_MAILBOX)
    assert deleted["id"] == created.provider_event_id and deleted["deleted"] is True
    # DELETE both times (the second finds it gone), never the cancel action's custom message.
    assert fake_microsoft.counts["events.delete"] == 2
    assert fake_microsoft.counts["events.cancel"] == 0


# --- two workers at once ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_workers_refreshing_at_once_make_one_refresh_and_keep_a_consistent_cache(
    sam, fake_microsoft
):
    fake_microsoft.access_token_ttl = 60  # the token from the sign-in counts as expired
    connection = connect(sam, fake_microsoft)
    fake_microsoft.access_token_ttl = 3600  # the refreshed one does not
    fake_microsoft.delay("token", 0.3)  # the first refresh is still running when both ask
    fake_microsoft.set_busy(SAM_MAILBOX, [(at(14), at(15))])
    barrier = threading.Barrier(2)
    results = []

    def worker():
        try:
            barrier.wait()
            results.append(microsoft.busy(connection.pk, *WINDOW))
        except Exception as exc:  # reported by the assertion below
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert results == [[Interval(at(14), at(15))]] * 2
    assert fake_microsoft.counts["token.refresh_token"] == 1
    assert stored_refresh_token(connection) == fake_microsoft.latest_refresh_token(SAM_MAILBOX)
