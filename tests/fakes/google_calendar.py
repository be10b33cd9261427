"""A fake Google (sign-in, tokens and the Calendar API) for tests.

It speaks real HTTP/1.1 on loopback with the standard library only, so the real clients
(google-auth-oauthlib / requests-oauthlib for the sign-in, google-auth for refreshes,
google-api-python-client over httplib2 for the Calendar API) are exercised end to end. Every
address is under ``base_url``; ``settings()`` gives the GOOGLE_* settings that point at it.

Emulated, following /work/shared/reference/calendars-and-booking.md section 1:

- the consent page (``GET /o/oauth2/auth``): records the request's parameters (scopes,
  ``code_challenge``, ``access_type``, ``prompt``...), then "the user consents" at once and it
  answers 302 to ``redirect_uri`` with ``code``, ``state`` and ``scope``; or with
  ``error=access_denied`` when ``deny_consent`` is set. Scopes in ``untick_scopes`` are left
  out of the grant (Google's granular consent), and with ``include_granted_scopes=true`` the
  scopes granted earlier (``remember_grant``) are added back;
- the token endpoint (``POST /token``): client authentication (HTTP Basic or form fields),
  the ``authorization_code`` grant (one-use codes, the same ``redirect_uri``, PKCE S256:
  ``invalid_grant`` "Missing code verifier." without a verifier, "Invalid code verifier." with
  a wrong one; a failed PKCE check does not use up the code), and the ``refresh_token`` grant
  (revoked or unknown tokens: 400 ``invalid_grant`` "Token has been expired or revoked.");
  answers carry an id_token (a JWT with the email; its signature is not real) unless
  ``issue_id_token`` is off, and a refresh token unless ``issue_refresh_tokens`` is off;
  ``rotate_refresh_tokens`` makes refreshes hand out a new refresh token;
- ``GET /v1/userinfo`` (bearer access token) and ``POST /revoke`` (refresh or access token;
  revokes the whole grant);
- under ``/calendar/v3/``: ``freeBusy`` (POST), ``calendars/<id>/events`` (POST: insert,
  honouring a client-supplied id, which must be base32hex 5-1024 long; a duplicate is 409
  ``duplicate``; ``conferenceData.createRequest`` with ``conferenceDataVersion=1`` adds a Meet
  link) and ``calendars/<id>/events/<event id>`` (GET; DELETE: 204, then 410 ``deleted``,
  unknown 404 ``notFound``). ``<id>`` is ``primary`` or the account's email. Every API call
  needs a valid ``Authorization: Bearer`` token (401 ``authError`` otherwise) with a calendar
  scope (403 ``insufficientPermissions``).

Test controls: ``fail_next(route, ...)`` queues faults per route (status, reason, Retry-After,
a delay, or "process it, then answer with the error" to emulate a lost response);
``expire_access_tokens()``, ``revoke_all()``, ``set_busy()``, ``set_freebusy_error()``; and
observations: ``count(route)``, ``calls``, ``authorizations``, ``token_refreshes``,
``events()``, ``sent_updates``.

Route names (for ``fail_next`` and ``count``): ``auth``, ``token``, ``userinfo``, ``revoke``,
``freebusy.query``, ``events.insert``, ``events.get``, ``events.delete``; the token endpoint
also counts ``token.authorization_code`` and ``token.refresh_token``.

Not emulated: signatures (id_token signatures, HTTPS), the consent screen's HTML, event
updates/patch/list/watch, recurring events, calendars other than each account's primary one,
freebusy groups, access token audiences, quotas other than injected faults, ETags, and
asynchronous Meet creation beyond ``meet_pending``.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import itertools
import json
import re
import secrets
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

EVENTS_SCOPE = "https://www.googleapis.com/auth/calendar.events"
FREEBUSY_SCOPE = "https://www.googleapis.com/auth/calendar.freebusy"
CALENDAR_SCOPES = frozenset(
    {
        EVENTS_SCOPE,
        FREEBUSY_SCOPE,
        "https://www.googleapis.com/auth/calendar",
        "https://www.googleapis.com/auth/calendar.readonly",
    }
)
EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")  # base32hex, as events.insert requires
_API = "/calendar/v3/"


@dataclass
class Fault:
    """What to do to the next request of a route.

    status None: answer normally (after `delay`); `after`: process the request first, then
    answer with the error instead (the change is made but the caller never hears of it).
    """

    status: int | None = None
    reason: str | None = None
    retry_after: str | None = None
    delay: float = 0.0
    after: bool = False


@dataclass
class _Answer:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


def _json(status: int, payload: dict, *headers: tuple[str, str]) -> _Answer:
    body = json.dumps(payload).encode()
    return _Answer(status, body, (("Content-Type", "application/json; charset=UTF-8"), *headers))


def api_error(status: int, reason: str, message: str, domain: str = "global") -> _Answer:
    """The Calendar API's error shape: {"error": {"errors": [{reason...}], "code", "message"}}."""
    payload = {
        "error": {
            "errors": [{"domain": domain, "reason": reason, "message": message}],
            "code": status,
            "message": message,
        }
    }
    return _json(status, payload)


def oauth_error(status: int, error: str, description: str) -> _Answer:
    return _json(status, {"error": error, "error_description": description})


DEFAULT_REASONS = {
    400: ("badRequest", "Bad Request"),
    401: ("authError", "Invalid Credentials"),
    403: ("forbidden", "Forbidden"),
    404: ("notFound", "Not Found"),
    409: ("duplicate", "The requested identifier already exists."),
    410: ("deleted", "Resource has been deleted"),
    429: ("rateLimitExceeded", "Rate Limit Exceeded"),
    500: ("backendError", "Backend Error"),
    503: ("backendError", "Service Unavailable"),
}
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("no time zone")
    return value.astimezone(UTC)


def code_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeGoogle/1.0"
    sys_version = ""

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.server.fake._handle(self, "GET")

    def do_POST(self):
        self.server.fake._handle(self, "POST")

    def do_DELETE(self):
        self.server.fake._handle(self, "DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def server_bind(self):
        # HTTPServer.server_bind resolves the FQDN, which can stall for seconds without DNS.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class FakeGoogle:
    """Google on loopback. See the module docstring; use as a context manager.

    Concurrency: each request runs in its own thread; all state is guarded by one lock, never
    held while sleeping (injected delays) or writing to the socket. Every response closes its
    connection, so nothing lingers after stop().
    """

    def __init__(
        self,
        *,
        client_id: str = "dynchat-test.apps.googleusercontent.com",
        client_secret: str = "google-secret",  # noqa: S107 - the fake's test credentials
        account_email: str = "sam@acme.test",
        access_token_ttl: int = 3599,
        host: str = "127.0.0.1",
    ):
        self.client_id, self.client_secret = client_id, client_secret
        self.account_email = account_email  # who signs in at the next consent
        self.access_token_ttl = access_token_ttl
        self._host = host
        self._lock = threading.RLock()
        self._ids = itertools.count(1)

        # Consent behaviour (for the next consents, until changed).
        self.deny_consent = False
        self.untick_scopes: set[str] = set()
        self.issue_refresh_tokens = True
        self.issue_id_token = True
        self.rotate_refresh_tokens = False
        self.meet_pending = False

        # State
        self._codes: dict[str, dict] = {}
        self._grants: dict[str, dict] = {}  # refresh token -> {email, scopes, revoked}
        self._access: dict[str, dict] = {}  # access token -> {email, scopes, expires, grant}
        self._earlier_grants: dict[str, set[str]] = {}  # email -> scopes granted before
        self._calendars: dict[str, dict[str, dict]] = {}  # email -> event id -> event
        self._busy: dict[str, list[tuple[datetime, datetime]]] = {}
        self._freebusy_errors: dict[str, str] = {}
        self._faults: dict[str, deque[Fault]] = {}

        # Observation
        self.calls: list[dict] = []
        self.counts: Counter[str] = Counter()
        self.authorizations: list[dict] = []  # the consent page's query parameters
        self.sent_updates: list[dict] = []  # {"action", "event_id", "sendUpdates"}
        self.server_errors: list[str] = []

        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> str:
        """Serve in a daemon thread on a free port; returns "http://127.0.0.1:<port>"."""
        if self._server is None:
            self._server = _Server((self._host, 0), _Handler)
            self._server.fake = self
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="fake-google",
                daemon=True,
            )
            self._thread.start()
            self.base_url = f"http://{self._host}:{self._server.server_address[1]}"
        return self.base_url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)

    def __enter__(self) -> FakeGoogle:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def settings(self) -> dict[str, str]:
        """The GOOGLE_* settings that point DynChat at this fake."""
        return {
            "GOOGLE_CLIENT_ID": self.client_id,
            "GOOGLE_CLIENT_SECRET": self.client_secret,
            "GOOGLE_AUTH_URI": f"{self.base_url}/o/oauth2/auth",
            "GOOGLE_TOKEN_URI": f"{self.base_url}/token",
            "GOOGLE_USERINFO_URI": f"{self.base_url}/v1/userinfo",
            "GOOGLE_REVOKE_URI": f"{self.base_url}/revoke",
            "GOOGLE_CALENDAR_API": f"{self.base_url}/",
        }

    # --- test controls --------------------------------------------------------------------------

    def consent(self, authorization_url: str) -> dict[str, str]:
        """Open the consent page as the agent's browser would, and return the query parameters
        Google sends the browser back to the redirect_uri with (code & state, or error)."""
        parts = urlsplit(authorization_url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        try:
            connection.request("GET", f"{parts.path}?{parts.query}")
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        if response.status != 302:
            raise AssertionError(f"the consent page answered {response.status}")
        return dict(parse_qsl(urlsplit(response.getheader("Location")).query))

    def fail_next(
        self,
        route: str,
        status: int | None = None,
        *,
        reason: str | None = None,
        retry_after: float | str | None = None,
        delay: float = 0.0,
        after: bool = False,
        times: int = 1,
    ) -> None:
        """Queue `times` faults for `route` (see Fault)."""
        retry_after = None if retry_after is None else str(retry_after)
        with self._lock:
            self._faults.setdefault(route, deque()).extend(
                Fault(status, reason, retry_after, delay, after) for _ in range(times)
            )

    def expire_access_tokens(self) -> None:
        """Every access token handed out so far stops working (the API answers 401)."""
        with self._lock:
            for token in self._access.values():
                token["expires"] = 0.0

    def revoke_all(self) -> None:
        """The agent removed DynChat from their Google account: every grant is revoked."""
        with self._lock:
            for grant in self._grants.values():
                grant["revoked"] = True
            self._access.clear()

    def remember_grant(self, email: str, scopes: Iterable[str]) -> None:
        """Scopes the account granted this client before (include_granted_scopes adds them)."""
        with self._lock:
            self._earlier_grants.setdefault(email, set()).update(scopes)

    def set_busy(self, calendar: str, intervals: Iterable[tuple[datetime, datetime]]) -> None:
        """The busy blocks freeBusy reports for `calendar` ("primary" = account_email); they are
        answered clipped to the window and sorted but not merged, as given."""
        email = self.account_email if calendar == "primary" else calendar
        with self._lock:
            self._busy[email] = [
                (parse_time(format_time(s)), parse_time(format_time(e))) for s, e in intervals
            ]

    def set_freebusy_error(self, reason: str | None, calendar: str = "primary") -> None:
        """freeBusy answers 200 with this reason in the calendar's `errors` (None: clear)."""
        email = self.account_email if calendar == "primary" else calendar
        with self._lock:
            if reason is None:
                self._freebusy_errors.pop(email, None)
            else:
                self._freebusy_errors[email] = reason

    def count(self, route: str) -> int:
        with self._lock:
            return self.counts[route]

    @property
    def token_refreshes(self) -> int:
        """Refresh-token grants that reached the token endpoint (whatever their outcome)."""
        return self.count("token.refresh_token")

    def events(self, email: str | None = None, *, cancelled: bool = False) -> list[dict]:
        """The events in the account's primary calendar (by default the live ones)."""
        with self._lock:
            events = self._calendars.get(email or self.account_email, {}).values()
            return [
                json.loads(json.dumps(e))
                for e in events
                if (e["status"] == "cancelled") == cancelled
            ]

    def last(self, route: str) -> dict:
        """The last recorded call of a route: method, path, query, headers, form/json body."""
        with self._lock:
            return next(c for c in reversed(self.calls) if c["route"] == route)

    def refresh_tokens(self, email: str | None = None) -> list[str]:
        """The live (not revoked) refresh tokens of an account."""
        with self._lock:
            return [
                token
                for token, grant in self._grants.items()
                if grant["email"] == (email or self.account_email) and not grant["revoked"]
            ]

    # --- dispatch -------------------------------------------------------------------------------

    _ROUTES = (
        ("GET", re.compile(r"/o/oauth2/auth"), "auth"),
        ("POST", re.compile(r"/token"), "token"),
        ("GET", re.compile(r"/v1/userinfo"), "userinfo"),
        ("POST", re.compile(r"/revoke"), "revoke"),
        ("POST", re.compile(_API + r"freeBusy"), "freebusy.query"),
        ("POST", re.compile(_API + r"calendars/([^/]+)/events"), "events.insert"),
        ("GET", re.compile(_API + r"calendars/([^/]+)/events/([^/]+)"), "events.get"),
        ("DELETE", re.compile(_API + r"calendars/([^/]+)/events/([^/]+)"), "events.delete"),
    )

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        route, args = None, ()
        for route_method, pattern, name in self._ROUTES:
            match = pattern.fullmatch(parts.path)
            if match and route_method == method:
                route, args = name, match.groups()
                break
        call = {
            "route": route,
            "method": method,
            "path": parts.path,
            "query": dict(parse_qsl(parts.query)),
            "headers": handler.headers,  # an email.message.Message: names case-insensitive
            "form": {},
            "json": None,
        }
        content_type = handler.headers.get("Content-Type", "")
        if raw and "json" in content_type:
            try:
                call["json"] = json.loads(raw)
            except ValueError:
                call["json"] = None
        elif raw:
            call["form"] = dict(parse_qsl(raw.decode()))
        with self._lock:
            self.calls.append(call)
            self.counts[route or "unknown"] += 1
            if route == "token":  # counted here, so faulted token requests count too
                self.counts[f"token.{call['form'].get('grant_type')}"] += 1
            queue = self._faults.get(route)
            fault = queue.popleft() if queue else None

        if fault and fault.delay:
            time.sleep(fault.delay)
        try:
            if route is None:
                answer = api_error(404, "notFound", f"No route for {method} {parts.path}")
            elif fault and fault.status and not fault.after:
                answer = self._fault_answer(route, fault)
            else:
                answer = getattr(self, "_" + route.replace(".", "_"))(call, *args)
                if fault and fault.status:
                    answer = self._fault_answer(route, fault)
        except Exception as exc:  # a bug in the fake: answer 500, keep it for the test to see
            with self._lock:
                self.server_errors.append(traceback.format_exc())
            answer = api_error(500, "backendError", f"fake crashed: {exc}")
        self._send(handler, answer)

    def _fault_answer(self, route: str, fault: Fault) -> _Answer:
        reason, message = DEFAULT_REASONS.get(fault.status, ("error", "Error"))
        reason = fault.reason or reason
        headers = (("Retry-After", fault.retry_after),) if fault.retry_after else ()
        if route in ("token", "revoke"):
            error = "server_error" if fault.status >= 500 else reason
            answer = oauth_error(fault.status, error, message)
        else:
            domain = "usageLimits" if reason in RATE_LIMIT_REASONS else "global"
            answer = api_error(fault.status, reason, message, domain)
        answer.headers = (*answer.headers, *headers)
        return answer

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, answer: _Answer) -> None:
        handler.send_response(answer.status)
        for name, value in answer.headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(answer.body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        if answer.body:
            handler.wfile.write(answer.body)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}.{next(self._ids)}.{secrets.token_urlsafe(12)}"

    # --- sign-in --------------------------------------------------------------------------------

    def _auth(self, call: dict) -> _Answer:
        params = call["query"]
        with self._lock:
            self.authorizations.append(dict(params))
        if params.get("client_id") != self.client_id:
            return _Answer(400, b"Error 401: invalid_client", (("Content-Type", "text/plain"),))
        redirect_uri = params.get("redirect_uri", "")
        if (
            not redirect_uri.startswith(("http://", "https://"))
            or params.get("response_type") != "code"
        ):
            return _Answer(400, b"Error 400: invalid_request", (("Content-Type", "text/plain"),))
        if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
            return _Answer(400, b"Error 400: invalid_request", (("Content-Type", "text/plain"),))
        back = {"state": params.get("state", "")}
        if self.deny_consent:
            back["error"] = "access_denied"
        else:
            email = self.account_email
            scopes = set(params.get("scope", "").split()) - self.untick_scopes
            with self._lock:
                if params.get("include_granted_scopes") == "true":
                    scopes |= self._earlier_grants.get(email, set())
                code = self._new_id("4/code")
                self._codes[code] = {
                    "redirect_uri": redirect_uri,
                    "challenge": params.get("code_challenge"),
                    "email": email,
                    "scopes": scopes,
                    "offline": params.get("access_type") == "offline",
                }
            back.update(code=code, scope=" ".join(sorted(scopes)))
        separator = "&" if "?" in redirect_uri else "?"
        return _Answer(302, b"", (("Location", redirect_uri + separator + urlencode(back)),))

    def _client_authenticated(self, call: dict) -> bool:
        form, header = call["form"], call["headers"].get("Authorization", "")
        if header.startswith("Basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        else:
            client_id, secret = form.get("client_id"), form.get("client_secret")
        return client_id == self.client_id and secret == self.client_secret

    def _token(self, call: dict) -> _Answer:
        form = call["form"]
        grant_type = form.get("grant_type")
        if not self._client_authenticated(call):
            return oauth_error(401, "invalid_client", "Unauthorized")
        if grant_type == "authorization_code":
            return self._exchange_code(form)
        if grant_type == "refresh_token":
            return self._refresh(form)
        return oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _exchange_code(self, form: dict) -> _Answer:
        with self._lock:
            code = self._codes.get(form.get("code", ""))
            if code is None:
                return oauth_error(400, "invalid_grant", "Malformed auth code.")
            if form.get("redirect_uri") != code["redirect_uri"]:
                return oauth_error(400, "redirect_uri_mismatch", "Bad Request")
            if code["challenge"]:
                verifier = form.get("code_verifier")
                if not verifier:
                    return oauth_error(400, "invalid_grant", "Missing code verifier.")
                if code_challenge(verifier) != code["challenge"]:
                    return oauth_error(400, "invalid_grant", "Invalid code verifier.")
            del self._codes[form["code"]]  # one use
            email, scopes = code["email"], code["scopes"]
            self._earlier_grants.setdefault(email, set()).update(scopes)
            refresh_token = self._new_id("1//refresh")
            self._grants[refresh_token] = {"email": email, "scopes": scopes, "revoked": False}
            answer = self._issue_access(refresh_token)
            if code["offline"] and self.issue_refresh_tokens:
                answer["refresh_token"] = refresh_token
            if self.issue_id_token and "openid" in scopes:
                answer["id_token"] = self._id_token(email)
        return _json(200, answer)

    def _refresh(self, form: dict) -> _Answer:
        with self._lock:
            grant = self._grants.get(form.get("refresh_token", ""))
            if grant is None or grant["revoked"]:
                return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
            refresh_token = form["refresh_token"]
            if self.rotate_refresh_tokens:
                grant["revoked"] = True
                refresh_token = self._new_id("1//refresh")
                self._grants[refresh_token] = {**grant, "revoked": False}
            answer = self._issue_access(refresh_token)
            if self.rotate_refresh_tokens:
                answer["refresh_token"] = refresh_token
        return _json(200, answer)

    def _issue_access(self, refresh_token: str) -> dict:
        grant = self._grants[refresh_token]
        token = self._new_id("ya29.access")
        self._access[token] = {
            "email": grant["email"],
            "scopes": grant["scopes"],
            "expires": time.time() + self.access_token_ttl,
            "grant": refresh_token,
        }
        return {
            "access_token": token,
            "expires_in": self.access_token_ttl,
            "scope": " ".join(sorted(grant["scopes"])),
            "token_type": "Bearer",
        }

    def _id_token(self, email: str) -> str:
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": self.client_id,
            "sub": hashlib.sha256(email.encode()).hexdigest()[:21],
            "email": email,
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
        }
        header = {"alg": "RS256", "kid": "fake", "typ": "JWT"}
        return f"{_b64(header)}.{_b64(claims)}.{base64.urlsafe_b64encode(b'fake').decode()}"

    def _bearer(self, call: dict) -> dict | None:
        header = call["headers"].get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        with self._lock:
            token = self._access.get(header[7:])
            if token is None or token["expires"] <= time.time():
                return None
            if self._grants[token["grant"]]["revoked"]:
                return None
            return dict(token)

    def _userinfo(self, call: dict) -> _Answer:
        token = self._bearer(call)
        if token is None:
            return oauth_error(401, "invalid_request", "Invalid Credentials")
        sub = hashlib.sha256(token["email"].encode()).hexdigest()[:21]
        return _json(200, {"sub": sub, "email": token["email"], "email_verified": True})

    def _revoke(self, call: dict) -> _Answer:
        value = call["form"].get("token") or call["query"].get("token", "")
        with self._lock:
            grant_key = value if value in self._grants else self._access.get(value, {}).get("grant")
            grant = self._grants.get(grant_key or "")
            if grant is None or grant["revoked"]:
                return oauth_error(400, "invalid_token", "Token expired or revoked")
            grant["revoked"] = True
        return _json(200, {})

    # --- the Calendar API -----------------------------------------------------------------------

    def _api_token(self, call: dict) -> tuple[dict | None, _Answer | None]:
        token = self._bearer(call)
        if token is None:
            answer = api_error(401, "authError", "Invalid Credentials")
            answer.headers = (*answer.headers, ("WWW-Authenticate", 'Bearer realm="fake"'))
            return None, answer
        if not token["scopes"] & CALENDAR_SCOPES:
            return None, api_error(
                403, "insufficientPermissions", "Request had insufficient authentication scopes."
            )
        return token, None

    def _calendar_owner(self, token: dict, calendar_id: str) -> str | None:
        return token["email"] if calendar_id in ("primary", token["email"]) else None

    def _freebusy_query(self, call: dict) -> _Answer:
        token, refusal = self._api_token(call)
        if refusal:
            return refusal
        body = call["json"] or {}
        try:
            start, end = parse_time(body["timeMin"]), parse_time(body["timeMax"])
        except (KeyError, TypeError, ValueError):
            return api_error(400, "required", "Missing or bad timeMin / timeMax.")
        if end <= start:
            return api_error(400, "timeRangeEmpty", "The specified time range is empty.")
        calendars = {}
        for item in body.get("items") or []:
            calendar_id = item.get("id", "")
            owner = self._calendar_owner(token, calendar_id)
            with self._lock:
                error = self._freebusy_errors.get(owner) if owner else "notFound"
                blocks = sorted(self._busy.get(owner, [])) if owner else []
            if error:
                calendars[calendar_id] = {
                    "errors": [{"domain": "global", "reason": error}],
                    "busy": [],
                }
                continue
            calendars[calendar_id] = {
                "busy": [
                    {"start": format_time(max(s, start)), "end": format_time(min(e, end))}
                    for s, e in blocks
                    if s < end and e > start
                ]
            }
        return _json(
            200,
            {
                "kind": "calendar#freeBusy",
                "timeMin": format_time(start),
                "timeMax": format_time(end),
                "calendars": calendars,
            },
        )

    def _events_insert(self, call: dict, calendar_id: str) -> _Answer:
        token, refusal = self._api_token(call)
        if refusal:
            return refusal
        if EVENTS_SCOPE not in token["scopes"]:
            return api_error(
                403, "insufficientPermissions", "Request had insufficient authentication scopes."
            )
        owner = self._calendar_owner(token, calendar_id)
        if owner is None:
            return api_error(404, "notFound", "Not Found")
        body = call["json"] or {}
        try:
            start = parse_time(body["start"]["dateTime"])
            end = parse_time(body["end"]["dateTime"])
        except (KeyError, TypeError, ValueError):
            return api_error(400, "required", "Missing or bad start / end time.")
        if end <= start:
            return api_error(400, "timeRangeEmpty", "The specified time range is empty.")
        event_id = body.get("id") or secrets.token_hex(13)
        if not EVENT_ID.fullmatch(event_id):
            return api_error(400, "invalid", "Invalid resource id value.")
        now = format_time(datetime.now(UTC))
        event = {
            "kind": "calendar#event",
            "etag": f'"{time.time_ns()}"',
            "id": event_id,
            "status": "confirmed",
            "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
            "created": now,
            "updated": now,
            "summary": body.get("summary", ""),
            "description": body.get("description", ""),
            "creator": {"email": owner, "self": True},
            "organizer": {"email": owner, "self": True},
            "start": {"dateTime": format_time(start), "timeZone": "UTC"},
            "end": {"dateTime": format_time(end), "timeZone": "UTC"},
            "iCalUID": f"{event_id}@google.com",
            "sequence": 0,
            "attendees": [
                {**attendee, "responseStatus": "needsAction"}
                for attendee in body.get("attendees") or []
            ],
            "reminders": {"useDefault": True},
            "eventType": "default",
        }
        request = (body.get("conferenceData") or {}).get("createRequest")
        if request and call["query"].get("conferenceDataVersion") == "1":
            event.update(self._conference(request))
        with self._lock:
            calendar = self._calendars.setdefault(owner, {})
            if event_id in calendar:
                return api_error(409, "duplicate", "The requested identifier already exists.")
            calendar[event_id] = event
            self.sent_updates.append(
                {
                    "action": "insert",
                    "event_id": event_id,
                    "sendUpdates": call["query"].get("sendUpdates"),
                }
            )
        return _json(200, event)

    def _conference(self, request: dict) -> dict:
        letters = "".join(
            chr(ord("a") + b % 26) for b in hashlib.sha256(request["requestId"].encode()).digest()
        )
        meeting = f"{letters[:3]}-{letters[3:7]}-{letters[7:10]}"
        status = "pending" if self.meet_pending else "success"
        conference = {
            "createRequest": {**request, "status": {"statusCode": status}},
            "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"},
        }
        if self.meet_pending:
            return {"conferenceData": conference}
        uri = f"https://meet.google.com/{meeting}"
        conference["conferenceId"] = meeting
        conference["entryPoints"] = [
            {"entryPointType": "video", "uri": uri, "label": f"meet.google.com/{meeting}"}
        ]
        return {"conferenceData": conference, "hangoutLink": uri}

    def _find_event(self, call: dict, calendar_id: str, event_id: str):
        token, refusal = self._api_token(call)
        if refusal:
            return None, refusal
        owner = self._calendar_owner(token, calendar_id)
        event = self._calendars.get(owner, {}).get(event_id) if owner else None
        if event is None:
            return None, api_error(404, "notFound", "Not Found")
        return event, None

    def _events_get(self, call: dict, calendar_id: str, event_id: str) -> _Answer:
        with self._lock:
            event, refusal = self._find_event(call, calendar_id, event_id)
            # Like Google, a deleted event can still be read, with status "cancelled".
            return refusal or _json(200, event)

    def _events_delete(self, call: dict, calendar_id: str, event_id: str) -> _Answer:
        with self._lock:
            event, refusal = self._find_event(call, calendar_id, event_id)
            if refusal:
                return refusal
            if event["status"] == "cancelled":
                return api_error(410, "deleted", "Resource has been deleted")
            event["status"] = "cancelled"
            self.sent_updates.append(
                {
                    "action": "delete",
                    "event_id": event_id,
                    "sendUpdates": call["query"].get("sendUpdates"),
                }
            )
        return _Answer(204)
