"""The one way DynChat talks to Marketo's REST and bulk APIs.

Every call goes through `MarketoClient._call`, which
- takes its place in the instance-wide limits (limits.py) before it goes out;
- sends the access token shared by all workers, fetching a new one before the old one expires
  and again whenever Marketo says it is invalid (601) or expired (602);
- retries what is worth retrying (errors.py) with exponential backoff and jitter, for at most
  `max_retry_seconds`, then stops with a MarketoError that names the problem.

The client knows nothing of Django except `from_settings()`; tests point it at a fake server.
"""

import json
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx
import redis

from marketo_sync.errors import (
    AMBIGUOUS_CODES,
    ExportFileMissing,
    MarketoError,
    OutcomeUnknown,
    QuotaError,
    RetryLater,
    backoff_delay,
    classify_failure,
    classify_http_status,
)
from marketo_sync.limits import Limiter, Limits, QuotaExhausted, next_reset

logger = logging.getLogger(__name__)

# Marketo answers URIs over 8 KB with 414; lookups longer than this go as POST ?_method=GET.
MAX_GET_URL = 7000
# Refresh the shared token this long before Marketo says it expires.
TOKEN_MARGIN_SECONDS = 60
BATCH_SIZE = 300


@dataclass(frozen=True)
class MarketoConfig:
    base_url: str
    client_id: str
    client_secret: str
    timeout: float = 60.0
    max_retry_seconds: float = 900.0
    limits: Limits = field(default_factory=Limits)
    redis_url: str = ""
    token_margin_seconds: float = TOKEN_MARGIN_SECONDS

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.client_id and self.client_secret)

    @classmethod
    def from_settings(cls) -> "MarketoConfig":
        from django.conf import settings

        return cls(
            base_url=settings.MARKETO_BASE_URL,
            client_id=settings.MARKETO_CLIENT_ID,
            client_secret=settings.MARKETO_CLIENT_SECRET,
            timeout=settings.MARKETO_TIMEOUT_SECONDS,
            max_retry_seconds=settings.MARKETO_MAX_RETRY_SECONDS,
            limits=Limits(
                calls=settings.MARKETO_RATE_LIMIT_CALLS,
                window_seconds=settings.MARKETO_RATE_LIMIT_SECONDS,
                concurrency=settings.MARKETO_MAX_CONCURRENT_CALLS,
                daily_calls=settings.MARKETO_DAILY_QUOTA,
                export_bytes_per_day=settings.MARKETO_EXPORT_DAILY_MB * 1024 * 1024,
            ),
            redis_url=settings.REDIS_URL,
        )


class TokenCache:
    """The access token, shared by every worker (Redis) or by this process (no Redis).

    Fetching a token is serialised by a lock, so a fleet of workers starting at once asks
    Marketo for one token, not one each."""

    def __init__(self, *, key: str, redis_url: str = ""):
        self._key = f"dynchat:marketo:{key}:token"
        self._redis = redis.Redis.from_url(redis_url) if redis_url else None
        self._local: dict | None = None
        self._local_lock = threading.Lock()

    def get(self) -> dict | None:
        if self._redis is None:
            return self._local
        raw = self._redis.get(self._key)
        return json.loads(raw) if raw else None

    def put(self, token: str, expires_at: float) -> None:
        entry = {"token": token, "expires_at": expires_at}
        if self._redis is None:
            self._local = entry
            return
        ttl = max(int(expires_at - time.time()), 1)
        self._redis.set(self._key, json.dumps(entry), ex=ttl)

    def discard(self, token: str) -> None:
        """Forget `token` unless another worker has already replaced it."""
        current = self.get()
        if current and current["token"] == token:
            if self._redis is None:
                self._local = None
            else:
                self._redis.delete(self._key)

    @contextmanager
    def lock(self):
        if self._redis is None:
            with self._local_lock:
                yield
            return
        with self._redis.lock(f"{self._key}:lock", timeout=60, blocking_timeout=90):
            yield


class MarketoClient:
    def __init__(self, config: MarketoConfig, *, sleep=time.sleep, clock=time.monotonic):
        if not config.configured:
            raise MarketoError("not_configured", "Marketo is not configured.")
        self.config = config
        self.sleep = sleep
        self.clock = clock
        self.limiter = Limiter(
            config.limits, key=config.client_id, redis_url=config.redis_url, sleep=sleep
        )
        self.tokens = TokenCache(key=config.client_id, redis_url=config.redis_url)
        self.http = httpx.Client(
            base_url=config.base_url,
            timeout=httpx.Timeout(config.timeout, connect=10.0),
            headers={"User-Agent": "DynChat marketo_sync"},
        )
        # Calls made by this client, for progress reporting.
        self.calls = 0

    def close(self) -> None:
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- access token -------------------------------------------------------------------------

    def access_token(self) -> str:
        entry = self.tokens.get()
        margin = self.config.token_margin_seconds
        if entry and entry["expires_at"] - time.time() > margin:
            return entry["token"]
        with self.tokens.lock():
            entry = self.tokens.get()  # another worker may have refreshed it meanwhile
            if entry and entry["expires_at"] - time.time() > margin:
                return entry["token"]
            token, expires_in = self._identity()
            if expires_in <= margin and entry and token == entry["token"]:
                # Marketo hands back the same token until it expires; wait that out once, so no
                # call is sent with a token about to lapse mid-flight.
                self.sleep(expires_in + 1)
                token, expires_in = self._identity()
            self.tokens.put(token, time.time() + expires_in)
            return token

    def _identity(self) -> tuple[str, int]:
        """Ask Identity for a token (these calls count against no limit)."""
        params = {
            "grant_type": "client_credentials",
            "client_id": self.config.client_id,
            "client_secret": self.config.client_secret,
        }
        deadline = self.clock() + self.config.max_retry_seconds
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.http.get("/identity/oauth/token", params=params)
            except httpx.TransportError as exc:
                problem = RetryLater("network", f"{type(exc).__name__}: {exc}")
            else:
                if response.status_code == 401:
                    detail = _oauth_error(response)
                    raise MarketoError("invalid_client", detail)
                problem = classify_http_status(response.status_code, response.text)
                if problem is None:
                    body = _json(response)
                    if body and body.get("access_token"):
                        return body["access_token"], int(body.get("expires_in", 3600))
                    problem = RetryLater("bad_response", "Identity answered without a token")
            if isinstance(problem, MarketoError):
                raise problem
            self._pause(problem, attempt, deadline)

    # --- calls --------------------------------------------------------------------------------

    def get(self, path: str, params: dict | None = None, *, timeout: float | None = None) -> dict:
        return self._call("GET", path, params=params, timeout=timeout)

    def lookup(self, path: str, params: dict, *, timeout: float | None = None) -> dict:
        """A read with a possibly long query (ids, emails, tokens): sent as GET while the URL
        stays short, else as Marketo's `POST ?_method=GET` with the query in a form body."""
        if len(path) + len(urlencode(params)) + len(self.config.base_url) < MAX_GET_URL:
            return self._call("GET", path, params=params, timeout=timeout)
        return self._call("POST", path, params={"_method": "GET"}, form=params, timeout=timeout)

    def post(
        self,
        path: str,
        body: dict | None = None,
        *,
        params: dict | None = None,
        timeout: float | None = None,
        repeatable: bool = True,
    ) -> dict:
        """POST a JSON body. A write that must not be applied twice (`repeatable=False`) is
        retried only after answers that say it was not applied (limits, tokens, unavailable,
        no connection); after any other failure it raises OutcomeUnknown."""
        return self._call(
            "POST",
            path,
            params=params,
            json_body=body if body is not None else {},
            timeout=timeout,
            repeatable=repeatable,
        )

    def _call(
        self, method, path, *, params=None, form=None, json_body=None, timeout=None, repeatable=True
    ) -> dict:
        """Send one call until it succeeds; return Marketo's envelope (`success` is true)."""
        deadline = self.clock() + self.config.max_retry_seconds
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._send_once(method, path, params, form, json_body, timeout)
            except RetryLater as problem:
                if not repeatable and problem.code in AMBIGUOUS_CODES:
                    raise OutcomeUnknown(problem.code, problem.message) from None
                self._pause(problem, attempt, deadline)

    def _send_once(self, method, path, params, form, json_body, timeout) -> dict:
        token = self.access_token()
        headers = {"Authorization": f"Bearer {token}"}
        try:
            with self.limiter.call():
                self.calls += 1
                response = self.http.request(
                    method,
                    path,
                    params=params,
                    data=form,
                    json=json_body,
                    headers=headers,
                    timeout=timeout or httpx.USE_CLIENT_DEFAULT,
                )
        except QuotaExhausted as exc:
            raise QuotaError("607", str(exc), resets_at=exc.resets_at) from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Never reached Marketo.
            raise RetryLater("network", f"{type(exc).__name__}: {exc}") from None
        except httpx.TransportError as exc:
            # Sent, perhaps received and applied: the answer was lost.
            raise RetryLater("network_lost", f"{type(exc).__name__}: {exc}") from None
        problem = classify_http_status(response.status_code, response.text)
        if problem is not None:
            raise problem
        body = _json(response)
        if body is None:
            raise RetryLater("bad_response", f"Not JSON: {response.text[:120]!r}")
        self._check_envelope(body, token)
        return body

    def _check_envelope(self, body: dict, token: str) -> None:
        if body.get("success", False):
            return
        errors = body.get("errors") or [{"code": "unknown", "message": "success: false"}]
        code, message = str(errors[0].get("code")), str(errors[0].get("message", ""))
        if code in ("601", "602"):
            self.tokens.discard(token)
        problem = classify_failure(code, message)
        if isinstance(problem, QuotaError) and problem.resets_at is None:
            problem.resets_at = next_reset()
        raise problem

    def _pause(self, problem: RetryLater, attempt: int, deadline: float) -> None:
        delay = problem.delay
        if delay is None:
            delay = backoff_delay(attempt)
            if problem.code == "606":
                # The window is 20 s; waiting a fair part of it beats hammering its edge.
                delay = max(delay, self.config.limits.window_seconds / 4)
        remaining = deadline - self.clock()
        if remaining <= 0:
            raise MarketoError(
                "network" if problem.code.startswith("network") else "unavailable",
                f"Marketo kept answering {problem.code} ({problem.message}) for "
                f"{self.config.max_retry_seconds:.0f} s.",
            )
        # The last wait ends at the deadline, for one final attempt.
        delay = min(delay, remaining)
        logger.info("Marketo %s (%s); retrying in %.1f s", problem.code, problem.message, delay)
        self.sleep(delay)

    # --- bulk files ---------------------------------------------------------------------------

    @contextmanager
    def open_file(self, path: str, *, start: int = 0):
        """Open a bulk export file for streaming from byte `start` (a Range request).

        Yields the httpx response; its status is 200 (whole file) or 206 (from `start`). Raises
        ExportFileMissing on 404. Transport errors while reading the body are the caller's: it
        knows how far it got and resumes from there."""
        deadline = self.clock() + self.config.max_retry_seconds
        attempt = 0
        while True:
            attempt += 1
            token = self.access_token()
            headers = {"Authorization": f"Bearer {token}"}
            if start:
                headers["Range"] = f"bytes={start}-"
            try:
                with self.limiter.call():
                    self.calls += 1
                    request = self.http.build_request("GET", path, headers=headers)
                    response = self.http.send(request, stream=True)
            except QuotaExhausted as exc:
                raise QuotaError("607", str(exc), resets_at=exc.resets_at) from None
            except httpx.TransportError as exc:
                self._pause(RetryLater("network", str(exc)), attempt, deadline)
                continue
            try:
                problem = self._file_problem(response, token)
            except RetryLater as retry:
                problem = retry
            except BaseException:
                response.close()
                raise
            if problem is None:
                try:
                    yield response
                finally:
                    response.close()
                return
            response.close()
            self._pause(problem, attempt, deadline)

    def _file_problem(self, response: httpx.Response, token: str) -> RetryLater | None:
        """None when `response` is the file; raises what stops the download for good."""
        if response.status_code == 404:
            response.read()
            raise ExportFileMissing("file_missing", response.text[:200] or "HTTP 404")
        problem = classify_http_status(response.status_code, "")
        if isinstance(problem, MarketoError):
            raise problem
        if problem is None and "json" in response.headers.get("content-type", ""):
            # Token and limit errors come as an envelope instead of the file.
            self._check_envelope(json.loads(response.read() or b"{}"), token)
            problem = RetryLater("bad_response", "Expected a file, got JSON")
        return problem


def _json(response: httpx.Response) -> dict | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _oauth_error(response: httpx.Response) -> str:
    body = _json(response) or {}
    error = body.get("error", "unauthorized")
    description = body.get("error_description", "")
    return f"{error}: {description}" if description else error
