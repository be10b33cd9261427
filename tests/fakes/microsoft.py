"""A fake Microsoft identity platform and Microsoft Graph calendar API, for tests.

Two servers on loopback speak real HTTPS (a throwaway CA and certificate are made with
`cryptography` once per process; MSAL refuses authorities that are not https), so MSAL, requests
and httpx run unpatched:

- ``authority`` (like https://login.microsoftonline.com/common), the v2.0 endpoints:
  - ``GET /{tenant}/v2.0/.well-known/openid-configuration``: the OIDC discovery document MSAL's
    constructor fetches;
  - ``GET /{tenant}/oauth2/v2.0/authorize``: records the request (PKCE code_challenge, nonce,
    prompt, ...) and, for a browser the test prepared with ``sign_in()``, redirects back with
    ``code`` + ``state`` or ``error=access_denied``; without one it shows a sign-in page;
  - ``POST /{tenant}/oauth2/v2.0/token``: the ``authorization_code`` grant (client secret,
    single-use code, redirect_uri and the PKCE S256 code_verifier checked) and the
    ``refresh_token`` grant (a new refresh token each time); revoked grants answer 400
    ``invalid_grant`` with an AADSTS description, as Entra ID does. The id_token is a JWT whose
    signature is not real: MSAL reads its claims without verifying it (MSAL >= 1.38 does not
    validate id tokens obtained from the token endpoint). It carries preferred_username, oid, tid
    and the nonce hash MSAL checks; ``client_info`` (base64url {"uid", "utid"}) is returned when
    asked for, which is how MSAL builds the account's home_account_id.
- ``graph_url`` (like https://graph.microsoft.com/v1.0), with a bearer-token check (expired or
  unknown token: 401 ``InvalidAuthenticationToken``):
  - ``POST /me/calendar/getSchedule``: scheduleItems of the asked mailboxes, in the time zone
    of the ``Prefer: outlook.timezone`` header, else in the mailbox's own ("Pacific Standard
    Time", as Graph's examples); a per-schedule ``error`` (responseCode 5009 for an address that
    does not resolve, or one set with ``set_schedule_error``). Personal accounts are refused
    with 403 ``ErrorAccessDenied`` (see PERSONAL_SCHEDULE_REFUSAL);
  - ``GET /me/calendarView``: events overlapping the window, paged with ``@odata.nextLink``
    (``page_size`` is the server's largest page; ``$top`` may ask for less), ``$select`` honoured;
  - ``GET /me/calendar``: ``allowedOnlineMeetingProviders`` (work: teamsForBusiness; personal:
    skypeForConsumer; ``set_online_meeting_providers`` changes it);
  - ``POST /me/events``: 201 with id, iCalUId and, for an allowed ``teamsForBusiness`` online
    meeting, ``onlineMeeting.joinUrl``; the same ``transactionId`` returns the event already
    made instead of a second one;
  - ``POST /me/events/{id}/cancel`` (202; the organiser's copy goes away), ``DELETE
    /me/events/{id}`` (204), ``GET /me/events/{id}``; a missing event is 404 ``ErrorItemNotFound``.

Faults and observation: ``fail_next(route, status=..., retry_after=..., times=...)`` (or
``disconnect=True``; ``after=True`` carries the request out before failing its answer),
``delay(route, seconds)``, ``revoke_all()``, ``expire_access_tokens()``,
``counts`` per route (``token.authorization_code``, ``token.refresh_token``, ``schedule``,
``events.create``, ...), ``requests`` (method, path, headers, body of each), ``refresh_grants``.
Routes: discovery, authorize, token, schedule, calendarView, calendar, events.create,
events.get, events.cancel, events.delete.

Not emulated: real token signatures and JWKS keys, consent screens, multiple tenants' policies
(conditional access, MFA claims challenges, continuous access evaluation: access tokens stay good
until they expire even after ``revoke_all``), the v1.0 endpoints, instance discovery, recurring
events, attendees' responses and the invitation emails Graph sends, event updates, delta queries,
the 4-concurrent-requests-per-mailbox limit (throttling is injected with ``fail_next``).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import http.client
import ipaddress
import json
import re
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo

# Entra ID's tenant id for personal Microsoft accounts (outlook.com, hotmail.com, live.com).
CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
WORK_TENANT = "72f988bf-0000-4000-8000-00000000d1c7"
MAILBOX_ZONE = ("Pacific Standard Time", ZoneInfo("America/Los_Angeles"))
RESERVED_SCOPES = {"openid", "profile", "offline_access", "email"}
GRAPH_TIME = "%Y-%m-%dT%H:%M:%S.0000000"

# Graph's docs list getSchedule's delegated permission for personal accounts as "Not supported"
# without showing the response. We answer like Outlook's own access refusals (the shape
# findMeetingTimes gives, quoted in microsoftgraph/microsoft-graph-docs issues); the client falls
# back to calendarView on it.
PERSONAL_SCHEDULE_REFUSAL = (
    403,
    {
        "error": {
            "code": "ErrorAccessDenied",
            "message": "Access is denied. Check credentials and try again.",
        }
    },
)

SHOW_AS = {"free": "0", "tentative": "1", "busy": "2", "oof": "3", "workingElsewhere": "4"}


# --------------------------------------------------------------------------------------------
# TLS: a throwaway CA and a certificate for 127.0.0.1, made once per process
# --------------------------------------------------------------------------------------------

_tls_lock = threading.Lock()
_tls_files: tuple[str, str, str] | None = None


def tls_files() -> tuple[str, str, str]:
    """(CA bundle, certificate, key) paths; the CA bundle is what clients must trust."""
    global _tls_files
    with _tls_lock:
        if _tls_files is None:
            _tls_files = _make_tls_files()
        return _tls_files


def _make_tls_files() -> tuple[str, str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    usage = dict.fromkeys(
        (
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "FakeMicrosoft test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, **usage),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **usage),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory = tempfile.mkdtemp(prefix="fake-microsoft-tls-")
    atexit.register(shutil.rmtree, directory, True)
    paths = tuple(f"{directory}/{name}" for name in ("ca.pem", "server.pem", "server.key"))
    with open(paths[0], "wb") as f:
        f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths[2], "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return paths  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


@dataclass
class Account:
    email: str
    name: str
    personal: bool = False
    oid: str = field(default_factory=lambda: str(uuid.uuid4()))
    events: dict[str, dict] = field(default_factory=dict)  # id -> event
    transactions: dict[str, str] = field(default_factory=dict)  # transactionId -> event id
    cancelled: list[dict] = field(default_factory=list)
    schedule_error: dict | None = None
    online_meeting_providers: list[str] = field(default_factory=list)

    @property
    def tenant(self) -> str:
        return CONSUMER_TENANT if self.personal else WORK_TENANT


class _Reply(Exception):  # a response to send, not an error
    """Raised by a route to answer at once (errors, redirects)."""

    def __init__(self, status: int, body: dict | str | bytes = b"", headers: dict | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("the fake wants aware datetimes")
    return value.astimezone(UTC)


def _parse_graph_time(value: dict) -> datetime:
    naive = datetime.fromisoformat(value["dateTime"].rstrip("Z"))
    zone_name = value.get("timeZone") or "UTC"
    if zone_name == MAILBOX_ZONE[0]:
        zone = MAILBOX_ZONE[1]
    elif zone_name.upper() == "UTC":
        zone = UTC
    else:
        zone = ZoneInfo(zone_name)
    return naive.replace(tzinfo=zone).astimezone(UTC)


def _parse_iso_param(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)  # no offset means UTC


def _aad_error(error: str, code: int, description: str, **extra) -> dict:
    now = datetime.now(UTC)
    trace = str(uuid.uuid4())
    return {
        "error": error,
        "error_description": (
            f"AADSTS{code}: {description}\r\nTrace ID: {trace}\r\n"
            f"Correlation ID: {uuid.uuid4()}\r\nTimestamp: {now:%Y-%m-%d %H:%M:%SZ}"
        ),
        "error_codes": [code],
        "timestamp": f"{now:%Y-%m-%d %H:%M:%SZ}",
        "trace_id": trace,
        "correlation_id": str(uuid.uuid4()),
        **extra,
    }


def _graph_error(status: int, code: str, message: str, headers: dict | None = None) -> _Reply:
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": str(uuid.uuid4()),
                "client-request-id": str(uuid.uuid4()),
            },
        }
    }
    return _Reply(status, body, headers)


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "FakeMicrosoft/1.0"
    sys_version = ""

    def setup(self):
        super().setup()
        self.server.fake._connection_opened(self.connection)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass  # the connection was cut (a disconnect fault, or the client left)
        finally:
            self.server.fake._connection_closed(self.connection)

    def handle(self):
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError):
            self.close_connection = True  # a client that gave up, or did not trust us

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.server.fake._handle(self, "GET", self.server.role)

    def do_POST(self):
        self.server.fake._handle(self, "POST", self.server.role)

    def do_DELETE(self):
        self.server.fake._handle(self, "DELETE", self.server.role)

    def do_PATCH(self):
        self.server.fake._handle(self, "PATCH", self.server.role)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def server_bind(self):
        # HTTPServer.server_bind resolves the FQDN, which can stall for seconds without DNS.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


_TENANT = r"/(?P<tenant>[^/]+)"
_EVENT = r"/v1\.0/me/events/(?P<event_id>[^/]+)"
_ROUTES = [
    (role, method, re.compile(pattern + r"/?", re.IGNORECASE), name, handler)
    for role, method, pattern, name, handler in (
        (
            "login",
            "GET",
            _TENANT + r"/v2\.0/\.well-known/openid-configuration",
            "discovery",
            "_discovery",
        ),
        ("login", "GET", _TENANT + r"/oauth2/v2\.0/authorize", "authorize", "_authorize"),
        ("login", "POST", _TENANT + r"/oauth2/v2\.0/token", "token", "_token"),
        ("graph", "POST", r"/v1\.0/me/calendar/getSchedule", "schedule", "_get_schedule"),
        ("graph", "GET", r"/v1\.0/me/calendarView", "calendarView", "_calendar_view"),
        ("graph", "GET", r"/v1\.0/me/calendar", "calendar", "_calendar"),
        ("graph", "POST", r"/v1\.0/me/events", "events.create", "_create_event"),
        ("graph", "GET", _EVENT, "events.get", "_get_event"),
        ("graph", "POST", _EVENT + r"/cancel", "events.cancel", "_cancel_event"),
        ("graph", "DELETE", _EVENT, "events.delete", "_delete_event"),
    )
]


class FakeMicrosoft:
    """Entra ID (v2.0 endpoints) and Graph's calendar API on loopback; see the module docstring.

    Use as a context manager; then ``authority``, ``graph_url`` and ``ca_bundle`` are set.
    Concurrency: each request runs in its own thread; all state is guarded by one re-entrant
    lock, never held while sleeping or writing to a socket.
    """

    def __init__(
        self,
        *,
        client_id: str = "00000000-dyn0-chat-0000-000000000001",
        client_secret: str = "fake-microsoft-secret",  # noqa: S107 - the fake's own credential
        tenant: str = "common",
        access_token_ttl: int = 3600,
        page_size: int = 10,
        host: str = "127.0.0.1",
    ):
        self.client_id, self.client_secret, self.tenant = client_id, client_secret, tenant
        self.access_token_ttl = access_token_ttl  # seconds; MSAL treats < 5 minutes as expired
        self.page_size = page_size
        self._host = host
        self._lock = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self._codes: dict[str, dict] = {}
        self._refresh_tokens: dict[str, dict] = {}
        self._access_tokens: dict[str, dict] = {}
        self._browser: dict[str, tuple[str, bool]] = {}  # state -> (email, consents)
        # Observation
        self.counts: Counter[str] = Counter()
        self.requests: list[dict] = []
        self.authorize_requests: list[dict] = []
        self.refresh_grants: list[dict] = []
        self.server_errors: list[str] = []
        # Faults
        self._fails: dict[str, list[dict]] = {}
        self._delays: dict[str, float] = {}
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self.authority = self.login_url = self.graph_url = ""
        self.ca_bundle = ""

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeMicrosoft:
        if self._servers:
            return self
        self.ca_bundle, cert, key = tls_files()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        urls = []
        for role in ("login", "graph"):
            server = _Server((self._host, 0), _Handler)
            # The handshake happens in the request's thread, not in the accepting one.
            server.socket = context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
            server.fake, server.role = self, role
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fake-microsoft-{role}",
                daemon=True,
            )
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
            urls.append(f"https://{self._host}:{server.server_address[1]}")
        self.login_url = urls[0]
        self.authority = f"{self.login_url}/{self.tenant}"
        self.graph_url = f"{urls[1]}/v1.0"
        return self

    def stop(self) -> None:
        servers, self._servers = self._servers, []
        # shutdown() waits for the serving loop's next poll: wait for both at once.
        stoppers = [threading.Thread(target=server.shutdown) for server in servers]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in servers:
            server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:  # keep-alive connections would otherwise linger
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def __enter__(self) -> FakeMicrosoft:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _connection_opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _connection_closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    # --- test controls --------------------------------------------------------------------------

    def account(self, email: str, *, name: str = "", personal: bool | None = None) -> Account:
        """The mailbox `email`, made on first use (a work account unless personal=True)."""
        with self._lock:
            account = self.accounts.get(email.lower())
            if account is None:
                account = Account(email=email, name=name or email.split("@")[0].title())
                account.personal = bool(personal)
                account.online_meeting_providers = (
                    ["skypeForConsumer"] if account.personal else ["teamsForBusiness"]
                )
                self.accounts[email.lower()] = account
            elif personal is not None:
                account.personal = personal
            return account

    def personal_account(self, email: str) -> Account:
        """`email` is a personal Microsoft account: getSchedule refuses it (see the docstring)."""
        account = self.account(email, personal=True)
        with self._lock:
            account.online_meeting_providers = ["skypeForConsumer"]
        return account

    def set_busy(self, email: str, entries) -> list[dict]:
        """Put events in `email`'s calendar: (start, end), (start, end, show_as) or dicts with
        start, end, and optionally showAs, isCancelled, isAllDay, subject. Returns the events."""
        account = self.account(email)
        made = []
        with self._lock:
            for entry in entries:
                if isinstance(entry, dict):
                    spec = dict(entry)
                else:
                    spec = dict(zip(("start", "end", "showAs"), entry, strict=False))
                event = self._new_event(
                    account,
                    subject=spec.get("subject", "Busy"),
                    start=_utc(spec["start"]),
                    end=_utc(spec["end"]),
                    show_as=spec.get("showAs") or "busy",
                )
                event["isCancelled"] = bool(spec.get("isCancelled"))
                event["isAllDay"] = bool(spec.get("isAllDay"))
                made.append(event)
        return made

    def set_schedule_error(
        self, email: str, message: str = "", response_code: str = "5009"
    ) -> None:
        """getSchedule answers `email`'s entry with an error instead of its items."""
        account = self.account(email)
        with self._lock:
            account.schedule_error = {
                "message": message
                or f"Unable to resolve e-mail address {email} to an Active Directory object.",
                "responseCode": response_code,
            }

    def set_online_meeting_providers(self, email: str, providers: list[str]) -> None:
        account = self.account(email)
        with self._lock:
            account.online_meeting_providers = list(providers)

    def events(self, email: str) -> list[dict]:
        """`email`'s events as Graph shows them (times in UTC), plus what the fake noted:
        online_meeting_requested."""
        with self._lock:
            return [self._inspect(e) for e in self.account(email).events.values()]

    def cancelled_events(self, email: str) -> list[dict]:
        with self._lock:
            return [self._inspect(e) for e in self.account(email).cancelled]

    def _inspect(self, event: dict) -> dict:
        public = self._public_event(event, ("UTC", UTC))
        public["online_meeting_requested"] = event.get("_online_meeting_requested", False)
        return public

    def fail_next(
        self,
        route: str,
        *,
        status: int = 500,
        retry_after: float | None = None,
        times: int = 1,
        code: str = "",
        message: str = "",
        disconnect: bool = False,
        after: bool = False,
    ) -> None:
        """The next `times` requests to `route` fail: with `status` (and Retry-After), or by
        closing the connection without an answer. `code` is Graph's error code, or the OAuth
        error (e.g. interaction_required) on the token route. With `after`, the request is
        carried out first and only its answer is the failure (a lost answer)."""
        with self._lock:
            self._fails.setdefault(route, []).extend(
                [
                    {
                        "status": status,
                        "retry_after": retry_after,
                        "code": code,
                        "message": message,
                        "disconnect": disconnect,
                        "after": after,
                    }
                ]
                * times
            )

    def delay(self, route: str, seconds: float) -> None:
        """Every request to `route` waits `seconds` before being answered (0 to stop)."""
        with self._lock:
            self._delays[route] = seconds

    def revoke_all(self) -> None:
        """The user revoked the app (or reset their password): every refresh token is dead."""
        with self._lock:
            for grant in self._refresh_tokens.values():
                grant["revoked"] = True

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired, whatever the client believes."""
        with self._lock:
            for token in self._access_tokens.values():
                token["expires"] = 0.0

    def latest_refresh_token(self, email: str) -> str:
        with self._lock:
            issued = [
                (grant["issued"], token)
                for token, grant in self._refresh_tokens.items()
                if grant["email"] == email.lower()
            ]
        return max(issued)[1] if issued else ""

    def sign_in(
        self, authorization_url: str, email: str = "agent@contoso.test", *, consent: bool = True
    ) -> dict[str, str]:
        """Play the agent's browser: open the consent page, sign in as `email` and accept (or
        decline) the permissions. Returns the query parameters of the redirect to the app."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        self.account(email)
        with self._lock:
            self._browser[query.get("state", "")] = (email, consent)
        parts = urlsplit(authorization_url)
        context = ssl.create_default_context(cafile=self.ca_bundle)
        connection = http.client.HTTPSConnection(
            parts.hostname, parts.port, context=context, timeout=10
        )
        try:
            connection.request("GET", f"{parts.path}?{parts.query}")
            response = connection.getresponse()
            response.read()
            location = response.getheader("Location")
        finally:
            connection.close()
        if response.status != 302 or not location:
            raise AssertionError(f"authorize answered {response.status}, not a redirect")
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    # --- dispatch -------------------------------------------------------------------------------

    def _handle(self, handler: _Handler, method: str, role: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        name, handler_name, match = "unknown", "", None
        for route_role, route_method, pattern, route_name, route_handler in _ROUTES:
            found = pattern.fullmatch(parts.path)
            if route_role == role and route_method == method and found:
                name, handler_name, match = route_name, route_handler, found
                break
        with self._lock:
            self.counts[name] += 1
            self.requests.append(
                {
                    "route": name,
                    "method": method,
                    "path": parts.path,
                    "query": query,
                    "headers": {k.lower(): v for k, v in handler.headers.items()},
                    "body": raw,
                }
            )
            fails = self._fails.get(name)
            fault = fails.pop(0) if fails else None
            delay = self._delays.get(name, 0.0)
        if delay:
            time.sleep(delay)
        try:
            if fault is not None and fault["after"] and match is not None:
                # Carried out, then the answer is lost: a retry must find what this one did.
                groups = {k: unquote(v) for k, v in match.groupdict().items()}
                getattr(self, handler_name)(query=query, raw=raw, headers=handler.headers, **groups)
            if fault is not None:
                if fault["disconnect"]:
                    handler.close_connection = True
                    with contextlib.suppress(OSError):
                        handler.connection.shutdown(socket.SHUT_RDWR)
                    return
                raise self._fault_reply(role, fault)
            if match is None:
                if role == "graph":
                    raise _graph_error(400, "BadRequest", f"Resource not found: {parts.path}")
                raise _Reply(404, "<html><body>Not found</body></html>")
            groups = {k: unquote(v) for k, v in match.groupdict().items()}
            reply = getattr(self, handler_name)(
                query=query, raw=raw, headers=handler.headers, **groups
            )
        except _Reply as exc:
            reply = exc
        except Exception:  # the fake's own bug: answer 500 and keep the traceback for the test
            with self._lock:
                self.server_errors.append(traceback.format_exc())
            reply = _Reply(500, {"error": {"code": "InternalServerError", "message": "bug"}})
        self._send(handler, reply)

    def _fault_reply(self, role: str, fault: dict) -> _Reply:
        status = fault["status"]
        headers = {}
        if fault["retry_after"] is not None:
            headers["Retry-After"] = str(int(fault["retry_after"]))
        if role == "login":
            error = fault["code"] or (
                "temporarily_unavailable" if status in (429, 503) else "server_error"
            )
            description = fault["message"] or "The service is temporarily unavailable."
            return _Reply(status, _aad_error(error, 90012, description), headers)
        code = fault["code"] or {
            429: "ApplicationThrottled",
            500: "ErrorInternalServerError",
            503: "ServiceUnavailable",
            504: "GatewayTimeout",
        }.get(status, "ErrorInvalidRequest")
        message = fault["message"] or {
            429: "Application is over its MailboxConcurrency limit.",
            503: "Service Unavailable",
        }.get(status, "The server could not answer the request.")
        return _graph_error(status, code, message, headers)

    def _send(self, handler: _Handler, reply: _Reply) -> None:
        body = reply.body
        headers = dict(reply.headers)
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        elif isinstance(body, str):
            body = body.encode()
            headers.setdefault("Content-Type", "text/html; charset=utf-8")
        try:
            handler.send_response(reply.status)
            for key, value in headers.items():
                handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.send_header("request-id", str(uuid.uuid4()))
            handler.end_headers()
            handler.wfile.write(body)
        except (OSError, ssl.SSLError):
            handler.close_connection = True

    # --- identity -------------------------------------------------------------------------------

    def _discovery(self, *, tenant: str, **_):
        base = f"{self.login_url}/{tenant}"
        issuer_tenant = "{tenantid}" if tenant in ("common", "organizations") else tenant
        return _Reply(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{self.login_url}/{issuer_tenant}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{self.graph_url.rsplit('/', 1)[0]}/oidc/userinfo",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "tid", "oid"],
                "tenant_region_scope": None,
                "cloud_instance_name": "microsoftonline.com",
            },
        )

    def _authorize(self, *, tenant: str, query: dict, **_):
        with self._lock:
            self.authorize_requests.append(dict(query))
        if query.get("client_id") != self.client_id:
            # Entra ID shows an error page: it will not redirect to an unknown app's address.
            raise _Reply(
                400,
                "<html><body>AADSTS700016: Application with identifier "
                f"'{query.get('client_id')}' was not found in the directory.</body></html>",
            )
        redirect_uri = query.get("redirect_uri", "")
        state = query.get("state", "")

        def back(**params) -> _Reply:
            params = {**params, "state": state} if state else params
            separator = "&" if "?" in redirect_uri else "?"
            return _Reply(302, b"", {"Location": redirect_uri + separator + urlencode(params)})

        if query.get("response_type") != "code":
            raise back(error="unsupported_response_type", error_description="AADSTS70005")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            raise back(
                error="invalid_request",
                error_description="AADSTS501491: Invalid size of Code_Challenge parameter.",
            )
        with self._lock:
            browser = self._browser.pop(state, None)
        if browser is None:
            return _Reply(200, "<html><body><h1>Sign in to your account</h1></body></html>")
        email, consents = browser
        if not consents:
            raise back(
                error="access_denied",
                error_description="AADSTS65004: User declined to consent to access the app.",
            )
        code = "0.A" + _b64url(secrets.token_bytes(48))
        with self._lock:
            self._codes[code] = {
                "email": email.lower(),
                "client_id": query["client_id"],
                "redirect_uri": redirect_uri,
                "code_challenge": query["code_challenge"],
                "scope": query.get("scope", "").split(),
                "nonce": query.get("nonce"),
                "expires": time.time() + 600,
            }
        raise back(code=code, session_state=str(uuid.uuid4()))

    def _token(self, *, tenant: str, raw: bytes, headers, **_):
        form = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            basic_id, _, basic_secret = base64.b64decode(auth[6:]).decode().partition(":")
            client_id, secret = unquote(basic_id.replace("+", " ")), unquote(basic_secret)
        if client_id != self.client_id:
            raise _Reply(
                400,
                _aad_error(
                    "unauthorized_client",
                    700016,
                    f"Application with identifier '{client_id}' was not found in the directory.",
                ),
            )
        if secret != self.client_secret:
            raise _Reply(
                401,
                _aad_error(
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request "
                    "is the client secret value, not the client secret ID.",
                ),
            )
        grant_type = form.get("grant_type")
        with self._lock:
            self.counts[f"token.{grant_type}"] += 1
        if grant_type == "authorization_code":
            email, scopes, nonce = self._redeem_code(form)
        elif grant_type == "refresh_token":
            email, scopes, nonce = self._redeem_refresh_token(form)
        else:
            raise _Reply(
                400,
                _aad_error(
                    "unsupported_grant_type",
                    70003,
                    f"The app requested an unsupported grant type '{grant_type}'.",
                ),
            )
        return _Reply(200, self._issue_tokens(email, scopes, nonce, form))

    def _redeem_code(self, form: dict) -> tuple[str, list[str], str | None]:
        with self._lock:
            grant = self._codes.get(form.get("code", ""))
            if grant is not None and grant.get("redeemed"):
                raise _Reply(
                    400,
                    _aad_error(
                        "invalid_grant",
                        54005,
                        "OAuth2 Authorization code was already redeemed, please retry with a "
                        "new valid code or use an existing refresh token.",
                    ),
                )
            if grant is None or grant["expires"] < time.time():
                raise _Reply(
                    400,
                    _aad_error(
                        "invalid_grant",
                        70008,
                        "The provided authorization code or refresh token has expired due to "
                        "inactivity. Send a new interactive authorization request.",
                    ),
                )
            grant["redeemed"] = True
        if form.get("redirect_uri") != grant["redirect_uri"]:
            raise _Reply(
                400,
                _aad_error(
                    "invalid_grant",
                    500112,
                    "The reply address does not match the reply address provided when "
                    "requesting Authorization code.",
                ),
            )
        verifier = form.get("code_verifier", "")
        challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
        if not verifier or challenge != grant["code_challenge"]:
            raise _Reply(
                400,
                _aad_error(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the "
                    "authorization request.",
                ),
            )
        return grant["email"], grant["scope"], grant["nonce"]

    def _redeem_refresh_token(self, form: dict) -> tuple[str, list[str], None]:
        token = form.get("refresh_token", "")
        with self._lock:
            grant = self._refresh_tokens.get(token)
            self.refresh_grants.append({"refresh_token": token, "at": time.monotonic()})
            if grant is None:
                raise _Reply(
                    400,
                    _aad_error(
                        "invalid_grant",
                        9002313,
                        "Invalid request. Request is malformed or invalid.",
                    ),
                )
            if grant["revoked"]:
                raise _Reply(
                    400,
                    _aad_error(
                        "invalid_grant",
                        50173,
                        "The provided grant has expired due to it being revoked, a fresh auth "
                        "token is needed. The user might have changed or reset their password.",
                        suberror="bad_token",
                    ),
                )
        scopes = form.get("scope", "").split() or grant["scope"]
        return grant["email"], scopes, None

    def _issue_tokens(self, email: str, scopes: list[str], nonce: str | None, form: dict) -> dict:
        account = self.account(email)
        now = time.time()
        access_token = "EwB" + _b64url(secrets.token_bytes(48))  # opaque to the client
        granted = [s for s in scopes if s.lower() not in RESERVED_SCOPES]
        answer = {
            "token_type": "Bearer",
            "scope": " ".join([*granted, "profile", "openid", "email"]),
            "expires_in": self.access_token_ttl,
            "ext_expires_in": self.access_token_ttl,
            "access_token": access_token,
        }
        with self._lock:
            self._access_tokens[access_token] = {
                "email": email,
                "expires": now + self.access_token_ttl,
                "scopes": granted,
            }
            if "offline_access" in scopes:
                refresh_token = "M.C5" + _b64url(secrets.token_bytes(64))
                self._refresh_tokens[refresh_token] = {
                    "email": email,
                    "scope": scopes,
                    "revoked": False,
                    "issued": time.monotonic_ns(),
                }
                answer["refresh_token"] = refresh_token
        if "openid" in scopes:
            claims = {
                "aud": self.client_id,
                "iss": f"{self.login_url}/{account.tenant}/v2.0",
                "iat": int(now),
                "nbf": int(now),
                "exp": int(now) + 3600,
                "name": account.name,
                "oid": account.oid,
                "preferred_username": account.email,
                "sub": _b64url(hashlib.sha256(account.oid.encode()).digest()[:24]),
                "tid": account.tenant,
                "ver": "2.0",
            }
            if nonce:
                claims["nonce"] = nonce
            if account.personal:
                claims["email"] = account.email
            header = {"typ": "JWT", "alg": "RS256", "kid": "fake-microsoft"}
            answer["id_token"] = ".".join(
                (
                    _b64url(json.dumps(header).encode()),
                    _b64url(json.dumps(claims).encode()),
                    _b64url(b"not a real signature"),
                )
            )
        if form.get("client_info") == "1":
            info = {"uid": account.oid, "utid": account.tenant}
            answer["client_info"] = _b64url(json.dumps(info).encode())
        return answer

    # --- Graph ----------------------------------------------------------------------------------

    def _caller(self, headers) -> Account:
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise _graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        with self._lock:
            token = self._access_tokens.get(auth[7:].strip())
        if token is None:
            raise _graph_error(
                401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed."
            )
        if token["expires"] <= time.time():
            raise _graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token has expired or is not yet valid.",
                {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
            )
        return self.account(token["email"])

    @staticmethod
    def _zone(headers) -> tuple[str, object]:
        """The time zone answers are given in: the Prefer header's, else the mailbox's."""
        prefer = headers.get("Prefer", "")
        match = re.search(r'outlook\.timezone\s*=\s*"([^"]+)"', prefer)
        if match is None:
            return MAILBOX_ZONE
        name = match.group(1)
        if name.upper() == "UTC":
            return "UTC", UTC
        if name == MAILBOX_ZONE[0]:
            return MAILBOX_ZONE
        return name, ZoneInfo(name)

    @staticmethod
    def _graph_time(value: datetime, zone) -> dict:
        return {"dateTime": value.astimezone(zone[1]).strftime(GRAPH_TIME), "timeZone": zone[0]}

    @staticmethod
    def _json(raw: bytes) -> dict:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise _graph_error(400, "BadRequest", "Unable to read JSON request payload.") from None
        if not isinstance(body, dict):
            raise _graph_error(400, "BadRequest", "Unable to read JSON request payload.")
        return body

    def _get_schedule(self, *, raw: bytes, headers, **_):
        caller = self._caller(headers)
        if caller.personal:
            status, body = PERSONAL_SCHEDULE_REFUSAL
            raise _Reply(status, body)
        body = self._json(raw)
        try:
            window_start = _parse_graph_time(body["startTime"])
            window_end = _parse_graph_time(body["endTime"])
            schedules = list(body["schedules"])
        except (KeyError, TypeError, ValueError):
            raise _graph_error(
                400, "ErrorInvalidParameter", "startTime, endTime and schedules are required."
            ) from None
        interval = int(body.get("availabilityViewInterval", 30))
        if not 5 <= interval <= 1440:
            raise _graph_error(
                400, "ErrorInvalidParameter", "availabilityViewInterval must be 5 to 1440."
            )
        zone = self._zone(headers)
        value = []
        for schedule_id in schedules:
            with self._lock:
                account = self.accounts.get(str(schedule_id).lower())
                if account is None or account.personal:
                    error = {
                        "message": f"Unable to resolve e-mail address {schedule_id} to an "
                        "Active Directory object.",
                        "responseCode": "5009",
                    }
                else:
                    error = account.schedule_error
                events = [] if error else self._overlapping(account, window_start, window_end)
            if error:
                value.append({"scheduleId": schedule_id, "error": dict(error)})
                continue
            value.append(
                {
                    "scheduleId": schedule_id,
                    "availabilityView": self._availability_view(
                        events, window_start, window_end, interval
                    ),
                    "scheduleItems": [
                        {
                            "isPrivate": False,
                            "status": e["showAs"],
                            "subject": e["subject"],
                            "location": "",
                            "start": self._graph_time(e["_start"], zone),
                            "end": self._graph_time(e["_end"], zone),
                        }
                        for e in events
                    ],
                    "workingHours": {
                        "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                        "startTime": "08:00:00.0000000",
                        "endTime": "17:00:00.0000000",
                        "timeZone": {"name": MAILBOX_ZONE[0]},
                    },
                }
            )
        return _Reply(
            200,
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata"
                "#Collection(microsoft.graph.scheduleInformation)",
                "value": value,
            },
        )

    @staticmethod
    def _overlapping(account: Account, start: datetime, end: datetime) -> list[dict]:
        events = [
            e
            for e in account.events.values()
            if not e["isCancelled"] and e["_start"] < end and e["_end"] > start
        ]
        return sorted(events, key=lambda e: (e["_start"], e["_end"], e["id"]))

    @staticmethod
    def _availability_view(events, start: datetime, end: datetime, minutes: int) -> str:
        digits = []
        step = timedelta(minutes=minutes)
        cursor = start
        while cursor < end:
            codes = [
                SHOW_AS.get(e["showAs"], "2")
                for e in events
                if e["_start"] < cursor + step and e["_end"] > cursor
            ]
            digits.append(max(codes) if codes else "0")
            cursor += step
        return "".join(digits)

    def _calendar_view(self, *, query: dict, headers, **_):
        caller = self._caller(headers)
        try:
            window_start = _parse_iso_param(query["startDateTime"])
            window_end = _parse_iso_param(query["endDateTime"])
        except (KeyError, ValueError):
            raise _graph_error(
                400,
                "ErrorInvalidParameter",
                "This request requires a time window specified by the query string parameters "
                "StartDateTime and EndDateTime.",
            ) from None
        skip = int(query.get("$skip") or 0)
        top = min(int(query.get("$top") or self.page_size), self.page_size)
        selected = [s for s in query.get("$select", "").split(",") if s]
        zone = self._zone(headers)
        with self._lock:
            events = [
                e
                for e in caller.events.values()
                if e["_start"] < window_end and e["_end"] > window_start
            ]
            events.sort(key=lambda e: (e["_start"], e["_end"], e["id"]))
            page = [self._public_event(e, zone) for e in events[skip : skip + top]]
            more = skip + top < len(events)
        if selected:
            keep = {"id", "@odata.etag", *selected}
            page = [{k: v for k, v in e.items() if k in keep} for e in page]
        answer = {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('me')/calendarView",
            "value": page,
        }
        if more:
            params = {k: v for k, v in query.items() if k != "$skip"}
            params["$skip"] = str(skip + top)
            answer["@odata.nextLink"] = (
                f"{self.graph_url}/me/calendarView?{urlencode(params, quote_via=quote)}"
            )
        return _Reply(200, answer)

    def _calendar(self, *, headers, **_):
        caller = self._caller(headers)
        with self._lock:
            providers = list(caller.online_meeting_providers)
        return _Reply(
            200,
            {
                "id": "AAMkAGViNDU7zAAAAAGtlAAA=",
                "name": "Calendar",
                "color": "auto",
                "canEdit": True,
                "canShare": True,
                "canViewPrivateItems": True,
                "isDefaultCalendar": True,
                "owner": {"name": caller.name, "address": caller.email},
                "allowedOnlineMeetingProviders": providers,
                "defaultOnlineMeetingProvider": providers[0] if providers else "unknown",
                "isTallyingResponses": True,
                "isRemovable": False,
            },
        )

    def _new_event(
        self, account: Account, *, subject: str, start: datetime, end: datetime, show_as: str
    ) -> dict:
        event_id = "AAMkAGI1AAAt" + _b64url(secrets.token_bytes(24)).replace("_", "0") + "="
        event = {
            "id": event_id,
            "iCalUId": "040000008200E00074C5B7101A82E008" + secrets.token_hex(28).upper(),
            "subject": subject,
            "showAs": show_as,
            "isCancelled": False,
            "isAllDay": False,
            "isOnlineMeeting": False,
            "onlineMeetingProvider": "unknown",
            "onlineMeeting": None,
            "attendees": [],
            "body": {"contentType": "text", "content": ""},
            "organizer": {"emailAddress": {"name": account.name, "address": account.email}},
            "_start": start,
            "_end": end,
        }
        account.events[event_id] = event
        return event

    def _public_event(self, event: dict, zone) -> dict:
        public = {k: v for k, v in event.items() if not k.startswith("_")}
        public["start"] = self._graph_time(event["_start"], zone)
        public["end"] = self._graph_time(event["_end"], zone)
        public["@odata.etag"] = 'W/"' + hashlib.sha1(event["id"].encode()).hexdigest()[:20] + '"'  # noqa: S324
        return public

    def _create_event(self, *, raw: bytes, headers, **_):
        caller = self._caller(headers)
        body = self._json(raw)
        try:
            start = _parse_graph_time(body["start"])
            end = _parse_graph_time(body["end"])
        except (KeyError, TypeError, ValueError):
            raise _graph_error(
                400,
                "ErrorInvalidRequest",
                "Your request can't be completed. Start and End are required.",
            ) from None
        if end <= start:
            raise _graph_error(400, "ErrorInvalidRequest", "The end time must be after the start.")
        zone = self._zone(headers)
        transaction_id = body.get("transactionId")
        with self._lock:
            existing = caller.transactions.get(transaction_id) if transaction_id else None
            if existing and existing in caller.events:
                # "to avoid redundant POST operations in case of client retries"
                return _Reply(201, self._public_event(caller.events[existing], zone))
            event = self._new_event(
                caller, subject=body.get("subject", ""), start=start, end=end, show_as="busy"
            )
            event["body"] = body.get("body") or event["body"]
            event["attendees"] = [
                {**a, "status": {"response": "none", "time": "0001-01-01T00:00:00Z"}}
                for a in body.get("attendees") or []
            ]
            event["transactionId"] = transaction_id
            event["_online_meeting_requested"] = bool(body.get("isOnlineMeeting"))
            provider = body.get("onlineMeetingProvider", "teamsForBusiness")
            if body.get("isOnlineMeeting") and provider in caller.online_meeting_providers:
                event["isOnlineMeeting"] = True
                event["onlineMeetingProvider"] = provider
                event["onlineMeeting"] = {
                    "joinUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_"
                    f"{secrets.token_urlsafe(24)}%40thread.v2/0"
                }
            if transaction_id:
                caller.transactions[transaction_id] = event["id"]
            return _Reply(201, self._public_event(event, zone))

    def _event_of(self, caller: Account, event_id: str) -> dict:
        event = caller.events.get(event_id)
        if event is None:
            raise _graph_error(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        return event

    def _get_event(self, *, event_id: str, headers, **_):
        caller = self._caller(headers)
        with self._lock:
            event = self._event_of(caller, event_id)
            return _Reply(200, self._public_event(event, self._zone(headers)))

    def _cancel_event(self, *, event_id: str, raw: bytes, headers, **_):
        caller = self._caller(headers)
        comment = self._json(raw).get("comment") or self._json(raw).get("Comment") or ""
        with self._lock:
            event = self._event_of(caller, event_id)
            if not event["attendees"]:
                raise _graph_error(
                    400,
                    "ErrorInvalidRequest",
                    "Your request can't be completed. You can't cancel a meeting that has no "
                    "attendees; delete it instead.",
                )
            del caller.events[event_id]
            caller.cancelled.append({**event, "cancel_comment": comment, "isCancelled": True})
        return _Reply(202)

    def _delete_event(self, *, event_id: str, headers, **_):
        caller = self._caller(headers)
        with self._lock:
            event = self._event_of(caller, event_id)
            del caller.events[event_id]
            caller.cancelled.append({**event, "deleted": True})
        return _Reply(204)
