"""Google Calendar: an agent's busy times and meetings, after they sign in with Google.

Three Google libraries, one job each:

- google-auth-oauthlib (``Flow``) runs the sign-in. The PKCE code verifier stays on our side,
  in an OAuthAttempt row keyed by the OAuth ``state`` and bound to the agent who started it;
- google-auth refreshes the access token, under the connection row's lock, and we write the
  new token back (the library never saves anything);
- google-api-python-client, over httplib2 with a timeout, calls the Calendar API.

Every address is a setting (GOOGLE_*), so tests run all of it against
tests/fakes/google_calendar.py over real HTTP. Nothing here retries: a failure becomes one of
the errors in calendars/providers/base.py, and the Celery task that called us owns the retries
(TransientCalendarError.retry_after carries Google's Retry-After).

Call these functions outside a transaction: a token refresh commits on its own, so another
worker sees it at once, and no lock of the caller's is held while Google answers.
"""

import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urljoin, urlsplit

import google_auth_httplib2
import httplib2
import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from google.auth import jwt
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2 import _client as oauth2_client
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from calendars.models import CalendarConnection
from calendars.providers.base import (
    AuthorizationFailed,
    BusyUnknown,
    CalendarError,
    CreatedEvent,
    Interval,
    NeedsReconnect,
    NewEvent,
    PermanentCalendarError,
    TransientCalendarError,
    retry_after_seconds,
)
from calendars.services import (
    mark_needs_reconnect,
    save_connection,
    start_oauth_attempt,
    take_oauth_attempt,
)

log = logging.getLogger(__name__)

GOOGLE = CalendarConnection.Provider.GOOGLE
EMAIL_SCOPE = "https://www.googleapis.com/auth/userinfo.email"
FREEBUSY_SCOPE = "https://www.googleapis.com/auth/calendar.freebusy"
EVENTS_SCOPE = "https://www.googleapis.com/auth/calendar.events"
# Full scope URIs; freebusy.query also accepts calendar.events, so events is the one we require.
SCOPES = ["openid", EMAIL_SCOPE, FREEBUSY_SCOPE, EVENTS_SCOPE]
# Refresh a little before Google's expiry, so a token doesn't die in the middle of a call.
REFRESH_MARGIN = timedelta(seconds=60)
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Errors from httplib2 (and the sockets under it) when Google cannot be reached in time.
_NETWORK_ERRORS = (OSError, httplib2.HttpLib2Error, TransportError)


# --- sign-in -----------------------------------------------------------------------------------


def authorization_url(user, redirect_uri: str) -> str:
    """Start `user`'s sign-in: keep the PKCE verifier server-side, return Google's consent page.

    `prompt=consent` with `access_type=offline` makes Google hand out a refresh token every
    time, not only on the account's first consent.
    """
    flow = _flow(redirect_uri, scopes=SCOPES)
    url, state = flow.authorization_url(
        access_type="offline", prompt="consent", include_granted_scopes="true"
    )
    start_oauth_attempt(
        user=user, provider=GOOGLE, state=state, secret={"code_verifier": flow.code_verifier}
    )
    return url


def finish_authorization(user, params: dict, redirect_uri: str) -> CalendarConnection:
    """Finish the sign-in from the callback's query parameters; create or replace the
    connection. Raises AuthorizationFailed with a message for the agent; stores nothing then.

    `redirect_uri` must be the one given to authorization_url (Google compares them).
    """
    verifier = _take_attempt(user, params.get("state") or "")
    error = params.get("error")
    if error == "access_denied":
        raise AuthorizationFailed(
            "You did not allow DynChat to use your Google Calendar, so it is not connected. "
            "To connect it, start again and choose Allow."
        )
    if error:
        raise AuthorizationFailed(
            f"Google could not connect your calendar ({error}). Please start again."
        )
    if verifier is None:
        raise AuthorizationFailed(
            "This Google sign-in is unknown or has expired. Please start again."
        )
    code = params.get("code")
    if not code:
        raise AuthorizationFailed("Google sent no authorization code. Please start again.")

    token = _exchange_code(code, redirect_uri, verifier)
    if not token.get("refresh_token"):
        raise AuthorizationFailed(
            "Google did not give DynChat lasting access to your calendar. Remove DynChat from "
            "your Google Account (Security, Third-party access), then connect again."
        )
    # RFC 6749 5.1: no "scope" in the answer means exactly the scopes asked for.
    granted = set(token["scope"]) if token.get("scope") else set(SCOPES)
    if EVENTS_SCOPE not in granted:
        raise AuthorizationFailed(
            "DynChat needs to see and edit the events in your Google Calendar to book meetings "
            "in it, and that permission was not ticked. Start again and tick it."
        )
    expires_at = token.get("expires_at")
    return save_connection(
        user,
        GOOGLE,
        account_email=_account_email(token),
        refresh_token=token["refresh_token"],
        access_token=token["access_token"],
        access_token_expires_at=datetime.fromtimestamp(expires_at, UTC) if expires_at else None,
        scopes=sorted(granted),
    )


def _flow(redirect_uri: str, *, scopes: list[str] | None, code_verifier: str | None = None):
    if not settings.GOOGLE_CLIENT_ID or not settings.GOOGLE_CLIENT_SECRET:
        raise AuthorizationFailed(
            "Google Calendar is not set up on this DynChat yet: an administrator has to set "
            "GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET."
        )
    for url in (settings.GOOGLE_AUTH_URI, settings.GOOGLE_TOKEN_URI):
        _allow_plain_http_to_loopback(url)
    config = {
        "web": {
            "client_id": settings.GOOGLE_CLIENT_ID,
            "client_secret": settings.GOOGLE_CLIENT_SECRET,
            "auth_uri": settings.GOOGLE_AUTH_URI,
            "token_uri": settings.GOOGLE_TOKEN_URI,
        }
    }
    return Flow.from_client_config(
        config,
        scopes=scopes,
        redirect_uri=redirect_uri,
        code_verifier=code_verifier,
        autogenerate_code_verifier=True,
    )


def _take_attempt(user, state: str) -> str | None:
    """The code verifier of `user`'s attempt with this state, used up (None: start again)."""
    secret = take_oauth_attempt(user=user, provider=GOOGLE, state=state)
    return secret["code_verifier"] if secret else None


def _exchange_code(code: str, redirect_uri: str, verifier: str) -> dict:
    # No scopes on this Flow: oauthlib then has nothing to compare Google's answer with, so it
    # cannot raise "Scope has changed" when Google adds scopes granted earlier
    # (include_granted_scopes) or leaves out one the agent unticked. We check the granted
    # scopes ourselves, without a process-wide OAUTHLIB_RELAX_TOKEN_SCOPE.
    flow = _flow(redirect_uri, scopes=None, code_verifier=verifier)
    try:
        # The code is passed directly rather than the whole callback URL, so oauthlib does not
        # insist that our callback (http:// in development) be https.
        return flow.fetch_token(code=code, timeout=settings.CALENDAR_TIMEOUT_SECONDS)
    except OAuth2Error as exc:
        raise AuthorizationFailed(
            f"Google refused to finish the sign-in ({exc.error}: {exc.description}). "
            "Please start again."
        ) from exc
    except requests.RequestException as exc:
        raise AuthorizationFailed(
            "Google could not be reached to finish the sign-in. Please try again in a minute."
        ) from exc


def _allow_plain_http_to_loopback(url: str) -> None:
    """oauthlib refuses to build a consent URL or call a token endpoint that is not https
    (InsecureTransportError) unless OAUTHLIB_INSECURE_TRANSPORT is set. Google's are https; only
    a development or test fake on loopback is plain http, and only then is the switch turned on
    (for the process: it is an environment variable, and it is never needed in production)."""
    parts = urlsplit(url)
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


def _account_email(token: dict) -> str:
    """The signed-in account's address: from the id_token, else from the userinfo endpoint."""
    if token.get("id_token"):
        # The id_token came straight from Google's token endpoint over TLS, so (OpenID Connect
        # Core 3.1.3.7) the TLS check stands in for verifying its signature.
        try:
            claims = jwt.decode(token["id_token"], verify=False)
        except ValueError:
            claims = {}
        if claims.get("email"):
            return claims["email"]
    try:
        response, content = _http().request(
            settings.GOOGLE_USERINFO_URI,
            "GET",
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
        email = json.loads(content).get("email") if response.status == 200 else None
    except (*_NETWORK_ERRORS, ValueError) as exc:
        log.warning("Google userinfo failed: %r", exc)
        email = None
    if not email:
        raise AuthorizationFailed(
            "Google did not say which account you signed in with. Please start again."
        )
    return email


# --- the Calendar API --------------------------------------------------------------------------


def busy(connection_id: int, start: datetime, end: datetime) -> list[Interval]:
    """The primary calendar's busy intervals in [start, end): aware UTC, sorted, merged.

    A calendar Google answers for with `errors` raises BusyUnknown: unknown is never free.
    """
    start, end = _utc(start), _utc(end)
    body = {
        "timeMin": _rfc3339(start),
        "timeMax": _rfc3339(end),
        "timeZone": "UTC",
        "items": [{"id": "primary"}],
    }
    answer = _call(connection_id, lambda service: service.freebusy().query(body=body))
    entry = (answer.get("calendars") or {}).get("primary")
    if entry is None:
        raise BusyUnknown("Google's free/busy answer has no entry for the primary calendar")
    if entry.get("errors"):
        reasons = ", ".join(str(e.get("reason")) for e in entry["errors"])
        raise BusyUnknown(f"Google could not tell when the calendar is busy: {reasons}")
    try:
        blocks = [Interval(_parse_time(b["start"]), _parse_time(b["end"])) for b in entry["busy"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise BusyUnknown(f"unreadable busy time in Google's answer: {exc!r}") from exc
    return _merged(blocks, start, end)


def create_event(connection_id: int, event: NewEvent) -> CreatedEvent:
    """Put the meeting in the agent's primary calendar; idempotent by `event.key`.

    The key is the event's id (a UUID's hex is valid base32hex), so a retried insert whose
    first attempt did reach Google gets 409 duplicate, and we read that event instead.
    """
    body = {
        "id": event.key,
        "summary": event.summary,
        "description": event.description,
        "start": {"dateTime": _rfc3339(_utc(event.start)), "timeZone": "UTC"},
        "end": {"dateTime": _rfc3339(_utc(event.end)), "timeZone": "UTC"},
        "attendees": [{"email": event.attendee_email, "displayName": event.attendee_name}],
    }
    # sendUpdates="none": DynChat emails the visitor its own invitation, whose UID is this
    # event's iCalUID, so the visitor is not invited twice and their calendar merges the two.
    options = {"calendarId": "primary", "body": body, "sendUpdates": "none"}
    if event.video_link:
        body["conferenceData"] = {
            "createRequest": {
                "requestId": event.key,
                "conferenceSolutionKey": {"type": "hangoutsMeet"},
            }
        }
        options["conferenceDataVersion"] = 1  # without it Google ignores conferenceData
    try:
        created = _call(
            connection_id, lambda service: service.events().insert(**options), passthrough=(409,)
        )
    except HttpError:
        # 409 duplicate: an earlier attempt created it (its answer was lost). Read it back.
        created = _call(
            connection_id,
            lambda service: service.events().get(calendarId="primary", eventId=event.key),
        )
        if created.get("status") == "cancelled":
            raise PermanentCalendarError(
                f"the meeting's event {event.key} was already deleted from the calendar"
            ) from None
    return _created_event(created)


def cancel_event(connection_id: int, provider_event_id: str) -> None:
    """Delete the meeting's event; an event that is already gone (404, 410) counts as done.

    sendUpdates="none", as when it was made: Google never wrote to the visitor (DynChat sent
    the invitation), so DynChat sends the cancellation too, an .ics CANCEL with this event's
    iCalUID; a notice from Google as well would tell the visitor twice.
    """
    if not provider_event_id:
        return
    try:
        _call(
            connection_id,
            lambda service: service.events().delete(
                calendarId="primary", eventId=provider_event_id, sendUpdates="none"
            ),
            passthrough=(404, 410),
        )
    except HttpError:
        log.info(
            "Google event %s of calendar %s was already gone", provider_event_id, connection_id
        )


def cancel_event_by_key(connection_id: int, *, key: str, start: datetime, end: datetime) -> None:
    """Delete the event made for `key` when its id was never recorded (the answer to the
    insert was lost): our key is the event's id, so this is cancel_event."""
    cancel_event(connection_id, key)


def revoke(connection: CalendarConnection) -> None:
    """Ask Google to revoke the grant (on disconnect). Best effort: failures are logged only,
    because the agent's disconnect must succeed whether Google answers or not."""
    token = connection.refresh_token or connection.access_token
    if not token:
        return
    try:
        response, content = _http().request(
            settings.GOOGLE_REVOKE_URI,
            "POST",
            body=urlencode({"token": token}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    except _NETWORK_ERRORS as exc:
        log.warning("could not revoke Google calendar %s: %r", connection.pk, exc)
        return
    if response.status != 200:
        # 400 invalid_token: already revoked (by the agent, at Google). Nothing left to do.
        log.warning(
            "Google did not revoke calendar %s: %s %s",
            connection.pk,
            response.status,
            content[:200],
        )


def _call(connection_id: int, request_for: Callable, *, passthrough: tuple[int, ...] = ()):
    """Run one Calendar API request, `request_for(service) -> HttpRequest`, and return its
    answer. A 401 refreshes the token once and retries once. An HttpError whose status is in
    `passthrough` is re-raised for the caller; every other failure becomes a CalendarError."""
    token = _access_token(connection_id)
    for attempt in (1, 2):
        try:
            return _execute(token, request_for)
        except HttpError as exc:
            status = exc.resp.status
            if status == 401 and attempt == 1:
                # Google refused a token we thought valid (revoked at its end, clock skew).
                token = _access_token(connection_id, rejected=token)
                continue
            if status in passthrough:
                raise
            raise _translate(exc) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _execute(token: str, request_for: Callable):
    # Credentials with a token only (no refresh token, no expiry) can never refresh behind our
    # back: refreshing is _access_token's job, under the row lock. refresh_status_codes=()
    # stops AuthorizedHttp from refreshing on 401 itself.
    http = google_auth_httplib2.AuthorizedHttp(
        Credentials(token), http=_http(), refresh_status_codes=()
    )
    try:
        with build(
            "calendar",
            "v3",
            http=http,
            cache_discovery=False,
            static_discovery=True,
            client_options={"api_endpoint": _api_endpoint()},
        ) as service:
            # num_retries=0: retries belong to the Celery task, which knows its own budget.
            return request_for(service).execute(num_retries=0)
    except _NETWORK_ERRORS as exc:
        raise TransientCalendarError(f"Google Calendar could not be reached: {exc!r}") from exc


def _api_endpoint() -> str:
    # api_endpoint replaces the discovery document's rootUrl + servicePath as a whole (it is
    # not joined with "calendar/v3/"), so the setting, the API's root, needs the service path.
    return urljoin(settings.GOOGLE_CALENDAR_API.rstrip("/") + "/", "calendar/v3/")


def _http() -> httplib2.Http:
    # A new Http per call: httplib2 objects are not thread-safe.
    return httplib2.Http(timeout=settings.CALENDAR_TIMEOUT_SECONDS)


def _translate(exc: HttpError) -> CalendarError:
    status = exc.resp.status
    reasons = _error_reasons(exc)
    message = f"Google Calendar answered {status} ({', '.join(sorted(reasons)) or exc.reason})"
    if status == 429 or (status == 403 and reasons & RATE_LIMIT_REASONS):
        return TransientCalendarError(message, retry_after=_retry_after(exc.resp))
    if status >= 500 or status in (401, 408):
        # A second 401 with a token refreshed a moment ago: most likely Google's propagation.
        return TransientCalendarError(message, retry_after=_retry_after(exc.resp))
    return PermanentCalendarError(message)


def _error_reasons(exc: HttpError) -> set[str]:
    # {"error": {"errors": [{"domain", "reason", "message"}], "code", "message"}}; HttpError's
    # own error_details prefers "details" when both exist, so read the body ourselves.
    try:
        errors = json.loads(exc.content)["error"].get("errors") or []
        return {e["reason"] for e in errors if isinstance(e, dict) and e.get("reason")}
    except (ValueError, KeyError, TypeError, AttributeError):
        return set()


def _retry_after(response) -> float | None:
    return retry_after_seconds(response.get("retry-after"))  # httplib2 lower-cases names


# --- tokens ------------------------------------------------------------------------------------


def _access_token(connection_id: int, *, rejected: str | None = None) -> str:
    """A usable access token for the connection, refreshed (and saved) when it is missing,
    expires within REFRESH_MARGIN, or is `rejected` (the API just answered 401 to it).

    The refresh happens under the row's lock, and the row is re-read once the lock is held:
    when two workers find the token stale at once, the second one waits and then uses the
    first one's new token, so one refresh reaches Google and no refresh token is overwritten.
    """
    connection = _connection(CalendarConnection.objects.all(), connection_id)
    if _usable(connection, rejected):
        return connection.access_token
    failure = None
    with transaction.atomic():
        connection = _connection(CalendarConnection.objects.select_for_update(), connection_id)
        if _usable(connection, rejected):
            return connection.access_token  # another worker refreshed it while we waited
        try:
            access_token, refresh_token, expiry = _refresh(connection.refresh_token)
        except NeedsReconnect as exc:
            failure = str(exc)
        else:
            connection.access_token = access_token
            connection.access_token_expires_at = expiry
            fields = ["access_token", "access_token_expires_at", "updated_at"]
            if refresh_token and refresh_token != connection.refresh_token:
                connection.refresh_token = refresh_token  # Google rotated it: keep the new one
                fields.append("refresh_token")
            connection.save(update_fields=fields)
            return access_token
    # Marked here, after the lock is released, so every caller's failure takes the agent out
    # of booking and emails them once (busy.py marks it too; marking is idempotent).
    mark_needs_reconnect(connection_id, failure)
    raise NeedsReconnect(failure)


def _connection(queryset, connection_id: int) -> CalendarConnection:
    connection = queryset.filter(pk=connection_id, provider=GOOGLE).first()
    if connection is None:
        raise PermanentCalendarError(f"there is no Google calendar connection {connection_id}")
    if connection.status == CalendarConnection.Status.NEEDS_RECONNECT:
        raise NeedsReconnect(f"Google calendar connection {connection_id} needs reconnecting")
    return connection


def _usable(connection: CalendarConnection, rejected: str | None) -> bool:
    token, expires_at = connection.access_token, connection.access_token_expires_at
    if not token or token == rejected:
        return False
    return expires_at is None or expires_at - timezone.now() > REFRESH_MARGIN


def _refresh(refresh_token: str) -> tuple[str, str, datetime | None]:
    """A new access token from Google: (access token, refresh token, aware UTC expiry)."""
    if not refresh_token:
        raise NeedsReconnect("the Google connection has no refresh token")
    request = google_auth_httplib2.Request(_http())
    try:
        # google-auth's refresh_grant rather than Credentials.refresh: the latter retries 5xx
        # for seconds with backoff, here inside the row lock; can_retry=False leaves retrying
        # to the Celery task, as everywhere else.
        access_token, new_refresh_token, expiry, _ = oauth2_client.refresh_grant(
            request,
            settings.GOOGLE_TOKEN_URI,
            refresh_token,
            settings.GOOGLE_CLIENT_ID,
            settings.GOOGLE_CLIENT_SECRET,
            can_retry=False,
        )
    except RefreshError as exc:
        details = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
        if details.get("error") == "invalid_grant":
            raise NeedsReconnect(f"Google refused the refresh token: {exc}") from exc
        if exc.retryable:
            raise TransientCalendarError(f"Google could not refresh the token: {exc}") from exc
        raise PermanentCalendarError(f"Google could not refresh the token: {exc}") from exc
    except _NETWORK_ERRORS as exc:
        raise TransientCalendarError(
            f"Google's token endpoint could not be reached: {exc!r}"
        ) from exc
    # google-auth's expiry is naive UTC.
    return access_token, new_refresh_token, expiry.replace(tzinfo=UTC) if expiry else None


# --- times -------------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"aware datetimes only, got {value!r}")
    return value.astimezone(UTC)


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime:
    return _utc(datetime.fromisoformat(text))


def _merged(intervals: list[Interval], start: datetime, end: datetime) -> list[Interval]:
    """Clipped to [start, end), sorted, overlapping or touching intervals joined."""
    merged: list[Interval] = []
    for interval in sorted(intervals):
        lo, hi = max(interval.start, start), min(interval.end, end)
        if lo >= hi:
            continue
        if merged and lo <= merged[-1].end:
            if hi > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, hi)
        else:
            merged.append(Interval(lo, hi))
    return merged


def _created_event(event: dict) -> CreatedEvent:
    video = next(
        (
            entry.get("uri")
            for entry in (event.get("conferenceData") or {}).get("entryPoints") or []
            if entry.get("entryPointType") == "video"
        ),
        None,
    )
    # No link yet while Google still creates the Meet (createRequest status "pending").
    return CreatedEvent(
        provider_event_id=event["id"],
        ical_uid=event.get("iCalUID", ""),
        join_url=event.get("hangoutLink") or video or "",
    )
