"""Marketo Bulk Extract: export jobs and their files.

A job goes Created -> Queued -> Processing -> Completed (or Failed / Cancelled); Marketo
refreshes a job's status at most once a minute and keeps its file seven days. Files are
streamed: `download` yields the file's bytes as they arrive, resumes with an HTTP Range request
after a cut connection, and checks Marketo's SHA-256 once the last byte is in.
"""

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx

from marketo_sync.client import MarketoClient
from marketo_sync.errors import MarketoError, backoff_delay

# Files are kept 7 days; a job older than this is re-created rather than trusted.
JOB_MAX_AGE = timedelta(days=6)
DONE = "Completed"
GONE = {"Failed", "Cancelled", "Canceled"}


class ChecksumMismatch(Exception):
    """The downloaded bytes do not hash to the job's fileChecksum."""


def marketo_time(moment: datetime) -> str:
    """ISO-8601 in UTC without milliseconds, as Bulk Extract wants its filters."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def create_job(
    client: MarketoClient,
    entity: str,
    *,
    start: datetime,
    end: datetime,
    fields: list[str],
    activity_type_ids: list[int] | None = None,
) -> dict:
    """Create an export job of `entity` ("leads" or "activities") created in [start, end]."""
    window = {"startAt": marketo_time(start), "endAt": marketo_time(end)}
    body: dict = {"format": "CSV", "fields": fields, "filter": {"createdAt": window}}
    if entity == "activities" and activity_type_ids:
        body["filter"]["activityTypeIds"] = activity_type_ids
    envelope = client.post(f"/bulk/v1/{entity}/export/create.json", body)
    # Airbyte once crashed on a "created" job without an id: check before trusting it.
    job = (envelope.get("result") or [{}])[0]
    if not job.get("exportId"):
        raise MarketoError("bad_response", f"Marketo created no export job: {envelope}")
    return job


def enqueue_job(client: MarketoClient, entity: str, export_id: str) -> None:
    """Queue a created job. A job that is already queued (our earlier answer was lost) is fine.
    Raises BulkQueueFull when Marketo's shared queue has no room."""
    try:
        client.post(f"/bulk/v1/{entity}/export/{export_id}/enqueue.json")
    except MarketoError as exc:
        if exc.code == "1029" and "already queued" in exc.message.lower():
            return
        raise


def job_status(client: MarketoClient, entity: str, export_id: str) -> dict:
    envelope = client.get(f"/bulk/v1/{entity}/export/{export_id}/status.json")
    return (envelope.get("result") or [{}])[0]


def download(
    client: MarketoClient,
    entity: str,
    export_id: str,
    *,
    size: int,
    checksum: str,
    on_bytes: Callable[[int], None] | None = None,
    max_resumes: int = 8,
) -> Iterator[bytes]:
    """Yield the job's file, `size` bytes, resuming after cut connections.

    Raises ChecksumMismatch after the last chunk when the bytes are not the file Marketo
    described, and ExportFileMissing when Marketo answers 404."""
    path = f"/bulk/v1/{entity}/export/{export_id}/file.json"
    digest = hashlib.sha256()
    offset = 0
    resumes = 0
    while offset < size:
        try:
            with client.open_file(path, start=offset) as response:
                # A server that ignores Range sends the whole file again: skip what we have.
                skip = offset if (offset and response.status_code == 200) else 0
                # As received (no re-chunking), so bytes before a cut still count.
                for chunk in response.iter_raw():
                    if skip:
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk, skip = chunk[skip:], 0
                    digest.update(chunk)
                    offset += len(chunk)
                    if on_bytes:
                        on_bytes(len(chunk))
                    yield chunk
            if offset < size:
                raise httpx.RemoteProtocolError(f"file ended at byte {offset} of {size}")
        except httpx.TransportError as exc:
            resumes += 1
            if resumes > max_resumes:
                raise MarketoError(
                    "network", f"The export download kept breaking off ({exc})."
                ) from None
            client.sleep(backoff_delay(resumes, base=0.5, cap=30))
    expected = checksum.removeprefix("sha256:").lower()
    if offset != size or (expected and digest.hexdigest() != expected):
        raise ChecksumMismatch(
            f"got {offset} bytes hashing to {digest.hexdigest()}, expected {size} bytes {expected}"
        )


def job_is_stale(created_at: datetime | None, now: datetime) -> bool:
    return created_at is None or now - created_at > JOB_MAX_AGE
