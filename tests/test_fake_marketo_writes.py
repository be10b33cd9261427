"""The fake Marketo's write-back side behaves as the reference says Marketo does: programs,
channels and campaigns to pick from, lead upserts, cookie association, custom activity types
and activities, program statuses and campaign requests.

The real client (MarketoClient) drives the fake over HTTP; raw httpx is used where the client
cannot express the fault (a wrong content type, a flood of calls). No database.
"""

from urllib.parse import quote

import httpx
import pytest

from marketo_sync.errors import MarketoError

IDENTITY = "/identity/oauth/token"


def raw_http(marketo) -> httpx.Client:
    """httpx with a valid token of the fake's client, for calls the real client would retry."""
    http = httpx.Client(base_url=marketo.base_url, timeout=10)
    token = http.get(
        IDENTITY,
        params={
            "grant_type": "client_credentials",
            "client_id": marketo._client_id,
            "client_secret": "s3cret",
        },
    ).json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def refused(call) -> MarketoError:
    with pytest.raises(MarketoError) as stopped:
        call()
    return stopped.value


# --- programs and channels (asset API) ---------------------------------------------------------


def test_programs_are_browsed_200_at_most_with_an_offset(marketo, marketo_client):
    ids = [marketo.add_program(f"Program {i}", channel="Webinar") for i in range(210)]

    first = marketo_client.get("/rest/asset/v1/programs.json", {"maxReturn": 200})
    rest = marketo_client.get("/rest/asset/v1/programs.json", {"maxReturn": 200, "offset": 200})
    default = marketo_client.get("/rest/asset/v1/programs.json")

    assert [p["id"] for p in first["result"] + rest["result"]] == ids
    assert len(default["result"]) == 20
    program = first["result"][0]
    assert program["id"] == 1001
    assert program["name"] == "Program 0"
    assert program["channel"] == "Webinar"
    assert program["type"] == "Default"
    assert program["workspace"] == "Default"
    assert program["status"] == ""
    assert program["folder"]["folderName"] == "Marketing Activities"
    assert program["createdAt"].endswith("Z")
    assert first["warnings"] == []


def test_browsing_past_the_last_program_warns_instead_of_answering_a_result(
    marketo, marketo_client
):
    marketo.add_program("Only one", channel="Webinar")

    answer = marketo_client.get("/rest/asset/v1/programs.json", {"maxReturn": 200, "offset": 1})

    assert answer["success"] is True
    assert "result" not in answer
    assert answer["warnings"] == ["No assets found for the given search criteria."]


def test_more_than_200_programs_a_page_is_refused(marketo, marketo_client):
    error = refused(lambda: marketo_client.get("/rest/asset/v1/programs.json", {"maxReturn": 201}))
    assert (error.code, error.message) == ("1003", "Invalid maxReturn '201'")


def test_channels_list_their_progression_statuses(marketo, marketo_client):
    chat = marketo.add_channel(
        "Chat",
        ["Started Chat", {"name": "Internal", "hidden": True}, {"name": "Booked", "success": True}],
    )

    channels = marketo_client.get("/rest/asset/v1/channels.json")["result"]

    assert [c["name"] for c in channels] == ["Webinar", "Content", "Chat"]
    (mine,) = [c for c in channels if c["id"] == chat]
    assert mine["applicableProgramType"] == "program"
    assert mine["progressionStatuses"] == [
        {
            "name": "Not in Program",
            "step": 0,
            "success": False,
            "hidden": False,
            "type": "inactive",
            "description": None,
        },
        {
            "name": "Started Chat",
            "step": 10,
            "success": False,
            "hidden": False,
            "type": "neutral",
            "description": None,
        },
        {
            "name": "Internal",
            "step": 20,
            "success": False,
            "hidden": True,
            "type": "neutral",
            "description": None,
        },
        {
            "name": "Booked",
            "step": 30,
            "success": True,
            "hidden": False,
            "type": "success",
            "description": None,
        },
    ]


def test_a_program_needs_an_existing_channel(marketo):
    with pytest.raises(KeyError):
        marketo.add_program("Nowhere", channel="No such channel")


# --- campaigns (listing) -----------------------------------------------------------------------


def test_campaigns_can_be_listed_requestable_only(marketo, marketo_client):
    webinar = marketo.add_program("Spring webinar", channel="Webinar")
    follow_up = marketo.add_campaign("Follow up", program_id=webinar)
    paused = marketo.add_campaign("Paused", program_id=webinar, active=False)
    batch = marketo.add_campaign("Newsletter", triggerable=False)

    requestable = marketo_client.get("/rest/v1/campaigns.json", {"isTriggerable": "true"})
    everything = marketo_client.get("/rest/v1/campaigns.json")

    assert [c["id"] for c in requestable["result"]] == [follow_up, paused]
    assert [c["id"] for c in everything["result"]] == [follow_up, paused, batch]
    first = requestable["result"][0]
    assert first["type"] == "trigger"
    assert first["isTriggerable"] is True
    assert first["isActive"] is True
    assert first["programId"] == webinar
    assert first["programName"] == "Spring webinar"
    assert first["workspaceName"] == "Default"
    assert requestable["result"][1]["isActive"] is False
    assert everything["result"][2]["type"] == "batch"
    assert "nextPageToken" not in requestable


def test_campaigns_come_in_pages_with_a_token(marketo, marketo_client):
    ids = [marketo.add_campaign(f"Campaign {i}") for i in range(5)]

    first = marketo_client.get("/rest/v1/campaigns.json", {"batchSize": 3})
    second = marketo_client.get(
        "/rest/v1/campaigns.json", {"batchSize": 3, "nextPageToken": first["nextPageToken"]}
    )

    assert [c["id"] for c in first["result"] + second["result"]] == ids
    assert "nextPageToken" not in second


# --- reading back what was written -------------------------------------------------------------


def activities_since(client, since: str, type_ids, lead_ids=()) -> list[dict]:
    """Every activity of these types since `since`, as DynChat reads them back."""
    token = client.get("/rest/v1/activities/pagingtoken.json", {"sinceDatetime": since})[
        "nextPageToken"
    ]
    params = {"activityTypeIds": ",".join(map(str, type_ids))}
    if lead_ids:
        params["leadIds"] = ",".join(map(str, lead_ids))
    rows = []
    for _ in range(50):
        page = client.get("/rest/v1/activities.json", {**params, "nextPageToken": token})
        rows += page.get("result", [])
        token = page["nextPageToken"]
        if not page["moreResult"]:
            return rows
    raise AssertionError("moreResult never became false")


EPOCH = "2000-01-01T00:00:00Z"


# --- Sync Leads ----------------------------------------------------------------------------------


def upsert(client, records, **options) -> list[dict]:
    return client.post("/rest/v1/leads.json", {**options, "input": records})["result"]


def test_sync_leads_creates_and_updates_by_email_answering_in_input_order(marketo, marketo_client):
    ada = marketo.add_lead(email="Ada@Example.com", firstName="Ada")

    result = upsert(
        marketo_client,
        [
            {"email": "grace@example.com", "firstName": "Grace", "productInterest": "Chat"},
            {"email": "ada@example.com", "title": "CTO"},
            {"email": "bob@example.com", "favouriteColour": "green"},
        ],
    )

    grace = result[0]["id"]
    assert result == [
        {"id": grace, "status": "created"},
        {"id": ada, "status": "updated"},  # emails match whatever their case
        {
            "status": "skipped",
            "reasons": [{"code": "1006", "message": "Field 'favouriteColour' not found"}],
        },
    ]
    assert marketo.leads[grace]["productInterest"] == "Chat"
    assert marketo.leads[ada]["title"] == "CTO"
    assert len(marketo.leads) == 2
    # The writes show in the incremental reads, as on Marketo.
    rows = activities_since(marketo_client, EPOCH, [12, 13])
    assert {(r["leadId"], r["activityTypeId"]) for r in rows} >= {(grace, 12), (ada, 13)}
    changes = marketo_client.get(
        "/rest/v1/activities/leadchanges.json",
        {
            "nextPageToken": marketo_client.get(
                "/rest/v1/activities/pagingtoken.json", {"sinceDatetime": EPOCH}
            )["nextPageToken"],
            "fields": "title",
        },
    )["result"]
    assert [f["newValue"] for c in changes for f in c["fields"]] == ["CTO"]


def test_field_names_are_rest_names_and_case_sensitive(marketo, marketo_client):
    (answer,) = upsert(marketo_client, [{"email": "a@example.com", "FirstName": "Ada"}])
    assert answer["reasons"] == [{"code": "1006", "message": "Field 'FirstName' not found"}]
    assert marketo.leads == {}


def test_create_only_skips_an_existing_lead_with_1005(marketo, marketo_client):
    marketo.add_lead(email="ada@example.com")

    result = upsert(
        marketo_client,
        [{"email": "ada@example.com", "firstName": "Ada"}, {"email": "new@example.com"}],
        action="createOnly",
    )

    assert result[0] == {
        "status": "skipped",
        "reasons": [{"code": "1005", "message": "Lead already exists"}],
    }
    assert result[1]["status"] == "created"
    assert [lead.get("firstName") for lead in marketo.leads.values()] == [None, None]


def test_update_only_skips_a_missing_lead_with_1004(marketo, marketo_client):
    (answer,) = upsert(
        marketo_client, [{"email": "nobody@example.com", "title": "CTO"}], action="updateOnly"
    )
    assert answer["reasons"] == [{"code": "1004", "message": "Lead not found"}]
    assert marketo.leads == {}


def test_update_only_can_look_leads_up_by_id(marketo, marketo_client):
    ada = marketo.add_lead(email="ada@example.com")

    result = upsert(
        marketo_client,
        [{"id": ada, "title": "CTO"}, {"id": 999_999, "title": "CEO"}],
        action="updateOnly",
        lookupField="id",
    )

    assert result[0] == {"id": ada, "status": "updated"}
    assert result[1]["reasons"][0]["code"] == "1004"
    assert marketo.leads[ada]["title"] == "CTO"


@pytest.mark.parametrize("action", ["createOnly", "createOrUpdate", "createDuplicate"])
def test_the_id_lookup_is_refused_for_every_action_but_update_only(marketo, marketo_client, action):
    ada = marketo.add_lead(email="ada@example.com")

    error = refused(
        lambda: upsert(
            marketo_client, [{"id": ada, "title": "CTO"}], action=action, lookupField="id"
        )
    )

    assert error.code == "1003"
    assert "title" not in marketo.leads[ada]


def test_other_lookup_fields_are_not_supported(marketo, marketo_client):
    error = refused(lambda: upsert(marketo_client, [{"email": "a@b.test"}], lookupField="phone"))
    assert (error.code, error.message) == ("1011", "Lookup field 'phone' not supported")


def test_an_email_shared_by_several_leads_is_skipped_with_1007(marketo, marketo_client):
    marketo.add_lead(email="shared@example.com")
    marketo.add_lead(email="SHARED@example.com")

    (answer,) = upsert(marketo_client, [{"email": "shared@example.com", "title": "CTO"}])

    assert answer["reasons"][0]["code"] == "1007"
    assert all("title" not in lead for lead in marketo.leads.values())


def test_create_duplicate_always_makes_a_new_lead(marketo, marketo_client):
    ada = marketo.add_lead(email="ada@example.com")

    (answer,) = upsert(marketo_client, [{"email": "ada@example.com"}], action="createDuplicate")

    assert answer["status"] == "created" and answer["id"] != ada
    assert len(marketo.leads) == 2


def test_emails_must_be_ascii_and_present_for_an_email_lookup(marketo, marketo_client):
    result = upsert(marketo_client, [{"email": "jos\u00e9@example.com"}, {"firstName": "Anon"}])

    assert result[0]["reasons"] == [
        {"code": "1003", "message": "Invalid email address 'jos\u00e9@example.com'"}
    ]
    assert result[1]["reasons"] == [
        {"code": "1003", "message": "Value for lookup field 'email' not found"}
    ]
    assert marketo.leads == {}


def test_more_than_300_leads_in_one_call_are_refused_whole(marketo, marketo_client):
    records = [{"email": f"l{i}@example.com"} for i in range(301)]

    error = refused(lambda: upsert(marketo_client, records))

    assert error.code == "1003"
    assert marketo.leads == {}


def test_an_unknown_action_is_refused(marketo, marketo_client):
    error = refused(lambda: upsert(marketo_client, [{"email": "a@b.test"}], action="upsert"))
    assert (error.code, error.message) == ("1003", "Invalid action 'upsert'")


def test_sync_leads_needs_a_json_body(marketo):
    http = raw_http(marketo)
    answer = http.post("/rest/v1/leads.json", data={"input": "x"}).json()
    assert answer["errors"][0]["code"] == "612"
    assert marketo.leads == {}


# --- Associate Lead ------------------------------------------------------------------------------

COOKIE = "id:561-HYG-937&token:_mch-acme.test-1718000000000-12345"
TOKEN = "_mch-acme.test-1718000000000-12345"


def associate(client, lead_id, cookie=COOKIE) -> dict:
    # The cookie's & must travel as %26, as Marketo requires.
    return client.post(f"/rest/v1/leads/{lead_id}/associate.json?cookie={quote(cookie, safe='')}")


def test_associating_a_cookie_lets_the_lead_be_found_by_it(marketo, marketo_client):
    ada = marketo.add_lead(email="ada@example.com")

    answer = associate(marketo_client, ada)

    assert answer["success"] is True and "result" not in answer
    found = marketo_client.get(
        "/rest/v1/leads.json", {"filterType": "cookies", "filterValues": COOKIE, "fields": "email"}
    )["result"]
    assert found == [{"id": ada, "email": "ada@example.com"}]
    assert marketo.leads[ada]["cookies"] == TOKEN
    assert marketo.associations == [{"leadId": ada, "cookie": COOKIE, "token": TOKEN}]


def test_a_browser_moves_to_the_lead_it_is_associated_with_last(marketo, marketo_client):
    first = marketo.add_lead(email="first@example.com")
    second = marketo.add_lead(email="second@example.com", cookies="_mch-acme.test-1700000000000-1")

    associate(marketo_client, first)
    associate(marketo_client, second)

    assert not marketo.leads[first]["cookies"]
    # The lead keeps its other browser's token.
    assert marketo.leads[second]["cookies"] == f"_mch-acme.test-1700000000000-1,{TOKEN}"


@pytest.mark.parametrize(
    "cookie",
    [
        "_mch-acme.test-1718000000000-12345",  # the token alone
        "id:561-HYG-937&token:nonsense",
        "id:561HYG937&token:_mch-acme.test-1718000000000-12345",
    ],
)
def test_a_malformed_cookie_is_refused_with_1012(marketo, marketo_client, cookie):
    ada = marketo.add_lead(email="ada@example.com")

    error = refused(lambda: associate(marketo_client, ada, cookie))

    assert (error.code, error.message) == ("1012", f"Invalid cookie value '{cookie}'")
    assert "cookies" not in marketo.leads[ada]
    assert marketo.associations == []


def test_associating_an_unknown_lead_is_1004(marketo, marketo_client):
    error = refused(lambda: associate(marketo_client, 424242))
    assert (error.code, error.message) == ("1004", "Lead not found")
    assert marketo.associations == []


# --- custom activity types ----------------------------------------------------------------------

CHAT_TYPE = {
    "apiName": "acmeChatConversation",
    "name": "Chat Conversation",
    "description": "Visitor completed a chat",
    "triggerName": "Completes Chat Conversation - Acme",
    "filterName": "Completed Chat Conversation - Acme",
    "primaryAttribute": {"apiName": "dialogueName", "name": "Dialogue Name"},
}
ATTRIBUTES = [
    {"apiName": "goalReached", "name": "Goal Reached", "dataType": "boolean"},
    {"apiName": "meetingTime", "name": "Meeting Time", "dataType": "datetime"},
]
TYPE_PATH = "/rest/v1/activities/external/type"


def create_type(client, **changes) -> dict:
    return client.post(f"{TYPE_PATH}.json", {**CHAT_TYPE, **changes})


def approved_chat_type(client) -> int:
    create_type(client)
    client.post(
        f"{TYPE_PATH}/acmeChatConversation/attributes/create.json", {"attributes": ATTRIBUTES}
    )
    client.post(f"{TYPE_PATH}/acmeChatConversation/approve.json")
    return client.get(f"{TYPE_PATH}/acmeChatConversation/describe.json")["result"][0]["id"]


def test_a_custom_type_goes_from_draft_to_approved(marketo, marketo_client):
    created = create_type(marketo_client)["result"][0]
    assert created["status"] == "draft"
    assert "id" not in created  # as documented: describe or the list give it
    assert created["primaryAttribute"] == {
        "apiName": "dialogueName",
        "name": "Dialogue Name",
        "description": "",
        "dataType": "string",
    }
    not_yet = refused(lambda: marketo_client.get(f"{TYPE_PATH}/acmeChatConversation/describe.json"))
    assert not_yet.code == "702"
    draft = marketo_client.get(
        f"{TYPE_PATH}/acmeChatConversation/describe.json", {"draft": "true"}
    )["result"][0]
    assert (draft["id"], draft["status"]) == (100001, "draft")
    assert not any(
        t["id"] == 100001 for t in marketo_client.get("/rest/v1/activities/types.json")["result"]
    )

    with_attributes = marketo_client.post(
        f"{TYPE_PATH}/acmeChatConversation/attributes/create.json", {"attributes": ATTRIBUTES}
    )["result"][0]
    approved = marketo_client.post(f"{TYPE_PATH}/acmeChatConversation/approve.json")["result"][0]

    assert [a["apiName"] for a in with_attributes["attributes"]] == ["goalReached", "meetingTime"]
    assert approved["status"] == "approved"
    described = marketo_client.get(f"{TYPE_PATH}/acmeChatConversation/describe.json")["result"][0]
    assert described["id"] == 100001
    assert described["attributes"][1] == {
        "apiName": "meetingTime",
        "name": "Meeting Time",
        "description": "",
        "dataType": "datetime",
    }
    listed = marketo_client.get("/rest/v1/activities/external/types.json")["result"]
    assert [(t["apiName"], t["status"]) for t in listed] == [("acmeChatConversation", "approved")]
    types = {t["id"]: t for t in marketo_client.get("/rest/v1/activities/types.json")["result"]}
    assert types[100001]["name"] == "Chat Conversation"
    assert types[100001]["primaryAttribute"]["name"] == "Dialogue Name"
    assert [a["name"] for a in types[100001]["attributes"]] == ["Goal Reached", "Meeting Time"]


def test_editing_an_approved_type_leaves_a_draft_until_approved_again(marketo, marketo_client):
    type_id = approved_chat_type(marketo_client)
    lead = marketo.add_lead(email="ada@example.com")
    marketo_client.post(
        f"{TYPE_PATH}/acmeChatConversation/attributes/create.json",
        {"attributes": [{"apiName": "agentName", "name": "Agent Name", "dataType": "string"}]},
    )

    listed = marketo_client.get("/rest/v1/activities/external/types.json")["result"]
    early = add_activities(
        marketo_client,
        [chat_activity(lead, type_id, attributes=[{"apiName": "agentName", "value": "Alex"}])],
    )

    assert listed[0]["status"] == "approved with draft"
    assert [a["apiName"] for a in listed[0]["attributes"]] == ["goalReached", "meetingTime"]
    assert early[0]["errors"] == [{"code": "1006", "message": "Attribute 'agentName' not found"}]
    marketo_client.post(f"{TYPE_PATH}/acmeChatConversation/approve.json")
    later = add_activities(
        marketo_client,
        [chat_activity(lead, type_id, attributes=[{"apiName": "agentName", "value": "Alex"}])],
    )
    assert later[0]["status"] == "added"


def test_an_instance_takes_at_most_10_custom_types(marketo, marketo_client):
    for i in range(10):
        marketo.add_custom_activity_type(f"otherType{i}", name=f"Other Type {i}")

    error = refused(lambda: create_type(marketo_client))

    assert (error.code, error.message) == ("1027", "Max Activity Type Limit Reached")
    assert "acmeChatConversation" not in marketo.custom_activity_types
    with pytest.raises(ValueError):
        marketo.add_custom_activity_type("eleventh")


def test_a_type_takes_at_most_20_attributes(marketo, marketo_client):
    create_type(marketo_client)
    twenty = [
        {"apiName": f"attribute{i}", "name": f"Attribute {i}", "dataType": "string"}
        for i in range(20)
    ]
    marketo_client.post(
        f"{TYPE_PATH}/acmeChatConversation/attributes/create.json", {"attributes": twenty}
    )

    error = refused(
        lambda: marketo_client.post(
            f"{TYPE_PATH}/acmeChatConversation/attributes/create.json",
            {"attributes": [{"apiName": "oneMore", "name": "One More", "dataType": "string"}]},
        )
    )

    assert (error.code, error.message) == ("1028", "Max field limit reached")
    draft = marketo_client.get(f"{TYPE_PATH}/acmeChatConversation/describe.json", {"draft": "true"})
    assert len(draft["result"][0]["attributes"]) == 20


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"apiName": "acme-chat"}, "Invalid apiName 'acme-chat': letters and digits only"),
        (
            {"name": "Chat: Conversation"},
            "Invalid name 'Chat: Conversation': letters, digits, spaces and underscores only",
        ),
        (
            {"primaryAttribute": {"apiName": "dialogue_name", "name": "Dialogue"}},
            "Invalid attribute apiName 'dialogue_name'",
        ),
        (
            {"primaryAttribute": {"apiName": "dialogueName", "name": "D", "dataType": "json"}},
            "Invalid dataType 'json' of attribute 'dialogueName'",
        ),
    ],
)
def test_type_and_attribute_names_are_checked(marketo, marketo_client, changes, message):
    error = refused(lambda: create_type(marketo_client, **changes))
    assert (error.code, error.message) == ("1003", message)
    assert marketo.custom_activity_types == {}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, "Activity type apiName 'acmeChatConversation' already exists"),
        (
            {"apiName": "acme2", "name": "chat conversation"},
            "Activity type name 'chat conversation' already exists",
        ),
        (
            {"apiName": "acme2", "name": "Visit Webpage"},
            "Activity type name 'Visit Webpage' already exists",
        ),
        (
            {"apiName": "acme2", "name": "Chat Two"},
            "Trigger name 'Completes Chat Conversation - Acme' already exists",
        ),
        (
            {"apiName": "acme2", "name": "Chat Two", "triggerName": "Another trigger"},
            "Filter name 'Completed Chat Conversation - Acme' already exists",
        ),
    ],
)
def test_names_trigger_names_and_filter_names_are_unique(marketo, marketo_client, changes, message):
    create_type(marketo_client)

    error = refused(lambda: create_type(marketo_client, **changes))

    assert (error.code, error.message) == ("1003", message)
    assert list(marketo.custom_activity_types) == ["acmeChatConversation"]


def test_unknown_types_are_1013_and_approving_twice_is_refused(marketo, marketo_client):
    for call in (
        lambda: marketo_client.post(f"{TYPE_PATH}/nope/approve.json"),
        lambda: marketo_client.get(f"{TYPE_PATH}/nope/describe.json"),
        lambda: marketo_client.post(
            f"{TYPE_PATH}/nope/attributes/create.json", {"attributes": ATTRIBUTES}
        ),
    ):
        assert refused(call).code == "1013"
    approved_chat_type(marketo_client)
    again = refused(lambda: marketo_client.post(f"{TYPE_PATH}/acmeChatConversation/approve.json"))
    assert (again.code, again.message) == (
        "1003",
        "Activity type 'acmeChatConversation' has no draft to approve",
    )


# --- Add Custom Activities ----------------------------------------------------------------------


def chat_activity(lead_id, type_id, **changes) -> dict:
    return {
        "leadId": lead_id,
        "activityDate": "2026-03-02T10:15:00+01:00",
        "activityTypeId": type_id,
        "primaryAttributeValue": "Pricing Bot",
        "attributes": [
            {"apiName": "goalReached", "value": True},
            {"name": "Meeting Time", "value": "2026-03-05T15:00:00Z"},
        ],
        **changes,
    }


def add_activities(client, records) -> list[dict]:
    return client.post("/rest/v1/activities/external.json", {"input": records})["result"]


def test_custom_activities_are_added_and_read_back_like_any_activity(marketo, marketo_client):
    type_id = approved_chat_type(marketo_client)
    ada = marketo.add_lead(email="ada@example.com")
    bob = marketo.add_lead(email="bob@example.com")

    result = add_activities(
        marketo_client, [chat_activity(ada, type_id), chat_activity(bob, type_id)]
    )

    assert [r["status"] for r in result] == ["added", "added"]
    assert result[0]["marketoGUID"] == str(result[0]["id"])
    (row,) = activities_since(marketo_client, "2026-03-01T00:00:00Z", [type_id], [ada])
    assert row["marketoGUID"] == result[0]["marketoGUID"]
    assert row["activityDate"] == "2026-03-02T09:15:00Z"
    assert row["activityTypeId"] == type_id
    assert row["primaryAttributeValue"] == "Pricing Bot"
    assert row["attributes"] == [
        {"name": "Goal Reached", "value": True},
        {"name": "Meeting Time", "value": "2026-03-05T15:00:00Z"},
    ]
    assert [a["leadId"] for a in marketo.custom_activities(type_id)] == [ada, bob]


def test_a_skipped_custom_activity_says_why_in_errors_and_the_rest_are_added(
    marketo, marketo_client
):
    type_id = approved_chat_type(marketo_client)
    draft_only = marketo.add_custom_activity_type("draftType", approved=False)
    ada = marketo.add_lead(email="ada@example.com")

    result = add_activities(
        marketo_client,
        [
            chat_activity(424242, type_id),
            chat_activity(ada, 100999),
            chat_activity(ada, 1),  # a standard type takes no activities from the API
            chat_activity(ada, draft_only),
            chat_activity(ada, type_id, attributes=[{"apiName": "mood", "value": "happy"}]),
            chat_activity(ada, type_id, activityDate="yesterday"),
            chat_activity(ada, type_id),
        ],
    )

    assert [r.get("errors") for r in result[:6]] == [
        [{"code": "1004", "message": "Lead not found"}],
        [{"code": "1013", "message": "Activity type '100999' not found"}],
        [{"code": "1013", "message": "Activity type '1' not found"}],
        [{"code": "1003", "message": f"Activity type '{draft_only}' is not approved"}],
        [{"code": "1006", "message": "Attribute 'mood' not found"}],
        [{"code": "1003", "message": "Invalid activityDate 'yesterday'"}],
    ]
    assert all(r["status"] == "skipped" and "reasons" not in r for r in result[:6])
    assert result[6]["status"] == "added"
    assert len(marketo.custom_activities()) == 1


def test_attributes_over_64_kb_fail_with_1049(marketo, marketo_client):
    type_id = approved_chat_type(marketo_client)
    ada = marketo.add_lead(email="ada@example.com")
    huge = [{"apiName": "goalReached", "value": "x" * 65_536}]

    (answer,) = add_activities(marketo_client, [chat_activity(ada, type_id, attributes=huge)])

    assert answer["errors"][0]["code"] == "1049"
    assert marketo.custom_activities() == []


def test_more_than_300_custom_activities_are_refused_whole(marketo, marketo_client):
    type_id = approved_chat_type(marketo_client)
    ada = marketo.add_lead(email="ada@example.com")

    error = refused(lambda: add_activities(marketo_client, [chat_activity(ada, type_id)] * 301))

    assert error.code == "1003"
    assert marketo.custom_activities() == []


# --- Sync Program Member Status -----------------------------------------------------------------


def set_status(client, program_id, status, lead_ids) -> list[dict]:
    body = {"statusName": status, "input": [{"leadId": i} for i in lead_ids]}
    return client.post(f"/rest/v1/programs/{program_id}/members/status.json", body)["result"]


def test_program_status_adds_members_moves_them_forward_and_never_back(marketo, marketo_client):
    webinar = marketo.add_program("Spring webinar", channel="Webinar")
    ada = marketo.add_lead(email="ada@example.com")
    bob = marketo.add_lead(email="bob@example.com")
    set_status(marketo_client, webinar, "Registered", [ada])

    moved = set_status(marketo_client, webinar, "Attended", [ada, bob, 424242])
    back = set_status(marketo_client, webinar, "Registered", [ada])
    same = set_status(marketo_client, webinar, "Attended", [bob])

    assert moved == [
        {"seq": 0, "status": "updated", "leadId": ada},
        {"seq": 1, "status": "created", "leadId": bob},
        {"seq": 2, "status": "skipped", "reasons": [{"code": "1004", "message": "Lead not found"}]},
    ]
    skipped = [
        {
            "code": "1037",
            "message": "Lead skipped because it is already in or past this status",
        }
    ]
    assert back == [{"seq": 0, "status": "skipped", "reasons": skipped}]
    assert same == [{"seq": 0, "status": "skipped", "reasons": skipped}]
    assert marketo.memberships == {webinar: {ada: "Attended", bob: "Attended"}}
    changes = activities_since(marketo_client, EPOCH, [104], [ada])
    assert len(changes) == 2
    assert changes[1]["primaryAttributeValueId"] == webinar
    assert changes[1]["primaryAttributeValue"] == "Spring webinar"
    attributes = {a["name"]: a["value"] for a in changes[1]["attributes"]}
    assert (attributes["Old Status"], attributes["New Status"]) == ("Registered", "Attended")
    assert attributes["Success"] is True


def test_program_status_errors_change_no_membership(marketo, marketo_client):
    webinar = marketo.add_program("Spring webinar", channel="Webinar")
    ada = marketo.add_lead(email="ada@example.com")

    unknown_program = refused(lambda: set_status(marketo_client, 999, "Registered", [ada]))
    foreign_status = refused(lambda: set_status(marketo_client, webinar, "Engaged", [ada]))
    too_many = refused(lambda: set_status(marketo_client, webinar, "Registered", [ada] * 301))

    assert (unknown_program.code, unknown_program.message) == ("1013", "Program '999' not found")
    assert (foreign_status.code, foreign_status.message) == (
        "1025",
        "Program status 'Engaged' not found",
    )
    assert too_many.code == "1003"
    assert marketo.memberships == {}
    assert activities_since(marketo_client, EPOCH, [104]) == []


# --- Request Campaign ----------------------------------------------------------------------------


def request_campaign(client, campaign_id, lead_ids, tokens=()) -> dict:
    body = {"input": {"leads": [{"id": i} for i in lead_ids], "tokens": list(tokens)}}
    return client.post(f"/rest/v1/campaigns/{campaign_id}/trigger.json", body)


GOAL_TOKEN = {"name": "{{my.Goal}}", "value": "Booked a demo"}


def test_requesting_a_campaign_runs_it_for_the_leads_and_logs_it(marketo, marketo_client):
    webinar = marketo.add_program("Spring webinar", channel="Webinar")
    follow_up = marketo.add_campaign("Chat follow-up", program_id=webinar)
    ada = marketo.add_lead(email="ada@example.com")
    bob = marketo.add_lead(email="bob@example.com")

    answer = request_campaign(marketo_client, follow_up, [ada, bob], [GOAL_TOKEN])

    assert answer["result"] == [{"id": follow_up}]
    assert marketo.campaign_requests == [
        {"campaignId": follow_up, "leadIds": [ada, bob], "tokens": [GOAL_TOKEN]}
    ]
    rows = activities_since(marketo_client, EPOCH, [47])
    assert [(r["leadId"], r["campaignId"]) for r in rows] == [(ada, follow_up), (bob, follow_up)]
    assert rows[0]["primaryAttributeValue"] == "Chat follow-up"


def test_at_most_100_leads_and_100_tokens_a_request(marketo, marketo_client):
    campaign = marketo.add_campaign("Chat follow-up")
    ada = marketo.add_lead(email="ada@example.com")
    tokens = [{"name": f"{{{{my.t{i}}}}}", "value": "x"} for i in range(101)]

    too_many_leads = refused(lambda: request_campaign(marketo_client, campaign, [ada] * 101))
    too_many_tokens = refused(lambda: request_campaign(marketo_client, campaign, [ada], tokens))

    assert too_many_leads.code == too_many_tokens.code == "1003"
    assert marketo.campaign_requests == []


def test_only_active_requestable_campaigns_can_be_requested(marketo, marketo_client):
    ada = marketo.add_lead(email="ada@example.com")
    batch = marketo.add_campaign("Newsletter", triggerable=False)
    paused = marketo.add_campaign("Paused", active=False)

    unknown = refused(lambda: request_campaign(marketo_client, 9999, [ada]))
    batch_error = refused(lambda: request_campaign(marketo_client, batch, [ada]))
    paused_error = refused(lambda: request_campaign(marketo_client, paused, [ada]))

    assert (unknown.code, unknown.message) == ("1013", "Campaign '9999' not found")
    assert batch_error.code == "1003" and "batch campaign" in batch_error.message
    assert (paused_error.code, paused_error.message) == (
        "1003",
        f"Campaign '{paused}' is not active",
    )
    assert marketo.campaign_requests == []
    assert activities_since(marketo_client, EPOCH, [47]) == []


def test_tokens_for_a_campaign_in_a_nested_program_are_a_system_error(marketo, marketo_client):
    nested = marketo.add_campaign("Nested follow-up", nested_program=True)
    ada = marketo.add_lead(email="ada@example.com")
    http = raw_http(marketo)
    body = {"input": {"leads": [{"id": ada}], "tokens": [GOAL_TOKEN]}}

    answer = http.post(f"/rest/v1/campaigns/{nested}/trigger.json", json=body).json()

    assert answer["errors"] == [{"code": "611", "message": "System error"}]
    assert request_campaign(marketo_client, nested, [ada])["result"] == [{"id": nested}]
    assert [r["tokens"] for r in marketo.campaign_requests] == [[]]


# --- limits and faults --------------------------------------------------------------------------

WRITES = [
    ("/rest/v1/leads.json", {"input": [{"email": "a@example.com"}]}),
    ("/rest/v1/activities/external.json", {"input": [{"leadId": 1}]}),
    ("/rest/v1/activities/external/type.json", CHAT_TYPE),
    (
        "/rest/v1/programs/1001/members/status.json",
        {"statusName": "Registered", "input": [{"leadId": 1}]},
    ),
    ("/rest/v1/campaigns/3001/trigger.json", {"input": {"leads": [{"id": 1}]}}),
]


@pytest.mark.parametrize(("path", "body"), WRITES)
def test_writes_count_against_the_rate_limit(marketo, path, body):
    marketo.add_lead(email="ada@example.com")  # lead 1
    marketo.add_program("Spring webinar", channel="Webinar")  # program 1001
    marketo.add_campaign("Follow up")  # campaign 3001
    marketo.rate_limit = 2
    http = raw_http(marketo)

    answers = [http.post(path, json=body).json() for _ in range(3)]

    # The first two reach the endpoint (a second type creation is a duplicate name, say).
    assert [a.get("errors", [{}])[0].get("code") != "606" for a in answers[:2]] == [True, True]
    assert answers[0]["success"] is True
    assert answers[2]["errors"] == [
        {"code": "606", "message": "Max rate limit '2' exceeded with in '20' secs"}
    ]


def test_the_rate_limit_covers_associate_and_the_listings(marketo):
    marketo.rate_limit = 3
    ada = marketo.add_lead(email="ada@example.com")
    http = raw_http(marketo)

    http.post(f"/rest/v1/leads/{ada}/associate.json", params={"cookie": COOKIE})
    http.get("/rest/asset/v1/programs.json")
    http.get("/rest/v1/campaigns.json")
    answer = http.get("/rest/asset/v1/channels.json").json()

    assert answer["errors"][0]["code"] == "606"


def test_a_write_refused_by_a_transient_error_is_retried_and_done_once(marketo, marketo_client):
    webinar = marketo.add_program("Spring webinar", channel="Webinar")
    ada = marketo.add_lead(email="ada@example.com")
    marketo.fail("members/status.json", code=713, times=2)

    result = set_status(marketo_client, webinar, "Registered", [ada])

    assert result[0]["status"] == "created"
    assert len(marketo.calls_to("members/status.json")) == 3
    assert len(activities_since(marketo_client, EPOCH, [104])) == 1


def test_a_role_without_write_permission_gets_603(marketo, marketo_client):
    marketo.deny_permission("/rest/v1/activities/external")
    error = refused(lambda: create_type(marketo_client))
    assert error.code == "603"
    assert marketo.custom_activity_types == {}
