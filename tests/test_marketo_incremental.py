"""The incremental sync follows Marketo's change streams from where the full sync ended and
brings the database to exactly the source's state."""

from datetime import UTC, datetime, timedelta

import pytest

from marketo_sync import services, sync
from marketo_sync.models import Activity, Company, Lead, SyncCursor, SyncRun
from tests.marketo_source import assert_matches_source, populate

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(marketo, marketo_client):
    populate(marketo, leads=20)
    run = services.run_sync(kind=SyncRun.Kind.FULL, client=marketo_client)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
    return marketo


def incremental(client) -> SyncRun:
    run = services.run_sync(kind=SyncRun.Kind.INCREMENTAL, client=client)
    assert run.status == SyncRun.Status.SUCCEEDED, (run.error_code, run.error_message)
    return run


def change_things(fake):
    """Edits, a new lead, a deletion, new activities and a company edit, as in a working day."""
    now = datetime.now(UTC)
    fake.update_lead(3, firstName="Renamed", leadScore=99)
    fake.update_lead(4, externalCompanyId="EXT-2")
    new = fake.add_lead(email="new@example.test", firstName="New", externalCompanyId="EXT-1")
    fake.delete_lead(5)
    fake.add_activity(lead_id=new, activity_type_id=1, at=now, primary_attribute_value="/demo")
    fake.add_activity(lead_id=6, activity_type_id=2, at=now, attributes={"Form Fields": "a,b"})
    fake.update_company(1, industry="Aerospace")
    return new


def test_changes_new_leads_deletions_and_activities_arrive(synced, marketo_client):
    new = change_things(synced)
    run = incremental(marketo_client)
    assert_matches_source(synced)
    assert Lead.objects.get(id=3).attributes["firstName"] == "Renamed"
    assert Lead.objects.get(id=new).email == "new@example.test"
    assert not Lead.objects.filter(id=5).exists()
    assert not Activity.objects.filter(lead_id=5).exists()
    assert Company.objects.get(id=1).attributes["industry"] == "Aerospace"
    assert run.counts["deleted_leads"] == 1
    assert set(SyncCursor.objects.values_list("name", flat=True)) == {
        "leadchanges",
        "deletedleads",
        "activities:1,2,3,10,11,12,13,46,104",
    }


def test_a_second_run_starts_from_the_saved_cursors(synced, marketo_client):
    change_things(synced)
    incremental(marketo_client)
    tokens_used = len(synced.calls_to("pagingtoken.json"))
    synced.update_lead(7, firstName="Later")
    second = incremental(marketo_client)
    # No new paging token: the saved cursors carried on, and only the one change came.
    assert len(synced.calls_to("pagingtoken.json")) == tokens_used
    assert second.counts["leads"] == 1
    assert_matches_source(synced)


def test_a_crash_mid_run_loses_and_duplicates_nothing(synced, marketo_client, monkeypatch):
    change_things(synced)
    real = sync.write_rest_activities

    def crash(records):
        raise RuntimeError("worker killed while writing activities")

    monkeypatch.setattr(sync, "write_rest_activities", crash)
    with pytest.raises(RuntimeError):
        services.run_sync(kind=SyncRun.Kind.INCREMENTAL, client=marketo_client)
    monkeypatch.setattr(sync, "write_rest_activities", real)
    incremental(marketo_client)
    assert_matches_source(synced)


def test_pages_of_zero_rows_with_more_results_are_followed(synced, marketo_client):
    synced.partial_pages = True
    change_things(synced)
    incremental(marketo_client)
    assert_matches_source(synced)


def test_activities_older_than_the_window_are_dropped(synced, marketo_client, settings):
    oldest = Activity.objects.order_by("activity_date").first()
    settings.MARKETO_ACTIVITY_DAYS = (datetime.now(UTC) - oldest.activity_date).days
    run = incremental(marketo_client)
    assert run.counts["expired_activities"] >= 1
    cutoff = datetime.now(UTC) - timedelta(days=settings.MARKETO_ACTIVITY_DAYS)
    assert not Activity.objects.filter(activity_date__lt=cutoff).exists()


def test_it_refuses_to_run_before_a_full_sync(marketo, marketo_client):
    run = services.run_sync(kind=SyncRun.Kind.INCREMENTAL, client=marketo_client)
    assert run.status == SyncRun.Status.FAILED
    assert run.error_code == "no_full_sync"
    assert "run the full sync first" in run.error_message
