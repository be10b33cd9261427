"""Export files and REST pages into PostgreSQL: every nasty value Marketo writes arrives intact,
and writing the same records twice leaves the same rows."""

import json
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from django.utils import timezone

from marketo_sync.ingest import (
    ACTIVITY_FIELDS,
    Staging,
    insert_activities,
    rest_value,
    split_header,
    upsert_companies,
    upsert_leads,
)
from marketo_sync.models import Activity, Company, Lead

pytestmark = pytest.mark.django_db

TYPES = {"firstName": "string", "leadScore": "integer", "unsubscribed": "boolean", "notes": "text"}
PICKED = ["id", "email", "createdAt", "updatedAt", "externalCompanyId", "cookies", *TYPES]

NASTY_LEADS = (
    b"id,email,createdAt,updatedAt,externalCompanyId,cookies,firstName,leadScore,unsubscribed,notes\n"
    # a quoted comma and a doubled quote
    b"1,ann@acme.test,2024-01-02T03:04:05Z,2024-01-03T00:00:00Z,EXT-1,_mch-acme.test-1-1,"
    b'"Ann, ""the boss""",42,true,plain\n'
    # an embedded newline and CRLF, non-ASCII and a line separator, the literal null
    b'2,null,2024-01-02T03:04:05Z,2024-01-03T00:00:00Z,null,null,"\xe5\xbc\xa0\xe4\xbc\x9f",'
    b'7.9,false,"line one\nline two\r\nline\xe2\x80\xa8three"\n'
    # a NUL byte inside a value, a quoted "null", an empty field
    b'3,c\x00arl@acme.test,2024-01-02T03:04:05+0000,2024-01-04T00:00:00Z,EXT-1,,"null",,null,x\n'
)


def ingest_leads(body: bytes, *, chunk: int = 7) -> int:
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    header, rest = split_header(iter(pieces))
    with transaction.atomic(), connection.cursor() as cursor:
        staging = Staging(cursor, header)
        staging.copy_csv(rest)
        return upsert_leads(staging, picked=PICKED, types=TYPES)


def test_it_keeps_every_nasty_value_of_a_lead_export():
    assert ingest_leads(NASTY_LEADS) == 3
    ann, zhang, carl = Lead.objects.order_by("id")
    assert ann.attributes == {
        "firstName": 'Ann, "the boss"',
        "leadScore": 42,
        "unsubscribed": True,
        "notes": "plain",
    }
    assert ann.email == "ann@acme.test"
    assert ann.external_company_id == "EXT-1"
    assert ann.cookies == "_mch-acme.test-1-1"
    assert ann.created_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    # null means "no value": not the string "null"
    assert zhang.email == ""
    assert zhang.external_company_id == ""
    # integers exported with decimals keep their whole part, as Marketo's own taps do
    assert zhang.attributes == {
        "firstName": "张伟",
        "leadScore": 7,
        "unsubscribed": False,
        "notes": "line one\nline two\r\nline\u2028three",
    }
    # NUL bytes cannot be stored and are dropped; a quoted "null" is no value either
    assert carl.email == "carl@acme.test"
    assert carl.attributes == {"notes": "x"}
    assert carl.created_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_ingesting_the_same_file_twice_leaves_the_same_rows():
    ingest_leads(NASTY_LEADS)
    before = list(Lead.objects.order_by("id").values())
    ingest_leads(NASTY_LEADS, chunk=1000)
    assert list(Lead.objects.order_by("id").values()) == before


def test_an_older_copy_of_a_lead_never_overwrites_a_newer_one():
    ingest_leads(NASTY_LEADS)
    older = (
        b"id,email,createdAt,updatedAt,firstName\n"
        b"1,old@acme.test,2024-01-02T03:04:05Z,2024-01-02T23:00:00Z,Old\n"
    )
    ingest_leads(older)
    assert Lead.objects.get(id=1).email == "ann@acme.test"


def test_a_lead_from_rest_equals_the_same_lead_from_an_export():
    ingest_leads(NASTY_LEADS)
    exported = Lead.objects.get(id=1)
    Lead.objects.all().delete()
    record = {
        "id": 1,
        "email": "ann@acme.test",
        "createdAt": "2024-01-02T03:04:05Z",
        "updatedAt": "2024-01-03T00:00:00Z",
        "externalCompanyId": "EXT-1",
        "cookies": "_mch-acme.test-1-1",
        "firstName": 'Ann, "the boss"',
        "leadScore": 42,
        "unsubscribed": True,
        "notes": "plain",
    }
    with transaction.atomic(), connection.cursor() as cursor:
        staging = Staging(cursor, PICKED)
        staging.copy_rows([[rest_value(record.get(f)) for f in PICKED]])
        upsert_leads(staging, picked=PICKED, types=TYPES)
    from_rest = Lead.objects.get(id=1)
    assert [getattr(from_rest, f.attname) for f in Lead._meta.fields] == [
        getattr(exported, f.attname) for f in Lead._meta.fields
    ]


def test_activities_keep_their_attributes_and_are_stored_once():
    attributes = json.dumps({"Webpage URL": "/pricing?a=1,b", "Client IP Address": "10.0.0.1"})
    quoted = attributes.replace('"', '""')
    body = (
        ",".join(ACTIVITY_FIELDS).encode()
        + b"\n"
        + f'101,1,2024-06-01T10:00:00Z,1,null,71,"/pricing ""quoted""","{quoted}"\n'.encode()
        + b'102,1,2024-06-01T10:00:01Z,12,null,null,null,"{}"\n'
    )
    for _ in range(2):
        header, rest = split_header(iter([body]))
        with transaction.atomic(), connection.cursor() as cursor:
            staging = Staging(cursor, header)
            assert staging.copy_csv(rest) == 2
            insert_activities(staging)
    visit, new_lead = Activity.objects.order_by("marketo_guid")
    assert Activity.objects.count() == 2
    assert visit.attributes == {"Webpage URL": "/pricing?a=1,b", "Client IP Address": "10.0.0.1"}
    assert visit.primary_attribute_value == '/pricing "quoted"'
    assert visit.primary_attribute_value_id == 71
    assert visit.campaign_id is None
    assert new_lead.activity_type_id == 12
    assert new_lead.attributes == {}


def test_companies_take_their_name_and_typed_attributes():
    fields = ["id", "externalCompanyId", "createdAt", "updatedAt", "company", "numberOfEmployees"]
    record = {"id": 9, "externalCompanyId": "EXT-9", "company": "Acme", "numberOfEmployees": 250}
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        staging = Staging(cursor, fields)
        staging.copy_rows([[rest_value(record.get(f)) for f in fields]])
        upsert_companies(
            staging, picked=fields, types={"numberOfEmployees": "integer"}, synced_at=now
        )
    company = Company.objects.get()
    assert (company.name, company.external_company_id) == ("Acme", "EXT-9")
    assert company.attributes == {"company": "Acme", "numberOfEmployees": 250}
    assert company.synced_at == now


def test_a_field_name_longer_than_a_postgresql_identifier_keeps_its_whole_name():
    long_name = "customFieldWithAVeryLongApiNameThatMarketoAllowsButPostgresTruncates70"
    assert len(long_name) > 63
    fields = ["id", "updatedAt", long_name, "leadScore"]
    with transaction.atomic(), connection.cursor() as cursor:
        staging = Staging(cursor, fields)
        staging.copy_rows([["5", "2024-01-01T00:00:00Z", "kept", "12"]])
        upsert_leads(staging, picked=fields, types={"leadScore": "integer"})
    assert Lead.objects.get(id=5).attributes == {long_name: "kept", "leadScore": 12}
