"""The fake Marketo behaves like the real one, as far as a client can tell over HTTP.

Every test talks to a started FakeMarketo with httpx, as the real client will. No database.
"""

import csv
import hashlib
import io
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.fakes.marketo import (
    DEFAULT_ACTIVITY_COLUMNS,
    FakeMarketo,
    SyntheticDataset,
    csv_cell,
)

IDENTITY = "/identity/oauth/token"
CREDENTIALS = {
    "grant_type": "client_credentials",
    "client_id": "dynchat-client",
    "client_secret": "dynchat-secret",
}
JAN = datetime(2024, 1, 1, tzinfo=UTC)
REPO = Path(__file__).resolve().parent.parent


class Marketo:
    """A thin client for the tests: httpx plus a bearer token, answers as parsed JSON."""

    def __init__(self, fake: FakeMarketo):
        self.fake = fake
        self.http = httpx.Client(base_url=fake.base_url, timeout=10)
        self.token: str | None = None

    def authenticate(self) -> dict:
        answer = self.http.get(IDENTITY, params=CREDENTIALS).json()
        self.token = answer["access_token"]
        return answer

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, **params) -> dict:
        return self.http.get(path, params=params, headers=self.auth).json()

    def post(self, path: str, **kwargs) -> dict:
        return self.http.post(path, headers=self.auth, **kwargs).json()

    def create_export(self, entity: str, body: dict) -> dict:
        return self.post(f"/bulk/v1/{entity}/export/create.json", json=body)

    def export(self, entity: str, body: dict, *, until=("Completed", "Failed")) -> dict:
        """Create, enqueue and poll a bulk job; returns its last status."""
        created = self.create_export(entity, body)
        assert created["success"], created
        export_id = created["result"][0]["exportId"]
        enqueued = self.post(f"/bulk/v1/{entity}/export/{export_id}/enqueue.json")
        assert enqueued["success"], enqueued
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            job = self.get(f"/bulk/v1/{entity}/export/{export_id}/status.json")["result"][0]
            if job["status"] in until:
                return job
            time.sleep(0.01)
        raise AssertionError(f"export {export_id} stuck in {job['status']}")

    def file(self, entity: str, export_id: str, **headers) -> httpx.Response:
        return self.http.get(
            f"/bulk/v1/{entity}/export/{export_id}/file.json", headers={**self.auth, **headers}
        )


@pytest.fixture
def make_fake():
    started: list[FakeMarketo] = []

    def make(**options) -> FakeMarketo:
        fake = FakeMarketo(**options)
        fake.start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()
        assert not fake.server_errors, fake.server_errors[0]


@pytest.fixture
def fake(make_fake) -> FakeMarketo:
    return make_fake()


@pytest.fixture
def api(fake) -> Marketo:
    client = Marketo(fake)
    client.authenticate()
    return client


def error_of(answer: dict) -> tuple[str, str]:
    assert answer["success"] is False, answer
    (error,) = answer["errors"]
    return error["code"], error["message"]


def window(start: datetime, end: datetime) -> dict:
    return {
        "startAt": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endAt": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def lead_export(fields, start=JAN, end=JAN + timedelta(days=30), **extra) -> dict:
    return {"fields": fields, "format": "CSV", "filter": {"createdAt": window(start, end)}, **extra}


def parse_csv(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))


# --- Identity ---------------------------------------------------------------------------------


def test_identity_returns_the_same_token_with_its_remaining_lifetime(fake):
    client = Marketo(fake)
    first = client.authenticate()
    assert first["access_token"].endswith(":int")
    assert first["token_type"] == "bearer"
    assert 3590 <= first["expires_in"] <= 3600

    again = client.http.post(IDENTITY, data=CREDENTIALS).json()  # a form body works too

    assert again["access_token"] == first["access_token"]
    assert again["expires_in"] <= first["expires_in"]
    assert fake.identity_calls == 2


def test_bad_credentials_get_http_401_invalid_client(fake):
    answer = httpx.get(fake.base_url + IDENTITY, params={**CREDENTIALS, "client_secret": "nope"})

    assert answer.status_code == 401
    assert answer.json() == {
        "error": "invalid_client",
        "error_description": "Bad client credentials",
    }

    fake.set_credentials("other-client", "other-secret")
    rotated = {**CREDENTIALS, "client_id": "other-client", "client_secret": "other-secret"}
    assert httpx.get(fake.base_url + IDENTITY, params=rotated).status_code == 200
    assert httpx.get(fake.base_url + IDENTITY, params=CREDENTIALS).status_code == 401


def test_a_missing_or_unknown_token_is_601(fake):
    client = Marketo(fake)
    assert error_of(client.get("/rest/v1/activities/types.json"))[0] == "601"
    client.token = "not-a-token:int"
    assert error_of(client.get("/rest/v1/activities/types.json")) == ("601", "Access token invalid")


def test_an_expired_token_answers_602_once_then_601_and_identity_issues_a_new_one(api, fake):
    old = api.token
    fake.expire_tokens()

    assert error_of(api.get("/rest/v1/activities/types.json")) == ("602", "Access token expired")
    assert error_of(api.get("/rest/v1/activities/types.json"))[0] == "601"
    assert error_of(api.get("/rest/v1/activities/types.json"))[0] == "601"

    api.authenticate()
    assert api.token != old
    assert api.get("/rest/v1/activities/types.json")["success"]


def test_tokens_expire_on_the_real_clock(make_fake):
    api = Marketo(make_fake(token_ttl=1))
    assert api.authenticate()["expires_in"] <= 1
    time.sleep(1.05)
    assert error_of(api.get("/rest/v1/activities/types.json"))[0] == "602"


# --- Envelope and transport -------------------------------------------------------------------


def test_errors_are_http_200_envelopes_with_string_codes(api, fake):
    fake.fail("leads.json", code=611, times=2)

    for _ in range(2):
        answer = api.http.get("/rest/v1/leads.json", headers=api.auth)
        assert answer.status_code == 200
        body = answer.json()
        assert body["requestId"]
        assert error_of(body) == ("611", "System error")
    assert error_of(api.get("/rest/v1/leads.json"))[0] == "701"  # the injection is used up
    assert [c["code"] for c in fake.calls_to("leads.json")] == ["611", "611", "701"]


def test_injected_limit_errors_use_the_live_texts(api, fake):
    fake.fail("", code=606)
    fake.fail("", code=615)
    fake.fail("", code=1029)

    assert error_of(api.get("/rest/v1/activities/types.json")) == (
        "606",
        "Max rate limit '100' exceeded with in '20' secs",
    )
    assert error_of(api.get("/rest/v1/activities/types.json")) == (
        "615",
        "Concurrent access limit '10' reached",
    )
    assert error_of(api.get("/rest/v1/activities/types.json")) == (
        "1029",
        "Too many jobs in queue",
    )
    assert api.authenticate()  # identity is never hit by fail("")


def test_unknown_paths_are_610_and_wrong_methods_605(api):
    assert error_of(api.get("/rest/v1/nothing.json"))[0] == "610"
    assert error_of(api.post("/rest/v1/activities/types.json"))[0] == "605"


def test_a_long_query_is_414_and_the_method_get_form_post_is_the_way_around(api, fake):
    lead = fake.add_lead(email="needle@example.com")
    emails = [f"somebody.with.a.long.address.{n}@example.com" for n in range(299)]
    values = ",".join([*emails, "needle@example.com"])  # 300 values, over 8 KB

    too_long = api.http.get(
        "/rest/v1/leads.json",
        params={"filterType": "email", "filterValues": values},
        headers=api.auth,
    )
    assert too_long.status_code == 414

    answer = api.post(
        "/rest/v1/leads.json",
        params={"_method": "GET"},
        data={"filterType": "email", "filterValues": values, "fields": "email"},
    )
    assert answer["result"] == [{"id": lead, "email": "needle@example.com"}]
    assert fake.calls[-1]["form"]["filterType"] == "email"


def test_method_get_form_post_answers_like_get(api, fake):
    fake.add_lead(email="ann@example.com", firstName="Ann")
    params = {"filterType": "email", "filterValues": "ann@example.com", "fields": "firstName"}

    via_get = api.get("/rest/v1/leads.json", **params)
    via_post = api.post("/rest/v1/leads.json", params={"_method": "GET"}, data=params)

    assert via_get["result"] == via_post["result"] == [{"id": 1, "firstName": "Ann"}]


def test_a_json_post_without_the_json_content_type_is_612(api):
    body = '{"fields":["id"],"filter":{}}'
    answer = api.post("/bulk/v1/leads/export/create.json", content=body)
    assert error_of(answer) == ("612", "Invalid Content Type")


# --- Limits -----------------------------------------------------------------------------------


def test_the_rate_limit_is_a_sliding_window_shared_by_all_connections(make_fake):
    fake = make_fake(rate_limit=5, rate_window=1.0)
    first, second = Marketo(fake), Marketo(fake)
    first.authenticate()
    second.token = first.token
    stranger = Marketo(fake)
    stranger.token = "unknown:int"

    for _ in range(3):
        assert error_of(stranger.get("/rest/v1/activities/types.json"))[0] == "601"  # free
    for client in (first, second, first, second, first):
        assert client.get("/rest/v1/activities/types.json")["success"]

    assert error_of(second.get("/rest/v1/activities/types.json")) == (
        "606",
        "Max rate limit '5' exceeded with in '1' secs",
    )
    for _ in range(3):
        first.authenticate()  # identity is exempt from the limit

    time.sleep(1.05)
    assert first.get("/rest/v1/activities/types.json")["success"]


def test_calls_beyond_the_concurrency_limit_get_615(make_fake):
    fake = make_fake(concurrency=3)
    api = Marketo(fake)
    api.authenticate()
    fake.stall("types.json", 0.5, times=3)  # the three admitted calls hold their slots
    start = threading.Barrier(6)
    codes: list[str | None] = []

    def call():
        start.wait()
        answer = api.get("/rest/v1/activities/types.json")
        codes.append(None if answer["success"] else answer["errors"][0]["code"])

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(codes, key=lambda code: code or "") == [None, None, None, "615", "615", "615"]
    assert fake.max_in_flight >= 4
    rejected = [c for c in fake.calls if c["code"] == "615"]
    assert rejected[0]["status"] == 200


def test_the_daily_quota_answers_607(make_fake):
    api = Marketo(make_fake(daily_quota=2))
    api.authenticate()
    assert api.get("/rest/v1/activities/types.json")["success"]
    assert api.get("/rest/v1/activities/types.json")["success"]
    assert error_of(api.get("/rest/v1/activities/types.json")) == ("607", "Daily quota reached")


# --- Lead and company reads -------------------------------------------------------------------


def test_leads_are_found_by_id_email_and_munchkin_cookie(api, fake):
    ann = fake.add_lead(
        email="Ann@Example.com",
        firstName="Ann",
        cookies="_mch-marketo.com-1418418733122-51548",
        created_at=JAN,
    )
    fake.add_lead(email="bob@example.com")

    by_id = api.get("/rest/v1/leads.json", filterType="id", filterValues=str(ann))
    assert by_id["result"] == [
        {
            "id": ann,
            "email": "Ann@Example.com",
            "updatedAt": "2024-01-01T00:00:00Z",
            "createdAt": "2024-01-01T00:00:00Z",
            "firstName": "Ann",
            "lastName": None,
        }
    ]
    by_email = api.get("/rest/v1/leads.json", filterType="email", filterValues="ann@example.com")
    assert [lead["id"] for lead in by_email["result"]] == [ann]
    cookie = "id:561-HYG-937&token:_mch-marketo.com-1418418733122-51548"
    by_cookie = api.get(
        "/rest/v1/leads.json", filterType="cookies", filterValues=cookie, fields="cookies"
    )
    assert by_cookie["result"] == [{"id": ann, "cookies": "_mch-marketo.com-1418418733122-51548"}]
    nobody = api.get("/rest/v1/leads.json", filterType="id", filterValues="999")
    assert nobody["success"] and nobody["result"] == []


def test_lead_lookups_reject_what_marketo_rejects(api, fake):
    for n in range(1001):
        fake.add_lead(email=f"x{n}@example.com", productInterest="Chat")

    def lookup(**params):
        return error_of(api.get("/rest/v1/leads.json", **params))

    assert lookup(filterType="createdAt", filterValues="2024-01-01") == (
        "1011",
        "Lookup field 'createdAt' not supported",
    )
    assert lookup(filterType="id", filterValues="1", fields="email,shoeSize") == (
        "1006",
        "Field 'shoeSize' not found",
    )
    assert lookup(filterType="id", filterValues=",".join(map(str, range(1, 302))))[0] == "1003"
    assert lookup(filterType="productInterest", filterValues="Chat") == (
        "1003",
        "Too many results match the filter",
    )
    assert lookup(filterType="cookies", filterValues="garbage")[0] == "1012"
    assert lookup(filterType="id")[0] == "701"


def test_lead_lookups_page_with_next_page_token(api, fake):
    ids = [fake.add_lead(email=f"p{n}@example.com", accountTier="Gold") for n in range(5)]

    seen, token = [], None
    while True:
        params = {"filterType": "accountTier", "filterValues": "Gold", "batchSize": 2}
        answer = api.get(
            "/rest/v1/leads.json", **params, **({"nextPageToken": token} if token else {})
        )
        seen += [lead["id"] for lead in answer["result"]]
        token = answer.get("nextPageToken")
        if not token:
            break
    assert seen == ids


def test_linked_leads_show_their_company_fields(api, fake):
    fake.add_company(external_company_id="ACME-1", company="Acme", industry="Retail")
    lead = fake.add_lead(email="a@acme.test", company="typed by hand", externalCompanyId="ACME-1")

    answer = api.get(
        "/rest/v1/leads.json", filterType="id", filterValues=str(lead), fields="company,industry"
    )

    assert answer["result"] == [{"id": lead, "company": "Acme", "industry": "Retail"}]
    assert fake.leads[lead]["company"] == "typed by hand"  # stored as given


def test_companies_are_found_by_external_id_id_and_name_with_seq(api, fake):
    acme = fake.add_company(external_company_id="ACME-1", company="Acme", annualRevenue=5e6)
    globex = fake.add_company(external_company_id="GLX-2", company="Globex")

    answer = api.post(
        "/rest/v1/companies.json",
        params={"_method": "GET"},
        data={"filterType": "externalCompanyId", "filterValues": "GLX-2,ACME-1,NOPE"},
    )
    assert [(c["seq"], c["id"], c["externalCompanyId"]) for c in answer["result"]] == [
        (0, globex, "GLX-2"),
        (1, acme, "ACME-1"),
    ]
    assert set(answer["result"][0]) == {"seq", "id", "externalCompanyId", "updatedAt", "createdAt"}
    by_name = api.get(
        "/rest/v1/companies.json", filterType="company", filterValues="Acme", fields="annualRevenue"
    )
    assert by_name["result"] == [{"seq": 0, "id": acme, "annualRevenue": 5e6}]
    assert (
        error_of(api.get("/rest/v1/companies.json", filterType="industry", filterValues="x"))[0]
        == "1011"
    )


def test_describe_endpoints_have_marketo_shapes(api):
    describe = api.get("/rest/v1/leads/describe.json")["result"]
    email = next(f for f in describe if f["rest"]["name"] == "email")
    assert email["displayName"] == "Email Address" and email["dataType"] == "email"
    assert email["soap"]["name"] == "Email"

    (lead2,) = api.get("/rest/v1/leads/describe2.json")["result"]
    assert lead2["name"] == "API Lead"
    assert ["cookies"] in lead2["searchableFields"] and ["productInterest"] in lead2[
        "searchableFields"
    ]
    names = {f["name"] for f in lead2["fields"]}
    assert {"externalCompanyId", "cookies", "lastChatScore", "accountTier"} <= names

    (company,) = api.get("/rest/v1/companies/describe.json")["result"]
    assert company["idField"] == "id" and company["dedupeFields"] == ["externalCompanyId"]
    assert company["searchableFields"] == [["externalCompanyId"], ["id"], ["company"]]


def test_activity_types_include_the_standard_ids(api):
    types = {t["id"]: t for t in api.get("/rest/v1/activities/types.json")["result"]}

    assert {1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 22, 24, 25, 32, 37, 46, 104} <= set(types)
    assert types[2]["primaryAttribute"] == {"name": "Webform ID", "dataType": "integer"}
    assert {"name": "Form Fields", "dataType": "text"} in types[2]["attributes"]


# --- Activity paging --------------------------------------------------------------------------


def page_all(api, path, token, **params) -> tuple[list[dict], str]:
    """Follow moreResult; returns every row and the token to store for the next poll."""
    rows = []
    for _ in range(100):
        answer = api.get(path, nextPageToken=token, **params)
        assert answer["success"], answer
        assert "nextPageToken" in answer
        rows += answer.get("result", [])
        token = answer["nextPageToken"]
        if not answer["moreResult"]:
            return rows, token
    raise AssertionError("moreResult never became false")


def test_activity_paging_returns_later_activities_exactly_once(api, fake):
    lead = fake.add_lead(email="a@example.com", created_at=JAN)
    for hour in (3, 1, 2):
        fake.add_activity(
            lead_id=lead,
            activity_type_id=1,
            at=JAN + timedelta(hours=hour),
            primary_attribute_value="/pricing",
            attributes={"Webpage URL": "/pricing", "Query Parameters": ""},
        )
    token = api.get("/rest/v1/activities/pagingtoken.json", sinceDatetime="2024-01-01T00:30:00Z")
    assert token["nextPageToken"].endswith("=")

    rows, stored = page_all(
        api, "/rest/v1/activities.json", token["nextPageToken"], activityTypeIds="1,12", batchSize=2
    )

    assert [r["activityDate"] for r in rows] == [
        "2024-01-01T01:00:00Z",
        "2024-01-01T02:00:00Z",
        "2024-01-01T03:00:00Z",
    ]  # ascending date; the New Lead at 00:00 is before sinceDatetime
    assert rows[0]["attributes"] == [
        {"name": "Webpage URL", "value": "/pricing"},
        {"name": "Query Parameters", "value": ""},
    ]
    assert all(isinstance(r["marketoGUID"], str) for r in rows)

    late = fake.add_activity(
        lead_id=lead, activity_type_id=1, at=JAN + timedelta(hours=1, minutes=30)
    )
    fake.add_activity(lead_id=lead, activity_type_id=2, at=JAN + timedelta(hours=5))
    again, _ = page_all(api, "/rest/v1/activities.json", stored, activityTypeIds=["1", "12"])
    assert [r["marketoGUID"] for r in again] == [late]  # older date, but new: still delivered

    empty = api.get("/rest/v1/activities.json", nextPageToken=stored, activityTypeIds=46)
    assert "result" not in empty and empty["moreResult"] is False
    too_many = api.get(
        "/rest/v1/activities.json",
        nextPageToken=stored,
        activityTypeIds="1,2,3,6,7,8,9,10,11,12,13",
    )
    assert error_of(too_many)[0] == "1003"


def test_short_and_empty_pages_still_deliver_every_activity(make_fake):
    fake = make_fake(partial_pages=True)
    api = Marketo(fake)
    api.authenticate()
    lead = fake.add_lead(email="a@example.com", created_at=JAN)
    guids = [
        fake.add_activity(lead_id=lead, activity_type_id=1, at=JAN + timedelta(minutes=m))
        for m in range(25)
    ]
    token = api.get("/rest/v1/activities/pagingtoken.json", sinceDatetime="2024-01-01")[
        "nextPageToken"
    ]

    sizes, rows = [], []
    while True:
        answer = api.get(
            "/rest/v1/activities.json", nextPageToken=token, activityTypeIds=1, batchSize=10
        )
        sizes.append(len(answer.get("result", [])))
        rows += answer.get("result", [])
        token = answer["nextPageToken"]
        if not answer["moreResult"]:
            break

    assert [r["marketoGUID"] for r in rows] == guids
    assert 0 in sizes[:-1] and any(0 < size < 10 for size in sizes)


def test_lead_changes_list_new_leads_and_changes_of_the_watched_fields(api, fake):
    lead = fake.add_lead(email="a@example.com", firstName="Ann", created_at=JAN)
    fake.update_lead(lead, firstName="Anna", title="CEO", at=JAN + timedelta(hours=1))
    token = api.get("/rest/v1/activities/pagingtoken.json", sinceDatetime="2024-01-01T00:00:00Z")[
        "nextPageToken"
    ]

    assert (
        error_of(api.get("/rest/v1/activities/leadchanges.json", nextPageToken=token))[0] == "701"
    )
    rows, _ = page_all(api, "/rest/v1/activities/leadchanges.json", token, fields="firstName,email")

    assert [r["activityTypeId"] for r in rows] == [12, 13]
    assert rows[1]["fields"] == [
        {"id": 3, "name": "firstName", "newValue": "Anna", "oldValue": "Ann"}
    ]
    assert {"name": "Old Value", "value": "Ann"} in rows[1]["attributes"]
    assert fake.leads[lead]["updatedAt"] == JAN + timedelta(hours=1)


def test_deleted_leads_appear_only_in_deletedleads(api, fake):
    lead = fake.add_lead(
        email="gone@example.com", firstName="Gone", lastName="Girl", created_at=JAN
    )
    fake.add_activity(lead_id=lead, activity_type_id=1, at=JAN + timedelta(minutes=1))
    fake.delete_lead(lead, at=JAN + timedelta(hours=1))
    token = api.get("/rest/v1/activities/pagingtoken.json", sinceDatetime="2024-01-01")[
        "nextPageToken"
    ]

    deleted, _ = page_all(api, "/rest/v1/activities/deletedleads.json", token)
    others, _ = page_all(api, "/rest/v1/activities.json", token, activityTypeIds="1,12,37")

    assert [(r["leadId"], r["activityTypeId"], r["primaryAttributeValue"]) for r in deleted] == [
        (lead, 37, "Gone Girl")
    ]
    assert others == []  # its activities went with it; 37 is never in activities.json
    assert lead not in fake.leads


# --- Bulk extract -----------------------------------------------------------------------------


def test_a_lead_export_goes_through_every_status_and_serves_its_file_with_ranges(make_fake):
    fake = make_fake(bulk_status_delay=0.05)
    api = Marketo(fake)
    api.authenticate()
    for n in range(20):
        fake.add_lead(
            email=f"l{n}@example.com", firstName=f"L{n}", created_at=JAN + timedelta(days=n)
        )
    fake.add_lead(email="late@example.com", created_at=JAN + timedelta(days=40))

    created = api.create_export("leads", lead_export(["id", "email", "firstName", "createdAt"]))
    job = created["result"][0]
    assert job["status"] == "Created" and job["format"] == "CSV"
    export_id = job["exportId"]
    assert api.file("leads", export_id).status_code == 404  # not Completed yet: plain text 404
    assert (
        api.post(f"/bulk/v1/leads/export/{export_id}/enqueue.json")["result"][0]["status"]
        == "Queued"
    )
    seen = []
    while not seen or seen[-1]["status"] != "Completed":
        seen.append(api.get(f"/bulk/v1/leads/export/{export_id}/status.json")["result"][0])
        time.sleep(0.01)
    assert [s for s in dict.fromkeys(s["status"] for s in seen)] == [
        "Queued",
        "Processing",
        "Completed",
    ]
    done = seen[-1]
    assert {"queuedAt", "startedAt", "finishedAt"} <= set(done)
    assert done["numberOfRecords"] == 20

    whole = api.file("leads", export_id)
    assert whole.status_code == 200 and whole.headers["Accept-Ranges"] == "bytes"
    assert len(whole.content) == done["fileSize"]
    assert "sha256:" + hashlib.sha256(whole.content).hexdigest() == done["fileChecksum"]
    assert whole.content.startswith(
        b"id,email,firstName,createdAt\n1,l0@example.com,L0,2024-01-01T00:00:00Z\n"
    )

    head = api.file("leads", export_id, Range="bytes=0-9")
    assert head.status_code == 206
    assert head.headers["Content-Range"] == f"bytes 0-9/{done['fileSize']}"
    assert head.headers["Content-Length"] == "10" and head.content == whole.content[:10]
    tail = api.file("leads", export_id, Range="bytes=10-")
    assert tail.status_code == 206 and head.content + tail.content == whole.content

    listed = api.get("/bulk/v1/leads/export.json", status="Completed,Failed")
    assert [j["exportId"] for j in listed["result"]] == [export_id]


def test_export_requests_are_validated_like_marketo(make_fake):
    fake = make_fake(updated_at_filter=False)
    api = Marketo(fake)
    api.authenticate()

    def create(entity, body):
        return error_of(api.create_export(entity, body))

    assert (
        create("leads", lead_export(["id"], JAN, JAN + timedelta(days=31, seconds=1)))[0] == "1003"
    )
    assert create("leads", lead_export(["id", "shoeSize"])) == (
        "1006",
        "Field 'shoeSize' not found",
    )
    assert create("leads", {"fields": ["id"], "filter": {}})[0] == "1003"
    assert create("leads", {"filter": {"createdAt": window(JAN, JAN)}})[0] == "1003"
    two = {"createdAt": window(JAN, JAN), "updatedAt": window(JAN, JAN)}
    assert create("leads", {"fields": ["id"], "filter": two})[0] == "1003"
    assert (
        create("leads", {"fields": ["id"], "filter": {"updatedAt": window(JAN, JAN)}})[0] == "1035"
    )
    assert create("activities", {"filter": {"activityTypeIds": [1]}})[0] == "1003"
    deleted = {"createdAt": window(JAN, JAN), "activityTypeIds": [37]}
    assert create("activities", {"filter": deleted})[0] == "1003"
    exactly_31_days = lead_export(["id"], JAN, JAN + timedelta(days=31))
    assert api.create_export("leads", exactly_31_days)["success"]
    assert fake.calls_to("create.json")[0]["json"]["fields"] == ["id"]


def test_export_files_write_awkward_values_exactly_as_marketo_does(api, fake):
    awkward = {
        "firstName": "Line one\nline two",
        "lastName": 'Say "cheese"',
        "company": "Comma, Inc",
        "title": "Nul\x00Byte",
        "city": "\u6771\u4eac\u2028\u5927\u962a",
        "state": "null",
        "phone": None,
        "country": "",
        "leadSource": "Carriage\r\nReturn",
        "unsubscribed": True,
        "leadScore": 0,
        "annualRevenue": 1234.5,
    }
    fake.add_lead(email="odd@example.com", created_at=JAN + timedelta(hours=1), **awkward)
    fields = ["id", *awkward, "createdAt"]

    job = api.export("leads", lead_export(fields))
    content = api.file("leads", job["exportId"]).content

    assert b',"Say ""cheese""",' in content and b",null,null," in content
    assert b"\r\n" in content and content.endswith(b"\n") and not content.endswith(b"\r\n")
    header, row = parse_csv(content)
    assert header == fields
    assert dict(zip(fields, row, strict=True)) == {
        "id": "1",
        "firstName": "Line one\nline two",
        "lastName": 'Say "cheese"',
        "company": "Comma, Inc",
        "title": "Nul\x00Byte",
        "city": "\u6771\u4eac\u2028\u5927\u962a",
        "state": "null",  # a real "null" cannot be told from an empty value
        "phone": "null",
        "country": "null",
        "leadSource": "Carriage\r\nReturn",
        "unsubscribed": "true",
        "leadScore": "0",
        "annualRevenue": "1234.5",
        "createdAt": "2024-01-01T01:00:00Z",
    }


def test_activity_exports_write_attributes_as_a_json_object_by_display_name(api, fake):
    lead = fake.add_lead(email="a@example.com", created_at=JAN)
    guid = fake.add_activity(
        lead_id=lead,
        activity_type_id=104,
        at=JAN + timedelta(hours=2),
        primary_attribute_value='Webinar, "Live"',
        primary_attribute_value_id=1670,
        attributes={"New Status": "Attended", "Success": True, "Old Status ID": 1, "Reason": ""},
        campaign_id=8497,
    )
    body = {
        "filter": {"createdAt": window(JAN, JAN + timedelta(days=1)), "activityTypeIds": [104, 1]}
    }

    job = api.export("activities", body)
    header, *rows = parse_csv(api.file("activities", job["exportId"]).content)

    assert header == list(DEFAULT_ACTIVITY_COLUMNS)
    assert rows == [
        [
            guid,
            str(lead),
            "2024-01-01T02:00:00Z",
            "104",
            "8497",
            "1670",
            'Webinar, "Live"',
            '{"New Status":"Attended","Success":true,"Old Status ID":1}',
        ]
    ]


def test_a_full_queue_and_a_second_enqueue_answer_1029(make_fake):
    fake = make_fake(max_queue=2, max_processing=1, bulk_status_delay=30)
    api = Marketo(fake)
    api.authenticate()
    ids = [
        api.create_export("leads", lead_export(["id"]))["result"][0]["exportId"] for _ in range(3)
    ]

    assert api.post(f"/bulk/v1/leads/export/{ids[0]}/enqueue.json")["success"]
    assert error_of(api.post(f"/bulk/v1/leads/export/{ids[0]}/enqueue.json")) == (
        "1029",
        "Job already queued",
    )
    assert api.post(f"/bulk/v1/leads/export/{ids[1]}/enqueue.json")["success"]
    assert error_of(api.post(f"/bulk/v1/leads/export/{ids[2]}/enqueue.json")) == (
        "1029",
        "Too many jobs in queue",
    )

    cancelled = api.post(f"/bulk/v1/leads/export/{ids[0]}/cancel.json")["result"][0]
    assert cancelled["status"] == "Cancelled"
    assert api.post(f"/bulk/v1/leads/export/{ids[2]}/enqueue.json")["success"]


def test_the_daily_export_quota_stops_new_jobs(make_fake):
    end = JAN + timedelta(days=31)
    dataset = SyntheticDataset(leads=20_000, companies=50, activities=0, start=JAN, end=end)
    fake = make_fake(dataset=dataset, export_quota_bytes=1024 * 1024)
    api = Marketo(fake)
    api.authenticate()
    created = api.create_export("leads", lead_export(["id", "email", "company", "cookies"]))
    export_id = created["result"][0]["exportId"]  # created before the quota is used

    job = api.export("leads", lead_export(["id", "email", "company", "cookies"], JAN, end))
    assert job["fileSize"] > 1024 * 1024

    message = "Export daily quota 1MB exceeded"
    assert error_of(api.create_export("leads", lead_export(["id"]))) == ("1029", message)
    assert error_of(api.post(f"/bulk/v1/leads/export/{export_id}/enqueue.json")) == (
        "1029",
        message,
    )


def test_a_cut_download_resumes_with_a_range_request(api, fake):
    for n in range(30):
        fake.add_lead(email=f"l{n}@example.com", created_at=JAN + timedelta(hours=n))
    job = api.export("leads", lead_export(["id", "email", "createdAt"]))
    fake.cut_next_download(100)

    url = f"/bulk/v1/leads/export/{job['exportId']}/file.json"
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        api.http.stream("GET", url, headers=api.auth) as answer,
    ):
        assert answer.headers["Content-Length"] == str(job["fileSize"])
        for chunk in answer.iter_raw():
            received += chunk
    assert len(received) == 100

    rest = api.file("leads", job["exportId"], Range=f"bytes={len(received)}-")
    assert rest.status_code == 206
    assert "sha256:" + hashlib.sha256(received + rest.content).hexdigest() == job["fileChecksum"]


def test_a_completed_file_can_be_missing_once(api, fake):
    fake.add_lead(email="a@example.com", created_at=JAN)
    job = api.export("leads", lead_export(["id"]))
    fake.file_missing_once()

    missing = api.file("leads", job["exportId"], Range="bytes=0-0")
    assert missing.status_code == 404 and missing.headers["Content-Type"].startswith("text/plain")
    assert api.file("leads", job["exportId"], Range="bytes=0-0").status_code == 206


def test_a_job_can_be_made_to_fail(api, fake):
    fake.fail_next_job("Disk on fire")
    failed = api.export("leads", lead_export(["id"]))
    assert failed["status"] == "Failed" and failed["errorMsg"] == "Disk on fire"
    assert "fileSize" not in failed
    assert api.export("leads", lead_export(["id"]))["status"] == "Completed"


# --- Transport faults -------------------------------------------------------------------------


def test_outages_gateway_errors_stalls_and_denied_permissions(api, fake):
    fake.http_error("types.json", status=502)
    answer = api.http.get("/rest/v1/activities/types.json", headers=api.auth)
    assert answer.status_code == 502 and answer.text.startswith("502")
    assert api.get("/rest/v1/activities/types.json")["success"]

    fake.outage(0.2)
    assert httpx.get(fake.base_url + IDENTITY, params=CREDENTIALS).status_code == 503
    time.sleep(0.25)
    assert api.get("/rest/v1/activities/types.json")["success"]

    fake.stall("types.json", 0.5)
    with pytest.raises(httpx.ReadTimeout):
        api.http.get("/rest/v1/activities/types.json", headers=api.auth, timeout=0.1)

    fake.deny_permission("/bulk/v1/activities/")
    assert error_of(api.get("/bulk/v1/activities/export.json")) == ("603", "Access denied")
    assert api.get("/bulk/v1/leads/export.json")["success"]


# --- Synthetic data ---------------------------------------------------------------------------


def test_synthetic_windows_export_every_lead_once_and_match_rest_reads(make_fake):
    end = JAN + timedelta(days=100)
    dataset = SyntheticDataset(
        leads=10_000,
        companies=97,
        activities=5_000,
        start=JAN,
        end=end,
        activity_start=end - timedelta(days=20),
    )
    fake = make_fake(dataset=dataset)
    api = Marketo(fake)
    api.authenticate()
    fields = ["id", "email", "firstName", "lastName", "company", "externalCompanyId"]
    fields += ["cookies", "unsubscribed", "title", "createdAt"]

    rows, start = [], JAN
    while start < end:  # 31-day windows minus a second, as the official sample does
        stop = min(start + timedelta(days=31, seconds=-1), end)
        job = api.export("leads", lead_export(fields, start, stop))
        assert job["numberOfRecords"] == len(dataset.lead_id_range(start, stop)) > 0
        header, *window_rows = parse_csv(api.file("leads", job["exportId"]).content)
        assert header == fields and len(window_rows) == job["numberOfRecords"]
        rows += window_rows
        start += timedelta(days=31)

    assert [int(r[0]) for r in rows] == list(range(1, 10_001))
    row = dict(zip(fields, rows[4711], strict=True))
    assert row["email"] == "lead4712@company57.example" and row["externalCompanyId"] == "EXT-57"

    params = {"filterType": "email", "filterValues": row["email"], "fields": ",".join(fields)}
    (by_email,) = api.get("/rest/v1/leads.json", **params)["result"]
    assert {k: csv_cell(v) for k, v in by_email.items()} == {k: csv_cell(v) for k, v in row.items()}
    cookie = f"id:123-ABC-456&token:{row['cookies']}"
    by_cookie = api.get("/rest/v1/leads.json", filterType="cookies", filterValues=cookie)
    assert by_cookie["result"][0]["id"] == 4712
    params = {"filterType": "externalCompanyId", "filterValues": "EXT-57", "fields": "company"}
    (company,) = api.get("/rest/v1/companies.json", **params)["result"]
    assert company == {"seq": 0, "id": 57, "company": dataset.lead(4712)["company"]}

    recent = window(end - timedelta(days=20), end)
    everything = api.export("activities", {"filter": {"createdAt": recent}})
    some = api.export("activities", {"filter": {"createdAt": recent, "activityTypeIds": [1, 13]}})
    assert everything["numberOfRecords"] == 5_000
    assert some["numberOfRecords"] == sum(1 for k in range(1, 5_001) if k % 7 in (0, 5))
    _, *activity_rows = parse_csv(api.file("activities", some["exportId"]).content)
    assert {r[3] for r in activity_rows} == {"1", "13"}


def test_the_command_line_serves_until_terminated():
    command = [
        sys.executable, "-m", "tests.fakes.marketo", "--port", "0",
        "--synthetic-leads", "1000", "--synthetic-companies", "10", "--synthetic-activities", "100",
        "--lead-days", "30", "--activity-days", "10", "--rate-limit", "50",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        token = httpx.get(base_url + IDENTITY, params=CREDENTIALS).json()["access_token"]
        answer = httpx.get(
            base_url + "/rest/v1/leads.json",
            params={"filterType": "id", "filterValues": "5", "fields": "email"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert answer["result"] == [{"id": 5, "email": "lead5@company6.example"}]
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
