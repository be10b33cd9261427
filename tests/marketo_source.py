"""A small Marketo instance with every kind of awkward value, and the check that our database
holds exactly what it holds."""

from datetime import UTC, datetime, timedelta

from django.conf import settings

from marketo_sync.models import Activity, Company, Lead, SyncSettings

NASTY_NAMES = [
    'Ann, "the boss"',
    "line one\nline two",
    "Zoë 张伟 \u2028 ok",
    "semi;colon\ttab",
    "carriage\r\nreturn",
    "nul\x00byte",
]


def populate(fake, *, leads: int = 40, now: datetime | None = None) -> None:
    """Leads created over the last ~100 days (so several 31-day windows), companies, and
    activities inside and outside the activity window."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    for c in range(1, 6):
        fake.add_company(
            external_company_id=f"EXT-{c}",
            company=f"Company {c}, Inc.",
            industry="Software" if c % 2 else "Retail",
            numberOfEmployees=c * 100,
        )
    for i in range(1, leads + 1):
        created = now - timedelta(days=100) + timedelta(hours=59 * i, minutes=7)
        fields = {
            "email": f"lead{i}@example.test",
            "firstName": NASTY_NAMES[i % len(NASTY_NAMES)],
            "lastName": f"Lästname {i}",
            "leadScore": i * 3,
            "country": "Germany" if i % 3 else None,
            "cookies": f"_mch-example.test-{1700000000000 + i}-{i}",
        }
        if i % 4:
            fields["externalCompanyId"] = f"EXT-{i % 5 + 1}"
        lead_id = fake.add_lead(created_at=created, **fields)
        fake.add_activity(
            lead_id=lead_id,
            activity_type_id=1,
            at=min(created + timedelta(hours=1), now - timedelta(minutes=10)),
            primary_attribute_value="/pricing",
            attributes={"Webpage URL": "/pricing?q=a,b", "Referrer URL": 'he said "hi"'},
        )
    # An activity older than the window, and one of a type we do not sync (Send Email).
    fake.add_activity(lead_id=1, activity_type_id=1, at=now - timedelta(days=95))
    fake.add_activity(lead_id=2, activity_type_id=6, at=now - timedelta(days=2))


def _expected_value(value):
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = value.replace("\x00", "")
        # Marketo writes no value as the literal null: a real "null" cannot survive.
        return None if value == "null" else value
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def expected_state(fake, *, now: datetime | None = None) -> dict:
    """What our tables must hold for the fake's current data."""
    sync_settings = SyncSettings.load()
    leads = {}
    with fake._lock:
        source_leads = {i: fake.store.lead_values(lead) for i, lead in fake.store.leads.items()}
        companies = dict(fake.store.companies)
        activities = list(fake.store.activities)
    for lead_id, lead in source_leads.items():
        attributes = {}
        for name in sync_settings.person_fields:
            value = _expected_value(lead.get(name))
            if value is not None:
                attributes[name] = value
        leads[lead_id] = {
            "email": _expected_value(lead.get("email")) or "",
            "external_company_id": lead.get("externalCompanyId") or "",
            "cookies": lead.get("cookies") or "",
            "created_at": lead["createdAt"],
            "updated_at": lead["updatedAt"],
            "attributes": attributes,
        }
    linked = {lead["external_company_id"] for lead in leads.values()}
    expected_companies = {}
    for company_id, company in companies.items():
        if company["externalCompanyId"] not in linked:
            continue
        attributes = {}
        for name in sync_settings.company_fields:
            value = _expected_value(company.get(name))
            if value is not None:
                attributes[name] = value
        expected_companies[company_id] = {
            "external_company_id": company["externalCompanyId"],
            "name": company.get("company") or "",
            "attributes": attributes,
        }
    cutoff = (now or datetime.now(UTC)) - timedelta(days=settings.MARKETO_ACTIVITY_DAYS)
    expected_activities = {}
    for activity in activities:
        if activity["activityTypeId"] not in sync_settings.activity_type_ids:
            continue
        if activity["activityDate"] < cutoff or activity["leadId"] not in leads:
            continue
        expected_activities[activity["marketoGUID"]] = {
            "lead_id": activity["leadId"],
            "activity_type_id": activity["activityTypeId"],
            "activity_date": activity["activityDate"],
            "attributes": {
                a["name"]: a["value"]
                for a in activity.get("attributes") or []
                if a.get("value") not in (None, "")
            },
        }
    return {"leads": leads, "companies": expected_companies, "activities": expected_activities}


def stored_state() -> dict:
    return {
        "leads": {
            lead.id: {
                "email": lead.email,
                "external_company_id": lead.external_company_id,
                "cookies": lead.cookies,
                "created_at": lead.created_at,
                "updated_at": lead.updated_at,
                "attributes": lead.attributes,
            }
            for lead in Lead.objects.all()
        },
        "companies": {
            company.id: {
                "external_company_id": company.external_company_id,
                "name": company.name,
                "attributes": company.attributes,
            }
            for company in Company.objects.all()
        },
        "activities": {
            activity.marketo_guid: {
                "lead_id": activity.lead_id,
                "activity_type_id": activity.activity_type_id,
                "activity_date": activity.activity_date,
                "attributes": activity.attributes,
            }
            for activity in Activity.objects.all()
        },
    }


def assert_matches_source(fake) -> None:
    expected, stored = expected_state(fake), stored_state()
    for entity in ("leads", "companies", "activities"):
        assert set(stored[entity]) == set(expected[entity]), entity
        for key, row in expected[entity].items():
            assert stored[entity][key] == row, (entity, key)
