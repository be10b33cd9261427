"""Sam, a sales agent at Acme, connects his Google Calendar; DynChat reads his busy times and
books meetings in it, and copes when Google refuses, throttles or fails.

Everything runs against tests/fakes/google_calendar.py over real HTTP, through the real
google-auth-oauthlib, google-auth and google-api-python-client.
"""

import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qsl, urlsplit
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection as db_connection
from django.http import HttpResponse
from django.urls import NoReverseMatch, include, path, reverse
from django.utils import timezone
from google_auth_oauthlib.flow import Flow
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError

from calendars.busy import busy_times
from calendars.models import CalendarConnection, OAuthAttempt
from calendars.providers import google as provider
from calendars.providers.base import (
    AuthorizationFailed,
    BusyUnknown,
    Interval,
    NeedsReconnect,
    NewEvent,
    PermanentCalendarError,
    TransientCalendarError,
)
from tests.fakes.google_calendar import EVENTS_SCOPE, FakeGoogle, code_challenge

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

REDIRECT_URI = "http://127.0.0.1:8000/calendar/google/callback"
SAM = "sam@acme.test"
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def google(settings):
    """A fake Google on loopback, with DynChat's GOOGLE_* settings pointing at it."""
    with FakeGoogle(account_email=SAM) as fake:
        for name, value in fake.settings().items():
            setattr(settings, name, value)
        settings.CALENDAR_TIMEOUT_SECONDS = 5
        yield fake


@pytest.fixture
def sam(db):
    """Sam, a sales agent at Acme (no password: nothing to hash)."""
    return get_user_model().objects.create_user(username="sam", email=SAM, first_name="Sam")


def connect(user, google) -> CalendarConnection:
    """The whole sign-in, as the browser does it: consent page, then our callback."""
    params = google.consent(provider.authorization_url(user, REDIRECT_URI))
    return provider.finish_authorization(user, params, REDIRECT_URI)


@pytest.fixture
def sams_calendar(google, sam) -> CalendarConnection:
    return connect(sam, google)


def expire_locally(calendar, when=None):
    """Our copy of the access token expires (Google still takes it)."""
    CalendarConnection.objects.filter(pk=calendar.pk).update(
        access_token_expires_at=when or timezone.now() - timedelta(minutes=1)
    )


def meeting(key=None, *, video=True, start=None) -> NewEvent:
    start = start or MONDAY.replace(hour=15)
    return NewEvent(
        key=key or uuid4().hex,
        summary="Acme demo with Ada",
        description="Booked in the chat on https://www.acme.test/pricing",
        start=start,
        end=start + timedelta(minutes=30),
        attendee_email="ada@bigco.test",
        attendee_name="Ada Lovelace",
        video_link=video,
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- signing in --------------------------------------------------------------------------------


def test_it_connects_a_google_calendar_through_the_real_oauth_flow(google, sam):
    url = provider.authorization_url(sam, REDIRECT_URI)

    asked = dict(parse_qsl(urlsplit(url).query))
    assert url.startswith(google.settings()["GOOGLE_AUTH_URI"] + "?")
    assert asked["access_type"] == "offline"
    assert asked["prompt"] == "consent"
    assert asked["include_granted_scopes"] == "true"
    assert set(asked["scope"].split()) == set(provider.SCOPES)
    assert asked["redirect_uri"] == REDIRECT_URI

    calendar = provider.finish_authorization(sam, google.consent(url), REDIRECT_URI)

    calendar.refresh_from_db()
    assert calendar.provider == "google"
    assert calendar.status == CalendarConnection.Status.CONNECTED
    assert calendar.account_email == SAM
    assert EVENTS_SCOPE in calendar.scopes
    assert google.refresh_tokens() == [calendar.refresh_token]
    assert timedelta(minutes=58) < calendar.access_token_expires_at - timezone.now()
    assert calendar.access_token_expires_at.tzinfo is not None
    assert not OAuthAttempt.objects.exists()  # used up
    # At rest the tokens are ciphertext; the model reads them back.
    with db_connection.cursor() as cursor:
        cursor.execute(
            "SELECT refresh_token, access_token FROM calendars_calendarconnection WHERE id = %s",
            [calendar.pk],
        )
        raw_refresh, raw_access = cursor.fetchone()
    assert calendar.refresh_token not in raw_refresh
    assert calendar.access_token not in raw_access


def test_the_pkce_verifier_stays_on_the_server_and_google_requires_it(google, sam):
    url = provider.authorization_url(sam, REDIRECT_URI)
    verifier = json.loads(OAuthAttempt.objects.get(user=sam).secret)["code_verifier"]
    params = google.consent(url)

    assert verifier not in url
    assert google.authorizations[-1]["code_challenge"] == code_challenge(verifier)
    assert google.authorizations[-1]["code_challenge_method"] == "S256"

    # The known pitfall: a callback that builds a fresh Flow without the stored verifier.
    forgetful = Flow.from_client_config(
        {"web": {"client_id": google.client_id, "client_secret": google.client_secret,
                 "auth_uri": google.settings()["GOOGLE_AUTH_URI"],
                 "token_uri": google.settings()["GOOGLE_TOKEN_URI"]}},
        scopes=None,
        redirect_uri=REDIRECT_URI,
    )  # fmt: skip
    with pytest.raises(InvalidGrantError, match="Missing code verifier"):
        forgetful.fetch_token(code=params["code"])

    calendar = provider.finish_authorization(sam, params, REDIRECT_URI)
    assert calendar.account_email == SAM
    assert google.last("token")["form"]["code_verifier"] == verifier


def test_it_refuses_a_callback_whose_sign_in_another_user_started(google, sam, omar):
    params = google.consent(provider.authorization_url(sam, REDIRECT_URI))

    with pytest.raises(AuthorizationFailed, match="start again"):
        provider.finish_authorization(omar, params, REDIRECT_URI)

    assert not CalendarConnection.objects.exists()
    assert OAuthAttempt.objects.filter(user=sam).exists()  # Sam's own callback still works
    assert google.count("token") == 0


def test_it_refuses_an_unknown_state(google, sam):
    params = google.consent(provider.authorization_url(sam, REDIRECT_URI))

    with pytest.raises(AuthorizationFailed, match="start again"):
        provider.finish_authorization(sam, {**params, "state": "made-up"}, REDIRECT_URI)

    assert not CalendarConnection.objects.exists()


def test_a_sign_in_can_be_finished_only_once(google, sam):
    params = google.consent(provider.authorization_url(sam, REDIRECT_URI))
    provider.finish_authorization(sam, params, REDIRECT_URI)

    with pytest.raises(AuthorizationFailed, match="start again"):
        provider.finish_authorization(sam, params, REDIRECT_URI)

    assert google.count("token") == 1


def test_a_sign_in_older_than_ten_minutes_has_expired(google, sam):
    params = google.consent(provider.authorization_url(sam, REDIRECT_URI))
    OAuthAttempt.objects.update(created_at=timezone.now() - timedelta(minutes=11))

    with pytest.raises(AuthorizationFailed, match="expired"):
        provider.finish_authorization(sam, params, REDIRECT_URI)

    assert not CalendarConnection.objects.exists()
    assert not OAuthAttempt.objects.exists()


def test_it_explains_that_the_agent_declined(google, sam):
    google.deny_consent = True
    params = google.consent(provider.authorization_url(sam, REDIRECT_URI))
    assert params["error"] == "access_denied"

    with pytest.raises(AuthorizationFailed, match="did not allow DynChat"):
        provider.finish_authorization(sam, params, REDIRECT_URI)

    assert not CalendarConnection.objects.exists()
    assert not OAuthAttempt.objects.exists()


def test_it_refuses_a_grant_without_a_refresh_token(google, sam):
    google.issue_refresh_tokens = False

    with pytest.raises(AuthorizationFailed, match="lasting access"):
        connect(sam, google)

    assert not CalendarConnection.objects.exists()


def test_it_refuses_a_grant_where_the_agent_unticked_the_events_permission(google, sam):
    google.untick_scopes = {EVENTS_SCOPE}

    with pytest.raises(AuthorizationFailed, match="tick it"):
        connect(sam, google)

    assert not CalendarConnection.objects.exists()


def test_scopes_granted_earlier_that_google_adds_back_are_fine(google, sam):
    # include_granted_scopes: oauthlib would raise "Scope has changed" if it compared scopes.
    google.remember_grant(SAM, ["https://www.googleapis.com/auth/drive.file"])

    calendar = connect(sam, google)

    assert "https://www.googleapis.com/auth/drive.file" in calendar.scopes


def test_it_reads_the_address_from_userinfo_when_there_is_no_id_token(google, sam):
    google.issue_id_token = False
    google.account_email = "sam.work@acme.test"

    calendar = connect(sam, google)

    assert calendar.account_email == "sam.work@acme.test"
    assert google.count("userinfo") == 1


def test_it_says_so_when_google_sign_in_is_not_configured(google, sam, settings):
    settings.GOOGLE_CLIENT_ID = ""

    with pytest.raises(AuthorizationFailed, match="GOOGLE_CLIENT_ID"):
        provider.authorization_url(sam, REDIRECT_URI)

    assert not OAuthAttempt.objects.exists()


def test_reconnecting_puts_the_agent_back_in_booking(google, sams_calendar):
    google.revoke_all()
    with pytest.raises(NeedsReconnect):
        provider.busy(sams_calendar.pk, MONDAY, MONDAY + timedelta(days=1))

    calendar = connect(sams_calendar.user, google)

    assert calendar.pk == sams_calendar.pk
    assert calendar.status == CalendarConnection.Status.CONNECTED
    assert provider.busy(calendar.pk, MONDAY, MONDAY + timedelta(days=1)) == []


# --- busy times --------------------------------------------------------------------------------


def test_busy_times_come_back_clipped_merged_and_in_utc(google, sams_calendar):
    nine = MONDAY.replace(hour=9)
    google.set_busy(
        "primary",
        [
            (nine.replace(hour=14), nine.replace(hour=15)),
            (nine, nine.replace(hour=10)),
            (nine.replace(minute=30), nine.replace(hour=10, minute=30)),  # overlaps
            (nine.replace(hour=10, minute=30), nine.replace(hour=11)),  # touches
            (MONDAY.replace(hour=23), MONDAY + timedelta(hours=26)),  # runs past the window
        ],
    )
    # The window may be given in any zone; the answer is UTC.
    start = MONDAY.astimezone(BERLIN)

    busy = provider.busy(sams_calendar.pk, start, start + timedelta(days=1))

    assert busy == [
        Interval(nine, nine.replace(hour=11)),
        Interval(nine.replace(hour=14), nine.replace(hour=15)),
        Interval(MONDAY.replace(hour=23), MONDAY + timedelta(days=1)),
    ]
    assert all(i.start.tzinfo is UTC and i.end.tzinfo is UTC for i in busy)
    asked = google.last("freebusy.query")
    assert asked["path"] == "/calendar/v3/freeBusy"  # api_endpoint includes the service path
    assert asked["json"] == {
        "timeMin": "2026-03-02T00:00:00Z",
        "timeMax": "2026-03-03T00:00:00Z",
        "timeZone": "UTC",
        "items": [{"id": "primary"}],
    }


def test_naive_datetimes_are_refused(google, sams_calendar):
    with pytest.raises(ValueError, match="aware"):
        provider.busy(sams_calendar.pk, datetime(2026, 3, 2), datetime(2026, 3, 3))


def test_a_calendar_google_answers_with_errors_for_is_unknown_not_free(google, sams_calendar):
    google.set_freebusy_error("notFound")

    with pytest.raises(BusyUnknown, match="notFound"):
        provider.busy(sams_calendar.pk, MONDAY, MONDAY + timedelta(days=1))
    assert busy_times(sams_calendar, MONDAY, MONDAY + timedelta(days=1), live=True) is None


# --- tokens ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expires_in", [timedelta(minutes=-1), timedelta(seconds=30)], ids=["expired", "expiring"]
)
def test_a_stale_access_token_is_refreshed_first_and_saved(google, sams_calendar, expires_in):
    expire_locally(sams_calendar, timezone.now() + expires_in)

    assert provider.busy(sams_calendar.pk, MONDAY, MONDAY + timedelta(days=1)) == []

    assert google.token_refreshes == 1
    assert google.count("freebusy.query") == 1  # no failed call first
    saved = CalendarConnection.objects.get(pk=sams_calendar.pk)
    assert saved.access_token != sams_calendar.access_token
    assert timedelta(minutes=58) < saved.access_token_expires_at - timezone.now()
    assert google.last("freebusy.query")["headers"]["Authorization"] == (
        f"Bearer {saved.access_token}"
    )


def test_a_fresh_access_token_is_used_as_it_is(google, sams_calendar):
    provider.busy(sams_calendar.pk, MONDAY, MONDAY + timedelta(days=1))

    assert google.token_refreshes == 0


def test_a_401_refreshes_the_token_once_and_retries_once(google, sams_calendar):
    google.expire_access_tokens()  # Google no longer takes the token we think is good

    assert provider.busy(sams_calendar.pk, MONDAY, MONDAY + timedelta(days=1)) == []

    assert google.token_refreshes == 1
    assert google.count("freebusy.query") == 2
    saved = CalendarConnection.objects.get(pk=sams_calendar.pk)
    assert saved.access_token != sams_calendar.access_token


def test_a_rotated_refresh_token_is_kept(google, sams_calendar):
    google.rotate_refresh_tokens = True
    expire_locally(sams_calendar)

    provider.busy(sams_calendar.pk, MONDAY, MONDAY + timedelta(days=1))

    saved = CalendarConnection.objects.get(pk=sams_calendar.pk)
    assert saved.refresh_token != sams_calendar.refresh_token
    assert google.refresh_tokens() == [saved.refresh_token]


@pytest.fixture
def reconnect_page(settings):
    """The reconnect email links to calendars:settings. Until calendars/urls.py has that page,
    stand in for it with this module's urlpatterns."""
    try:
        reverse("calendars:settings")
    except NoReverseMatch:
        settings.ROOT_URLCONF = __name__


urlpatterns = [
    path(
        "calendar/",
        include(([path("", lambda request: HttpResponse(), name="settings")], "calendars")),
    )
]


@pytest.mark.usefixtures("reconnect_page")
def test_a_revoked_grant_needs_reconnecting_and_emails_the_agent_once(
    google, sams_calendar, django_capture_on_commit_callbacks
):
    google.revoke_all()  # Sam removed DynChat from his Google account

    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(NeedsReconnect, match="invalid_grant"),
    ):
        provider.busy(sams_calendar.pk, MONDAY, MONDAY + timedelta(days=1))
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(NeedsReconnect):
        provider.create_event(sams_calendar.pk, meeting())

    saved = CalendarConnection.objects.get(pk=sams_calendar.pk)
    assert saved.status == CalendarConnection.Status.NEEDS_RECONNECT
    assert "invalid_grant" in saved.last_error
    assert google.token_refreshes == 1  # the second call did not ask Google again
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [SAM]
    assert "Reconnect your Google Calendar" in mail.outbox[0].subject


def test_a_token_endpoint_outage_is_transient_not_a_reconnect(google, sams_calendar):
    expire_locally(sams_calendar)
    google.fail_next("token", 503)

    with pytest.raises(TransientCalendarError):
        provider.busy(sams_calendar.pk, MONDAY, MONDAY + timedelta(days=1))

    assert google.token_refreshes == 1  # google-auth's own retries are off
    assert CalendarConnection.objects.get(pk=sams_calendar.pk).bookable


@pytest.mark.django_db(transaction=True)
def test_two_workers_refreshing_at_once_make_one_refresh_request(google, sams_calendar):
    expire_locally(sams_calendar)
    google.fail_next("token", delay=0.3)  # a slow refresh: the other worker waits for the lock
    barrier, results = threading.Barrier(2), []

    def worker():
        try:
            barrier.wait()
            results.append(provider.busy(sams_calendar.pk, MONDAY, MONDAY + timedelta(days=1)))
        except Exception as exc:  # the assertion below shows it
            results.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert results == [[], []]
    assert google.token_refreshes == 1
    assert google.count("freebusy.query") == 2


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (429, None),
        (403, "rateLimitExceeded"),
        (403, "userRateLimitExceeded"),
        (403, "quotaExceeded"),
        (500, None),
        (503, None),
    ],
)
def test_throttling_and_server_errors_are_transient(google, sams_calendar, status, reason):
    google.fail_next("freebusy.query", status, reason=reason)

    with pytest.raises(TransientCalendarError):
        provider.busy(sams_calendar.pk, MONDAY, MONDAY + timedelta(days=1))

    assert google.count("freebusy.query") == 1  # googleapiclient's retries are off


def test_a_429_carries_googles_retry_after(google, sams_calendar):
    google.fail_next("events.insert", 429, retry_after=2)

    with pytest.raises(TransientCalendarError) as caught:
        provider.create_event(sams_calendar.pk, meeting())

    assert caught.value.retry_after == 2.0
    assert google.events() == []


def test_a_retry_after_date_becomes_seconds(google, sams_calendar):
    in_a_minute = format_datetime(timezone.now() + timedelta(seconds=60), usegmt=True)
    google.fail_next("freebusy.query", 503, retry_after=in_a_minute)

    with pytest.raises(TransientCalendarError) as caught:
        provider.busy(sams_calendar.pk, MONDAY, MONDAY + timedelta(days=1))

    assert 50 < caught.value.retry_after <= 60


@pytest.mark.parametrize(
    ("status", "reason"), [(400, "badRequest"), (403, "forbidden"), (404, "notFound")]
)
def test_refusals_are_permanent(google, sams_calendar, status, reason):
    google.fail_next("events.insert", status, reason=reason)

    with pytest.raises(PermanentCalendarError, match=str(status)):
        provider.create_event(sams_calendar.pk, meeting())


def test_an_unreachable_google_is_transient(google, sams_calendar, settings):
    settings.GOOGLE_CALENDAR_API = f"http://127.0.0.1:{closed_port()}/"

    with pytest.raises(TransientCalendarError, match="could not be reached"):
        provider.busy(sams_calendar.pk, MONDAY, MONDAY + timedelta(days=1))


def test_a_slow_google_times_out_as_transient(google, sams_calendar, settings):
    settings.CALENDAR_TIMEOUT_SECONDS = 0.2
    google.fail_next("freebusy.query", delay=1)

    with pytest.raises(TransientCalendarError, match="could not be reached"):
        provider.busy(sams_calendar.pk, MONDAY, MONDAY + timedelta(days=1))


# --- meetings ----------------------------------------------------------------------------------


def test_creating_the_same_meeting_twice_makes_one_event(google, sams_calendar):
    event = meeting()

    first = provider.create_event(sams_calendar.pk, event)
    again = provider.create_event(sams_calendar.pk, event)

    assert again == first
    assert first.provider_event_id == event.key
    assert first.ical_uid == f"{event.key}@google.com"
    assert [e["id"] for e in google.events()] == [event.key]


def test_a_retried_insert_whose_answer_was_lost_makes_one_event(google, sams_calendar):
    event = meeting()
    google.fail_next("events.insert", 503, after=True)  # Google made it, the answer got lost

    with pytest.raises(TransientCalendarError):
        provider.create_event(sams_calendar.pk, event)
    created = provider.create_event(sams_calendar.pk, event)  # the task's retry

    assert created.provider_event_id == event.key
    assert len(google.events()) == 1
    assert google.count("events.get") == 1


def test_a_meeting_gets_a_meet_link_and_google_sends_no_invitation(google, sams_calendar):
    start = datetime(2026, 3, 2, 16, 0, tzinfo=BERLIN)  # 15:00 UTC

    created = provider.create_event(sams_calendar.pk, meeting(start=start))

    assert created.join_url.startswith("https://meet.google.com/")
    insert = google.last("events.insert")
    assert insert["query"]["conferenceDataVersion"] == "1"
    assert insert["query"]["sendUpdates"] == "none"
    [event] = google.events()
    assert event["start"] == {"dateTime": "2026-03-02T15:00:00Z", "timeZone": "UTC"}
    assert event["end"] == {"dateTime": "2026-03-02T15:30:00Z", "timeZone": "UTC"}
    assert [a["email"] for a in event["attendees"]] == ["ada@bigco.test"]
    assert event["summary"] == "Acme demo with Ada"


def test_a_meeting_without_video_has_no_link(google, sams_calendar):
    created = provider.create_event(sams_calendar.pk, meeting(video=False))

    assert created.join_url == ""
    assert "conferenceDataVersion" not in google.last("events.insert")["query"]
    assert "conferenceData" not in google.events()[0]


def test_a_meet_link_still_being_made_is_left_empty(google, sams_calendar):
    google.meet_pending = True

    assert provider.create_event(sams_calendar.pk, meeting()).join_url == ""


def test_cancelling_deletes_the_event_without_a_notice_from_google(google, sams_calendar):
    created = provider.create_event(sams_calendar.pk, meeting())

    provider.cancel_event(sams_calendar.pk, created.provider_event_id)

    assert google.events() == []
    assert google.sent_updates[-1] == {
        "action": "delete",
        "event_id": created.provider_event_id,
        # DynChat invited the visitor, and DynChat sends their cancellation.
        "sendUpdates": "none",
    }


def test_cancelling_an_event_that_is_gone_is_fine(google, sams_calendar):
    created = provider.create_event(sams_calendar.pk, meeting())
    provider.cancel_event(sams_calendar.pk, created.provider_event_id)

    provider.cancel_event(sams_calendar.pk, created.provider_event_id)  # 410 Gone
    provider.cancel_event(sams_calendar.pk, uuid4().hex)  # 404 Not Found
    provider.cancel_event(sams_calendar.pk, "")  # never created: nothing to ask

    assert google.count("events.delete") == 3


# --- disconnecting -----------------------------------------------------------------------------


def test_revoking_ends_the_grant_at_google(google, sams_calendar):
    provider.revoke(sams_calendar)

    assert google.refresh_tokens() == []
    assert google.last("revoke")["form"] == {"token": sams_calendar.refresh_token}


def test_revoking_is_best_effort(google, sams_calendar, settings):
    google.fail_next("revoke", 503)
    provider.revoke(sams_calendar)  # no exception

    settings.GOOGLE_REVOKE_URI = f"http://127.0.0.1:{closed_port()}/revoke"
    provider.revoke(sams_calendar)  # nor here
