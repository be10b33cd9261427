"""Outlook / Microsoft 365 calendars: MSAL for the sign-in and tokens, Microsoft Graph over httpx.

The interface is calendars.providers.base's. Addresses come from settings (MICROSOFT_AUTHORITY,
MICROSOFT_GRAPH_API, MICROSOFT_CA_BUNDLE), so tests run this module unpatched against
tests/fakes/microsoft.py.

Tokens. Each connection keeps MSAL's serialised token cache (encrypted, CalendarConnection
.token_cache) for its one account. A call reads it under the row's lock (select_for_update),
lets MSAL hand out the cached access token or refresh it, writes the cache back if MSAL changed
it, commits, and only then calls Graph: two workers never refresh with, and overwrite, each
other's refresh token, and nobody holds the lock during a Graph call. Call these functions
outside a transaction of your own, or the lock lasts until yours ends.

Errors. invalid_grant / interaction_required (or a cache with no account) mark the connection
"needs reconnecting" (calendars.services.mark_needs_reconnect: one email per break) and raise
NeedsReconnect. Graph's 401 InvalidAuthenticationToken gets one forced refresh and one retry.
429 / 5xx / timeouts / network errors raise TransientCalendarError (with Retry-After when sent),
other 4xx PermanentCalendarError. Nothing here retries in a loop: the Celery task owns retries.
"""

import logging
import ssl
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import msal
import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from calendars import services
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

log = logging.getLogger(__name__)

PROVIDER = CalendarConnection.Provider.MICROSOFT
# MSAL adds openid, profile and offline_access itself (and refuses them here).
SCOPES = ["Calendars.ReadWrite", "User.Read"]
RECONNECT_ERRORS = frozenset({"invalid_grant", "interaction_required"})
TRANSIENT_TOKEN_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
UTC_PREFERENCE = {"Prefer": 'outlook.timezone="UTC"'}
TEAMS = "teamsForBusiness"
CALENDAR_VIEW_PAGE = 100
MAX_CALENDAR_VIEW_PAGES = 50  # 5,000 events in one window means something is wrong

# What blocks a slot. busy and oof (out of office) obviously; tentative too, because the agent
# may well go to that meeting and a double booking costs more than a slot not offered; unknown
# because unknown is never free. free does not, and neither does workingElsewhere: Outlook's
# "working elsewhere" marks where the agent works (often all day, every remote day), not that
# they are taken, and blocking it would empty whole days of the agent's calendar.
BLOCKING_STATUSES = frozenset({"busy", "oof", "tentative", "unknown"})
UTC_ZONE_NAMES = frozenset(
    {"utc", "etc/utc", "coordinated universal time", "tzone://microsoft/utc"}
)

_thread = threading.local()


# --- MSAL ---------------------------------------------------------------------------------------


class _Session(requests.Session):
    """The HTTP client MSAL uses. requests ignores Session.verify when REQUESTS_CA_BUNDLE or
    CURL_CA_BUNDLE is set (psf/requests#3829), so verify (and the timeout) go on each request."""

    def __init__(self):
        super().__init__()
        self._verify = settings.MICROSOFT_CA_BUNDLE or True
        self._timeout = settings.CALENDAR_TIMEOUT_SECONDS

    def request(self, method, url, **kwargs):
        if kwargs.get("verify") is None:
            kwargs["verify"] = self._verify
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, **kwargs)


def _http_cache() -> dict:
    # MSAL keeps OIDC discovery (24 hours) and its throttling of failed token requests in this
    # mapping. Apps are built per call, so without it every call would fetch discovery again.
    # One per thread: MSAL's lock around the mapping belongs to each app, not to the mapping.
    cache = getattr(_thread, "msal_http_cache", None)
    if cache is None:
        cache = _thread.msal_http_cache = {}
    return cache


@contextmanager
def _msal_app(token_cache: msal.SerializableTokenCache):
    """A ConfidentialClientApplication over `token_cache`, talking only to MICROSOFT_AUTHORITY.

    Raises PermanentCalendarError when Microsoft is not configured or the authority is wrong,
    TransientCalendarError when it cannot be reached."""
    if not settings.MICROSOFT_CLIENT_ID:
        raise PermanentCalendarError("MICROSOFT_CLIENT_ID is not configured")
    session = _Session()
    try:
        try:
            app = msal.ConfidentialClientApplication(
                settings.MICROSOFT_CLIENT_ID,
                client_credential=settings.MICROSOFT_CLIENT_SECRET,
                authority=settings.MICROSOFT_AUTHORITY,
                token_cache=token_cache,
                # No call to login.microsoftonline.com's instance discovery: only the
                # configured authority's own OIDC discovery document is fetched.
                instance_discovery=False,
                http_client=session,
                http_cache=_http_cache(),
                app_name="DynChat",
            )
        except requests.RequestException as exc:
            raise TransientCalendarError(f"Microsoft sign-in unreachable: {exc}") from exc
        except (ValueError, msal.exceptions.MsalServiceError) as exc:
            # A 4xx discovery answer (unknown tenant) or a malformed authority address.
            raise PermanentCalendarError(f"Microsoft authority refused: {exc}") from exc
        yield app
    finally:
        session.close()


def _first_line(text: str | None) -> str:
    # AADSTS descriptions go on with trace and correlation ids: the first line says it all.
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


# --- sign-in ------------------------------------------------------------------------------------


def authorization_url(user, redirect_uri: str) -> str:
    """Start the sign-in: keep MSAL's flow (state, PKCE verifier, nonce) server-side in an
    OAuthAttempt bound to `user`, and return Microsoft's consent page address."""
    if not settings.MICROSOFT_CLIENT_ID:
        raise AuthorizationFailed(
            "Outlook calendars are not set up on this DynChat (MICROSOFT_CLIENT_ID is missing)."
        )
    try:
        with _msal_app(msal.SerializableTokenCache()) as app, warnings.catch_warnings():
            # MSAL recommends response_mode=form_post. We keep the default query mode: a
            # cross-site POST to the callback carries no SameSite=Lax session cookie, so the
            # callback could not tell whose sign-in it is. State + PKCE + nonce still protect it.
            warnings.filterwarnings("ignore", message="response_mode='form_post'")
            flow = app.initiate_auth_code_flow(
                SCOPES, redirect_uri=redirect_uri, prompt="select_account"
            )
    except CalendarError as exc:
        raise AuthorizationFailed(
            "Microsoft's sign-in cannot be reached right now. Please try again in a minute."
        ) from exc
    services.start_oauth_attempt(user=user, provider=PROVIDER, state=flow["state"], secret=flow)
    return flow["auth_uri"]


def finish_authorization(user, params: dict, redirect_uri: str) -> CalendarConnection:
    """Finish the sign-in from the callback's query parameters and save `user`'s connection.

    The attempt is found by state *and* user and used once. Raises AuthorizationFailed with a
    message for the agent."""
    start_again = "This Outlook sign-in has expired or was not started here. Please start again."
    if hasattr(params, "dict"):  # a QueryDict (request.GET): one value per key, as MSAL wants
        params = params.dict()
    flow = services.take_oauth_attempt(
        user=user, provider=PROVIDER, state=str(params.get("state") or "")
    )
    if flow is None or flow.get("redirect_uri") != redirect_uri:
        raise AuthorizationFailed(start_again)

    cache = msal.SerializableTokenCache()
    try:
        with _msal_app(cache) as app:
            result = app.acquire_token_by_auth_code_flow(flow, dict(params))
    except ValueError as exc:  # state mismatch, or neither code nor error in the answer
        raise AuthorizationFailed(start_again) from exc
    except RuntimeError as exc:  # the id_token's nonce is not ours: a replayed answer
        raise AuthorizationFailed(start_again) from exc
    except (CalendarError, requests.RequestException, msal.exceptions.MsalServiceError) as exc:
        raise AuthorizationFailed(
            "Microsoft's sign-in cannot be reached right now. Please try again in a minute."
        ) from exc

    error = result.get("error")
    if error == "access_denied":
        raise AuthorizationFailed(
            "You did not give DynChat access to your Outlook calendar, so it was not connected."
        )
    if error == "invalid_grant":
        raise AuthorizationFailed(
            "Microsoft did not accept this sign-in (it may have taken too long). "
            "Please start again."
        )
    if error:
        detail = _first_line(result.get("error_description")) or error
        raise AuthorizationFailed(f"Microsoft sign-in failed: {detail}. Please start again.")

    claims = result.get("id_token_claims") or {}
    # MSAL names the cached account after preferred_username; busy() looks the account up by it.
    account_email = claims.get("preferred_username") or claims.get("email") or ""
    if not account_email:
        raise AuthorizationFailed("Microsoft did not say which account signed in. Start again.")
    return services.save_connection(
        user, PROVIDER, account_email=account_email, token_cache=cache.serialize()
    )


def revoke(connection) -> None:
    """Forget the account's tokens. Microsoft has no revocation endpoint for an auth-code
    grant (Entra ID's revokeSignInSessions needs User.RevokeSessions.All, which an agent's
    consent does not give), so this removes the account from the stored cache; the grant itself
    lasts until the agent removes DynChat at https://myapps.microsoft.com (work accounts) or
    https://account.live.com/consent/Manage (personal ones)."""
    cache = msal.SerializableTokenCache()
    if connection.token_cache:
        cache.deserialize(connection.token_cache)
    try:
        with _msal_app(cache) as app:
            for account in app.get_accounts():
                app.remove_account(account)
        remaining = cache.serialize()
    except CalendarError:
        remaining = ""  # the cache holds this one account only: emptying it is the same
    connection.token_cache = remaining
    CalendarConnection.objects.filter(pk=connection.pk).update(
        token_cache=remaining, updated_at=timezone.now()
    )


# --- tokens for a call --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Grant:
    access_token: str
    account_email: str
    free_busy_api: str


def _pick_account(app: msal.ConfidentialClientApplication, account_email: str) -> dict | None:
    accounts = app.get_accounts(username=account_email) if account_email else []
    if not accounts:
        # The cache holds this connection's account only; a renamed username must not lock
        # the agent out.
        accounts = app.get_accounts()
    return accounts[0] if accounts else None


def _grant(connection_id: int, *, force_refresh: bool = False) -> _Grant:
    """An access token for the connection, refreshed under the row's lock when needed."""
    cache = msal.SerializableTokenCache()
    try:
        with _msal_app(cache) as app, transaction.atomic():
            connection = (
                CalendarConnection.objects.select_for_update().filter(pk=connection_id).first()
            )
            if connection is None or connection.provider != PROVIDER:
                raise PermanentCalendarError(f"no Outlook calendar connection {connection_id}")
            if connection.token_cache:
                cache.deserialize(connection.token_cache)
            account = _pick_account(app, connection.account_email)
            result = None
            if account is not None:
                result = app.acquire_token_silent_with_error(
                    SCOPES, account, force_refresh=force_refresh
                )
            if cache.has_state_changed:
                connection.token_cache = cache.serialize()
                connection.save(update_fields=["token_cache", "updated_at"])
    except requests.RequestException as exc:
        raise TransientCalendarError(f"Microsoft token endpoint unreachable: {exc}") from exc
    except msal.exceptions.MsalServiceError as exc:  # a 5xx from the token endpoint
        raise TransientCalendarError(f"Microsoft token endpoint failed: {exc}") from exc
    except ValueError as exc:  # an answer that is not JSON (a proxy's error page)
        raise TransientCalendarError(f"Microsoft token endpoint answered nonsense: {exc}") from exc

    # Outside the transaction: mark_needs_reconnect commits (and emails) on its own.
    if result is None:
        _needs_reconnect(connection_id, "the stored Microsoft sign-in has no usable account")
    error = result.get("error")
    if error in RECONNECT_ERRORS:
        detail = _first_line(result.get("error_description"))
        _needs_reconnect(connection_id, f"Microsoft refused the refresh: {error}: {detail}")
    if error in TRANSIENT_TOKEN_ERRORS:
        raise TransientCalendarError(f"Microsoft token endpoint: {error}")
    if error:
        detail = _first_line(result.get("error_description"))
        raise PermanentCalendarError(f"Microsoft token endpoint: {error}: {detail}")
    return _Grant(result["access_token"], connection.account_email, connection.free_busy_api)


def _needs_reconnect(connection_id: int, reason: str) -> NoReturn:
    services.mark_needs_reconnect(connection_id, reason)
    raise NeedsReconnect(reason)


# --- Graph --------------------------------------------------------------------------------------


def _retry_after(response: httpx.Response) -> float | None:
    return retry_after_seconds(response.headers.get("Retry-After"))


def _graph_error(response: httpx.Response) -> tuple[str, str]:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return "", response.text[:200]
    if not isinstance(error, dict):
        return "", str(error)[:200]
    return str(error.get("code") or ""), str(error.get("message") or "")


def _check(response: httpx.Response, what: str) -> None:
    """Raise the CalendarError that `response` means, if it is not a success."""
    if response.is_success:
        return
    code, message = _graph_error(response)
    detail = f"{what}: Graph answered {response.status_code} {code}: {message}".strip()
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientCalendarError(detail, retry_after=_retry_after(response))
    raise PermanentCalendarError(detail)


class _Graph:
    """Graph calls for one connection: one token, at most one forced refresh on 401."""

    def __init__(self, connection_id: int):
        self.connection_id = connection_id
        self.grant = _grant(connection_id)
        self.refreshed = False
        context = True
        if settings.MICROSOFT_CA_BUNDLE:
            context = ssl.create_default_context(cafile=settings.MICROSOFT_CA_BUNDLE)
        self.client = httpx.Client(verify=context, timeout=settings.CALENDAR_TIMEOUT_SECONDS)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.client.close()

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        if not url.startswith("https://") and not url.startswith("http://"):
            url = settings.MICROSOFT_GRAPH_API + url
        response = self._send(method, url, **kwargs)
        if (
            response.status_code == 401
            and not self.refreshed
            and _graph_error(response)[0] == "InvalidAuthenticationToken"
        ):
            # Our cached token expired early (revoked sessions, clock skew): one fresh token.
            self.refreshed = True
            self.grant = _grant(self.connection_id, force_refresh=True)
            response = self._send(method, url, **kwargs)
        return response

    def _send(self, method: str, url: str, *, headers: dict | None = None, **kwargs):
        headers = {**(headers or {}), "Authorization": f"Bearer {self.grant.access_token}"}
        try:
            return self.client.request(method, url, headers=headers, **kwargs)
        except httpx.TimeoutException as exc:
            raise TransientCalendarError(f"Graph timed out: {method} {url}") from exc
        except httpx.TransportError as exc:
            raise TransientCalendarError(f"Graph unreachable: {exc}") from exc


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("aware datetimes only")
    return value.astimezone(UTC)


def _graph_time(value: datetime) -> dict:
    """Graph's dateTimeTimeZone: a wall-clock time without offset, and its zone."""
    return {"dateTime": _utc(value).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def _parse_graph_time(value: dict) -> datetime:
    """A dateTimeTimeZone to an aware UTC datetime. Its dateTime has no offset: the zone is
    in timeZone. We ask for UTC (Prefer header); IANA names are read too; a Windows zone name
    ("Pacific Standard Time") means our preference was ignored, and we do not guess it."""
    try:
        moment = datetime.fromisoformat(value["dateTime"].rstrip("Z"))
        zone_name = value.get("timeZone") or "UTC"
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise BusyUnknown(f"Graph gave an unreadable time: {value!r}") from exc
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    if zone_name.lower() in UTC_ZONE_NAMES:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.replace(tzinfo=ZoneInfo(zone_name)).astimezone(UTC)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BusyUnknown(f"Graph answered in time zone {zone_name!r}, not UTC") from exc


def _z(value: datetime) -> str:
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _schedule_refused(response: httpx.Response) -> bool:
    """Whether getSchedule refused the mailbox itself: personal Microsoft accounts cannot use
    it (Graph's permission table says "Not supported"). The fake answers 403 ErrorAccessDenied,
    the shape Outlook's other refusals take; we also accept a 400/403/501 that says so in
    words. calendarView reads the same calendar for every kind of account, so falling back on
    a wrong guess costs nothing."""
    if response.status_code not in (400, 403, 501):
        return False
    code, message = _graph_error(response)
    text = message.lower()
    return (
        (response.status_code == 403 and code == "ErrorAccessDenied")
        or "personal" in text
        or "consumer" in text
        or "not supported" in text
    )


def busy(connection_id: int, start: datetime, end: datetime) -> list[Interval]:
    """The agent's busy intervals overlapping [start, end), sorted, in UTC.

    Work accounts: getSchedule. Personal accounts: calendarView, remembered on the connection
    (free_busy_api) after getSchedule refuses once. Raises BusyUnknown when Graph cannot say."""
    with _Graph(connection_id) as graph:
        if graph.grant.free_busy_api == CalendarConnection.FreeBusyApi.CALENDAR_VIEW:
            return _calendar_view(graph, start, end)
        response = graph.request(
            "POST",
            "/me/calendar/getSchedule",
            headers=UTC_PREFERENCE,
            json={
                "schedules": [graph.grant.account_email],
                "startTime": _graph_time(start),
                "endTime": _graph_time(end),
                "availabilityViewInterval": 15,
            },
        )
        if _schedule_refused(response):
            intervals = _calendar_view(graph, start, end)
            # One column, and not the token cache another worker may be writing: update().
            CalendarConnection.objects.filter(pk=connection_id).update(
                free_busy_api=CalendarConnection.FreeBusyApi.CALENDAR_VIEW,
                updated_at=timezone.now(),
            )
            log.info("calendar %s: getSchedule refused, using calendarView", connection_id)
            return intervals
        _check(response, "getSchedule")
        return _schedule_intervals(response.json(), graph.grant.account_email)


def _schedule_intervals(data: dict, account_email: str) -> list[Interval]:
    schedules = data.get("value") or []
    mine = [s for s in schedules if str(s.get("scheduleId", "")).lower() == account_email.lower()]
    if not (mine or schedules):
        raise BusyUnknown("getSchedule answered without the agent's schedule")
    schedule = (mine or schedules)[0]
    if schedule.get("error"):
        error = schedule["error"]
        raise BusyUnknown(
            f"getSchedule could not read {account_email}: {error.get('message', '')} "
            f"({error.get('responseCode', '')})"
        )
    intervals = [
        Interval(_parse_graph_time(item["start"]), _parse_graph_time(item["end"]))
        for item in schedule.get("scheduleItems") or []
        if item.get("status") in BLOCKING_STATUSES
    ]
    return sorted(intervals)


def _calendar_view(graph: _Graph, start: datetime, end: datetime) -> list[Interval]:
    url = "/me/calendarView"
    params = {
        "startDateTime": _z(start),
        "endDateTime": _z(end),
        "$select": "start,end,showAs,isCancelled,isAllDay",
        "$top": str(CALENDAR_VIEW_PAGE),
    }
    intervals = []
    for _page in range(MAX_CALENDAR_VIEW_PAGES):
        response = graph.request("GET", url, params=params, headers=UTC_PREFERENCE)
        _check(response, "calendarView")
        data = response.json()
        for item in data.get("value") or []:
            if item.get("isCancelled") or item.get("showAs") not in BLOCKING_STATUSES:
                continue
            intervals.append(
                Interval(_parse_graph_time(item["start"]), _parse_graph_time(item["end"]))
            )
        url, params = data.get("@odata.nextLink"), None
        if not url:
            return sorted(intervals)
        if not url.startswith(settings.MICROSOFT_GRAPH_API + "/"):
            # The link carries our bearer token along: follow it only to Graph itself.
            raise PermanentCalendarError(f"calendarView paged to a foreign address: {url}")
    raise BusyUnknown(f"calendarView had more than {MAX_CALENDAR_VIEW_PAGES} pages")


# --- events -------------------------------------------------------------------------------------


def _teams_allowed(graph: _Graph) -> bool:
    response = graph.request("GET", "/me/calendar")
    _check(response, "reading the calendar")
    return TEAMS in (response.json().get("allowedOnlineMeetingProviders") or [])


def create_event(connection_id: int, event: NewEvent) -> CreatedEvent:
    """Put the meeting in the agent's calendar; Graph emails the invitation to the attendee.

    Idempotent: event.key is the transactionId, so a retried POST returns the event the first
    one made. A Teams link is asked for only when the calendar allows teamsForBusiness."""
    with _Graph(connection_id) as graph:
        body = {
            "subject": event.summary,
            "body": {"contentType": "text", "content": event.description},
            "start": _graph_time(event.start),
            "end": _graph_time(event.end),
            "attendees": [
                {
                    "emailAddress": {"address": event.attendee_email, "name": event.attendee_name},
                    "type": "required",
                }
            ],
            "transactionId": event.key,
        }
        if event.video_link and _teams_allowed(graph):
            body |= {"isOnlineMeeting": True, "onlineMeetingProvider": TEAMS}
        response = graph.request("POST", "/me/events", json=body, headers=UTC_PREFERENCE)
        _check(response, "creating the event")
        data = response.json()
    return CreatedEvent(
        provider_event_id=data["id"],
        ical_uid=data.get("iCalUId") or "",
        join_url=(data.get("onlineMeeting") or {}).get("joinUrl") or "",
    )


def cancel_event(connection_id: int, provider_event_id: str) -> None:
    """Delete the meeting's event from the agent's calendar. Already gone (404) is done.

    Which call, and the notice it sends. Graph has no way to take an organiser's meeting off
    without telling its attendees: DELETE on the organiser's event "sends a cancellation
    message to the meeting attendees" (Graph's event-delete page), the cancel action exists to
    send one with a comment, and Graph's maintainers confirm there is no switch for it
    (microsoftgraph/microsoft-graph-docs#7339, #7968). What is in our hands is not to send a
    second, custom notice: DELETE, not cancel. Outlook's cancellation is the counterpart of
    the invitation Outlook sent when the event was made (create_event), and carries the same
    UID as DynChat's invitation and cancellation, so the visitor's calendar takes out one
    meeting whichever arrives first. DELETE also works for an event without attendees, which
    cancel refuses.
    """
    if not provider_event_id:
        return
    with _Graph(connection_id) as graph:
        response = graph.request("DELETE", f"/me/events/{quote(provider_event_id, safe='')}")
    if response.status_code == 404:
        return
    _check(response, "deleting the event")


def cancel_event_by_key(connection_id: int, *, key: str, start: datetime, end: datetime) -> None:
    """Delete the event made with transactionId `key` when its id was never recorded (the
    answer to the POST was lost). Graph reads no event by transactionId, so the meeting's own
    time window is listed and the event carrying it picked out; none there is done."""
    with _Graph(connection_id) as graph:
        url, params = (
            "/me/calendarView",
            {
                "startDateTime": _z(start),
                "endDateTime": _z(end),
                "$select": "transactionId",
                "$top": str(CALENDAR_VIEW_PAGE),
            },
        )
        event_id = None
        for _page in range(MAX_CALENDAR_VIEW_PAGES):
            response = graph.request("GET", url, params=params, headers=UTC_PREFERENCE)
            _check(response, "finding the event")
            data = response.json()
            event_id = next(
                (e["id"] for e in data.get("value") or [] if e.get("transactionId") == key), None
            )
            url, params = data.get("@odata.nextLink"), None
            if event_id or not url or not url.startswith(settings.MICROSOFT_GRAPH_API + "/"):
                break
    if event_id:
        cancel_event(connection_id, event_id)
