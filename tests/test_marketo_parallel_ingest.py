"""The full sync as it runs in production: export files ingested by worker threads, each with
its own database connection, and a first load's lookup indexes built once at the end."""

import pytest
from django.db import connection

from marketo_sync import services, sync
from marketo_sync.models import Activity, Lead, SyncRun
from tests.marketo_source import assert_matches_source, populate

pytestmark = pytest.mark.django_db(transaction=True)


def index_names(model) -> set[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return {name for name, info in constraints.items() if info["index"]}


def test_parallel_ingest_ends_with_the_source_and_every_index(marketo, marketo_client, settings):
    settings.MARKETO_INGEST_WORKERS = 2
    populate(marketo)
    dropped = []
    real_drop = sync.drop_lookup_indexes

    def watch_drop():
        real_drop()
        dropped.append(index_names(Lead) | index_names(Activity))

    sync.drop_lookup_indexes = watch_drop
    try:
        run = services.run_sync(kind=SyncRun.Kind.FULL, client=marketo_client)
    finally:
        sync.drop_lookup_indexes = real_drop
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
    assert_matches_source(marketo)
    # The first load ran without the lookup indexes, and they are all back.
    assert "lead_email_lower" not in dropped[0]
    assert {"lead_email_lower", "lead_company_link", "lead_cookies"} <= index_names(Lead)
    assert {"activity_lead_date", "activity_date_brin"} <= index_names(Activity)
    assert run.counts["leads"] == Lead.objects.count()
    assert run.windows_done == run.windows_total


def test_a_failing_worker_ends_the_run_and_the_resume_restores_indexes(
    marketo, marketo_client, settings, monkeypatch
):
    settings.MARKETO_INGEST_WORKERS = 2
    populate(marketo)

    def crash(cursor, header, body):
        raise RuntimeError("disk full while writing activities")

    monkeypatch.setattr(sync, "copy_activities", crash)
    with pytest.raises(RuntimeError):
        services.run_sync(kind=SyncRun.Kind.FULL, client=marketo_client)
    assert "lead_email_lower" not in index_names(Lead)  # still a first load in progress
    monkeypatch.undo()
    run = services.run_sync(kind=SyncRun.Kind.FULL, client=marketo_client)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
    assert_matches_source(marketo)
    assert "lead_email_lower" in index_names(Lead)


def test_a_first_load_row_the_direct_copy_refuses_goes_the_careful_way(
    marketo, marketo_client, settings
):
    settings.MARKETO_INGEST_WORKERS = 2
    populate(marketo, leads=8)
    # A NUL escape inside the attributes JSON: PostgreSQL's jsonb refuses it, so the direct
    # COPY of a first load fails and the window is read again through the staging table.
    marketo.add_activity(lead_id=1, activity_type_id=1, attributes={"Referrer URL": "a\x00b"})
    run = services.run_sync(kind=SyncRun.Kind.FULL, client=marketo_client)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_message
    assert Activity.objects.filter(attributes__contains={"Referrer URL": "ab"}).exists()


def test_keys_restored_after_a_first_load_keep_the_latest_copy_of_a_duplicate():
    from datetime import UTC, datetime

    sync.drop_lookup_indexes()
    older = datetime(2026, 1, 1, tzinfo=UTC)
    newer = datetime(2026, 2, 1, tzinfo=UTC)
    # Without a primary key, two copies of lead 7 can be stored (say, two windows' edges).
    Lead.objects.bulk_create(
        [
            Lead(id=7, email="old@example.test", updated_at=older),
            Lead(id=7, email="new@example.test", updated_at=newer),
            Lead(id=8, email="only@example.test", updated_at=older),
        ]
    )
    sync.ensure_lookup_indexes()
    assert sorted(Lead.objects.values_list("id", "email")) == [
        (7, "new@example.test"),
        (8, "only@example.test"),
    ]
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Lead._meta.db_table)
    assert any(info["primary_key"] for info in constraints.values())
    assert "lead_email_lower" in index_names(Lead)
