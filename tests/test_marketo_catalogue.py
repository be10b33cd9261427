"""The programs and requestable campaigns a marketer picks from when a dialogue should change a
program status or request a campaign: read from Marketo whole, or not at all."""

from datetime import UTC, datetime, timedelta

import pytest

from marketo_sync import catalogue
from marketo_sync.errors import MarketoError
from marketo_sync.models import MarketoCampaign, MarketoProgram

pytestmark = pytest.mark.django_db

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def programs() -> dict[int, MarketoProgram]:
    return {p.id: p for p in MarketoProgram.objects.all()}


def campaigns() -> dict[int, MarketoCampaign]:
    return {c.id: c for c in MarketoCampaign.objects.all()}


def test_it_reads_every_program_past_the_first_page_of_200(marketo, marketo_client):
    ids = [marketo.add_program(f"Program {i:03d}", channel="Content") for i in range(450)]

    refreshed = catalogue.refresh(client=marketo_client, now=MONDAY)

    assert refreshed == catalogue.Refreshed(programs=450, campaigns=0)
    assert sorted(programs()) == ids
    offsets = [c["query"]["offset"] for c in marketo.calls_to("/programs.json")]
    assert offsets == ["0", "200", "400"]
    assert {c["query"]["maxReturn"] for c in marketo.calls_to("/programs.json")} == {"200"}


def test_an_exact_multiple_of_200_programs_ends_on_marketos_no_assets_answer(
    marketo, marketo_client
):
    for i in range(400):
        marketo.add_program(f"Program {i}", channel="Content")

    assert catalogue.refresh(client=marketo_client, now=MONDAY).programs == 400
    assert len(marketo.calls_to("/programs.json")) == 3


def test_each_program_offers_the_visible_statuses_of_its_channel_in_step_order(
    marketo, marketo_client
):
    marketo.add_channel(
        "Chat",
        [
            {"name": "Engaged", "step": 20},
            {"name": "Disqualified (internal)", "step": 15, "hidden": True},
            {"name": "Meeting Booked", "step": 30, "success": True},
            {"name": "Started Chat", "step": 10},
        ],
    )
    chat = marketo.add_program("Pricing page chat", channel="Chat")
    webinar = marketo.add_program("Spring webinar", channel="Webinar", type="Event")

    catalogue.refresh(client=marketo_client, now=MONDAY)

    stored = programs()
    assert stored[chat].statuses == ["Not in Program", "Started Chat", "Engaged", "Meeting Booked"]
    assert stored[chat].channel == "Chat"
    assert stored[chat].program_type == "Default"
    assert stored[chat].workspace == "Default"
    assert stored[webinar].statuses == [
        "Not in Program",
        "Invited",
        "Registered",
        "No Show",
        "Attended",
    ]
    assert stored[webinar].program_type == "Event"
    assert stored[chat].synced_at == MONDAY


def test_channels_past_the_first_page_still_give_their_statuses(marketo, marketo_client):
    for i in range(205):
        marketo.add_channel(f"Channel {i}", [f"Step of {i}"])
    last = marketo.add_program("On the last channel", channel="Channel 204")

    catalogue.refresh(client=marketo_client, now=MONDAY)

    assert programs()[last].statuses == ["Not in Program", "Step of 204"]
    assert len(marketo.calls_to("/channels.json")) == 2


def test_only_requestable_campaigns_are_kept_and_inactive_ones_say_so(marketo, marketo_client):
    webinar = marketo.add_program("Spring webinar", channel="Webinar")
    follow_up = marketo.add_campaign("Send chat follow-up", program_id=webinar)
    paused = marketo.add_campaign("Alert sales", program_id=webinar, active=False)
    marketo.add_campaign("Monthly newsletter", program_id=webinar, triggerable=False)
    loose = marketo.add_campaign("Score chat leads")

    refreshed = catalogue.refresh(client=marketo_client, now=MONDAY)

    assert refreshed.campaigns == 3
    stored = campaigns()
    assert sorted(stored) == [follow_up, paused, loose]
    assert stored[follow_up].active is True
    assert stored[follow_up].program_id == webinar
    assert stored[follow_up].program_name == "Spring webinar"
    assert stored[follow_up].workspace == "Default"
    assert stored[paused].active is False
    assert stored[loose].program_id is None
    assert stored[loose].program_name == ""
    assert marketo.calls_to("/campaigns.json")[0]["query"]["isTriggerable"] == "true"


def test_it_follows_the_campaign_paging_token(marketo, marketo_client):
    ids = [marketo.add_campaign(f"Campaign {i}") for i in range(301)]

    assert catalogue.refresh(client=marketo_client, now=MONDAY).campaigns == 301
    assert sorted(campaigns()) == ids
    assert len(marketo.calls_to("/campaigns.json")) == 2


def test_programs_and_campaigns_gone_from_marketo_are_removed_and_the_rest_updated(
    marketo, marketo_client
):
    kept = marketo.add_program("Spring webinar", channel="Webinar")
    gone = marketo.add_program("Old webinar", channel="Webinar")
    kept_campaign = marketo.add_campaign("Follow up", program_id=kept)
    gone_campaign = marketo.add_campaign("Old follow up", program_id=gone)
    catalogue.refresh(client=marketo_client, now=MONDAY)

    marketo.delete_campaign(gone_campaign)
    marketo.delete_program(gone)
    marketo.programs[kept]["name"] = "Spring webinar 2026"
    marketo.set_campaign_active(kept_campaign, False)
    later = MONDAY + timedelta(hours=1)
    catalogue.refresh(client=marketo_client, now=later)

    assert list(programs()) == [kept]
    assert programs()[kept].name == "Spring webinar 2026"
    assert programs()[kept].synced_at == later
    assert list(campaigns()) == [kept_campaign]
    assert campaigns()[kept_campaign].active is False


def test_a_failure_leaves_the_stored_programs_and_campaigns_as_they_were(marketo, marketo_client):
    program = marketo.add_program("Spring webinar", channel="Webinar")
    campaign = marketo.add_campaign("Follow up", program_id=program)
    catalogue.refresh(client=marketo_client, now=MONDAY)
    marketo.delete_program(program)
    marketo.add_program("Autumn webinar", channel="Webinar")
    marketo.deny_permission("/rest/v1/campaigns.json")

    with pytest.raises(MarketoError) as stopped:
        catalogue.refresh(client=marketo_client, now=MONDAY + timedelta(hours=1))

    assert stopped.value.code == "603"
    assert "permission" in stopped.value.explain()
    assert [(p.id, p.name, p.synced_at) for p in programs().values()] == [
        (program, "Spring webinar", MONDAY)
    ]
    assert list(campaigns()) == [campaign]
    assert catalogue.last_refreshed() == MONDAY


def test_an_answer_it_cannot_read_is_a_clear_error_and_changes_nothing(marketo, marketo_client):
    marketo.add_program("Spring webinar", channel="Webinar")
    catalogue.refresh(client=marketo_client, now=MONDAY)
    broken = marketo.add_program("Broken", channel="Webinar")
    del marketo.programs[broken]["name"]

    with pytest.raises(MarketoError) as stopped:
        catalogue.refresh(client=marketo_client, now=MONDAY + timedelta(hours=1))

    assert stopped.value.code == "bad_response"
    assert "program" in stopped.value.explain()
    assert [p.name for p in programs().values()] == ["Spring webinar"]


def test_without_a_client_it_uses_the_settings_and_reads_the_same(marketo, marketo_settings):
    marketo.add_program("Spring webinar", channel="Webinar")

    refreshed = catalogue.refresh()

    assert refreshed.programs == 1
    assert MarketoProgram.objects.get().name == "Spring webinar"


def test_without_marketo_configured_it_says_what_to_set(settings):
    settings.MARKETO_BASE_URL = ""

    with pytest.raises(MarketoError) as stopped:
        catalogue.refresh()

    assert stopped.value.code == "not_configured"
    assert "MARKETO_BASE_URL" in stopped.value.explain()


def test_last_refreshed_is_none_until_a_refresh_stores_something(marketo, marketo_client):
    assert catalogue.last_refreshed() is None
    marketo.add_campaign("Follow up")

    catalogue.refresh(client=marketo_client, now=MONDAY)

    assert catalogue.last_refreshed() == MONDAY
