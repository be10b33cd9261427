"""What Marketo's answers mean, and what the sync does about each: retry, or stop and say why.

Plain Python (no Django): the retry policy is tested on its own. Codes and their meaning come
from Marketo's error code reference; see docs/marketo-sync.md for the list shown to admins.
"""

import random
from datetime import datetime

# Worth retrying after a pause: timeouts (604), rate and concurrency limits (606, 615), Marketo
# being briefly unavailable (608, 614), system errors (611), transient errors (713), bulk import
# contention (1016, 1019).
RETRYABLE_CODES = frozenset({"604", "606", "608", "611", "614", "615", "713", "1016", "1019"})
TOKEN_CODES = frozenset({"601", "602"})

# What an admin should do about the errors that stop a sync.
HINTS = {
    "invalid_client": (
        "Marketo refused the client id and secret. Copy them again from Admin > LaunchPoint > "
        "(your custom service) > View Details into MARKETO_CLIENT_ID and MARKETO_CLIENT_SECRET."
    ),
    "not_configured": (
        "Set MARKETO_BASE_URL, MARKETO_CLIENT_ID and MARKETO_CLIENT_SECRET (see "
        "docs/marketo-sync.md) and restart DynChat."
    ),
    "network": (
        "DynChat could not reach Marketo. Check MARKETO_BASE_URL (the REST endpoint from Admin > "
        "Web Services, https://<munchkin-id>.mktorest.com) and this server's outbound network."
    ),
    "603": (
        "The API user's role lacks a permission this call needs, or Marketo's IP allowlist blocks "
        "this server. The role needs Read-Only Lead, Read-Only Activity and Read-Only Company "
        "(and Read-Write ones for sending chat activity back)."
    ),
    "607": (
        "Marketo's daily API quota is used up (by DynChat and any other integration). It resets "
        "at midnight US Central time; the sync carries on after that."
    ),
    "export_quota": (
        "Marketo's daily bulk export quota (500 MB unless you bought more) is used up. It resets "
        "at midnight US Central time; start the sync again after that and it resumes."
    ),
    "610": "The base URL does not lead to Marketo's REST API. Check MARKETO_BASE_URL.",
    "1006": "A synced field no longer exists in Marketo. Pick the fields again in settings.",
    "unavailable": (
        "Marketo kept failing for longer than MARKETO_MAX_RETRY_SECONDS. Nothing was lost: start "
        "the sync again once Marketo answers and it continues where it stopped."
    ),
    "job_failed": "Marketo failed the same bulk export job three times; see its message.",
    "checksum": "A downloaded export did not match Marketo's checksum three times in a row.",
    "requires_postgresql": (
        "The Marketo sync writes with PostgreSQL's COPY. Set DATABASE_URL to a PostgreSQL "
        "database; the embedded SQLite mode is for trying the product without Marketo."
    ),
}


class MarketoError(Exception):
    """A failure the sync cannot work around. `code` is Marketo's code (or one of ours, such as
    "network"), `message` Marketo's text, `hint` what an admin should do."""

    def __init__(self, code: str, message: str, *, hint: str | None = None):
        self.code = code
        self.message = message
        self.hint = hint if hint is not None else HINTS.get(code, "")
        super().__init__(f"{code}: {message}")

    def explain(self) -> str:
        return f"{self.message} {self.hint}".strip()


class QuotaError(MarketoError):
    """A daily quota (calls, or bulk export bytes) is spent until `resets_at`."""

    def __init__(self, code: str, message: str, *, resets_at: datetime | None, hint=None):
        self.resets_at = resets_at
        super().__init__(code, message, hint=hint)


class BulkQueueFull(MarketoError):
    """1029 "Too many jobs in queue": Marketo's shared export queue is full; try again later."""


class ExportFileMissing(MarketoError):
    """A job's file answered 404 (not Completed, expired, or Marketo lost it)."""


class OutcomeUnknown(MarketoError):
    """A write whose answer never came (a read timeout, a dropped connection, a 5xx, 604, 611,
    713): Marketo may or may not have applied it. Raised instead of retrying for writes that
    must not be repeated blindly (custom activities, campaign requests)."""


# Answers after which a write may have been applied even though it did not succeed.
AMBIGUOUS_CODES = frozenset(
    {"network_lost", "604", "611", "713", "http_500", "http_502", "http_504"}
)


class RetryLater(Exception):
    """Raised inside the client for an answer worth retrying after `delay` seconds (None:
    the usual backoff)."""

    def __init__(self, code: str, message: str, delay: float | None = None):
        self.code = code
        self.message = message
        self.delay = delay
        super().__init__(f"{code}: {message}")


def backoff_delay(attempt: int, *, base: float = 1.0, cap: float = 60.0, rng=random) -> float:
    """Exponential backoff with full jitter: a random pause in [base/2, min(cap, base*2^n)]."""
    ceiling = min(cap, base * (2 ** max(attempt - 1, 0)))
    return rng.uniform(min(base / 2, ceiling), ceiling)


def classify_failure(code: str, message: str) -> Exception:
    """The exception for an envelope with `success: false`: RetryLater or a MarketoError."""
    if code in TOKEN_CODES:
        return RetryLater(code, message, delay=0)
    if code in RETRYABLE_CODES:
        return RetryLater(code, message)
    if code == "1029":
        lowered = message.lower()
        if "quota" in lowered:
            return QuotaError("export_quota", message, resets_at=None)
        if "already queued" in lowered:
            # Our own enqueue was retried after its answer was lost: the job is queued.
            return MarketoError("1029", message, hint="")
        return BulkQueueFull("1029", message)
    if code == "607":
        return QuotaError("607", message, resets_at=None)
    return MarketoError(code, message)


def classify_http_status(status: int, body: str) -> Exception | None:
    """The exception for an HTTP-level failure, or None when the status is fine."""
    if status == 401:
        return MarketoError("invalid_client", body[:200] or "HTTP 401 Unauthorized")
    if status == 429 or status >= 500:
        return RetryLater(f"http_{status}", body[:200] or f"HTTP {status}")
    if status >= 400:
        return MarketoError(f"http_{status}", body[:200] or f"HTTP {status}")
    return None
