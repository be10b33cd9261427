"""python manage.py marketo_sync full|incremental|status."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from marketo_sync.models import Lead, SyncRun
from tests.marketo_source import populate

pytestmark = pytest.mark.django_db(transaction=True)


def run_command(*args) -> str:
    out = StringIO()
    call_command("marketo_sync", *args, stdout=out)
    return out.getvalue()


def test_full_then_incremental_then_status(marketo, marketo_settings):
    populate(marketo, leads=12)
    output = run_command("full")
    assert "succeeded" in output
    assert "leads 12" in output
    assert Lead.objects.count() == 12

    marketo.update_lead(1, firstName="Changed")
    assert "succeeded" in run_command("incremental")
    assert Lead.objects.get(id=1).attributes["firstName"] == "Changed"

    status = json.loads(run_command("status", "--json"))
    assert status["stored"]["leads"] == 12
    assert status["last_run"]["kind"] == "incremental"
    assert status["last_run"]["status"] == "succeeded"
    assert "leadchanges" in status["cursors"]
    text = run_command("status")
    assert "Leads: 12" in text.replace("  ", "")


def test_a_failed_sync_exits_with_its_reason(marketo, marketo_settings):
    marketo.set_credentials("someone-else", "x")
    with pytest.raises(CommandError, match="Marketo refused the client id and secret"):
        run_command("full")
    assert SyncRun.objects.get().status == SyncRun.Status.FAILED


def test_it_says_when_marketo_is_not_configured(settings):
    settings.MARKETO_BASE_URL = ""
    with pytest.raises(CommandError, match="not configured"):
        run_command("full")


def test_async_queues_the_task(marketo_settings, monkeypatch):
    from marketo_sync import tasks

    queued = []

    class Result:
        id = "task-1"

    monkeypatch.setattr(tasks.full_sync, "delay", lambda **kw: queued.append(kw) or Result())
    assert "Queued the full sync (task task-1)" in run_command("full", "--async")
    assert queued == [{"started_by": "command", "fresh": False}]


def test_the_scheduled_incremental_sync_waits_for_configuration_and_a_full_sync(
    marketo, marketo_settings, settings
):
    from marketo_sync import tasks

    settings.MARKETO_BASE_URL = ""
    assert tasks.incremental_sync() is None
    settings.MARKETO_BASE_URL = marketo.base_url
    assert tasks.incremental_sync() is None  # no full sync yet
    assert not SyncRun.objects.exists()
    populate(marketo, leads=3)
    assert tasks.full_sync(started_by="test") is not None
    run_id = tasks.incremental_sync()
    assert SyncRun.objects.get(id=run_id).status == SyncRun.Status.SUCCEEDED
