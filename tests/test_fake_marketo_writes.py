"""The fake Marketo's write-back side behaves as the reference says Marketo does: programs,
channels and campaigns to pick from, lead upserts, cookie association, custom activity types
and activities, program statuses and campaign requests.

The real client (MarketoClient) drives the fake over HTTP; raw httpx is used where the client
cannot express the fault (a wrong content type, a flood of calls). No database.
"""

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
