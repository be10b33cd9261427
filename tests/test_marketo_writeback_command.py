"""python manage.py marketo_writeback: activity-types, deliver and status, against the fake
Marketo."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from marketo_sync.models import OutboxRecord
from tests.test_marketo_delivery import lead_named, outbox_settings  # noqa: F401
from tests.test_marketo_writeback import Chat

# Marketo configured, pointing at the fake (its fixture comes with the import above).
pytestmark = pytest.mark.usefixtures("outbox_settings")


def run(*args) -> str:
    out = StringIO()
    call_command("marketo_writeback", *args, stdout=out)
    return out.getvalue()


def test_activity_types_are_created_by_the_command(db, marketo):
    printed = run("activity-types")

    assert "Engaged with a Dialogue (dynchatEngagedWithDialogue): activity type 1000" in printed
    assert len(marketo.custom_activity_types) == 3


def test_deliver_sends_what_is_due_and_status_counts_it(
    marketo,
    acme,
    acme_dialogue,
):
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")
    Chat(acme, acme_dialogue).say("yes", "Bo")  # anonymous: waits
    before = json.loads(run("status", "--json"))
    assert before["counts"] == {"waiting": 1, "pending": 3, "delivered": 0, "parked": 0}
    assert before["oldest_pending_seconds"] >= 0

    printed = run("deliver")

    assert "delivered 3" in printed
    assert lead_named(marketo, "ann@bigco.com")
    after = json.loads(run("status", "--json"))
    assert after["counts"]["delivered"] == 3 and after["counts"]["pending"] == 0
    assert after["calls"] > 0 and after["problem"] is None
    assert "delivered: 3" in run("status")


def test_deliver_says_why_it_stopped(marketo, acme, acme_dialogue):
    marketo.deny_permission("/rest/v1/leads.json")
    Chat(acme, acme_dialogue).say("yes", "Ann", "ann@bigco.com")

    with pytest.raises(CommandError, match=r"Delivery stopped: .*permission"):
        run("deliver")
    assert not OutboxRecord.objects.filter(status="parked").exists()


def test_the_command_needs_marketo_configured(settings):
    settings.MARKETO_BASE_URL = ""
    with pytest.raises(CommandError, match="Marketo is not configured"):
        run("deliver")
