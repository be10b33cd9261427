"""Reads for the sync's status page and `marketo_sync status`, and the synced lead and company
the widget's targeting and branching see for a visitor (by email, lead id or Munchkin cookie)."""

import re
from urllib.parse import unquote

from django.core.cache import cache
from django.db import connection
from django.db.models import F, Max, Min
from django.db.models.functions import Lower

from marketo_sync import services
from marketo_sync.models import Activity, ActivityType, Company, Lead, SyncCursor, SyncRun
from marketo_sync.sync import live_key


def current_run() -> SyncRun | None:
    """The running sync, if a worker is really running it: a "running" row whose worker died
    (the sync lock is free) is marked interrupted on the way."""
    run = SyncRun.objects.filter(status=SyncRun.Status.RUNNING).first()
    if run is not None and connection.vendor == "postgresql" and services.lock_is_free():
        services.mark_dead_runs_interrupted()
        return None
    return run


def live_figures(run: SyncRun) -> dict:
    """What the running worker reported last (bytes, rate, phase), else the row's figures."""
    live = cache.get(live_key(run.pk)) or {}
    return {
        "phase": live.get("phase") or run.phase,
        "bytes": live.get("bytes", run.bytes_downloaded),
        "bytes_per_second": live.get("bytes_per_second", 0),
        "counts": live.get("counts") or run.counts,
        "windows_done": live.get("windows_done", run.windows_done),
    }


def recent_runs(limit: int = 20) -> list[SyncRun]:
    return list(SyncRun.objects.all()[:limit])


def stored_counts() -> dict:
    activity_dates = Activity.objects.aggregate(
        first=Min("activity_date"), last=Max("activity_date")
    )
    return {
        "leads": Lead.objects.count(),
        "companies": Company.objects.count(),
        "activities": Activity.objects.count(),
        "activity_types": ActivityType.objects.count(),
        "first_activity": activity_dates["first"],
        "last_activity": activity_dates["last"],
    }


def cursors() -> dict[str, str]:
    return dict(SyncCursor.objects.values_list("name", "token"))


def person_and_company(email: str) -> tuple[dict, dict]:
    """The synced lead with this email and its company, as the attributes targeting and
    branching read (`lead.<field>`, `company.<field>`); empty dicts when nobody matches.

    Two indexed reads (lead_email_lower, company_external_id). Marketo allows several leads with
    one email; the most recently updated wins, as Marketo's own lookups by email do.
    """
    if not email:
        return {}, {}
    return _person_and_company(
        Lead.objects.alias(email_lower=Lower("email")).filter(email_lower=email.lower())
    )


def person_and_company_for_lead(lead_id: int | None) -> tuple[dict, dict]:
    """Like person_and_company, for the synced lead with this Marketo id (a visitor their
    Munchkin cookie resolved). Two reads by primary key and company_external_id."""
    if not lead_id:
        return {}, {}
    return _person_and_company(Lead.objects.filter(pk=lead_id))


def person_and_company_for_cookie(cookie: str) -> tuple[dict, dict]:
    """Like person_and_company, for the synced lead holding this `_mkto_trk` value's token:
    two indexed reads (lead_cookies, company_external_id), none for a value without a token."""
    token = munchkin_token(cookie)
    if token is None:
        return {}, {}
    return _person_and_company(Lead.objects.filter(cookies=token))


def _person_and_company(leads) -> tuple[dict, dict]:
    lead = (
        leads.order_by(F("updated_at").desc(nulls_last=True), "-id")
        .values("email", "external_company_id", "attributes")
        .first()
    )
    if lead is None:
        return {}, {}
    person = {**lead["attributes"], "email": lead["email"]}
    company = {}
    if lead["external_company_id"]:
        row = (
            Company.objects.filter(external_company_id=lead["external_company_id"])
            .values("name", "attributes")
            .first()
        )
        if row is not None:
            company = {**row["attributes"], "company": row["name"]}
    return person, company


# Munchkin's cookie: `id:<munchkin id>&token:_mch-<domain>-<epoch ms>-<random>`
# (reference/marketo-rest-api.md §5.3). Only the token is stored on leads (`Lead.cookies`).
MUNCHKIN_ID = re.compile(r"[A-Za-z0-9]{2,10}(?:-[A-Za-z0-9]{2,10}){0,4}")
MUNCHKIN_TOKEN = re.compile(r"_mch-[A-Za-z0-9.-]{1,200}-\d{10,16}-\d{1,10}")
MAX_COOKIE_LENGTH = 255  # widget.models.Visitor.marketo_cookie


def munchkin_cookie(value: str | None) -> str:
    """A `_mkto_trk` value as Marketo wants it back (Associate Lead): `id:...&token:_mch-...`,
    URL-decoded when the host page stored it encoded; "" when it is not one. A host page's
    cookie is whatever it is, so nothing here raises."""
    if not value or len(value) > 2 * MAX_COOKIE_LENGTH:
        return ""
    if "%" in value:
        value = unquote(value)
    parts = {}
    for part in value.strip().split("&"):
        name, sep, text = part.partition(":")
        if not sep or name in parts:
            return ""
        parts[name] = text
    token, munchkin_id = parts.pop("token", ""), parts.pop("id", None)
    if parts or not MUNCHKIN_TOKEN.fullmatch(token):
        return ""
    if munchkin_id is None:
        return f"token:{token}"
    if not MUNCHKIN_ID.fullmatch(munchkin_id):
        return ""
    cookie = f"id:{munchkin_id}&token:{token}"
    return cookie if len(cookie) <= MAX_COOKIE_LENGTH else ""


def munchkin_token(value: str | None) -> str | None:
    """The `_mch-<domain>-<ms>-<n>` token of a `_mkto_trk` value, as `Lead.cookies` holds it;
    None when the value is not a Munchkin cookie."""
    cookie = munchkin_cookie(value)
    return cookie.rpartition("token:")[2] if cookie else None


def lead_for_cookie(cookie: str | None) -> tuple[int, str] | None:
    """The synced lead whose Munchkin cookie this is, as (Marketo lead id, email); None for a
    malformed value or a cookie no synced lead holds. One indexed read (lead_cookies), none
    for a malformed value. Should two leads hold the token (Marketo moved the cookie to the
    lead it was last associated with, and our copy of the other is older), the most recently
    updated wins."""
    token = munchkin_token(cookie)
    if token is None:
        return None
    return (
        Lead.objects.filter(cookies=token)
        .order_by(F("updated_at").desc(nulls_last=True), "-id")
        .values_list("id", "email")
        .first()
    )
