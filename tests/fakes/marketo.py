"""A fake Marketo Engage REST server for tests and benchmarks.

It speaks real HTTP/1.1 with keep-alive on loopback, using the standard library only, so the
real client (httpx) is exercised end to end:

- Identity tokens and the 601/602 sequence;
- the response envelope;
- the instance-wide limits: the 606 sliding window, 615 concurrency and the 607 daily quota;
- lead, company and activity reads;
- the bulk extract job machine, with files, Range downloads and the daily export quota;
- the write-back: Sync Leads, Associate Lead (Munchkin cookie), custom activity types (draft,
  attributes, approve, describe) and Add Custom Activities, Sync Program Member Status,
  Request Campaign, and the programs, channels and campaigns to pick from.

Every write appends the activities Marketo would (New Lead, Change Data Value, the custom type,
104 Change Status in Progression, 47 Request Campaign), so a client can read back through
activities.json what it wrote. Tests look at ``associations``, ``custom_activities()``,
``memberships`` and ``campaign_requests``; knobs such as ``add_program``, ``add_campaign`` and
``add_custom_activity_type`` set the instance up.

The behaviour follows /work/shared/reference/marketo-rest-api.md (sections 0-9 and 12). Where
the reference is silent or marks something unverified, the choice made here is said in a
comment.

Two data sources can back the server:

- ``MarketoStore``: leads, companies and activities held as dicts (tests add them one by one);
- ``SyntheticDataset``: millions of leads and activities computed from their ids and never
  stored, so a benchmark can export 1,000,000 leads without building them in memory.

Both expose ``write_leads_csv`` / ``write_activities_csv``; the server writes export files
with them, so a benchmark can produce the very same bytes for a reference load.

Not emulated: Push Lead, Schedule Campaign, the legacy Change Lead Program Status, editing or
deleting custom activity types, partitions, bulk import, static/smart list filters, file
retention and gzip-compressed uploads. Writes address the leads held in ``MarketoStore``;
synthetic leads can take activities, program statuses and campaign requests but are not upserted.

Run as a separate process (prints the base URL on the first stdout line)::

    python -m tests.fakes.marketo --port 0 --synthetic-leads 1000000 --synthetic-companies 50000
"""

from __future__ import annotations

import argparse
import base64
import bisect
import contextlib
import gzip
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

try:
    CENTRAL = ZoneInfo("America/Chicago")  # Marketo's quotas reset at midnight Central
except ZoneInfoNotFoundError:  # pragma: no cover - only without system tzdata
    CENTRAL = timezone(timedelta(hours=-6))

MB = 1024 * 1024
MAX_URI_BYTES = 8 * 1024
MAX_BODY_BYTES = 1 * MB  # bulk import (10 MB bodies) is not emulated
MAX_BATCH = 300
MAX_FILTER_VALUES = 300
MAX_FILTER_MATCHES = 1000
MAX_EXPORT_SPAN = timedelta(days=31)
EXPORT_LISTING_AGE = timedelta(days=7)
IDENTITY_PATH = "/identity/oauth/token"
SCOPE = "dynchat-api@dynchat.test"
# Calls answered with these codes count neither against the rate limit nor the daily quota.
EXEMPT_CODES = frozenset({"601", "602", "604", "605", "608", "611"})
EXPORT_FORMATS = {"CSV": ",", "TSV": "\t", "SSV": " "}  # SSV: space, as the per-object pages say
DEFAULT_LEAD_REST_FIELDS = ("id", "email", "updatedAt", "createdAt", "firstName", "lastName")
DEFAULT_ACTIVITY_COLUMNS = (
    "marketoGUID",
    "leadId",
    "activityDate",
    "activityTypeId",
    "campaignId",
    "primaryAttributeValueId",
    "primaryAttributeValue",
    "attributes",
)
ACTIVITY_EXPORT_COLUMNS = frozenset((*DEFAULT_ACTIVITY_COLUMNS, "actionResult"))
NEW_LEAD, CHANGE_DATA_VALUE, DELETE_LEAD = 12, 13, 37
REQUEST_CAMPAIGN, CHANGE_PROGRAM_STATUS = 47, 104
# Asset API browsing (programs, channels): maxReturn defaults to 20 and is at most 200.
MAX_ASSET_BATCH = 200
DEFAULT_ASSET_RETURN = 20
NO_ASSETS_WARNING = "No assets found for the given search criteria."
NOT_IN_PROGRAM = "Not in Program"
# Channels a new instance has (the real defaults are more; two are enough to pick from).
DEFAULT_CHANNELS: tuple[tuple[str, str, tuple], ...] = (
    (
        "Webinar",
        "event",
        ("Invited", "Registered", "No Show", {"name": "Attended", "success": True}),
    ),
    ("Content", "program", ({"name": "Engaged", "success": True},)),
)

STANDARD_MESSAGES = {
    "601": "Access token invalid",
    "602": "Access token expired",
    "603": "Access denied",
    "604": "Request time-out",
    "605": "HTTP Method not supported",
    "607": "Daily quota reached",
    "608": "API Temporarily Unavailable",
    "609": "Invalid JSON",
    "610": "Requested resource not found",
    "611": "System error",
    "612": "Invalid Content Type",
    "613": "Invalid Multipart Request",
    "614": "Invalid Subscription",
    "701": "Required parameter missing",
    "702": "No data found for a given search scenario",
    "704": "Invalid date format",
    "709": "Business Rule Violation",
    "713": "Transient Error",
    "1003": "Invalid data",
    "1004": "Lead not found",
    "1005": "Lead already exists",
    "1006": "Field not found",
    "1007": "Multiple leads match the lookup criteria",
    "1011": "Field not supported",
    "1012": "Invalid cookie value",
    "1013": "Object not found",
    "1025": "Program status not found",
    "1027": "Max Activity Type Limit Reached",
    "1028": "Max field limit reached",
    "1029": "Too many jobs in queue",
    "1035": "Unsupported filter type for target subscription",
    "1037": "Lead was skipped",
    "1049": "Failed to Create Activity",
}

# Lead lookups Marketo allows besides custom string/email/integer fields (reference 5.1).
STANDARD_LEAD_LOOKUPS = frozenset(
    {
        "cookies",
        "email",
        "facebookId",
        "id",
        "leadPartitionId",
        "linkedInId",
        "sfdcAccountId",
        "sfdcContactId",
        "sfdcLeadId",
        "sfdcLeadOwnerId",
        "sfdcOpptyId",
        "twitterId",
    }
)
# Company-level fields a linked lead inherits "as though the values existed on the lead".
COMPANY_INHERITED_FIELDS = frozenset(
    {
        "company",
        "industry",
        "annualRevenue",
        "numberOfEmployees",
        "website",
        "mainPhone",
        "site",
        "sicCode",
        "billingStreet",
        "billingCity",
        "billingState",
        "billingCountry",
        "billingPostalCode",
    }
)
COOKIE_TOKEN = re.compile(r"_mch-.+-\d+-\d+")
# A whole _mkto_trk value: id:<Munchkin id>&token:_mch-<domain>-<epoch ms>-<random>.
MUNCHKIN_COOKIE = re.compile(
    r"id:[0-9A-Za-z]{3}-[0-9A-Za-z]{3}-[0-9A-Za-z]{3}&token:(_mch-[^&\s]+-\d+-\d+)"
)
LEAD_ACTIONS = ("createOrUpdate", "createOnly", "updateOnly", "createDuplicate")
# Custom activity types (reference 8.3).
MAX_CUSTOM_ACTIVITY_TYPES = 10
MAX_CUSTOM_ATTRIBUTES = 20
FIRST_CUSTOM_TYPE_ID = 100001
CUSTOM_ATTRIBUTE_TYPES = frozenset(
    {"string", "boolean", "integer", "float", "link", "email", "currency", "date", "datetime"}
    | {"phone", "text"}
)
API_NAME = re.compile(r"[A-Za-z0-9]{1,255}")
ACTIVITY_TYPE_NAME = re.compile(r"[A-Za-z0-9 _]{1,255}")
MAX_ACTIVITY_ATTRIBUTE_BYTES = 65_536
MAX_CAMPAIGN_LEADS = MAX_CAMPAIGN_TOKENS = 100
MY_TOKEN = re.compile(r"\{\{my\.[^{}]+\}\}")


def _field(name, display, data_type, length=None, *, read_only=False, custom=False) -> dict:
    spec = {"name": name, "displayName": display, "dataType": data_type}
    if length:
        spec["length"] = length
    if read_only:
        spec["readOnly"] = True
    if custom:
        spec["custom"] = True
    return spec


DEFAULT_LEAD_FIELDS: tuple[dict, ...] = (
    _field("id", "Id", "integer", read_only=True),
    _field("email", "Email Address", "email", 255),
    _field("firstName", "First Name", "string", 255),
    _field("lastName", "Last Name", "string", 255),
    _field("company", "Company Name", "string", 255),
    _field("title", "Job Title", "string", 255),
    _field("phone", "Phone Number", "phone", 255),
    _field("country", "Country", "string", 255),
    _field("city", "City", "string", 255),
    _field("state", "State", "string", 255),
    _field("leadScore", "Lead Score", "score"),
    _field("leadSource", "Lead Source", "string", 255),
    _field("leadStatus", "Lead Status", "string", 255),
    _field("industry", "Industry", "string", 255),
    _field("annualRevenue", "Annual Revenue", "currency"),
    _field("numberOfEmployees", "Num Employees", "integer"),
    _field("website", "Website", "url", 255),
    _field("billingCountry", "Billing Country", "string", 255),
    _field("externalCompanyId", "External Company Id", "string", 100),
    _field("cookies", "Cookies", "string", 255),
    _field("unsubscribed", "Unsubscribed", "boolean"),
    _field("createdAt", "Created At", "datetime", read_only=True),
    _field("updatedAt", "Updated At", "datetime", read_only=True),
    _field("productInterest", "Product Interest", "string", 255, custom=True),
    _field("accountTier", "Account Tier", "string", 255, custom=True),
    _field("lastChatScore", "Last Chat Score", "integer", custom=True),
)

DEFAULT_COMPANY_FIELDS: tuple[dict, ...] = (
    _field("id", "Id", "integer", read_only=True),
    _field("externalCompanyId", "External Company Id", "string", 100, read_only=True),
    _field("company", "Company Name", "string", 255),
    _field("industry", "Industry", "string", 255),
    _field("annualRevenue", "Annual Revenue", "currency"),
    _field("numberOfEmployees", "Num Employees", "integer"),
    _field("website", "Website", "url", 255),
    _field("billingCountry", "Billing Country", "string", 255),
    _field("createdAt", "Created At", "datetime", read_only=True),
    _field("updatedAt", "Updated At", "datetime", read_only=True),
)


def _type(type_id, name, description, primary=None, attributes=()) -> dict:
    spec: dict[str, Any] = {"id": type_id, "name": name, "description": description}
    if primary:
        spec["primaryAttribute"] = {"name": primary[0], "dataType": primary[1]}
    spec["attributes"] = [{"name": n, "dataType": t} for n, t in attributes]
    return spec


_WEB = (
    ("Client IP Address", "string"),
    ("Query Parameters", "string"),
    ("Referrer URL", "string"),
    ("User Agent", "string"),
)
_MAIL = (("Campaign Run ID", "integer"), ("Choice Number", "integer"), ("Step ID", "integer"))
_MAIL_CLIENT = (("Device", "string"), ("Is Mobile Device", "boolean"), ("Platform", "string"))

DEFAULT_ACTIVITY_TYPES: tuple[dict, ...] = (
    _type(
        1,
        "Visit Webpage",
        "User visits a web page",
        ("Webpage ID", "integer"),
        (*_WEB, ("Webpage URL", "string"), ("Search Engine", "string"), ("Search Query", "string")),
    ),
    _type(
        2,
        "Fill Out Form",
        "User fills out and submits form on web page",
        ("Webform ID", "integer"),
        (*_WEB, ("Form Fields", "text"), ("Webpage ID", "integer")),
    ),
    _type(3, "Click Link", "User clicks link on a page", ("Link ID", "integer"), _WEB),
    _type(6, "Send Email", "Send Marketo Email to a person", ("Mailing ID", "integer"), _MAIL),
    _type(7, "Email Delivered", "Marketo Email is delivered", ("Mailing ID", "integer"), _MAIL),
    _type(
        8,
        "Email Bounced",
        "Marketo Email bounces",
        ("Mailing ID", "integer"),
        (*_MAIL, ("Category", "string"), ("Details", "string"), ("Subcategory", "string")),
    ),
    _type(
        9,
        "Unsubscribe Email",
        "Person unsubscribes from Marketo Emails",
        ("Mailing ID", "integer"),
        (*_WEB, ("Campaign Run ID", "integer"), ("Form Fields", "text")),
    ),
    _type(
        10,
        "Open Email",
        "User opens Marketo Email",
        ("Mailing ID", "integer"),
        (*_MAIL, *_MAIL_CLIENT, ("User Agent", "string")),
    ),
    _type(
        11,
        "Click Email",
        "User clicks on a link in a Marketo Email",
        ("Mailing ID", "integer"),
        (*_MAIL, *_MAIL_CLIENT, ("Link", "string"), ("User Agent", "string")),
    ),
    _type(
        12,
        "New Lead",
        "New person",
        None,
        (("Source Type", "string"), ("Form Name", "string"), ("Lead Source", "string")),
    ),
    _type(
        13,
        "Change Data Value",
        "Changed attribute value for a person",
        ("Attribute Name", "reference"),
        (("New Value", "text"), ("Old Value", "text"), ("Reason", "string"), ("Source", "string")),
    ),
    _type(
        22,
        "Change Score",
        "Change a score",
        ("Score Name", "reference"),
        (("Change Value", "string"), ("New Value", "integer"), ("Old Value", "integer")),
    ),
    _type(
        24, "Add to List", "Add person to a list", ("List ID", "integer"), [("Source", "string")]
    ),
    _type(
        25,
        "Remove from List",
        "Remove person from a list",
        ("List ID", "integer"),
        (("Source", "string"),),
    ),
    _type(
        32,
        "Merge Leads",
        "Merge two or more person records",
        ("Lead ID", "integer"),
        (("Merge IDs", "string"), ("Merge Source", "string"), ("Merged in Sales", "boolean")),
    ),
    _type(
        37,
        "Delete Lead",
        "Delete a person",
        ("Lead ID", "integer"),
        (("Remove from CRM", "boolean"),),
    ),
    _type(
        46,
        "Interesting Moment",
        "Interesting moment",
        ("Marketo Asset Name", "string"),
        (("Description", "string"), ("Source", "string")),
    ),
    _type(
        47,
        "Request Campaign",
        "Request a campaign (run through its flow)",
        ("Campaign ID", "integer"),
        (("Source", "string"),),
    ),
    _type(
        104,
        "Change Status in Progression",
        "Change a program status",
        ("Program ID", "integer"),
        (
            ("Acquired By", "boolean"),
            ("New Status", "string"),
            ("New Status ID", "integer"),
            ("Old Status", "string"),
            ("Old Status ID", "integer"),
            ("Program Member ID", "integer"),
            ("Reason", "string"),
            ("Success", "boolean"),
        ),
    ),
)


# --------------------------------------------------------------------------------------------
# Values: the one place that decides how a value looks in JSON and in an export file
# --------------------------------------------------------------------------------------------


def format_datetime(value: datetime) -> str:
    """Marketo's datetime form: UTC, whole seconds, a Z suffix."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(text: str) -> datetime:
    """Parse ISO-8601 with Z or an offset; a bare date or a time without offset is GMT.

    Raises ValueError on anything else (a "+" sent unencoded in a query string arrives as a
    space, which is an error here as it would be on the real server).
    """
    value = datetime.fromisoformat(text.strip())
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _whole_seconds(value: datetime | None) -> datetime:
    """Marketo keeps second precision; aware datetimes only."""
    if value is None:
        value = datetime.now(UTC)
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: pass an aware (UTC) datetime")
    return value.astimezone(UTC).replace(microsecond=0)


def _epoch_us(value: datetime) -> int:
    return (value - EPOCH) // timedelta(microseconds=1)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def csv_cell(value: Any, delimiter: str = ",") -> str:
    """One cell as Marketo writes it: empty is the literal null, RFC-4180 quoting when needed."""
    if value is None or value == "":
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, int | float):
        return str(value)
    text = value if isinstance(value, str) else _dumps_text(value)
    if '"' in text or delimiter in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def _text_value(value: Any) -> str | None:
    """A value as the string Marketo shows in leadchanges / Change Data Value attributes."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_datetime(value)
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {value!r}")


def _dumps_text(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _dumps(doc: Any) -> bytes:
    return _dumps_text(doc).encode("utf-8")


def _attributes_json(attributes: Sequence[dict]) -> str | None:
    """The bulk `attributes` column: a JSON object keyed by display name, empty values left out."""
    obj = {a["name"]: a["value"] for a in attributes if a.get("value") not in (None, "")}
    return _dumps_text(obj) if obj else None


def _header_line(fields: Sequence[str], headers: Sequence[str] | None, delimiter: str) -> bytes:
    names = headers if headers is not None else fields
    return (delimiter.join(csv_cell(name, delimiter) for name in names) + "\n").encode("utf-8")


def _num(value: float) -> int | float:
    """3.0 -> 3 so messages read "'20' secs" like the live ones."""
    return int(value) if float(value).is_integer() else value


def _normalize_fields(specs: Iterable[dict | str]) -> list[dict]:
    fields = []
    for index, spec in enumerate(specs, start=1):
        spec = {"name": spec, "dataType": "string"} if isinstance(spec, str) else dict(spec)
        spec.setdefault("displayName", spec["name"])
        spec["fieldId"] = spec.get("fieldId", index)
        fields.append(spec)
    return fields


# --------------------------------------------------------------------------------------------
# In-memory data
# --------------------------------------------------------------------------------------------


class MarketoStore:
    """Leads, companies and activities held as dicts, guarded by one lock.

    Leads and companies use REST field names; datetimes are aware UTC with whole seconds.
    Activities keep REST names too, with ``attributes`` as a list of ``{name, value}`` and a
    global ``seq`` that only grows (it is also the activity ``id``), which is what makes
    activity paging tokens stable.
    """

    def __init__(
        self,
        *,
        lead_fields: Sequence[dict | str] = DEFAULT_LEAD_FIELDS,
        company_fields: Sequence[dict | str] = DEFAULT_COMPANY_FIELDS,
        first_lead_id: int = 1,
        first_company_id: int = 1,
        lock: threading.RLock | None = None,
    ):
        self.lock = lock or threading.RLock()
        self.lead_fields = {f["name"]: f for f in _normalize_fields(lead_fields)}
        self.company_fields = {f["name"]: f for f in _normalize_fields(company_fields)}
        self.leads: dict[int, dict] = {}
        self.companies: dict[int, dict] = {}
        self.activities: list[dict] = []
        self.last_seq = 0
        self._lead_ids = itertools.count(first_lead_id)
        self._company_ids = itertools.count(first_company_id)
        self._company_by_external_id: dict[str, int] = {}
        # Lower-cased email -> ids of the leads with it (Sync Leads looks leads up by email).
        self._by_email: dict[str, set[int]] = {}

    def lead_ids_for_email(self, email: str) -> list[int]:
        """The ids of the leads with this email (any case), in id order."""
        with self.lock:
            return sorted(self._by_email.get(str(email).lower(), ()))

    def _index_email(self, lead_id: int, old: Any, new: Any) -> None:
        if old:
            self._by_email.get(str(old).lower(), set()).discard(lead_id)
        if new:
            self._by_email.setdefault(str(new).lower(), set()).add(lead_id)

    # --- writes -----------------------------------------------------------------------------

    def add_lead(self, *, created_at: datetime | None = None, **fields) -> int:
        """Store a lead and its "New Lead" activity; returns the new id."""
        self._check_fields(fields, self.lead_fields, "lead")
        at = _whole_seconds(created_at)
        with self.lock:
            lead_id = next(self._lead_ids)
            lead = {"id": lead_id, "createdAt": at, "updatedAt": at}
            lead.update({k: v for k, v in fields.items() if k not in ("id", "createdAt")})
            self.leads[lead_id] = lead
            self._index_email(lead_id, None, lead.get("email"))
            self._append(
                lead_id=lead_id,
                activity_type_id=NEW_LEAD,
                at=at,
                attributes=[{"name": "Source Type", "value": "Web service API"}],
                fields=[],
            )
        return lead_id

    def update_lead(self, lead_id: int, *, at: datetime | None = None, **fields) -> None:
        """Change fields; one "Change Data Value" activity per field whose value changed."""
        self._check_fields(fields, self.lead_fields, "lead")
        at = _whole_seconds(at)
        with self.lock:
            lead = self.leads[lead_id]
            for name, new in fields.items():
                old = lead.get(name)
                if old == new:
                    continue
                lead[name] = new
                if name == "email":
                    self._index_email(lead_id, old, new)
                spec = self.lead_fields[name]
                self._append(
                    lead_id=lead_id,
                    activity_type_id=CHANGE_DATA_VALUE,
                    at=at,
                    primary_attribute_value_id=spec["fieldId"],
                    primary_attribute_value=spec["displayName"],
                    attributes=[
                        {"name": "New Value", "value": _text_value(new)},
                        {"name": "Old Value", "value": _text_value(old)},
                        {"name": "Reason", "value": "Web service API"},
                        {"name": "Source", "value": "Web service API"},
                    ],
                    fields=[
                        {
                            "id": spec["fieldId"],
                            "name": name,
                            "newValue": _text_value(new),
                            "oldValue": _text_value(old),
                        }
                    ],
                )
            lead["updatedAt"] = at

    def delete_lead(self, lead_id: int, *, at: datetime | None = None) -> None:
        """Remove the lead and its activities; leave a "Delete Lead" record for deletedleads."""
        at = _whole_seconds(at)
        with self.lock:
            lead = self.leads.pop(lead_id)
            self._index_email(lead_id, lead.get("email"), None)
            self.activities[:] = [a for a in self.activities if a["leadId"] != lead_id]
            name = " ".join(str(lead[k]) for k in ("firstName", "lastName") if lead.get(k))
            self._append(
                lead_id=lead_id,
                activity_type_id=DELETE_LEAD,
                at=at,
                primary_attribute_value_id=lead_id,
                primary_attribute_value=name or lead.get("email"),
                attributes=[{"name": "Remove from CRM", "value": False}],
            )

    def add_company(self, *, external_company_id: str, **fields) -> int:
        self._check_fields(fields, self.company_fields, "company")
        now = _whole_seconds(None)
        with self.lock:
            if external_company_id in self._company_by_external_id:
                raise ValueError(f"company {external_company_id!r} exists (1005-style duplicate)")
            company_id = next(self._company_ids)
            company = {"id": company_id, "externalCompanyId": external_company_id}
            company.update({"createdAt": now, "updatedAt": now, **fields})
            self.companies[company_id] = company
            self._company_by_external_id[external_company_id] = company_id
        return company_id

    def update_company(self, company_id: int, **fields) -> None:
        self._check_fields(fields, self.company_fields, "company")
        with self.lock:
            company = self.companies[company_id]
            if "externalCompanyId" in fields:
                del self._company_by_external_id[company["externalCompanyId"]]
                self._company_by_external_id[fields["externalCompanyId"]] = company_id
            company.update(fields)
            company["updatedAt"] = _whole_seconds(None)

    def add_activity(
        self,
        *,
        lead_id: int,
        activity_type_id: int,
        at: datetime | None = None,
        primary_attribute_value: Any = None,
        primary_attribute_value_id: int | None = None,
        attributes: dict | Sequence[dict] | None = None,
        campaign_id: int | None = None,
    ) -> str:
        """Record an activity; returns its marketoGUID. Attributes: a dict or [{name, value}]."""
        if isinstance(attributes, dict):
            attributes = [{"name": k, "value": v} for k, v in attributes.items()]
        with self.lock:
            activity = self._append(
                lead_id=lead_id,
                activity_type_id=activity_type_id,
                at=_whole_seconds(at),
                primary_attribute_value=primary_attribute_value,
                primary_attribute_value_id=primary_attribute_value_id,
                attributes=list(attributes or ()),
                campaign_id=campaign_id,
            )
        return activity["marketoGUID"]

    def _append(
        self,
        *,
        lead_id,
        activity_type_id,
        at,
        primary_attribute_value=None,
        primary_attribute_value_id=None,
        attributes=(),
        campaign_id=None,
        fields=None,
    ) -> dict:
        self.last_seq += 1
        activity = {
            "id": self.last_seq,
            "marketoGUID": str(self.last_seq),
            "leadId": lead_id,
            "activityDate": at,
            "activityTypeId": activity_type_id,
            "campaignId": campaign_id,
            "primaryAttributeValueId": primary_attribute_value_id,
            "primaryAttributeValue": primary_attribute_value,
            "attributes": list(attributes),
        }
        if fields is not None:
            activity["fields"] = fields
        self.activities.append(activity)
        return activity

    @staticmethod
    def _check_fields(fields: dict, known: dict, kind: str) -> None:
        unknown = sorted(set(fields) - set(known))
        if unknown:
            raise ValueError(f"unknown {kind} field(s) {unknown}; configure them on FakeMarketo")

    # --- reads ------------------------------------------------------------------------------

    def lead_values(self, lead: dict) -> dict:
        """The lead as Marketo shows it: company-level fields come from the linked company."""
        company_id = self._company_by_external_id.get(lead.get("externalCompanyId"))
        if company_id is None:
            return lead
        company = self.companies[company_id]
        inherited = {k: company[k] for k in COMPANY_INHERITED_FIELDS if k in company}
        return {**lead, **inherited}

    def company_id_for(self, external_company_id: str) -> int | None:
        return self._company_by_external_id.get(external_company_id)

    def write_leads_csv(
        self,
        fields: Sequence[str],
        start: datetime,
        end: datetime,
        fh: BinaryIO,
        *,
        filter_field: str = "createdAt",
        delimiter: str = ",",
        headers: Sequence[str] | None = None,
        include_header: bool = True,
    ) -> int:
        """Write leads whose `filter_field` is in [start, end] (both inclusive), by id.

        `fh` is a binary file; returns the number of rows written (the header excluded).
        """
        with self.lock:
            rows = [
                delimiter.join(csv_cell(values.get(f), delimiter) for f in fields) + "\n"
                for lead_id in sorted(self.leads)
                if (at := self.leads[lead_id].get(filter_field)) is not None and start <= at <= end
                for values in (self.lead_values(self.leads[lead_id]),)
            ]
        if include_header:
            fh.write(_header_line(fields, headers, delimiter))
        fh.write("".join(rows).encode("utf-8"))
        return len(rows)

    def write_activities_csv(
        self,
        fields: Sequence[str] | None,
        start: datetime,
        end: datetime,
        fh: BinaryIO,
        activity_type_ids: Iterable[int] | None = None,
        *,
        delimiter: str = ",",
        headers: Sequence[str] | None = None,
        include_header: bool = True,
    ) -> int:
        """Write activities dated in [start, end] (inclusive), by date then insertion.

        "Delete Lead" (37) is never exported, as on the real server. Returns the row count.
        """
        fields = list(fields or DEFAULT_ACTIVITY_COLUMNS)
        wanted = set(activity_type_ids) if activity_type_ids else None
        with self.lock:
            chosen = sorted(
                (
                    a
                    for a in self.activities
                    if a["activityTypeId"] != DELETE_LEAD
                    and (wanted is None or a["activityTypeId"] in wanted)
                    and start <= a["activityDate"] <= end
                ),
                key=lambda a: (a["activityDate"], a["id"]),
            )
            rows = [
                delimiter.join(csv_cell(_activity_column(a, f), delimiter) for f in fields) + "\n"
                for a in chosen
            ]
        if include_header:
            fh.write(_header_line(fields, headers, delimiter))
        fh.write("".join(rows).encode("utf-8"))
        return len(rows)


def _activity_column(activity: dict, name: str) -> Any:
    if name == "attributes":
        return _attributes_json(activity["attributes"])
    if name == "actionResult":
        return "succeeded"
    return activity.get(name)


# --------------------------------------------------------------------------------------------
# Synthetic data: computed from ids, never stored
# --------------------------------------------------------------------------------------------

# Pools indexed by id modulo their length (lengths differ, so combinations vary). Some entries
# are the awkward values real exports carry: commas, quotes, newlines, NUL, U+2028, CJK, "null".
FIRST_NAMES = (
    "Ada", "Bob", "Chlo\u00e9", "Dmitri", "\u00c9mile", "Fatima", "Grace", "Hiro", "Ingrid",
    "Jos\u00e9", "Kwame", "Lena", "Mateo", "Nia", "Oscar", "Priya", "Quinn", "Rosa",
    "S\u00f8ren", "Tariq", "Uma", "\u674e\u534e", "Wen", None,
)  # fmt: skip
LAST_NAMES = (
    "Smith", "O'Neil", 'Doe "DJ"', "Smith, Jr.", "null", "\u7530\u4e2d", "Nu\u00f1ez",
    "Garc\u00eda", "Kowalski", "M\u00fcller", "Ng", "Okafor", "Patel", "Rossi", "Silva",
    "Tanaka", "Usman", "Vogel", "Wong", "Xu", "Yilmaz", "Zhang", "Brown", "Clark", "Davis",
    "Evans", "Fischer", None,
)  # fmt: skip
TITLES = (
    "CEO", "CTO", "VP Marketing", "Director, Demand Gen", 'The "Boss"', "Head of Growth\nEMEA",
    "Ing\u00e9nieur", "Manager\u2028Ops", "Analyst", None, "Marketing Ops", "Sales Rep",
    "Founder", "Engineer", "Designer", "Consultant", "Student", "Owner", "Partner",
    "Developer", "Architect", "Coordinator", "Specialist", "Lead\r\nDeveloper", "Associate",
    "Intern", "Advisor", "Principal", "Administrator", "Officer",
)  # fmt: skip
PHONES = tuple(None if j % 5 == 0 else f"+1-555-01{j:02d}" for j in range(36))
COUNTRIES = (
    "United States", "Germany", "France", "Japan", "Brazil", "India", "Canada",
    "C\u00f4te d'Ivoire", "\u65e5\u672c", "Australia", "Spain", None, "United Kingdom",
    "M\u00e9xico",
)  # fmt: skip
CITIES = (
    "New York, NY", "Berlin", "Paris", "Tokyo", "S\u00e3o Paulo", "Mumbai", "Toronto",
    "Z\u00fcrich", "Abidjan", "Sydney", "Madrid", None, "London", "Austin", "Lyon", "Osaka",
    "Chicago", "Krak\u00f3w",
)  # fmt: skip
STATES = tuple(None if j % 4 == 0 else f"ST{j}" for j in range(20))
LEAD_SOURCES = (
    "Website", "Webinar", "Trade Show", "Paid Search", "Referral", "Dynamic Chat", None,
)  # fmt: skip
LEAD_STATUSES = ("New", "Open", "Working", "Qualified", "Disqualified")
UNSUBSCRIBED = (True, *(False,) * 11)
PRODUCT_INTERESTS = (
    "Widgets", "Gadgets", "null", "Widgets\x00Pro", "Line1\nLine2", 'Say "hi"', "a,b",
    "\u6771\u4eac\u2028\u5927\u962a", None, "", "Platform", "Analytics", "Chat", "Email",
    "Ads", "Social", "Events", "Mobile", "API", "Security", "Cloud", "Data", "AI",
    "Support", "Training", "Services", "Hardware", "Software", "Consulting", "Payments",
    "Search", "Maps", "Video", "Voice", "Storage", "Compute", "Network", "IoT", "Edge",
    "CRM",
)  # fmt: skip
LAST_CHAT_SCORES = tuple(None if j % 3 == 0 else j * 7 for j in range(42))
INDUSTRIES = (
    "Software", "Manufacturing", "Retail", "Finance, Banking", "Healthcare", "Education",
    "Media", None, "Energy", "Telecom", "Transport",
)  # fmt: skip
REVENUES = (1000000.0, 2500000.5, 50000000.0, None, 750000.0, 12000000.0, 98000.25, 1.0, 0.0)
EMPLOYEES = (10, 50, 200, 1000, None, 5000, 25, 100000)
TIERS = ("Enterprise", "Mid-Market", "SMB", None)

LEAD_POOLS: dict[str, tuple] = {
    "firstName": FIRST_NAMES,
    "lastName": LAST_NAMES,
    "title": TITLES,
    "phone": PHONES,
    "country": COUNTRIES,
    "city": CITIES,
    "state": STATES,
    "leadScore": tuple(range(105)),
    "leadSource": LEAD_SOURCES,
    "leadStatus": LEAD_STATUSES,
    "unsubscribed": UNSUBSCRIBED,
    "productInterest": PRODUCT_INTERESTS,
    "lastChatScore": LAST_CHAT_SCORES,
}
# Every pool length divides this period, so adjacent pool columns can be pre-joined (see
# SyntheticDataset._compile_rows); the (firstName, lastName, ...) combination repeats every
# 2520 leads, which is plenty for synthetic data.
LEAD_POOL_PERIOD = 2520
assert all(LEAD_POOL_PERIOD % len(pool) == 0 for pool in LEAD_POOLS.values())
# The activity types the synthetic dataset produces, cycled by k % 7.
SYNTHETIC_ACTIVITY_TYPES = (1, 2, 10, 11, 12, 13, 104)
_ACTIVITY_VARIANTS = 11  # pool length 7 * 11 keeps the type consistent with k % 7

_TIME_OF_DAY: list[str] = []


def _time_of_day_strings() -> list[str]:
    """86,400 "HH:MM:SSZ" strings: formatting a datetime per row is the slow part otherwise."""
    if not _TIME_OF_DAY:
        _TIME_OF_DAY.extend(
            f"{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60)
        )
    return _TIME_OF_DAY


def _synthetic_activity_variant(j: int) -> tuple[int | None, str | None, list[dict]]:
    """(primaryAttributeValueId, primaryAttributeValue, attributes) for pool slot j."""
    type_id, v = SYNTHETIC_ACTIVITY_TYPES[j % 7], j // 7
    if type_id == 1:
        return (
            1000 + v,
            f"www.example.com/page-{v}",
            [
                {"name": "Client IP Address", "value": f"10.0.0.{v}"},
                {"name": "Query Parameters", "value": "utm_source=chat&ids=1,2" if v % 2 else ""},
                {"name": "Referrer URL", "value": ""},
                {"name": "User Agent", "value": 'Mozilla/5.0 (X11; "Fake")'},
                {"name": "Webpage URL", "value": f"/page-{v}"},
            ],
        )
    if type_id == 2:
        return (
            2000 + v,
            f"Contact Us {v}",
            [
                {"name": "Form Fields", "value": f'{{"comment":"line one\\nline \\"two\\" {v}"}}'},
                {"name": "Webpage ID", "value": 1000 + v},
            ],
        )
    if type_id in (10, 11):
        attributes = [
            {"name": "Device", "value": "iPhone" if v % 2 else "Desktop"},
            {"name": "Is Mobile Device", "value": bool(v % 2)},
            {"name": "Platform", "value": "iOS" if v % 2 else "Windows"},
        ]
        if type_id == 11:
            attributes.append({"name": "Link", "value": f"https://example.com/?a={v}&b=2"})
        return 3000 + v, f"Newsletter {v}\u2028\u7b2c{v}\u53f7", attributes
    if type_id == NEW_LEAD:
        return None, None, [{"name": "Source Type", "value": "Web form fillout"}]
    if type_id == CHANGE_DATA_VALUE:
        return (
            48,
            "First Name",
            [
                {"name": "New Value", "value": f"\u6771\u4eac {v}"},
                {"name": "Old Value", "value": None if v % 3 == 0 else f"Old, {v}"},
                {"name": "Reason", "value": "Web service API"},
                {"name": "Source", "value": "Web service API"},
            ],
        )
    return (  # 104 Change Status in Progression, as in the reference's sample file
        1670 + v,
        f"Program {v}",
        [
            {"name": "Acquired By", "value": bool(v % 2)},
            {"name": "New Status", "value": "Attended"},
            {"name": "New Status ID", "value": 6},
            {"name": "Old Status", "value": "Not in Program"},
            {"name": "Old Status ID", "value": 1},
            {"name": "Program Member ID", "value": 3240300 + v},
            {"name": "Reason", "value": f"Changed by Smart Campaign {v}.Step action"},
            {"name": "Success", "value": True},
        ],
    )


class SyntheticDataset:
    """A large Marketo instance whose records are computed from their ids, never stored.

    - Lead i (1..leads) is created at ``start + (i - 1) * span / leads`` (whole seconds), so a
      createdAt window maps to an id range by bisection; updatedAt equals createdAt.
    - Lead i belongs to company ``c = i % companies + 1`` (externalCompanyId ``EXT-<c>``) and
      inherits its company-level fields.
    - Activity k (1..activities) is dated across [activity_start, end], belongs to lead
      ``(k * 7919) % leads + 1`` and has type ``(1, 2, 10, 11, 12, 13, 104)[k % 7]``.

    The write methods format each row with one compiled f-string, which is what makes
    ~1M rows/s possible in pure Python.
    """

    CHUNK = 32_768

    def __init__(
        self,
        *,
        leads: int,
        companies: int,
        activities: int = 0,
        start: datetime,
        end: datetime,
        activity_start: datetime | None = None,
    ):
        if leads < 1 or companies < 1 or activities < 0:
            raise ValueError("need at least one lead and one company")
        self.lead_count, self.company_count, self.activity_count = leads, companies, activities
        self.start, self.end = _whole_seconds(start), _whole_seconds(end)
        self.activity_start = _whole_seconds(activity_start or start)
        if self.end <= self.start or self.end <= self.activity_start:
            raise ValueError("end must be after start and activity_start")
        self._lead_s0 = int(self.start.timestamp())
        self._lead_span = int(self.end.timestamp()) - self._lead_s0
        self._act_s0 = int(self.activity_start.timestamp())
        self._act_span = int(self.end.timestamp()) - self._act_s0
        self._company_columns = self._build_company_columns()
        self._company_by_name: dict[str, int] | None = None
        self._activity_pool = [
            _synthetic_activity_variant(j) for j in range(7 * _ACTIVITY_VARIANTS)
        ]

    # --- single records (REST reads) ----------------------------------------------------------

    def lead_created_s(self, i: int) -> int:
        return self._lead_s0 + (i - 1) * self._lead_span // self.lead_count

    def activity_s(self, k: int) -> int:
        return self._act_s0 + (k - 1) * self._act_span // self.activity_count

    def lead(self, i: int) -> dict | None:
        """Lead i with REST field names (company fields inherited), or None."""
        if not 1 <= i <= self.lead_count:
            return None
        created_s = self.lead_created_s(i)
        created = datetime.fromtimestamp(created_s, UTC)
        c = i % self.company_count + 1
        lead = {"id": i, "email": f"lead{i}@company{c}.example"}
        lead.update({name: pool[i % len(pool)] for name, pool in LEAD_POOLS.items()})
        lead.update({name: column[c - 1] for name, column in self._company_columns.items()})
        lead["cookies"] = f"_mch-example.com-{created_s * 1000}-{i}"
        lead["createdAt"] = lead["updatedAt"] = created
        return lead

    def company(self, c: int) -> dict | None:
        if not 1 <= c <= self.company_count:
            return None
        company = {"id": c}
        company.update({name: column[c - 1] for name, column in self._company_columns.items()})
        company.pop("accountTier")
        company["createdAt"] = company["updatedAt"] = self.start - timedelta(days=1)
        return company

    def activity(self, k: int) -> dict | None:
        if not 1 <= k <= self.activity_count:
            return None
        pavid, pav, attributes = self._activity_pool[k % len(self._activity_pool)]
        type_id = SYNTHETIC_ACTIVITY_TYPES[k % 7]
        return {
            "id": k,
            "marketoGUID": str(k),
            "leadId": k * 7919 % self.lead_count + 1,
            "activityDate": datetime.fromtimestamp(self.activity_s(k), UTC),
            "activityTypeId": type_id,
            "campaignId": self._campaign(k % 14),
            "primaryAttributeValueId": pavid,
            "primaryAttributeValue": pav,
            "attributes": attributes,
        }

    @staticmethod
    def _campaign(j: int) -> int | None:
        return None if SYNTHETIC_ACTIVITY_TYPES[j % 7] == NEW_LEAD or j >= 7 else 5000 + j

    def lead_id_for_email(self, email: str) -> int | None:
        m = re.fullmatch(r"lead(\d+)@company(\d+)\.example", email.strip().lower())
        if not m:
            return None
        i = int(m[1])
        return i if 1 <= i <= self.lead_count and i % self.company_count + 1 == int(m[2]) else None

    def lead_id_for_cookie(self, token: str) -> int | None:
        m = re.fullmatch(r"_mch-example\.com-(\d+)-(\d+)", token)
        if not m:
            return None
        i = int(m[2])
        ok = 1 <= i <= self.lead_count and self.lead_created_s(i) * 1000 == int(m[1])
        return i if ok else None

    def company_id_for_name(self, name: str) -> int | None:
        if self._company_by_name is None:
            names = self._company_columns["company"]
            self._company_by_name = {n: c for c, n in enumerate(names, start=1)}
        return self._company_by_name.get(name)

    def company_id_for_external_id(self, external_id: str) -> int | None:
        m = re.fullmatch(r"EXT-(\d+)", external_id)
        return int(m[1]) if m and 1 <= int(m[1]) <= self.company_count else None

    def _build_company_columns(self) -> dict[str, list]:
        cs = range(1, self.company_count + 1)
        return {
            "company": [_synthetic_company_name(c) for c in cs],
            "industry": [INDUSTRIES[c % len(INDUSTRIES)] for c in cs],
            "annualRevenue": [REVENUES[c % len(REVENUES)] for c in cs],
            "numberOfEmployees": [EMPLOYEES[c % len(EMPLOYEES)] for c in cs],
            "website": [f"https://company{c}.example" for c in cs],
            "billingCountry": [COUNTRIES[c % len(COUNTRIES)] for c in cs],
            "externalCompanyId": [f"EXT-{c}" for c in cs],
            "accountTier": [TIERS[c % len(TIERS)] for c in cs],
        }

    # --- windows ------------------------------------------------------------------------------

    def lead_id_range(self, start: datetime, end: datetime) -> range:
        """Ids of leads created in [start, end], both inclusive."""
        ids = range(1, self.lead_count + 1)
        lo = bisect.bisect_left(ids, start.timestamp(), key=self.lead_created_s)
        hi = bisect.bisect_right(ids, end.timestamp(), key=self.lead_created_s)
        return ids[lo:hi]

    def activity_range(self, start: datetime, end: datetime) -> range:
        ks = range(1, self.activity_count + 1)
        lo = bisect.bisect_left(ks, start.timestamp(), key=self.activity_s)
        hi = bisect.bisect_right(ks, end.timestamp(), key=self.activity_s)
        return ks[lo:hi]

    # --- export files -------------------------------------------------------------------------

    def write_leads_csv(
        self,
        fields: Sequence[str],
        start: datetime,
        end: datetime,
        fh: BinaryIO,
        *,
        filter_field: str = "createdAt",
        delimiter: str = ",",
        headers: Sequence[str] | None = None,
        include_header: bool = True,
    ) -> int:
        """Write leads created (= updated) in [start, end]; returns the row count.

        Produces byte for byte what ``MarketoStore.write_leads_csv`` would for the same leads.
        """
        del filter_field  # updatedAt == createdAt for synthetic leads
        ids = self.lead_id_range(start, end)
        cells = [self._lead_cell(name, delimiter) for name in fields]
        rows = self._compile_rows("i", cells, delimiter)
        if include_header:
            fh.write(_header_line(fields, headers, delimiter))
        for a in range(ids.start, ids.stop, self.CHUNK):
            fh.write(rows(a, min(a + self.CHUNK, ids.stop), None).encode())
        return len(ids)

    def write_activities_csv(
        self,
        fields: Sequence[str] | None,
        start: datetime,
        end: datetime,
        fh: BinaryIO,
        activity_type_ids: Iterable[int] | None = None,
        *,
        delimiter: str = ",",
        headers: Sequence[str] | None = None,
        include_header: bool = True,
    ) -> int:
        """Write activities dated in [start, end], optionally of some types; returns the count."""
        fields = list(fields or DEFAULT_ACTIVITY_COLUMNS)
        ks = self.activity_range(start, end) if self.activity_count else range(0)
        slots = None
        if activity_type_ids:
            wanted = set(activity_type_ids)
            slots = {j for j, t in enumerate(SYNTHETIC_ACTIVITY_TYPES) if t in wanted}
        cells = [self._activity_cell(name, delimiter) for name in fields]
        rows = self._compile_rows("k", cells, delimiter)
        if include_header:
            fh.write(_header_line(fields, headers, delimiter))
        written = 0
        for a in range(ks.start, ks.stop, self.CHUNK):
            b = min(a + self.CHUNK, ks.stop)
            if slots is None:
                written += b - a
            else:
                written += sum(1 for k in range(a, b) if k % 7 in slots)
            fh.write(rows(a, b, slots).encode())
        return written

    # Export rows are produced by one f-string per row, compiled per export from fixed
    # templates: a per-field function call, or a zip/join of columns, costs several times
    # more, and the benchmark needs ~1M rows/s. Adjacent columns drawn from pools are
    # pre-joined, so a run of them costs one tuple index per row. Only the fixed templates
    # and constant indexes enter the generated source; values (pool strings, field names)
    # stay in data.

    def _lead_cell(self, name: str, delimiter: str) -> tuple[str, Any]:
        """(kind, template or cells) for one lead column.

        Kinds: "pool" (lead i takes cells[i % len(cells)]), "company" (lead i inherits
        company i % C + 1: cells[i % C]) or "template" (an f-string piece; `s` is the creation
        epoch second, `ts` its formatted form).
        """
        if name == "id":
            return "template", "{i}"
        if name == "email":
            return "template", "lead{i}@company{i % C + 1}.example"
        if name == "cookies":
            return "template", "_mch-example.com-{s}000-{i}"
        if name in ("createdAt", "updatedAt"):
            return "template", "{ts}"
        if name in LEAD_POOLS:
            return "pool", [csv_cell(v, delimiter) for v in LEAD_POOLS[name]]
        if name in self._company_columns:
            return "company", [csv_cell(v, delimiter) for v in self._company_columns[name]]
        return "template", "null"

    def _activity_cell(self, name: str, delimiter: str) -> tuple[str, Any]:
        """(kind, template or cells) for one activity column, as `_lead_cell` (k for i)."""
        if name == "marketoGUID":
            return "template", "{k}"
        if name == "leadId":
            return "template", "{k * 7919 % n + 1}"
        if name == "activityDate":
            return "template", "{ts}"
        if name == "actionResult":
            return "template", "succeeded"
        if name == "activityTypeId":
            raw: list[Any] = list(SYNTHETIC_ACTIVITY_TYPES)
        elif name == "campaignId":
            raw = [self._campaign(j) for j in range(14)]
        elif name == "primaryAttributeValueId":
            raw = [v[0] for v in self._activity_pool]
        elif name == "primaryAttributeValue":
            raw = [v[1] for v in self._activity_pool]
        elif name == "attributes":
            raw = [_attributes_json(v[2]) for v in self._activity_pool]
        else:
            raise ValueError(f"unknown activity column {name!r}")
        return "pool", [csv_cell(v, delimiter) for v in raw]

    def _compile_rows(
        self, var: str, cells: list[tuple[str, Any]], delimiter: str
    ) -> Callable[[int, int, set | None], str]:
        """rows(a, b, slots) -> the text of records a..b-1 (only k % 7 in slots, if given)."""
        if var == "i":
            n, s0, span, period = self.lead_count, self._lead_s0, self._lead_span, LEAD_POOL_PERIOD
        else:
            n, s0, span = self.activity_count, self._act_s0, self._act_span
            period = 7 * _ACTIVITY_VARIANTS * 2  # the activity pools have 7, 14 and 77 entries
        # Merge adjacent pool (or company) columns into runs, each a pre-joined string.
        runs: list[tuple[str, list]] = []  # (kind, [cells of each column in the run])
        parts: list[str] = []
        for kind, value in cells:
            if kind == "template":
                parts.append(value)
                continue
            if runs and parts[-1] == f"<{kind}>" and runs[-1][0] == kind:
                runs[-1][1].append(value)
                continue
            runs.append((kind, [value]))
            parts.append(f"<{kind}>")
        pool_runs = [columns for kind, columns in runs if kind == "pool"]
        company_runs = [columns for kind, columns in runs if kind == "company"]
        pooled = [
            tuple(delimiter.join(col[j % len(col)] for col in columns) for columns in pool_runs)
            for j in range(period)
        ]
        companies = [
            tuple(delimiter.join(col[c] for col in columns) for columns in company_runs)
            for c in range(self.company_count if company_runs else 0)
        ]
        counters = {"pool": itertools.count(), "company": itertools.count()}
        names = {"pool": "t", "company": "u"}
        row = delimiter.join(
            f"{{{names[p[1:-1]]}[{next(counters[p[1:-1]])}]}}"
            if p in ("<pool>", "<company>")
            else p
            for p in parts
        )
        # `for x in (...,)` inside a comprehension compiles to a plain assignment.
        clauses = []
        if pool_runs:
            clauses.append(f"for t in (P[{var} % {period}],)")
        if company_runs:
            clauses.append(f"for u in (Q[{var} % C],)")
        if "{s}" in row or "{ts}" in row:
            clauses.append(f"for s in ({s0} + ({var} - 1) * {span} // {max(n, 1)},)")
        if "{ts}" in row:
            clauses.append(f"for ts in (D[s // 86400 - {s0 // 86400}] + T[s % 86400],)")
        loop = f"for {var} in range(a, b)"
        body = "f" + repr(row + "\n")
        source = (
            "def rows(a, b, slots):\n"
            "    if slots is None:\n"
            f"        return ''.join([{body} {loop} {' '.join(clauses)}])\n"
            f"    return ''.join([{body} {loop} if {var} % 7 in slots {' '.join(clauses)}])\n"
        )
        namespace: dict[str, Any] = {
            "n": self.lead_count,
            "C": self.company_count,
            "P": pooled,
            "Q": companies,
            "T": _time_of_day_strings(),
            "D": [
                (date(1970, 1, 1) + timedelta(days=d)).isoformat() + "T"
                for d in range(s0 // 86400, (s0 + span) // 86400 + 1)
            ],
        }
        exec(compile(source, "<synthetic-rows>", "exec"), namespace)  # noqa: S102 - see above
        return namespace["rows"]


def _synthetic_company_name(c: int) -> str:
    if c % 17 == 0:
        return f'Acme, "Quoted" {c} Ltd'
    if c % 23 == 0:
        return f"\u682a\u5f0f\u4f1a\u793e{c}"
    if c % 29 == 0:
        return f"Multi\nLine {c}"
    return f"Company {c}"


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


@dataclass
class _Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json;charset=UTF-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    code: str | None = None  # Marketo error code, for `calls` and the limit accounting
    file_path: str | None = None
    file_offset: int = 0
    file_length: int = 0
    cut_after: int | None = None
    close: bool = False


def _text(status: int, text: str, *, close: bool = False) -> _Response:
    return _Response(status, text.encode(), "text/plain;charset=UTF-8", close=close)


@dataclass
class _Request:
    handler: BaseHTTPRequestHandler
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes | None
    call: dict
    params: dict[str, list[str]] = field(default_factory=dict)
    json: Any = None
    countable: bool = False  # reached the API, so it counts unless answered with an exempt code
    slot: float | None = None  # its reserved place in the rate window
    in_flight: bool = False

    @property
    def headers(self):
        return self.handler.headers

    def one(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[-1] if values else None

    def many(self, name: str) -> list[str]:
        """Comma-separated or repeated values (activityTypeIds=1,2 or activityTypeIds=1&...=2)."""
        return [v.strip() for raw in self.params.get(name, ()) for v in raw.split(",") if v.strip()]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes
    server_version = "FakeMarketo/1.0"
    sys_version = ""

    def setup(self):
        super().setup()
        self.server.fake._connection_opened(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.fake._connection_closed(self.connection)

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.server.fake._handle(self, "GET")

    def do_POST(self):
        self.server.fake._handle(self, "POST")

    def do_DELETE(self):
        self.server.fake._handle(self, "DELETE")

    def do_PUT(self):
        self.server.fake._handle(self, "PUT")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def server_bind(self):
        # HTTPServer.server_bind resolves the FQDN, which can stall for seconds without DNS.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


_JOB = r"/bulk/v1/(leads|activities)/export/([^/]+)/"
_TYPE = r"/rest/v1/activities/external/type/([^/]+)/"
_ROUTES: list[tuple[str, re.Pattern, str, bool]] = [
    (method, re.compile(pattern), handler, json_body)
    for method, pattern, handler, json_body in (
        ("GET", r"/rest/v1/leads/describe\.json", "_leads_describe", False),
        ("GET", r"/rest/v1/leads/describe2\.json", "_leads_describe2", False),
        ("GET", r"/rest/v1/leads\.json", "_get_leads", False),
        ("GET", r"/rest/v1/lead/(\d+)\.json", "_get_lead", False),
        ("GET", r"/rest/v1/companies/describe\.json", "_companies_describe", False),
        ("GET", r"/rest/v1/companies\.json", "_get_companies", False),
        ("GET", r"/rest/v1/activities/types\.json", "_activity_types", False),
        ("GET", r"/rest/v1/activities/pagingtoken\.json", "_paging_token", False),
        ("GET", r"/rest/v1/activities\.json", "_get_activities", False),
        ("GET", r"/rest/v1/activities/leadchanges\.json", "_get_lead_changes", False),
        ("GET", r"/rest/v1/activities/deletedleads\.json", "_get_deleted_leads", False),
        ("GET", r"/rest/v1/stats/usage\.json", "_usage", False),
        ("GET", r"/rest/asset/v1/programs\.json", "_get_programs", False),
        ("GET", r"/rest/asset/v1/channels\.json", "_get_channels", False),
        ("GET", r"/rest/v1/campaigns\.json", "_get_campaigns", False),
        ("POST", r"/rest/v1/leads\.json", "_sync_leads", True),
        ("POST", r"/rest/v1/leads/(\d+)/associate\.json", "_associate_lead", False),
        ("GET", r"/rest/v1/activities/external/types\.json", "_custom_types", False),
        ("POST", r"/rest/v1/activities/external/type\.json", "_create_custom_type", True),
        ("POST", _TYPE + r"attributes/create\.json", "_create_custom_attributes", True),
        ("POST", _TYPE + r"approve\.json", "_approve_custom_type", False),
        ("GET", _TYPE + r"describe\.json", "_describe_custom_type", False),
        ("POST", r"/rest/v1/activities/external\.json", "_add_custom_activities", True),
        ("POST", r"/rest/v1/programs/(\d+)/members/status\.json", "_sync_member_status", True),
        ("POST", r"/rest/v1/campaigns/(\d+)/trigger\.json", "_trigger_campaign", True),
        ("POST", r"/bulk/v1/(leads|activities)/export/create\.json", "_export_create", True),
        ("POST", _JOB + r"enqueue\.json", "_export_enqueue", False),
        ("GET", _JOB + r"status\.json", "_export_status", False),
        ("GET", _JOB + r"file\.json", "_export_file", False),
        ("POST", _JOB + r"cancel\.json", "_export_cancel", False),
        ("GET", r"/bulk/v1/(leads|activities)/export\.json", "_export_list", False),
    )
]


class _HashingWriter:
    """Counts and hashes what goes to the export file, so the checksum costs no second read."""

    def __init__(self, raw: BinaryIO):
        self._raw, self._sha = raw, hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._sha.update(data)
        self.size += len(data)
        return self._raw.write(data)

    def checksum(self) -> str:
        return "sha256:" + self._sha.hexdigest()


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class FakeMarketo:
    """A Marketo instance on loopback. See the module docstring; start() returns the base URL.

    Concurrency: every request runs in its own thread; all state (data, tokens, limits, jobs,
    fault rules, observations) is guarded by one re-entrant lock, never held while sleeping,
    writing to a socket or generating an export file.
    """

    def __init__(
        self,
        *,
        client_id: str = "dynchat-client",
        client_secret: str = "dynchat-secret",  # noqa: S107 - the fake's test credentials
        rate_limit: int = 100,
        rate_window: float = 20.0,
        concurrency: int = 10,
        daily_quota: int = 50_000,
        export_quota_bytes: int = 500 * MB,
        max_processing: int = 2,
        max_queue: int = 10,
        bulk_status_delay: float = 0.0,
        token_ttl: float = 3600,
        files_dir: str | None = None,
        dataset: SyntheticDataset | None = None,
        activity_types: Sequence[dict] | None = None,
        lead_fields: Sequence[dict | str] | None = None,
        company_fields: Sequence[dict | str] | None = None,
        partial_pages: bool = False,
        updated_at_filter: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self._client_id, self._client_secret = client_id, client_secret
        self.rate_limit, self.rate_window = rate_limit, rate_window
        self.concurrency, self.daily_quota = concurrency, daily_quota
        self.export_quota_bytes = export_quota_bytes
        self.max_processing, self.max_queue = max_processing, max_queue
        self.bulk_status_delay, self.token_ttl = bulk_status_delay, token_ttl
        self.partial_pages = partial_pages
        self.updated_at_filter = updated_at_filter  # False: bulk updatedAt filter answers 1035
        self.dataset = dataset
        self._host, self._port = host, port
        self._lock = threading.RLock()
        self._generate_lock = threading.Lock()
        self.store = MarketoStore(
            lead_fields=lead_fields or DEFAULT_LEAD_FIELDS,
            company_fields=company_fields or DEFAULT_COMPANY_FIELDS,
            first_lead_id=dataset.lead_count + 1 if dataset else 1,
            first_company_id=dataset.company_count + 1 if dataset else 1,
            lock=self._lock,
        )
        self.activity_types = [dict(t) for t in (activity_types or DEFAULT_ACTIVITY_TYPES)]
        self._own_files_dir = files_dir is None
        self.files_dir = files_dir or tempfile.mkdtemp(prefix="fake-marketo-")
        os.makedirs(self.files_dir, exist_ok=True)

        # Observation
        self.calls: list[dict] = []
        self.identity_calls = 0
        self.max_in_flight = 0
        self.in_flight = 0
        self.exports: dict[str, dict] = {}
        self.server_errors: list[str] = []  # tracebacks of unexpected exceptions (-> 611)

        # Tokens: token -> {"client_id", "expires" (monotonic), "expiry_reported"}
        self._tokens: dict[str, dict] = {}
        self._current_token: dict[str, str] = {}

        # Limits
        self._window: deque[float] = deque()
        self._day = self._today()
        self._daily_count = 0

        # Fault injection
        self._fails: list[dict] = []
        self._http_errors: list[dict] = []
        self._stalls: list[dict] = []
        self._cuts: list[dict] = []
        self._denied: set[str] = set()
        self._outage_until = 0.0
        self._file_missing = 0
        self._fail_jobs: list[str] = []

        # Programs, their channels and smart campaigns (the write-back's catalogue)
        self.channels: dict[int, dict] = {}
        self.programs: dict[int, dict] = {}
        self.campaigns: dict[int, dict] = {}
        self._channel_ids = itertools.count(1)
        self._status_ids = itertools.count(1)
        self._folder_ids: dict[str, int] = {}
        self._program_ids = itertools.count(1001)
        self._campaign_ids = itertools.count(3001)
        for name, program_type, statuses in DEFAULT_CHANNELS:
            self.add_channel(name, statuses, program_type=program_type)

        # Writes: program members, custom activity types, what tests look at afterwards
        self._members: dict[int, dict[int, dict]] = {}  # program id -> lead id -> membership
        self._member_ids = itertools.count(3240001)
        self.custom_activity_types: dict[str, dict] = {}  # apiName -> {id, approved, draft, ...}
        self.max_custom_activity_types = MAX_CUSTOM_ACTIVITY_TYPES
        self.max_custom_attributes = MAX_CUSTOM_ATTRIBUTES
        self._custom_type_ids = itertools.count(FIRST_CUSTOM_TYPE_ID)
        self.associations: list[dict] = []  # {leadId, cookie, token}
        self.campaign_requests: list[dict] = []  # {campaignId, leadIds, tokens}

        self._request_ids = itertools.count(0x1000)
        self._partial_pages_seen = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self.base_url = ""

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving in a daemon thread; returns "http://127.0.0.1:<port>"."""
        if self._server is not None:
            return self.base_url
        server = _Server((self._host, self._port), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-marketo",
            daemon=True,
        )
        self._thread.start()
        self.base_url = f"http://{self._host}:{server.server_address[1]}"
        return self.base_url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:  # keep-alive connections would otherwise linger
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._own_files_dir:
            shutil.rmtree(self.files_dir, ignore_errors=True)

    def __enter__(self) -> FakeMarketo:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _connection_opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _connection_closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    # --- data -----------------------------------------------------------------------------------

    @property
    def leads(self) -> dict[int, dict]:
        return self.store.leads

    @property
    def companies(self) -> dict[int, dict]:
        return self.store.companies

    @property
    def activities(self) -> list[dict]:
        return self.store.activities

    def add_lead(self, *, created_at: datetime | None = None, **fields) -> int:
        return self.store.add_lead(created_at=created_at, **fields)

    def update_lead(self, lead_id: int, *, at: datetime | None = None, **fields) -> None:
        self.store.update_lead(lead_id, at=at, **fields)

    def delete_lead(self, lead_id: int, *, at: datetime | None = None) -> None:
        self.store.delete_lead(lead_id, at=at)

    def add_company(self, *, external_company_id: str, **fields) -> int:
        return self.store.add_company(external_company_id=external_company_id, **fields)

    def update_company(self, company_id: int, **fields) -> None:
        self.store.update_company(company_id, **fields)

    def add_activity(
        self,
        *,
        lead_id: int,
        activity_type_id: int,
        at: datetime | None = None,
        primary_attribute_value: Any = None,
        primary_attribute_value_id: int | None = None,
        attributes: dict | Sequence[dict] | None = None,
        campaign_id: int | None = None,
    ) -> str:
        """Record an activity for an existing lead; returns its marketoGUID."""
        known = lead_id in self.store.leads or (self.dataset and self.dataset.lead(lead_id))
        if not known:
            raise KeyError(f"lead {lead_id} does not exist (the real API answers 1004)")
        return self.store.add_activity(
            lead_id=lead_id,
            activity_type_id=activity_type_id,
            at=at,
            primary_attribute_value=primary_attribute_value,
            primary_attribute_value_id=primary_attribute_value_id,
            attributes=attributes,
            campaign_id=campaign_id,
        )

    def _lead_exists(self, lead_id: Any) -> bool:
        if not isinstance(lead_id, int) or isinstance(lead_id, bool):
            return False
        with self._lock:
            if lead_id in self.store.leads:
                return True
        return bool(self.dataset and self.dataset.lead(lead_id))

    # --- programs, channels, campaigns ----------------------------------------------------------

    def add_channel(
        self, name: str, statuses: Sequence[str | dict], *, program_type: str = "program"
    ) -> int:
        """A channel with these progression statuses; returns its id.

        A status is a name or a dict ``{name, step?, success?, hidden?, type?, description?}``.
        Without a step, statuses take 10, 20, ... in list order. "Not in Program" (step 0) comes
        first unless given, as on every real channel. ``type`` is not documented by Marketo;
        the fake says "inactive" for step 0, "success" for success statuses, else "neutral".
        """
        specs = [{"name": s} if isinstance(s, str) else dict(s) for s in statuses]
        if not specs or specs[0]["name"] != NOT_IN_PROGRAM:
            specs.insert(0, {"name": NOT_IN_PROGRAM, "step": 0})
        now = _whole_seconds(None)
        with self._lock:
            if any(c["name"] == name for c in self.channels.values()):
                raise ValueError(f"channel {name!r} exists")
            progression = []
            for position, spec in enumerate(specs):
                step = spec.get("step", position * 10)
                success = bool(spec.get("success", False))
                kind = "inactive" if step == 0 else "success" if success else "neutral"
                progression.append(
                    {
                        "id": next(self._status_ids),  # for 104 activities' "New Status ID"
                        "name": spec["name"],
                        "step": step,
                        "success": success,
                        "hidden": bool(spec.get("hidden", False)),
                        "type": spec.get("type", kind),
                        "description": spec.get("description"),
                    }
                )
            channel_id = next(self._channel_ids)
            self.channels[channel_id] = {
                "id": channel_id,
                "name": name,
                "applicableProgramType": program_type,
                "progressionStatuses": progression,
                "createdAt": now,
                "updatedAt": now,
            }
        return channel_id

    def add_program(
        self,
        name: str,
        *,
        channel: str,
        type: str = "Default",
        description: str = "",
        workspace: str = "Default",
        folder: str = "Marketing Activities",
    ) -> int:
        """A program on an existing channel (by name); returns its id (from 1001)."""
        now = _whole_seconds(None)
        with self._lock:
            if self._channel_named(channel) is None:
                raise KeyError(f"no channel {channel!r}; add_channel() it first")
            program_id = next(self._program_ids)
            folder_id = self._folder_ids.setdefault(folder, 10 + len(self._folder_ids))
            self.programs[program_id] = {
                "id": program_id,
                "name": name,
                "description": description,
                "createdAt": now,
                "updatedAt": now,
                "url": f"https://app-fake.marketo.com/#PG{program_id}A1",
                "type": type,
                "channel": channel,
                "folder": {"type": "Folder", "value": folder_id, "folderName": folder},
                # Only engagement ("on"/"off") and email programs have a status.
                "status": "",
                "workspace": workspace,
            }
        return program_id

    def delete_program(self, program_id: int) -> None:
        with self._lock:
            del self.programs[program_id]

    def add_campaign(
        self,
        name: str,
        program_id: int | None = None,
        triggerable: bool = True,
        active: bool = True,
        *,
        description: str = "",
        nested_program: bool = False,
    ) -> int:
        """A smart campaign; returns its id (from 3001).

        ``triggerable``: a trigger campaign with "Campaign is Requested" (source Web Service
        API); otherwise a batch campaign. ``nested_program``: its program sits inside another
        program, so requesting it with tokens fails with 611, as on the real server.
        """
        now = _whole_seconds(None)
        with self._lock:
            program = None
            if program_id is not None:
                program = self.programs[program_id]  # KeyError: add_program() it first
            campaign_id = next(self._campaign_ids)
            self.campaigns[campaign_id] = {
                "id": campaign_id,
                "name": name,
                "description": description,
                "type": "trigger" if triggerable else "batch",
                "isTriggerable": triggerable,
                "isActive": active,
                "programId": program_id,
                "programName": program["name"] if program else None,
                "workspaceName": program["workspace"] if program else "Default",
                "createdAt": now,
                "updatedAt": now,
                "nested": nested_program,
            }
        return campaign_id

    def set_campaign_active(self, campaign_id: int, active: bool) -> None:
        with self._lock:
            campaign = self.campaigns[campaign_id]
            campaign["isActive"] = active
            campaign["updatedAt"] = _whole_seconds(None)

    def delete_campaign(self, campaign_id: int) -> None:
        with self._lock:
            del self.campaigns[campaign_id]

    def _channel_named(self, name: str) -> dict | None:
        return next((c for c in self.channels.values() if c["name"] == name), None)

    # --- custom activity types ------------------------------------------------------------------

    def add_custom_activity_type(
        self,
        api_name: str,
        *,
        name: str | None = None,
        primary_attribute: dict | None = None,
        attributes: Sequence[dict] = (),
        approved: bool = True,
    ) -> int:
        """A custom activity type made outside DynChat (another integration); returns its id.

        Trigger and filter names derive from `name`. Attributes are ``{apiName, name,
        dataType}``. Raises ValueError when the instance already has its 10 types, so a test
        can fill it up with ``for i in range(10)``.
        """
        name = name or api_name
        version = {
            "apiName": api_name,
            "name": name,
            "description": "",
            "triggerName": f"{name} occurs",
            "filterName": f"{name} occurred",
            "primaryAttribute": {
                "description": "",
                "dataType": "string",
                **(primary_attribute or {"apiName": "label", "name": "Label"}),
            },
            "attributes": [{"description": "", **a} for a in attributes],
        }
        now = _whole_seconds(None)
        with self._lock:
            if len(self.custom_activity_types) >= self.max_custom_activity_types:
                raise ValueError("the instance already has its maximum of custom activity types")
            if api_name in self.custom_activity_types:
                raise ValueError(f"custom activity type {api_name!r} exists")
            type_id = next(self._custom_type_ids)
            self.custom_activity_types[api_name] = {
                "id": type_id,
                "approved": version if approved else None,
                "draft": None if approved else version,
                "createdAt": now,
                "updatedAt": now,
            }
        return type_id

    def custom_activities(self, activity_type_id: int | None = None) -> list[dict]:
        """Activities written through Add Custom Activities (of one type, or of any custom
        type), oldest first, as stored: ``attributes`` is ``[{name, value, apiName}]``."""
        with self._lock:
            custom = {t["id"] for t in self.custom_activity_types.values()}
            return [
                dict(a)
                for a in self.store.activities
                if a["activityTypeId"] in custom and activity_type_id in (None, a["activityTypeId"])
            ]

    # --- program membership ---------------------------------------------------------------------

    @property
    def memberships(self) -> dict[int, dict[int, str]]:
        """Program id -> lead id -> status name, for the programs that have members."""
        with self._lock:
            return {
                program_id: {lead_id: m["status"] for lead_id, m in members.items()}
                for program_id, members in self._members.items()
                if members
            }

    # --- observation ----------------------------------------------------------------------------

    def calls_to(self, path_fragment: str) -> list[dict]:
        with self._lock:
            return [c for c in self.calls if path_fragment in c["path"]]

    # --- fault injection ------------------------------------------------------------------------

    def fail(self, path_fragment: str, *, code: int | str, message: str | None = None, times=1):
        """The next `times` matching requests answer HTTP 200 with this Marketo error.

        Fires before authentication and the limits, so "the next request" is exact. An empty
        fragment matches every non-identity path.
        """
        with self._lock:
            self._fails.append(
                {"fragment": path_fragment, "code": str(code), "message": message, "times": times}
            )

    def http_error(self, path_fragment: str, *, status: int = 502, times: int = 1) -> None:
        with self._lock:
            self._http_errors.append({"fragment": path_fragment, "status": status, "times": times})

    def outage(self, seconds: float) -> None:
        """Every request, Identity included, gets HTTP 503 "Service Unavailable" for a while."""
        with self._lock:
            self._outage_until = time.monotonic() + seconds

    def expire_tokens(self) -> None:
        """Tokens issued so far expire now: first use 602, later uses 601."""
        with self._lock:
            now = time.monotonic()
            for info in self._tokens.values():
                info["expires"] = min(info["expires"], now)
            self._current_token.clear()

    def cut_next_download(self, after_bytes: int, times: int = 1) -> None:
        """The next file.json answers announce the full length, send `after_bytes`, then close."""
        with self._lock:
            self._cuts.append({"fragment": "", "after": after_bytes, "times": times})

    def file_missing_once(self) -> None:
        """The next file.json for a Completed job answers 404 (Marketo does this, tap-marketo)."""
        with self._lock:
            self._file_missing += 1

    def fail_next_job(self, message: str = "Internal error") -> None:
        with self._lock:
            self._fail_jobs.append(message)

    def stall(self, path_fragment: str, seconds: float, times: int = 1) -> None:
        """Sleep before answering matching requests (they stay in flight meanwhile)."""
        with self._lock:
            self._stalls.append({"fragment": path_fragment, "seconds": seconds, "times": times})

    def deny_permission(self, path_fragment: str) -> None:
        """Matching paths answer 603 "Access denied" from now on (a role without permission)."""
        with self._lock:
            self._denied.add(path_fragment)

    def set_credentials(self, client_id: str, client_secret: str) -> None:
        with self._lock:
            self._client_id, self._client_secret = client_id, client_secret

    @staticmethod
    def _take(rules: list[dict], path: str, identity: bool) -> dict | None:
        """Consume one firing of the first rule matching `path` (call with the lock held)."""
        for rule in rules:
            fragment = rule["fragment"]
            if fragment in path and (fragment or not identity):
                rule["times"] -= 1
                if rule["times"] <= 0:
                    rules.remove(rule)
                return rule
        return None

    # --- request pipeline -----------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        query = parse_qs(split.query, keep_blank_values=True)
        call = {
            "t": time.monotonic(),
            "method": method,
            "path": split.path,
            "query": _flatten(query),
            "form": None,
            "json": None,
            "status": None,
            "code": None,
        }
        req = _Request(handler, method, split.path, query, self._read_body(handler), call)
        try:
            try:
                resp = self._process(req)
            except Exception:
                with self._lock:
                    self.server_errors.append(traceback.format_exc())
                resp = self._error(611)
            call["status"], call["code"] = resp.status, resp.code
            with self._lock:
                self.calls.append(call)
            try:
                self._send(req, resp)
            except (BrokenPipeError, ConnectionResetError):
                handler.close_connection = True
        finally:
            self._account(req, call["code"])

    @staticmethod
    def _read_body(handler: BaseHTTPRequestHandler) -> bytes | None:
        """The whole body (keep-alive needs it drained), or None when over the 1 MB limit."""
        length = int(handler.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            return None
        return handler.rfile.read(length) if length else b""

    def _process(self, req: _Request) -> _Response:
        if len(req.handler.path) > MAX_URI_BYTES:
            return _text(414, "Request-URI Too Long")
        if req.body is None:
            return _text(413, "Request Entity Too Large", close=True)
        identity = req.path.rstrip("/") == IDENTITY_PATH
        with self._lock:
            if time.monotonic() < self._outage_until:
                return _text(503, "Service Unavailable")
            http_error = self._take(self._http_errors, req.path, identity)
        if http_error:
            status = http_error["status"]
            reason = BaseHTTPRequestHandler.responses.get(status, ("Error",))[0]
            return _text(status, f"{status} {reason}")
        if identity:
            self._stall(req.path, identity=True)
            return self._identity(req)

        self._advance_jobs()
        req.countable = True
        with self._lock:
            injected = self._take(self._fails, req.path, identity=False)
        if injected:
            return self._error(injected["code"], injected["message"])
        unauthorized = self._authenticate(req)
        if unauthorized:
            return unauthorized
        with self._lock:
            denied = any(fragment in req.path for fragment in self._denied)
        if denied:
            return self._error(603)
        limited = self._admit(req)
        if limited:
            return limited
        self._stall(req.path, identity=False)
        return self._route(req)

    def _stall(self, path: str, *, identity: bool) -> None:
        with self._lock:
            rule = self._take(self._stalls, path, identity)
        if rule:
            time.sleep(rule["seconds"])

    def _authenticate(self, req: _Request) -> _Response | None:
        """601 for a missing or unknown token; 602 on the first use after expiry, then 601."""
        scheme, _, token = req.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return self._error(601)
        with self._lock:
            info = self._tokens.get(token.strip())
            if info is None:
                return self._error(601)
            if time.monotonic() >= info["expires"]:
                if info["expiry_reported"]:
                    return self._error(601)
                info["expiry_reported"] = True
                return self._error(602)
        return None

    def _admit(self, req: _Request) -> _Response | None:
        """615 / 606 / 607, else reserve a place in the rate window and the daily count."""
        with self._lock:
            self.in_flight += 1
            req.in_flight = True
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.in_flight > self.concurrency:
                return self._error(615, f"Concurrent access limit '{self.concurrency}' reached")
            now = time.monotonic()
            while self._window and self._window[0] <= now - self.rate_window:
                self._window.popleft()
            if len(self._window) >= self.rate_limit:
                return self._error(606, self._rate_message())
            self._roll_day()
            if self._daily_count >= self.daily_quota:
                return self._error(607)
            self._window.append(now)
            self._daily_count += 1
            req.slot = now
        return None

    def _account(self, req: _Request, code: str | None) -> None:
        """After the answer: exempt codes give their reservation back; rejections count.

        Calls rejected with 606/615/607 count too: the reference exempts only 601, 602, 604,
        605, 608 and 611, so a client that hammers through a 606 keeps the window full.
        """
        with self._lock:
            if req.in_flight:
                self.in_flight -= 1
            if not req.countable:
                return
            exempt = code in EXEMPT_CODES
            if req.slot is not None:
                if exempt:
                    with contextlib.suppress(ValueError):  # it may have slid out already
                        self._window.remove(req.slot)
                    self._daily_count -= 1
            elif not exempt:
                self._window.append(time.monotonic())
                self._roll_day()
                self._daily_count += 1

    def _roll_day(self) -> None:
        today = self._today()
        if today != self._day:
            self._day, self._daily_count = today, 0

    @staticmethod
    def _today() -> date:
        return datetime.now(CENTRAL).date()

    def _rate_message(self) -> str:
        # The live text, typo included.
        return (
            f"Max rate limit '{self.rate_limit}' exceeded with in '{_num(self.rate_window)}' secs"
        )

    def _route(self, req: _Request) -> _Response:
        method, params = req.method, req.query
        if method == "POST" and (req.query.get("_method") or [""])[-1].upper() == "GET":
            # The long-query workaround: the query string travels as a form body.
            if not req.headers.get("Content-Type", "").startswith(
                "application/x-www-form-urlencoded"
            ):
                return self._error(612)
            form = parse_qs(req.body.decode("utf-8"), keep_blank_values=True)
            req.call["form"] = _flatten(form)
            params = {k: v for k, v in req.query.items() if k != "_method"}
            for key, values in form.items():
                params.setdefault(key, []).extend(values)
            method = "GET"
        req.params = params
        allowed = False
        for route_method, pattern, handler_name, json_body in _ROUTES:
            match = pattern.fullmatch(req.path)
            if not match:
                continue
            if route_method != method:
                allowed = True
                continue
            if json_body:
                if not req.headers.get("Content-Type", "").startswith("application/json"):
                    return self._error(612)
                try:
                    req.json = json.loads(req.body or b"null")
                except ValueError:
                    return self._error(609)
                req.call["json"] = req.json
            return getattr(self, handler_name)(req, *match.groups())
        return self._error(605 if allowed else 610)

    def _send(self, req: _Request, resp: _Response) -> None:
        h = req.handler
        body = resp.body
        headers = [("Content-Type", resp.content_type), *resp.headers]
        if (
            resp.file_path is None
            and len(body) >= 1024
            and req.path.startswith("/rest/")
            and "gzip" in req.headers.get("Accept-Encoding", "")
        ):
            # REST answers over 1 KB are gzipped on request; bulk ones never are.
            body = gzip.compress(body, compresslevel=5)
            headers += [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
        h.send_response(resp.status)
        for name, value in headers:
            h.send_header(name, value)
        length = resp.file_length if resp.file_path is not None else len(body)
        h.send_header("Content-Length", str(length))
        if resp.close:
            h.send_header("Connection", "close")
        h.end_headers()
        if resp.file_path is None:
            h.wfile.write(body)
            return
        count = length if resp.cut_after is None else min(resp.cut_after, length)
        with open(resp.file_path, "rb") as fh:
            if count:
                h.connection.sendfile(fh, resp.file_offset, count)
        if resp.cut_after is not None:
            # A transfer that dies mid-body: the client sees EOF before Content-Length.
            h.close_connection = True
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_WR)

    # --- envelope -------------------------------------------------------------------------------

    def _request_id(self) -> str:
        return f"{next(self._request_ids):x}#{int(time.time() * 1000):x}"

    def _ok(self, result: Any = None, **extra) -> _Response:
        doc: dict[str, Any] = {"requestId": self._request_id(), "success": True}
        if result is not None:
            doc["result"] = result
        doc.update(extra)
        return _Response(body=_dumps(doc))

    def _error(self, code: int | str, message: str | None = None) -> _Response:
        code = str(code)
        if message is None:
            message = {
                "606": self._rate_message(),
                "615": f"Concurrent access limit '{self.concurrency}' reached",
            }.get(code) or STANDARD_MESSAGES.get(code, "Error")
        doc = {
            "requestId": self._request_id(),
            "success": False,
            "errors": [{"code": code, "message": message}],
        }
        return _Response(body=_dumps(doc), code=code)

    # --- identity -------------------------------------------------------------------------------

    def _identity(self, req: _Request) -> _Response:
        with self._lock:
            self.identity_calls += 1
        if req.method not in ("GET", "POST"):
            return _text(405, "Method Not Allowed")
        params = dict(req.query)
        if req.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            req.call["form"] = form = _flatten(parse_qs(req.body.decode("utf-8")))
            params.update({k: [v] if isinstance(v, str) else v for k, v in form.items()})

        def one(name: str) -> str | None:
            return (params.get(name) or [None])[-1]

        with self._lock:
            good = (one("client_id"), one("client_secret")) == (
                self._client_id,
                self._client_secret,
            )
        if not good:
            body = {"error": "invalid_client", "error_description": "Bad client credentials"}
            return _Response(401, _dumps(body))
        if one("grant_type") != "client_credentials":
            # Not specified by the reference; the standard OAuth answer.
            body = {"error": "unsupported_grant_type", "error_description": "Unsupported grant"}
            return _Response(400, _dumps(body))
        client_id = one("client_id")
        with self._lock:
            now = time.monotonic()
            token = self._current_token.get(client_id)
            if token is None or self._tokens[token]["expires"] <= now:
                token = f"{uuid.uuid4()}:int"
                self._tokens[token] = {
                    "client_id": client_id,
                    "expires": now + self.token_ttl,
                    "expiry_reported": False,
                }
                self._current_token[client_id] = token
            remaining = self._tokens[token]["expires"] - now
        body = {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": max(0, int(remaining)),
            "scope": SCOPE,
        }
        return _Response(200, _dumps(body))

    # --- describe -------------------------------------------------------------------------------

    def _lead_searchable(self) -> list[str]:
        return [
            name
            for name, spec in self.store.lead_fields.items()
            if name in STANDARD_LEAD_LOOKUPS
            or spec.get("searchable")
            or (spec.get("custom") and spec["dataType"] in ("string", "email", "integer"))
        ]

    def _leads_describe(self, req: _Request) -> _Response:
        result = []
        for spec in self.store.lead_fields.values():
            entry = {
                "id": spec["fieldId"],
                "displayName": spec["displayName"],
                "dataType": spec["dataType"],
            }
            if "length" in spec:
                entry["length"] = spec["length"]
            read_only = bool(spec.get("readOnly"))
            entry["rest"] = {"name": spec["name"], "readOnly": read_only}
            soap_name = spec["name"][:1].upper() + spec["name"][1:]
            entry["soap"] = {"name": soap_name, "readOnly": read_only}
            result.append(entry)
        return self._ok(result)

    def _leads_describe2(self, req: _Request) -> _Response:
        fields = [
            {
                "name": spec["name"],
                "displayName": spec["displayName"],
                "dataType": spec["dataType"],
                **({"length": spec["length"]} if "length" in spec else {}),
                "updateable": not spec.get("readOnly"),
                "crmManaged": False,
            }
            for spec in self.store.lead_fields.values()
        ]
        searchable = [[name] for name in self._lead_searchable()]
        return self._ok([{"name": "API Lead", "searchableFields": searchable, "fields": fields}])

    def _companies_describe(self, req: _Request) -> _Response:
        fields = [
            {
                "name": spec["name"],
                "displayName": spec["displayName"],
                "dataType": spec["dataType"],
                **({"length": spec["length"]} if "length" in spec else {}),
                "updateable": not spec.get("readOnly"),
            }
            for spec in self.store.company_fields.values()
        ]
        stamp = "2015-05-11T17:11:32Z"
        return self._ok(
            [
                {
                    "name": "Company",
                    "description": "Company object",
                    "createdAt": stamp,
                    "updatedAt": stamp,
                    "idField": "id",
                    "dedupeFields": ["externalCompanyId"],
                    "searchableFields": [["externalCompanyId"], ["id"], ["company"]],
                    "fields": fields,
                }
            ]
        )

    def _activity_types(self, req: _Request) -> _Response:
        # Approved custom types are listed too, not marked as custom (reference 6.5).
        with self._lock:
            return self._ok([*self.activity_types, *self._approved_custom_types()])

    def _usage(self, req: _Request) -> _Response:
        with self._lock:
            self._roll_day()
            count = self._daily_count
        users = [{"userId": SCOPE, "count": count}]
        return self._ok([{"date": self._day.isoformat(), "total": count, "users": users}])

    # --- programs, channels and campaigns (reads) -----------------------------------------------

    def _get_programs(self, req: _Request) -> _Response:
        with self._lock:
            programs = [dict(self.programs[i]) for i in sorted(self.programs)]
        return self._asset_page(req, programs)

    def _get_channels(self, req: _Request) -> _Response:
        with self._lock:
            channels = [_channel_view(self.channels[i]) for i in sorted(self.channels)]
        return self._asset_page(req, channels)

    def _asset_page(self, req: _Request, items: list[dict]) -> _Response:
        """One page of an asset API browse: `maxReturn` (1-200, default 20) from `offset`."""
        window = {}
        for name, default, top in (
            ("maxReturn", DEFAULT_ASSET_RETURN, MAX_ASSET_BATCH),
            ("offset", 0, None),
        ):
            raw = req.one(name)
            if raw in (None, ""):
                window[name] = default
            elif raw.isdigit() and (top is None or 1 <= int(raw) <= top):
                window[name] = int(raw)
            else:
                # The live answer to a bad maxReturn is undocumented; 1003 as for batchSize.
                return self._error(1003, f"Invalid {name} '{raw}'")
        offset = window["offset"]
        page = items[offset : offset + window["maxReturn"]]
        if not page:
            # Asset APIs answer an empty browse with success, no result and a plain warning.
            return self._ok(errors=[], warnings=[NO_ASSETS_WARNING])
        return self._ok(page, errors=[], warnings=[])

    def _get_campaigns(self, req: _Request) -> _Response:
        batch, offset = self._batch_size(req), self._offset(req)
        for parsed in (batch, offset):
            if isinstance(parsed, _Response):
                return parsed
        wanted = req.one("isTriggerable")
        if wanted not in (None, "") and wanted.lower() not in ("true", "false"):
            return self._error(1003, f"Invalid isTriggerable '{wanted}'")
        with self._lock:
            campaigns = [
                _campaign_view(self.campaigns[i])
                for i in sorted(self.campaigns)
                if not wanted or self.campaigns[i]["isTriggerable"] == (wanted.lower() == "true")
            ]
        extra = {}
        if offset + batch < len(campaigns):
            extra["nextPageToken"] = self._offset_token(offset + batch)
        return self._ok(campaigns[offset : offset + batch], **extra)

    # --- leads and companies --------------------------------------------------------------------

    def _batch_size(self, req: _Request) -> int | _Response:
        raw = req.one("batchSize")
        if raw in (None, ""):
            return MAX_BATCH
        # Out-of-range batch sizes are an error here (the live behaviour is undocumented) so
        # a client asking for 1000 finds out in tests.
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_BATCH:
            return self._error(1003, f"Invalid batchSize '{raw}', must be 1 to {MAX_BATCH}")
        return int(raw)

    def _offset(self, req: _Request) -> int | _Response:
        token = req.one("nextPageToken")
        if not token:
            return 0
        try:
            kind, offset = base64.urlsafe_b64decode(token.encode()).decode().split(":")
            if kind != "o":
                raise ValueError(kind)
            return int(offset)
        except ValueError:
            return self._error(1003, f"Invalid nextPageToken '{token}'")

    @staticmethod
    def _offset_token(offset: int) -> str:
        return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()

    def _requested_fields(
        self, req: _Request, known: dict, default: Sequence[str]
    ) -> list[str] | _Response:
        fields = req.many("fields") or list(default)
        for name in fields:
            if name not in known:
                return self._error(1006, f"Field '{name}' not found")
        return fields

    def _get_leads(self, req: _Request) -> _Response:
        filter_type, raw_values = req.one("filterType"), req.one("filterValues")
        if not filter_type:
            return self._error(701, "filterType cannot be blank")
        if not raw_values:
            return self._error(701, "filterValues cannot be blank")
        values = [v.strip() for v in raw_values.split(",") if v.strip()]
        if len(values) > MAX_FILTER_VALUES:
            return self._error(1003, f"Too many filterValues, at most {MAX_FILTER_VALUES}")
        if filter_type not in self._lead_searchable():
            return self._error(1011, f"Lookup field '{filter_type}' not supported")
        fields = self._requested_fields(req, self.store.lead_fields, DEFAULT_LEAD_REST_FIELDS)
        batch, offset = self._batch_size(req), self._offset(req)
        for parsed in (fields, batch, offset):
            if isinstance(parsed, _Response):
                return parsed
        found = self._find_leads(filter_type, values)
        if isinstance(found, _Response):
            return found
        if len(found) > MAX_FILTER_MATCHES:
            return self._error(1003, "Too many results match the filter")
        page = found[offset : offset + batch]
        result = [{"id": lead["id"], **{f: lead.get(f) for f in fields}} for lead in page]
        extra = {}
        if offset + batch < len(found):
            extra["nextPageToken"] = self._offset_token(offset + batch)
        return self._ok(result, **extra)

    def _get_lead(self, req: _Request, lead_id: str) -> _Response:
        fields = self._requested_fields(req, self.store.lead_fields, DEFAULT_LEAD_REST_FIELDS)
        if isinstance(fields, _Response):
            return fields
        found = self._find_leads("id", [lead_id])
        result = [{"id": lead["id"], **{f: lead.get(f) for f in fields}} for lead in found]
        return self._ok(result)

    def _find_leads(self, filter_type: str, values: list[str]) -> list[dict] | _Response:
        """Leads matching any value, in value order then id, each once, as Marketo shows them."""
        if filter_type == "cookies":
            tokens = []
            for value in values:
                token = value.split("token:", 1)[1].split("&", 1)[0] if "token:" in value else value
                if not COOKIE_TOKEN.fullmatch(token):
                    return self._error(1012, f"Invalid cookie value '{value}'")
                tokens.append(token)
            values = tokens
        found: dict[int, dict] = {}
        dataset = self.dataset
        with self._lock:
            memory = [self.store.lead_values(lead) for _, lead in sorted(self.store.leads.items())]
        for value in values:
            matches: list[dict] = []
            if dataset is not None:
                i = None
                if filter_type == "id" and value.isdigit():
                    i = int(value)
                elif filter_type == "email":
                    i = dataset.lead_id_for_email(value)
                elif filter_type == "cookies":
                    i = dataset.lead_id_for_cookie(value)
                # Other lookups over synthetic leads would be full scans: memory leads only.
                lead = dataset.lead(i) if i else None
                if lead:
                    matches.append(lead)
            matches.extend(lead for lead in memory if _lead_matches(lead, filter_type, value))
            for lead in matches:
                found.setdefault(lead["id"], lead)
        return list(found.values())

    def _get_companies(self, req: _Request) -> _Response:
        filter_type, raw_values = req.one("filterType"), req.one("filterValues")
        if not filter_type:
            return self._error(701, "filterType cannot be blank")
        if not raw_values:
            return self._error(701, "filterValues cannot be blank")
        values = [v.strip() for v in raw_values.split(",") if v.strip()]
        if len(values) > MAX_FILTER_VALUES:
            return self._error(1003, f"Too many filterValues, at most {MAX_FILTER_VALUES}")
        if filter_type not in ("externalCompanyId", "id", "company"):
            # 1011 for companies is inferred from the lead behaviour.
            return self._error(1011, f"Lookup field '{filter_type}' not supported")
        default = ("id", "externalCompanyId", "updatedAt", "createdAt")
        fields = self._requested_fields(req, self.store.company_fields, default)
        batch, offset = self._batch_size(req), self._offset(req)
        for parsed in (fields, batch, offset):
            if isinstance(parsed, _Response):
                return parsed
        found: dict[int, dict] = {}
        for value in values:
            for company in self._find_companies(filter_type, value):
                found.setdefault(company["id"], company)
        companies = list(found.values())
        if len(companies) > MAX_FILTER_MATCHES:
            return self._error(1003, "Too many results match the filter")
        result = [
            {"seq": seq, "id": c["id"], **{f: c.get(f) for f in fields}}
            for seq, c in enumerate(companies[offset : offset + batch], start=offset)
        ]
        extra = {}
        if offset + batch < len(companies):
            extra["nextPageToken"] = self._offset_token(offset + batch)
        return self._ok(result, **extra)

    def _find_companies(self, filter_type: str, value: str) -> list[dict]:
        matches = []
        dataset = self.dataset
        if dataset is not None:
            c = None
            if filter_type == "id" and value.isdigit():
                c = int(value)
            elif filter_type == "externalCompanyId":
                c = dataset.company_id_for_external_id(value)
            elif filter_type == "company":
                c = dataset.company_id_for_name(value)
            company = dataset.company(c) if c else None
            if company:
                matches.append(company)
        with self._lock:
            for _, company in sorted(self.store.companies.items()):
                if _text_value(company.get(filter_type)) == value:
                    matches.append(dict(company))
        return matches

    # --- activities -----------------------------------------------------------------------------
    #
    # A paging token is a cursor (since, lo, hi, last_date, last_seq): the activities with
    # lo < seq <= hi dated at or after `since`, walked in (date, seq) order after (last_date,
    # last_seq). `hi` stays open until the token is first used, then freezes at the newest seq;
    # when that generation is exhausted the next token starts a new one at lo = hi. Activities
    # added later always get a higher seq, so they come in a later generation, even when their
    # date is older than pages already served; nothing is returned twice.

    def _paging_token(self, req: _Request) -> _Response:
        since = req.one("sinceDatetime")
        if not since:
            return self._error(701, "sinceDatetime cannot be blank")
        try:
            since_at = parse_datetime(since)
        except ValueError:
            return self._error(704, f"Invalid date format '{since}'")
        token = _encode_cursor((_epoch_us(since_at), 0, None, -1, 0))
        return self._ok(nextPageToken=token)

    def _get_activities(self, req: _Request) -> _Response:
        type_ids = req.many("activityTypeIds")
        if not type_ids:
            return self._error(701, "activityTypeIds cannot be blank")
        if len(type_ids) > 10:
            return self._error(1003, "Too many activityTypeIds, at most 10")
        lead_ids = req.many("leadIds")
        if len(lead_ids) > 30:
            return self._error(1003, "Too many leadIds, at most 30")
        try:
            wanted = {int(t) for t in type_ids}
            leads = {int(i) for i in lead_ids}
        except ValueError:
            return self._error(1003, "activityTypeIds and leadIds must be integers")

        def keep(activity: dict) -> bool:
            type_id = activity["activityTypeId"]
            return (
                type_id != DELETE_LEAD
                and type_id in wanted
                and (not leads or activity["leadId"] in leads)
            )

        return self._activity_page(req, keep, with_fields=False)

    def _get_lead_changes(self, req: _Request) -> _Response:
        fields = req.many("fields")
        if not fields:
            return self._error(701, "fields cannot be blank")
        for name in fields:
            if name not in self.store.lead_fields:
                return self._error(1006, f"Field '{name}' not found")
        watched = set(fields)

        def keep(activity: dict) -> bool:
            if activity["activityTypeId"] == NEW_LEAD:
                return True
            return activity["activityTypeId"] == CHANGE_DATA_VALUE and any(
                f["name"] in watched for f in activity.get("fields") or ()
            )

        return self._activity_page(req, keep, with_fields=True)

    def _get_deleted_leads(self, req: _Request) -> _Response:
        return self._activity_page(
            req, lambda a: a["activityTypeId"] == DELETE_LEAD, with_fields=False
        )

    def _activity_page(
        self, req: _Request, keep: Callable[[dict], bool], *, with_fields: bool
    ) -> _Response:
        raw_token = req.one("nextPageToken")
        if not raw_token:
            return self._error(701, "nextPageToken cannot be blank")
        try:
            since, lo, hi, last_date, last_seq = _decode_cursor(raw_token)
        except ValueError:
            return self._error(1003, f"Invalid nextPageToken '{raw_token}'")
        batch = self._batch_size(req)
        if isinstance(batch, _Response):
            return batch
        with self._lock:
            if hi is None:
                hi = self.store.last_seq
            candidates = sorted(
                (
                    (_epoch_us(a["activityDate"]), a["id"], a)
                    for a in self.store.activities
                    if lo < a["id"] and keep(a) and _epoch_us(a["activityDate"]) >= since
                ),
                key=lambda entry: entry[:2],
            )
            current = [e for e in candidates if e[1] <= hi and e[:2] > (last_date, last_seq)]
            newer = any(e[1] > hi for e in candidates)
            if self.partial_pages and current:
                # Real pages can be short, or empty with moreResult true.
                self._partial_pages_seen += 1
                if self._partial_pages_seen % 3 == 1:
                    batch = 0
                elif self._partial_pages_seen % 3 == 2:
                    batch = max(1, batch // 2)
            page = current[:batch]
            rendered = [_render_activity(a, with_fields) for _, _, a in page]
        if len(current) > len(page):
            if page:
                last_date, last_seq = page[-1][:2]
            cursor, more = (since, lo, hi, last_date, last_seq), True
        else:
            cursor, more = (since, hi, None, -1, 0), newer
        extra = {"nextPageToken": _encode_cursor(cursor), "moreResult": more}
        # Empty pages leave `result` out, as observed on the real server.
        return self._ok(rendered or None, **extra)

    # --- writes: common -------------------------------------------------------------------------

    def _records(self, body: Any, key: str = "input", limit: int = MAX_BATCH) -> list | _Response:
        """The body's record list, or the call-level error for a missing or oversized one."""
        if not isinstance(body, dict):
            return self._error(609)
        records = body.get(key)
        if not isinstance(records, list) or not records:
            return self._error(701, f"{key} cannot be blank")
        if len(records) > limit:
            return self._error(1003, f"Too many records in {key}, at most {limit}")
        return records

    # --- Sync Leads -----------------------------------------------------------------------------
    #
    # Writes address the leads in the store; synthetic leads are read-only (an upsert does not
    # see them and creates a new lead, as for an unknown email).

    def _sync_leads(self, req: _Request) -> _Response:
        body = req.json
        records = self._records(body)
        if isinstance(records, _Response):
            return records
        action = body.get("action") or "createOrUpdate"
        if action not in LEAD_ACTIONS:
            return self._error(1003, f"Invalid action '{action}'")
        lookup = body.get("lookupField") or "email"
        if lookup == "id" and action != "updateOnly":
            return self._error(1003, "Lookup field 'id' can only be used with updateOnly")
        if lookup not in ("email", "id"):
            # Marketo also allows other dedupe fields; DynChat uses these two, so the rest
            # answer as an unsupported lookup would.
            return self._error(1011, f"Lookup field '{lookup}' not supported")
        with self._lock:
            result = [self._sync_lead(record, action, lookup) for record in records]
        return self._ok(result)

    def _sync_lead(self, record: Any, action: str, lookup: str) -> dict:
        if not isinstance(record, dict):
            return _skipped(1003, "Invalid record")
        fields = {k: v for k, v in record.items() if not (lookup == "id" and k == "id")}
        for name in fields:  # REST names, case-sensitive
            spec = self.store.lead_fields.get(name)
            if spec is None:
                return _skipped(1006, f"Field '{name}' not found")
            if spec.get("readOnly"):
                # Not documented; refusing beats silently dropping the value.
                return _skipped(1003, f"Field '{name}' is read-only")
        email = fields.get("email")
        if isinstance(email, str) and not email.isascii():
            # "Email must be ASCII"; the code is not documented.
            return _skipped(1003, f"Invalid email address '{email}'")

        if lookup == "id":
            lead_id = record.get("id")
            if lead_id in (None, ""):
                return _skipped(1003, "Value for lookup field 'id' not found")
            matches = [lead_id] if lead_id in self.store.leads else []
        elif action == "createDuplicate":
            matches = []
        elif email in (None, ""):
            return _skipped(1003, "Value for lookup field 'email' not found")
        else:
            matches = self.store.lead_ids_for_email(email)

        if action == "createOnly" and matches:
            return _skipped(1005, "Lead already exists")
        if action == "updateOnly" and not matches:
            return _skipped(1004, "Lead not found")
        if len(matches) > 1:
            return _skipped(1007, "Multiple leads match the lookup criteria")
        if matches:
            self.store.update_lead(matches[0], **fields)
            return {"id": matches[0], "status": "updated"}
        return {"id": self.store.add_lead(**fields), "status": "created"}

    # --- Associate Lead -------------------------------------------------------------------------

    def _associate_lead(self, req: _Request, lead_id: str) -> _Response:
        cookie = req.one("cookie")
        if not cookie:
            return self._error(701, "cookie cannot be blank")
        match = MUNCHKIN_COOKIE.fullmatch(cookie)
        if not match:
            return self._error(1012, f"Invalid cookie value '{cookie}'")
        token, lead_id = match[1], int(lead_id)
        with self._lock:
            lead = self.store.leads.get(lead_id)
            if lead is None:
                return self._error(1004, "Lead not found")
            # The browser is this lead's from now on: a lead it was associated with before
            # loses it (its old activity stays there). A lead keeps the tokens of its other
            # browsers, comma-separated, so each finds it by filterType=cookies. The field
            # changes without a Change Data Value activity: Marketo logs none for it.
            for other in self.store.leads.values():
                tokens = _cookie_tokens(other)
                if token in tokens and other is not lead:
                    other["cookies"] = ",".join(t for t in tokens if t != token) or None
            tokens = _cookie_tokens(lead)
            if token not in tokens:
                lead["cookies"] = ",".join([*tokens, token])
            self.associations.append({"leadId": lead_id, "cookie": cookie, "token": token})
        return self._ok()

    # --- custom activity types ------------------------------------------------------------------
    #
    # A type has an approved version, a draft, or both ("approved with draft"). Creating makes
    # a draft; adding attributes edits the draft (copied from the approved version if need
    # be); approving makes the draft the approved version. Only approved versions take
    # activities and appear in activities/types.json.

    def _custom_types(self, req: _Request) -> _Response:
        with self._lock:
            entries = sorted(self.custom_activity_types.values(), key=lambda e: e["id"])
            return self._ok([_custom_type_view(e, e["approved"] or e["draft"]) for e in entries])

    def _create_custom_type(self, req: _Request) -> _Response:
        body = req.json
        if not isinstance(body, dict):
            return self._error(609)
        for key in ("apiName", "name", "triggerName", "filterName", "primaryAttribute"):
            if not body.get(key):
                return self._error(701, f"{key} cannot be blank")
        api_name, name = str(body["apiName"]), str(body["name"])
        if not API_NAME.fullmatch(api_name):
            return self._error(1003, f"Invalid apiName '{api_name}': letters and digits only")
        if not ACTIVITY_TYPE_NAME.fullmatch(name):
            return self._error(
                1003, f"Invalid name '{name}': letters, digits, spaces and underscores only"
            )
        primary = self._attribute_spec(body["primaryAttribute"], primary=True)
        if isinstance(primary, _Response):
            return primary
        version = {
            "apiName": api_name,
            "name": name,
            "description": str(body.get("description") or ""),
            "triggerName": str(body["triggerName"]),
            "filterName": str(body["filterName"]),
            "primaryAttribute": primary,
            "attributes": [],
        }
        now = _whole_seconds(None)
        with self._lock:
            clash = self._custom_type_clash(version)
            if clash:
                return clash
            if len(self.custom_activity_types) >= self.max_custom_activity_types:
                return self._error(1027, "Max Activity Type Limit Reached")
            entry = {
                "id": next(self._custom_type_ids),
                "approved": None,
                "draft": version,
                "createdAt": now,
                "updatedAt": now,
            }
            self.custom_activity_types[api_name] = entry
            view = _custom_type_view(entry, version)
        # The documented create answer has no id (describe or the type list give it).
        view.pop("id")
        return self._ok([view])

    def _custom_type_clash(self, version: dict) -> _Response | None:
        """A name already taken in the instance (call with the lock held).

        Marketo requires unique names, trigger names and filter names but documents no code
        for a clash: the fake answers 1003 and says which name.
        """
        api_name = version["apiName"]
        if api_name in self.custom_activity_types:
            return self._error(1003, f"Activity type apiName '{api_name}' already exists")
        taken: dict[str, set[str]] = {"name": set(), "triggerName": set(), "filterName": set()}
        taken["name"].update(t["name"].casefold() for t in self.activity_types)
        for entry in self.custom_activity_types.values():
            for other in (entry["approved"], entry["draft"]):
                for key in taken:
                    if other:
                        taken[key].add(other[key].casefold())
        labels = {"name": "Activity type name", "triggerName": "Trigger name"}
        for key in taken:
            if version[key].casefold() in taken[key]:
                label = labels.get(key, "Filter name")
                return self._error(1003, f"{label} '{version[key]}' already exists")
        return None

    def _attribute_spec(self, raw: Any, *, primary: bool = False) -> dict | _Response:
        """A validated attribute definition {apiName, name, description, dataType}."""
        if not isinstance(raw, dict):
            return self._error(1003, "Invalid attribute definition")
        for key in ("apiName", "name"):
            if not raw.get(key):
                return self._error(701, f"attribute {key} cannot be blank")
        api_name = str(raw["apiName"])
        if not API_NAME.fullmatch(api_name):
            return self._error(1003, f"Invalid attribute apiName '{api_name}'")
        data_type = raw.get("dataType") or ("string" if primary else None)
        if data_type is None:
            return self._error(701, f"dataType of attribute '{api_name}' cannot be blank")
        if data_type not in CUSTOM_ATTRIBUTE_TYPES:
            return self._error(1003, f"Invalid dataType '{data_type}' of attribute '{api_name}'")
        return {
            "apiName": api_name,
            "name": str(raw["name"]),
            "description": str(raw.get("description") or ""),
            "dataType": data_type,
        }

    def _create_custom_attributes(self, req: _Request, api_name: str) -> _Response:
        specs = self._records(req.json, key="attributes")
        if isinstance(specs, _Response):
            return specs
        parsed = []
        for raw in specs:
            spec = self._attribute_spec(raw)
            if isinstance(spec, _Response):
                return spec
            parsed.append((spec, bool(raw.get("isPrimary"))))
        with self._lock:
            entry = self.custom_activity_types.get(api_name)
            if entry is None:
                return self._error(1013, f"Activity type '{api_name}' not found")
            draft = json.loads(_dumps(entry["draft"] or entry["approved"]))
            for spec, is_primary in parsed:
                existing = [draft["primaryAttribute"], *draft["attributes"]]
                for key in ("apiName", "name"):
                    if any(a[key].casefold() == spec[key].casefold() for a in existing):
                        return self._error(1003, f"Attribute {key} '{spec[key]}' already exists")
                if is_primary:  # the new primary replaces the old one
                    draft["primaryAttribute"] = spec
                else:
                    draft["attributes"].append(spec)
            if len(draft["attributes"]) > self.max_custom_attributes:
                return self._error(1028, "Max field limit reached")
            entry["draft"] = draft
            entry["updatedAt"] = _whole_seconds(None)
            return self._ok([_custom_type_view(entry, draft)])

    def _approve_custom_type(self, req: _Request, api_name: str) -> _Response:
        with self._lock:
            entry = self.custom_activity_types.get(api_name)
            if entry is None:
                return self._error(1013, f"Activity type '{api_name}' not found")
            if entry["draft"] is None:
                # Undocumented; an approve with nothing to approve is refused.
                return self._error(1003, f"Activity type '{api_name}' has no draft to approve")
            entry["approved"], entry["draft"] = entry["draft"], None
            entry["updatedAt"] = _whole_seconds(None)
            return self._ok([_custom_type_view(entry, entry["approved"])])

    def _describe_custom_type(self, req: _Request, api_name: str) -> _Response:
        draft = (req.one("draft") or "").lower() == "true"
        with self._lock:
            entry = self.custom_activity_types.get(api_name)
            if entry is None:
                return self._error(1013, f"Activity type '{api_name}' not found")
            version = (entry["draft"] or entry["approved"]) if draft else entry["approved"]
            if version is None:
                # Never approved: only the draft exists (the live answer is undocumented).
                return self._error(
                    702, f"Activity type '{api_name}' is not approved; describe it with draft=true"
                )
            return self._ok([_custom_type_view(entry, version)])

    def _approved_custom_types(self) -> list[dict]:
        """Approved custom types in activities/types.json's shape (call with the lock held)."""
        types = []
        for entry in sorted(self.custom_activity_types.values(), key=lambda e: e["id"]):
            version = entry["approved"]
            if version is None:
                continue
            primary = version["primaryAttribute"]
            types.append(
                {
                    "id": entry["id"],
                    "apiName": version["apiName"],
                    "name": version["name"],
                    "description": version["description"],
                    "primaryAttribute": {
                        "apiName": primary["apiName"],
                        "name": primary["name"],
                        "dataType": primary["dataType"],
                    },
                    "attributes": [
                        {"apiName": a["apiName"], "name": a["name"], "dataType": a["dataType"]}
                        for a in version["attributes"]
                    ],
                }
            )
        return types

    # --- Add Custom Activities ------------------------------------------------------------------

    def _add_custom_activities(self, req: _Request) -> _Response:
        records = self._records(req.json)
        if isinstance(records, _Response):
            return records
        with self._lock:
            by_id = {e["id"]: e for e in self.custom_activity_types.values()}
            result = [self._add_custom_activity(record, by_id) for record in records]
        return self._ok(result)

    def _add_custom_activity(self, record: Any, types_by_id: dict[int, dict]) -> dict:
        """One record's answer. Skips carry `errors`, not `reasons`, on this endpoint."""
        if not isinstance(record, dict):
            return _not_added(1003, "Invalid record")
        for key in ("leadId", "activityDate", "activityTypeId", "primaryAttributeValue"):
            if record.get(key) is None:
                return _not_added(1003, f"{key} cannot be blank")
        attributes = record.get("attributes")
        if not isinstance(attributes, list):
            return _not_added(1003, "attributes cannot be blank")
        if len(_dumps(attributes)) > MAX_ACTIVITY_ATTRIBUTE_BYTES:
            return _not_added(
                1049,
                f"Failed to Create Activity: attributes over {MAX_ACTIVITY_ATTRIBUTE_BYTES} bytes",
            )
        if not self._lead_exists(record["leadId"]):
            return _not_added(1004, "Lead not found")
        # Unknown and unapproved types: undocumented codes, 1013 and 1003.
        entry = types_by_id.get(record["activityTypeId"])
        if entry is None:
            return _not_added(1013, f"Activity type '{record['activityTypeId']}' not found")
        version = entry["approved"]
        if version is None:
            return _not_added(1003, f"Activity type '{record['activityTypeId']}' is not approved")
        try:
            at = parse_datetime(str(record["activityDate"]))
        except ValueError:
            return _not_added(1003, f"Invalid activityDate '{record['activityDate']}'")
        stored = []
        for given in attributes:
            key = given.get("apiName") or given.get("name") if isinstance(given, dict) else None
            spec = next(
                (a for a in version["attributes"] if key in (a["apiName"], a["name"])), None
            )
            if spec is None:
                return _not_added(1006, f"Attribute '{key}' not found")
            stored.append(
                {"name": spec["name"], "value": given.get("value"), "apiName": spec["apiName"]}
            )
        guid = self.store.add_activity(
            lead_id=record["leadId"],
            activity_type_id=entry["id"],
            at=at,
            primary_attribute_value=record["primaryAttributeValue"],
            attributes=stored,
        )
        return {"id": int(guid), "marketoGUID": guid, "status": "added"}

    # --- Sync Program Member Status -------------------------------------------------------------

    def _sync_member_status(self, req: _Request, program_id: str) -> _Response:
        body = req.json
        if not isinstance(body, dict):
            return self._error(609)
        status_name = body.get("statusName")
        if not status_name:
            return self._error(701, "statusName cannot be blank")
        records = self._records(body)
        if isinstance(records, _Response):
            return records
        program_id = int(program_id)
        with self._lock:
            program = self.programs.get(program_id)
            if program is None:
                return self._error(1013, f"Program '{program_id}' not found")
            statuses = {
                s["name"]: s for s in self._channel_named(program["channel"])["progressionStatuses"]
            }
            new = statuses.get(status_name)
            if new is None:
                return self._error(1025, f"Program status '{status_name}' not found")
            members = self._members.setdefault(program_id, {})
            result = []
            for seq, record in enumerate(records):
                lead_id = record.get("leadId") if isinstance(record, dict) else None
                if not self._lead_exists(lead_id):
                    result.append({"seq": seq, **_skipped(1004, "Lead not found")})
                    continue
                member = members.get(lead_id)
                old = statuses[NOT_IN_PROGRAM]
                if member is not None:
                    old = statuses.get(member["status"], old)  # gone from the channel since
                if new["step"] <= old["step"]:
                    reason = "Lead skipped because it is already in or past this status"
                    result.append({"seq": seq, **_skipped(1037, reason)})
                    continue
                created = member is None
                if created:
                    member = members[lead_id] = {"id": next(self._member_ids)}
                member["status"] = new["name"]
                self.store.add_activity(
                    lead_id=lead_id,
                    activity_type_id=CHANGE_PROGRAM_STATUS,
                    primary_attribute_value_id=program_id,
                    primary_attribute_value=program["name"],
                    attributes=[
                        {"name": "Acquired By", "value": False},
                        {"name": "New Status", "value": new["name"]},
                        {"name": "New Status ID", "value": new["id"]},
                        {"name": "Old Status", "value": old["name"]},
                        {"name": "Old Status ID", "value": old["id"]},
                        {"name": "Program Member ID", "value": member["id"]},
                        {"name": "Reason", "value": "Web service API"},
                        {"name": "Success", "value": new["success"]},
                    ],
                )
                status = "created" if created else "updated"
                result.append({"seq": seq, "status": status, "leadId": lead_id})
        return self._ok(result)

    # --- Request Campaign -----------------------------------------------------------------------

    def _trigger_campaign(self, req: _Request, campaign_id: str) -> _Response:
        body = req.json
        if not isinstance(body, dict):
            return self._error(609)
        request = body.get("input")
        if not isinstance(request, dict):
            return self._error(701, "input cannot be blank")
        leads = self._records(request, key="leads", limit=MAX_CAMPAIGN_LEADS)
        if isinstance(leads, _Response):
            return leads
        tokens = request.get("tokens") or []
        if not isinstance(tokens, list):
            return self._error(1003, "Invalid tokens")
        if len(tokens) > MAX_CAMPAIGN_TOKENS:
            return self._error(1003, f"Too many tokens, at most {MAX_CAMPAIGN_TOKENS}")
        lead_ids = [lead.get("id") if isinstance(lead, dict) else None for lead in leads]
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in lead_ids):
            return self._error(1003, "Each lead needs an integer id")
        for token in tokens:
            if not isinstance(token, dict) or not MY_TOKEN.fullmatch(str(token.get("name"))):
                return self._error(
                    1003, f"Invalid token {token!r}: names look like {{{{my.name}}}}"
                )
        campaign_id = int(campaign_id)
        with self._lock:
            campaign = self.campaigns.get(campaign_id)
            if campaign is None:  # 1013 is inferred in the reference
                return self._error(1013, f"Campaign '{campaign_id}' not found")
            if not campaign["isTriggerable"]:
                return self._error(
                    1003, f"Campaign '{campaign_id}' is a batch campaign, it cannot be requested"
                )
            if not campaign["isActive"]:
                return self._error(1003, f"Campaign '{campaign_id}' is not active")
            if tokens and campaign["nested"]:
                return self._error(611)  # live behaviour for My Token overrides in nested programs
            self.campaign_requests.append(
                {
                    "campaignId": campaign_id,
                    "leadIds": lead_ids,
                    "tokens": [dict(t) for t in tokens],
                }
            )
            # Unknown leads are passed over without an error (undocumented; a request is
            # fire-and-forget), so only known leads get the "Request Campaign" activity.
            for lead_id in lead_ids:
                if self._lead_exists(lead_id):
                    self.store.add_activity(
                        lead_id=lead_id,
                        activity_type_id=REQUEST_CAMPAIGN,
                        primary_attribute_value_id=campaign_id,
                        primary_attribute_value=campaign["name"],
                        attributes=[{"name": "Source", "value": "Web Service API"}],
                        campaign_id=campaign_id,
                    )
        return self._ok([{"id": campaign_id}])

    # --- bulk extract ---------------------------------------------------------------------------

    def _export_create(self, req: _Request, entity: str) -> _Response:
        body = req.json
        if not isinstance(body, dict):
            return self._error(1003, "Request body must be a JSON object")
        quota = self._quota_error()
        if quota:
            return quota
        parsed = (
            self._validate_lead_export(body)
            if entity == "leads"
            else self._validate_activity_export(body)
        )
        if isinstance(parsed, _Response):
            return parsed
        export_id = str(uuid.uuid4())
        job = {
            "exportId": export_id,
            "entity": entity,
            "format": parsed["format"],
            "status": "Created",
            "createdAt": _whole_seconds(None),
            "request": body,
            "spec": parsed,
            "file": None,
        }
        with self._lock:
            self.exports[export_id] = job
        return self._ok([_job_view(job)])

    def _validate_export_common(self, body: dict) -> dict | _Response:
        fmt = str(body.get("format") or "CSV").upper()
        if fmt not in EXPORT_FORMATS:
            return self._error(1003, f"Invalid format '{body.get('format')}'")
        headers = body.get("columnHeaderNames") or {}
        if not isinstance(headers, dict):
            return self._error(1003, "columnHeaderNames must be an object")
        filters = body.get("filter")
        if not isinstance(filters, dict) or not filters:
            return self._error(1003, "Invalid value specified for attribute 'filter'")
        return {"format": fmt, "delimiter": EXPORT_FORMATS[fmt], "columnHeaderNames": headers}

    def _date_range(self, name: str, value: Any) -> tuple[datetime, datetime] | _Response:
        if not isinstance(value, dict) or not value.get("startAt") or not value.get("endAt"):
            return self._error(1003, f"{name} needs startAt and endAt")
        try:
            start, end = parse_datetime(value["startAt"]), parse_datetime(value["endAt"])
        except (TypeError, ValueError):
            return self._error(1003, f"Invalid {name} date")
        if end < start:
            return self._error(1003, f"{name}.endAt is before startAt")
        if end - start > MAX_EXPORT_SPAN:
            # The code for this is unverified; 1003 with a clear message, as the reference says.
            return self._error(1003, f"{name} date range exceeds 31 days")
        return start, end

    def _validate_lead_export(self, body: dict) -> dict | _Response:
        spec = self._validate_export_common(body)
        if isinstance(spec, _Response):
            return spec
        fields = body.get("fields")
        if not fields or not isinstance(fields, list):
            return self._error(1003, "fields cannot be blank")
        for name in fields:
            if name not in self.store.lead_fields:
                return self._error(1006, f"Field '{name}' not found")
        filters = body["filter"]
        if len(filters) != 1:
            return self._error(1003, "Exactly one filter type is allowed for a lead export")
        ((filter_type, value),) = filters.items()
        if filter_type == "updatedAt" and not self.updated_at_filter:
            return self._error(1035, "Unsupported filter type for target subscription: updatedAt")
        if filter_type in ("staticListId", "staticListName", "smartListId", "smartListName"):
            return self._error(1035, f"Unsupported filter type for this emulator: {filter_type}")
        if filter_type not in ("createdAt", "updatedAt"):
            return self._error(
                1003, f"Invalid value specified for attribute 'filter': {filter_type}"
            )
        window = self._date_range(filter_type, value)
        if isinstance(window, _Response):
            return window
        return {**spec, "fields": fields, "filterField": filter_type, "window": window}

    def _validate_activity_export(self, body: dict) -> dict | _Response:
        spec = self._validate_export_common(body)
        if isinstance(spec, _Response):
            return spec
        fields = body.get("fields") or list(DEFAULT_ACTIVITY_COLUMNS)
        if not isinstance(fields, list):
            return self._error(1003, "fields must be a list")
        for name in fields:
            if name not in ACTIVITY_EXPORT_COLUMNS:
                return self._error(1006, f"Field '{name}' not found")
        filters = dict(body["filter"])
        if "createdAt" not in filters:
            return self._error(1003, "createdAt filter is required for an activity export")
        window = self._date_range("createdAt", filters.pop("createdAt"))
        if isinstance(window, _Response):
            return window
        type_ids = filters.pop("activityTypeIds", None)
        if type_ids is not None:
            if not isinstance(type_ids, list) or not all(isinstance(t, int) for t in type_ids):
                return self._error(1003, "activityTypeIds must be a list of integers")
            if DELETE_LEAD in type_ids:
                return self._error(1003, "Activity type 37 (Delete Lead) is not supported")
        if filters:
            return self._error(1003, f"Filter(s) not supported by this emulator: {sorted(filters)}")
        return {**spec, "fields": fields, "window": window, "activityTypeIds": type_ids}

    def _quota_error(self) -> _Response | None:
        today = self._today()
        with self._lock:
            used = sum(
                job["fileSize"]
                for job in self.exports.values()
                if job["status"] == "Completed"
                and job["finishedAt"].astimezone(CENTRAL).date() == today
            )
        if used >= self.export_quota_bytes:
            quota = _num(round(self.export_quota_bytes / MB, 3))
            return self._error(1029, f"Export daily quota {quota}MB exceeded")
        return None

    def _job(self, entity: str, export_id: str) -> dict | None:
        job = self.exports.get(export_id)
        return job if job and job["entity"] == entity else None

    def _export_enqueue(self, req: _Request, entity: str, export_id: str) -> _Response:
        with self._lock:
            job = self._job(entity, export_id)
            if job is None:
                # Unknown ids: the live code is undocumented.
                return self._error(1003, f"Export id '{export_id}' not found")
            if job["status"] != "Created":
                return self._error(1029, "Job already queued")
            quota = self._quota_error()
            if quota:
                return quota
            active = sum(j["status"] in ("Queued", "Processing") for j in self.exports.values())
            if active >= self.max_queue:
                return self._error(1029, "Too many jobs in queue")
            job["status"] = "Queued"
            job["queuedAt"] = _whole_seconds(None)
            job["_queued"] = time.monotonic()
            view = _job_view(job)
        self._advance_jobs()
        return self._ok([view])

    def _export_status(self, req: _Request, entity: str, export_id: str) -> _Response:
        with self._lock:
            job = self._job(entity, export_id)
            if job is None:
                return self._error(1003, f"Export id '{export_id}' not found")
            return self._ok([_job_view(job)])

    def _export_cancel(self, req: _Request, entity: str, export_id: str) -> _Response:
        with self._lock:
            job = self._job(entity, export_id)
            if job is None:
                return self._error(1003, f"Export id '{export_id}' not found")
            if job["status"] in ("Created", "Queued", "Processing"):
                job["status"] = "Cancelled"
            return self._ok([_job_view(job)])

    def _export_list(self, req: _Request, entity: str) -> _Response:
        statuses = {_status_name(s) for s in req.many("status")}
        batch, offset = self._batch_size(req), self._offset(req)
        for parsed in (batch, offset):
            if isinstance(parsed, _Response):
                return parsed
        cutoff = _whole_seconds(None) - EXPORT_LISTING_AGE
        with self._lock:
            jobs = [
                job
                for job in sorted(self.exports.values(), key=lambda j: j["createdAt"])
                if job["entity"] == entity
                and job["createdAt"] >= cutoff
                and (not statuses or job["status"] in statuses)
            ]
            result = [_job_view(job) for job in jobs[offset : offset + batch]]
        extra = {}
        if offset + batch < len(jobs):
            extra["nextPageToken"] = self._offset_token(offset + batch)
        return self._ok(result, **extra)

    def _export_file(self, req: _Request, entity: str, export_id: str) -> _Response:
        with self._lock:
            job = self._job(entity, export_id)
            if job is None or job["status"] != "Completed":
                return _text(404, "Export file not found")
            if self._file_missing:
                self._file_missing -= 1
                return _text(404, "Export file not found")
            cut = self._take(self._cuts, req.path, identity=False)
            path, size = job["file"], job["fileSize"]
        resp = _Response(content_type="text/csv;charset=UTF-8", file_path=path)
        resp.headers.append(("Accept-Ranges", "bytes"))
        first, last = 0, size - 1
        range_header = req.headers.get("Range")
        if range_header:
            m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", range_header)
            if m and (m[1] or m[2]):
                if m[1]:
                    first = int(m[1])
                    last = min(int(m[2]), size - 1) if m[2] else size - 1
                else:  # bytes=-N: the last N bytes
                    first = max(0, size - int(m[2]))
                if first >= size or last < first:
                    resp = _text(416, "Requested Range Not Satisfiable")
                    resp.headers.append(("Content-Range", f"bytes */{size}"))
                    return resp
                resp.status = 206
                resp.headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
        resp.file_offset, resp.file_length = first, last - first + 1
        if cut:
            resp.cut_after = cut["after"]
        return resp

    def _advance_jobs(self) -> None:
        """Move jobs along lazily (called on every request).

        Queued -> Processing once `bulk_status_delay` has passed since queueing and fewer than
        `max_processing` jobs are processing; the file is generated in a background thread from
        then on. Processing -> Completed (or Failed) once the delay has passed again and the
        file is written.
        """
        now = time.monotonic()
        start: list[dict] = []
        with self._lock:
            processing = 0
            for job in self.exports.values():
                if job["status"] != "Processing":
                    continue
                outcome = job.get("_outcome")
                if now - job["_started"] < self.bulk_status_delay or outcome is None:
                    processing += 1
                    continue
                job["finishedAt"] = _whole_seconds(None)
                if "error" in outcome or self._fail_jobs:
                    job["status"] = "Failed"
                    job["errorMsg"] = (
                        self._fail_jobs.pop(0) if "error" not in outcome else "Internal error"
                    )
                    _remove(job.get("file"))
                    job["file"] = None
                else:
                    job["status"] = "Completed"
                    job.update(outcome)
            queued = sorted(
                (j for j in self.exports.values() if j["status"] == "Queued"),
                key=lambda j: j["_queued"],
            )
            for job in queued:
                if (
                    processing >= self.max_processing
                    or now - job["_queued"] < self.bulk_status_delay
                ):
                    break
                job["status"] = "Processing"
                job["startedAt"] = _whole_seconds(None)
                job["_started"] = now
                processing += 1
                start.append(job)
        for job in start:
            threading.Thread(
                target=self._generate, args=(job,), name="fake-marketo-export", daemon=True
            ).start()

    def _generate(self, job: dict) -> None:
        """Write the export file; record numberOfRecords, fileSize and fileChecksum."""
        spec = job["spec"]
        path = os.path.join(self.files_dir, f"{job['exportId']}.{spec['format'].lower()}")
        try:
            # One file at a time: the synthetic row templates are built lazily and are not
            # safe to build from two threads at once (an IndexError in a generated row).
            with self._generate_lock, open(path, "wb") as raw:
                out = _HashingWriter(raw)
                count = self._write_export(job["entity"], spec, out)
            outcome = {
                "file": path,
                "numberOfRecords": count,
                "fileSize": out.size,
                "fileChecksum": out.checksum(),
            }
        except Exception:
            with self._lock:
                self.server_errors.append(traceback.format_exc())
            outcome = {"error": "Internal error"}
        with self._lock:
            if job["status"] == "Processing":
                job["_outcome"] = outcome
                job["file"] = outcome.get("file")
            else:  # cancelled meanwhile
                _remove(path)

    def _write_export(self, entity: str, spec: dict, out: BinaryIO) -> int:
        fields, delimiter = spec["fields"], spec["delimiter"]
        headers = [spec["columnHeaderNames"].get(f, f) for f in fields]
        start, end = spec["window"]
        sources: list[Any] = [s for s in (self.dataset, self.store) if s is not None]
        count = 0
        for index, source in enumerate(sources):
            options = {"delimiter": delimiter, "headers": headers, "include_header": index == 0}
            if entity == "leads":
                count += source.write_leads_csv(
                    fields, start, end, out, filter_field=spec["filterField"], **options
                )
            else:
                count += source.write_activities_csv(
                    fields, start, end, out, spec["activityTypeIds"], **options
                )
        return count


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _flatten(params: dict[str, list[str]]) -> dict[str, str | list[str]]:
    return {k: v[0] if len(v) == 1 else v for k, v in params.items()}


def _lead_matches(lead: dict, filter_type: str, value: str) -> bool:
    current = lead.get(filter_type)
    if current is None:
        return False
    if filter_type == "email":
        return str(current).lower() == value.lower()
    if filter_type == "cookies":
        return value in (t.strip() for t in str(current).split(","))
    return _text_value(current) == value


def _render_activity(activity: dict, with_fields: bool) -> dict:
    out = {
        "id": activity["id"],
        "marketoGUID": activity["marketoGUID"],
        "leadId": activity["leadId"],
        "activityDate": format_datetime(activity["activityDate"]),
        "activityTypeId": activity["activityTypeId"],
        "campaignId": activity["campaignId"],
    }
    for key in ("primaryAttributeValueId", "primaryAttributeValue"):
        if activity.get(key) is not None:
            out[key] = activity[key]
    if with_fields:
        out["fields"] = activity.get("fields") or []
    out["attributes"] = [{"name": a["name"], "value": a["value"]} for a in activity["attributes"]]
    return out


def _skipped(code: int, message: str) -> dict:
    return {"status": "skipped", "reasons": [{"code": str(code), "message": message}]}


def _not_added(code: int, message: str) -> dict:
    """A skipped custom activity: that endpoint says `errors` where others say `reasons`."""
    return {"status": "skipped", "errors": [{"code": str(code), "message": message}]}


def _cookie_tokens(lead: dict) -> list[str]:
    return [t.strip() for t in str(lead.get("cookies") or "").split(",") if t.strip()]


def _custom_type_view(entry: dict, version: dict) -> dict:
    if entry["approved"] is None:
        status = "draft"
    else:
        status = "approved with draft" if entry["draft"] is not None else "approved"
    return {
        "id": entry["id"],
        **json.loads(_dumps(version)),
        "status": status,
        "createdAt": format_datetime(entry["createdAt"]),
        "updatedAt": format_datetime(entry["updatedAt"]),
    }


def _channel_view(channel: dict) -> dict:
    statuses = [
        {k: status[k] for k in ("name", "step", "success", "hidden", "type", "description")}
        for status in channel["progressionStatuses"]
    ]
    return {**channel, "progressionStatuses": statuses}


def _campaign_view(campaign: dict) -> dict:
    view = {k: v for k, v in campaign.items() if k != "nested" and v is not None}
    # The lead database API has long called it `active`; newer answers say `isActive`.
    view["active"] = campaign["isActive"]
    return view


def _encode_cursor(cursor: tuple) -> str:
    since, lo, hi, last_date, last_seq = cursor
    text = f"{since}:{lo}:{'' if hi is None else hi}:{last_date}:{last_seq}"
    if len(text) % 5 == 0:  # keep base32 padding: real tokens often end in "="
        text += ";"
    return base64.b32encode(text.encode()).decode()


def _decode_cursor(token: str) -> tuple:
    try:
        text = base64.b32decode(token.encode()).decode().rstrip(";")
        since, lo, hi, last_date, last_seq = text.split(":")
        return int(since), int(lo), (int(hi) if hi else None), int(last_date), int(last_seq)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(token) from exc


def _status_name(value: str) -> str:
    value = value.strip().lower()
    if value in ("cancelled", "canceled"):
        return "Cancelled"
    return value.capitalize()


def _job_view(job: dict) -> dict:
    view = {
        "exportId": job["exportId"],
        "format": job["format"],
        "status": job["status"],
        "createdAt": format_datetime(job["createdAt"]),
    }
    for key in ("queuedAt", "startedAt", "finishedAt"):
        if job.get(key):
            view[key] = format_datetime(job[key])
    if job["status"] == "Completed":
        for key in ("numberOfRecords", "fileSize", "fileChecksum"):
            view[key] = job[key]
    if job["status"] == "Failed":
        view["errorMsg"] = job.get("errorMsg")
    return view


def _remove(path: str | None) -> None:
    if path:
        with contextlib.suppress(OSError):
            os.remove(path)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.marketo",
        description="Serve a fake Marketo on loopback; prints the base URL first.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--client-id", default="dynchat-client")
    parser.add_argument("--client-secret", default="dynchat-secret")
    parser.add_argument("--rate-limit", type=int, default=100)
    parser.add_argument("--rate-window", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--daily-quota", type=int, default=50_000)
    parser.add_argument("--export-quota-mb", type=float, default=500)
    parser.add_argument("--max-processing", type=int, default=2)
    parser.add_argument("--max-queue", type=int, default=10)
    parser.add_argument("--bulk-status-delay", type=float, default=0.0)
    parser.add_argument("--token-ttl", type=float, default=3600)
    parser.add_argument("--files-dir", default=None)
    parser.add_argument("--synthetic-leads", type=int, default=0)
    parser.add_argument("--synthetic-companies", type=int, default=1000)
    parser.add_argument("--synthetic-activities", type=int, default=0)
    parser.add_argument("--lead-days", type=int, default=365, help="leads created over D days")
    parser.add_argument("--activity-days", type=int, default=90)
    parser.add_argument(
        "--end",
        default=None,
        help="end of the synthetic data (ISO-8601); default today 00:00 UTC, so runs repeat",
    )
    args = parser.parse_args(argv)

    dataset = None
    if args.synthetic_leads:
        end = (
            parse_datetime(args.end)
            if args.end
            else datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        )
        dataset = SyntheticDataset(
            leads=args.synthetic_leads,
            companies=args.synthetic_companies,
            activities=args.synthetic_activities,
            start=end - timedelta(days=args.lead_days),
            end=end,
            activity_start=end - timedelta(days=args.activity_days),
        )
    fake = FakeMarketo(
        client_id=args.client_id,
        client_secret=args.client_secret,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        concurrency=args.concurrency,
        daily_quota=args.daily_quota,
        export_quota_bytes=int(args.export_quota_mb * MB),
        max_processing=args.max_processing,
        max_queue=args.max_queue,
        bulk_status_delay=args.bulk_status_delay,
        token_ttl=args.token_ttl,
        files_dir=args.files_dir,
        dataset=dataset,
        host=args.host,
        port=args.port,
    )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    print(fake.start(), flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
