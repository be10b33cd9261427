"""Marketo's programs (with the statuses of their channel) and requestable smart campaigns,
copied into MarketoProgram / MarketoCampaign for the pickers of dialogue actions
(models.MarketoAction).

`refresh` reads everything from Marketo first and writes it in one transaction at the end, so
a failure anywhere (Marketo unreachable, a permission missing) leaves the tables as they were.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from marketo_sync.client import BATCH_SIZE, MarketoClient, MarketoConfig
from marketo_sync.errors import MarketoError
from marketo_sync.models import MarketoCampaign, MarketoProgram

# The asset API's largest page (programs, channels).
ASSET_PAGE = 200

PROGRAM_FIELDS = ["name", "program_type", "channel", "workspace", "statuses", "synced_at"]
CAMPAIGN_FIELDS = ["name", "program_id", "program_name", "workspace", "active", "synced_at"]


@dataclass(frozen=True)
class Refreshed:
    programs: int
    campaigns: int


def refresh(*, client: MarketoClient | None = None, now: datetime | None = None) -> Refreshed:
    """Replace the stored programs and campaigns with what Marketo has now; returns the counts.

    Raises MarketoError (show `exc.explain()`) when Marketo cannot be read; nothing is changed
    then. A client made here (from settings) is closed here; one passed in is the caller's.
    Two refreshes at once are harmless: each writes a complete picture, the last one wins.
    """
    now = now or timezone.now()
    own_client = client is None
    if own_client:
        client = MarketoClient(MarketoConfig.from_settings())
    try:
        channels = _browse(client, "/rest/asset/v1/channels.json")
        programs = _browse(client, "/rest/asset/v1/programs.json")
        campaigns = _requestable_campaigns(client)
    finally:
        if own_client:
            client.close()

    statuses = {channel.get("name"): _visible_statuses(channel) for channel in channels}
    program_rows = _unique(_program_row(entry, statuses, now) for entry in programs)
    campaign_rows = _unique(_campaign_row(entry, now) for entry in campaigns)
    with transaction.atomic():
        _replace(MarketoProgram, program_rows, PROGRAM_FIELDS)
        _replace(MarketoCampaign, campaign_rows, CAMPAIGN_FIELDS)
    return Refreshed(programs=len(program_rows), campaigns=len(campaign_rows))


def last_refreshed() -> datetime | None:
    """When the stored programs or campaigns were last read (None: never, or Marketo had none)."""
    stamps = [
        MarketoProgram.objects.aggregate(at=Max("synced_at"))["at"],
        MarketoCampaign.objects.aggregate(at=Max("synced_at"))["at"],
    ]
    return max((stamp for stamp in stamps if stamp), default=None)


# --- reading ------------------------------------------------------------------------------------


def _browse(client: MarketoClient, path: str) -> list[dict]:
    """Every asset of an asset API browse endpoint, 200 at a time (offset paging)."""
    assets: list[dict] = []
    while True:
        body = client.get(path, {"maxReturn": ASSET_PAGE, "offset": len(assets)})
        # Past the end Marketo leaves `result` out and warns "No assets found ...".
        page = body.get("result") or []
        assets.extend(page)
        if len(page) < ASSET_PAGE:
            return assets


def _requestable_campaigns(client: MarketoClient) -> list[dict]:
    """Campaigns with a "Campaign is Requested" (Web Service API) trigger, active or not."""
    campaigns: list[dict] = []
    params: dict = {"isTriggerable": "true", "batchSize": BATCH_SIZE}
    while True:
        body = client.get("/rest/v1/campaigns.json", params)
        page = body.get("result") or []
        campaigns.extend(page)
        token = body.get("nextPageToken")
        # An empty page ends it too, in case a token keeps coming without more rows.
        if not token or not page or token == params.get("nextPageToken"):
            return campaigns
        params = {**params, "nextPageToken": token}


def _visible_statuses(channel: dict) -> list[str]:
    """The channel's status names a marketer can pick: hidden ones left out, in step order."""
    statuses = [s for s in channel.get("progressionStatuses") or [] if not s.get("hidden")]
    return [s["name"] for s in sorted(statuses, key=lambda s: s.get("step") or 0)]


def _program_row(entry: dict, statuses: dict, now: datetime) -> MarketoProgram:
    try:
        channel = entry.get("channel") or ""
        return MarketoProgram(
            id=int(entry["id"]),
            name=str(entry["name"])[:255],
            program_type=str(entry.get("type") or "")[:64],
            channel=channel[:255],
            workspace=str(entry.get("workspace") or "")[:255],
            statuses=statuses.get(channel, []),
            synced_at=now,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _unexpected("program", entry) from exc


def _campaign_row(entry: dict, now: datetime) -> MarketoCampaign:
    try:
        program_id = entry.get("programId")
        return MarketoCampaign(
            id=int(entry["id"]),
            name=str(entry["name"])[:255],
            program_id=int(program_id) if program_id is not None else None,
            program_name=str(entry.get("programName") or "")[:255],
            workspace=str(entry.get("workspaceName") or "")[:255],
            # `isActive` in newer answers, `active` in the lead database API's own.
            active=bool(entry.get("isActive", entry.get("active", True))),
            synced_at=now,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _unexpected("campaign", entry) from exc


def _unexpected(kind: str, entry: object) -> MarketoError:
    return MarketoError(
        "bad_response", f"Marketo listed a {kind} DynChat cannot read: {entry!r:.200}"
    )


def _unique(rows) -> list:
    """One row per id: offset paging can list an asset twice when others are added meanwhile."""
    return list({row.id: row for row in rows}.values())


# --- writing ------------------------------------------------------------------------------------


def _replace(model, rows: list, fields: list[str]) -> None:
    """Upsert `rows`, delete the rows Marketo no longer lists (in the caller's transaction)."""
    model.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["id"], update_fields=fields, batch_size=500
    )
    model.objects.exclude(id__in=[row.id for row in rows]).delete()
