"""The nightly retention purge (reports/retention.py): raw data older than the retention period
goes, one second either side of the cutoff decides; the daily report tables and meetings stay;
events are counted before they go; a purge that dies midway loses nothing and the next one
finishes; a dry run changes nothing. Chats are made through the widget API and then moved back
in time, as if they had happened then."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketo_sync.models import Activity, OutboxRecord
from meetings.models import Meeting
from reports import retention, rollup, tasks
from reports.models import CardDay, DialogueDay, PageDay
from tests.test_booking import book, first_slot, to_booking
from tests.test_marketo_writeback import writeback_on  # noqa: F401
from widget.models import Conversation, ConversationEvent, TranscriptEntry, Visitor

DAYS = 90
SECOND = timedelta(seconds=1)
Status = OutboxRecord.Status


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


@pytest.fixture
def cutoff(now):
    return now - timedelta(days=DAYS)


def purge(now, **kwargs) -> retention.PurgeReport:
    return retention.purge_expired(now=now, days=DAYS, **kwargs)


def chat(widget, dialogue, *answers, visitor_id=None) -> Conversation:
    """A conversation through the widget API, answered with `answers`."""
    conversation = widget.start_conversation(dialogue, visitor_id=visitor_id)
    for value in answers:
        response = widget.answer(conversation, value)
        assert response.status_code == 200, response.content
        conversation = {**conversation, **response.json()}
    return Conversation.objects.get(pk=conversation["conversation_id"])


def age(conversation: Conversation, moment, *, visitor: bool = True) -> Conversation:
    """Move a conversation (its transcript, events and outbox records, and with `visitor` its
    visitor) back to `moment`, as if it had all happened then."""
    Conversation.objects.filter(pk=conversation.pk).update(
        started_at=moment, updated_at=moment, engaged_at=None, completed_at=None
    )
    TranscriptEntry.objects.filter(conversation=conversation).update(created_at=moment)
    ConversationEvent.objects.filter(conversation=conversation).update(created_at=moment)
    records = OutboxRecord.objects.filter(conversation=conversation)
    if visitor:
        Visitor.objects.filter(pk=conversation.visitor_id).update(
            created_at=moment, last_seen_at=moment
        )
        records = OutboxRecord.objects.filter(
            Q(conversation=conversation) | Q(visitor_id=conversation.visitor_id)
        )
    records.update(created_at=moment, next_attempt_at=moment)
    conversation.refresh_from_db()
    return conversation


def left_of(conversation: Conversation) -> dict:
    """What is still stored of a conversation."""
    return {
        "conversation": Conversation.objects.filter(pk=conversation.pk).exists(),
        "lines": TranscriptEntry.objects.filter(conversation=conversation).count(),
        "events": ConversationEvent.objects.filter(conversation=conversation).count(),
        "visitor": Visitor.objects.filter(pk=conversation.visitor_id).exists(),
    }


def everything() -> dict:
    return {
        model.__name__: model.objects.count()
        for model in (
            Visitor,
            Conversation,
            TranscriptEntry,
            ConversationEvent,
            OutboxRecord,
            Meeting,
            Activity,
        )
    }


def report_tables() -> dict:
    """The daily report tables' rows, without ids."""
    return {
        model.__name__: sorted(
            tuple(sorted((k, str(v)) for k, v in row.items() if k != "id"))
            for row in model.objects.values()
        )
        for model in (DialogueDay, CardDay, PageDay)
    }


def counted_tables() -> dict:
    """The report tables as a rollup of every event would make them now (rolled back)."""
    with transaction.atomic():
        rollup.roll_up()
        tables = report_tables()
        transaction.set_rollback(True)
    return tables


# --- what goes and what stays -----------------------------------------------------------------


def test_conversations_older_than_the_period_go_and_newer_ones_stay(
    acme_widget, acme_dialogue, now, cutoff
):
    old = age(chat(acme_widget, acme_dialogue, "yes", "Ann"), cutoff - SECOND)
    new = age(chat(acme_widget, acme_dialogue, "yes", "Bo"), cutoff + SECOND)
    kept = left_of(new)
    gone = left_of(old)

    report = purge(now)

    assert left_of(old) == {"conversation": False, "lines": 0, "events": 0, "visitor": False}
    assert left_of(new) == kept
    assert (report.conversations, report.transcript_entries, report.events) == (
        1,
        gone["lines"],
        gone["events"],
    )
    assert report.visitors == 1
    assert report.uncounted_events_kept == 0


def test_a_conversation_still_active_keeps_its_recent_lines_and_loses_the_old_ones(
    acme_widget, acme_dialogue, now, cutoff
):
    conversation = age(chat(acme_widget, acme_dialogue, "yes"), cutoff - SECOND)
    # The visitor came back to it after the cutoff and answered once more.
    last_line = TranscriptEntry.objects.filter(conversation=conversation).latest("seq")
    last_event = ConversationEvent.objects.filter(conversation=conversation).latest("id")
    TranscriptEntry.objects.filter(pk=last_line.pk).update(created_at=cutoff + SECOND)
    ConversationEvent.objects.filter(pk=last_event.pk).update(created_at=cutoff + SECOND)
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=cutoff + SECOND)

    purge(now)

    assert list(TranscriptEntry.objects.filter(conversation=conversation)) == [last_line]
    assert list(ConversationEvent.objects.filter(conversation=conversation)) == [last_event]
    assert Conversation.objects.filter(pk=conversation.pk).exists()
    assert Visitor.objects.filter(pk=conversation.visitor_id).exists()


def test_a_quiet_conversation_goes_with_its_last_line_once_that_is_old_enough(
    acme_widget, acme_dialogue, now, cutoff
):
    conversation = age(chat(acme_widget, acme_dialogue, "yes"), cutoff - timedelta(days=5))
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=cutoff + SECOND)
    TranscriptEntry.objects.filter(conversation=conversation).update(created_at=cutoff + SECOND)

    purge(now)
    assert left_of(conversation)["conversation"]
    assert left_of(conversation)["events"] == 0  # the old events went already

    purge(now + 2 * SECOND)
    assert left_of(conversation) == {
        "conversation": False,
        "lines": 0,
        "events": 0,
        "visitor": False,
    }


def test_anonymous_visitors_go_once_unseen_for_the_period_and_known_ones_stay(
    acme_widget, acme_dialogue, now, cutoff
):
    anonymous = age(chat(acme_widget, acme_dialogue, "yes"), cutoff - SECOND)
    known = age(chat(acme_widget, acme_dialogue, "yes", "Ann", "ann@bigco.com"), cutoff - SECOND)
    returning = age(chat(acme_widget, acme_dialogue, "yes"), cutoff - SECOND)
    Visitor.objects.filter(pk=returning.visitor_id).update(last_seen_at=cutoff + SECOND)
    # A visitor who only chatted recently, on a key first used long ago.
    recent = age(chat(acme_widget, acme_dialogue, "yes"), cutoff + SECOND, visitor=False)
    Visitor.objects.filter(pk=recent.visitor_id).update(created_at=cutoff - SECOND)

    report = purge(now)

    assert not Visitor.objects.filter(pk=anonymous.visitor_id).exists()
    assert Visitor.objects.get(pk=known.visitor_id).email == "ann@bigco.com"
    assert Visitor.objects.filter(pk=returning.visitor_id).exists()
    assert Visitor.objects.filter(pk=recent.visitor_id).exists()
    assert report.visitors == 1
    # Every old conversation went, the known visitor's too; the recent one stayed.
    assert list(Conversation.objects.all()) == [recent]


@pytest.mark.usefixtures("writeback_on")
def test_outbox_records_that_waited_for_an_email_go_and_sent_ones_lose_the_links(
    acme_widget, acme_dialogue, now, cutoff
):
    waited = age(chat(acme_widget, acme_dialogue, "yes"), cutoff - SECOND)
    waiting = age(chat(acme_widget, acme_dialogue, "yes"), cutoff + SECOND)
    sent = age(chat(acme_widget, acme_dialogue, "yes", "Ann", "ann@bigco.com"), cutoff - SECOND)
    OutboxRecord.objects.filter(visitor_id=sent.visitor_id).update(status=Status.DELIVERED)
    # A waiting record of a visitor who is still around (seen since), written long ago.
    stale = age(chat(acme_widget, acme_dialogue, "yes"), cutoff - SECOND)
    Visitor.objects.filter(pk=stale.visitor_id).update(last_seen_at=cutoff + SECOND)
    # An anonymous visitor's parked record (no lead: nothing waits) keeps no visitor.
    parked = age(chat(acme_widget, acme_dialogue, "yes"), cutoff - SECOND)
    OutboxRecord.objects.filter(visitor_id=parked.visitor_id).update(status=Status.PARKED)
    before = {
        conversation: OutboxRecord.objects.filter(conversation=conversation).count()
        for conversation in (waited, waiting, sent, stale, parked)
    }
    assert all(before.values())

    report = purge(now)

    assert not OutboxRecord.objects.filter(visitor_id=waited.visitor_id).exists()
    assert not OutboxRecord.objects.filter(visitor_id=stale.visitor_id).exists()
    assert OutboxRecord.objects.filter(conversation=waiting).count() == before[waiting]
    delivered = OutboxRecord.objects.filter(status=Status.DELIVERED)
    assert delivered.count() == OutboxRecord.objects.filter(lead_key="ann@bigco.com").count() > 0
    # The known visitor stays; their old conversation went from their records.
    assert set(delivered.values_list("visitor_id", "conversation_id")) == {(sent.visitor_id, None)}
    assert (
        list(
            OutboxRecord.objects.filter(status=Status.PARKED).values_list("visitor", "conversation")
        )
        == [(None, None)] * before[parked]
    )
    assert report.outbox_records == before[waited] + before[stale]


def test_marketo_activities_older_than_the_period_go(db, now, cutoff):
    for guid, moment in (("old", cutoff - SECOND), ("new", cutoff + SECOND)):
        Activity.objects.create(
            marketo_guid=guid, lead_id=7, activity_date=moment, activity_type_id=1
        )

    report = purge(now)

    assert list(Activity.objects.values_list("marketo_guid", flat=True)) == ["new"]
    assert report.activities == 1


def test_meetings_are_kept_without_their_purged_conversation(
    acme_widget, acme_dialogue, alex, now, cutoff
):
    booked = to_booking(acme_widget, acme_dialogue)
    assert book(acme_widget, booked, first_slot(acme_widget, booked)).status_code == 201
    conversation = age(Conversation.objects.get(pk=booked["conversation_id"]), cutoff - SECOND)
    meeting = Meeting.objects.get()

    report = purge(now)

    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    kept = Meeting.objects.get()
    assert kept.conversation_id is None
    assert (kept.pk, kept.lead_email, kept.agent) == (meeting.pk, "ann@bigco.com", alex)
    assert report.meetings_kept == 1


# --- the reports keep their counts --------------------------------------------------------------


def test_events_are_counted_into_the_reports_before_they_go(
    acme_widget, acme_dialogue, now, cutoff
):
    age(chat(acme_widget, acme_dialogue, "yes", "Ann", "ann@bigco.com"), cutoff - SECOND)
    age(chat(acme_widget, acme_dialogue, "no"), cutoff - timedelta(days=3))
    age(chat(acme_widget, acme_dialogue, "yes"), cutoff + SECOND)
    # Chat steps count their events after they commit; a test's transaction never does.
    assert not ConversationEvent.objects.filter(rolled_up=True).exists()
    expected = counted_tables()
    assert expected["DialogueDay"]

    report = purge(now)

    assert report_tables() == expected
    assert report.counted == report.events + ConversationEvent.objects.count()
    # The reports as they were, and later purges change nothing in them.
    purge(now + timedelta(days=5))
    assert report_tables() == expected


def test_an_event_the_rollup_did_not_count_is_kept_with_its_conversation(
    acme_widget, acme_dialogue, now, cutoff, monkeypatch
):
    conversation = age(chat(acme_widget, acme_dialogue, "yes"), cutoff - SECOND)
    events = ConversationEvent.objects.filter(conversation=conversation).count()
    monkeypatch.setattr(rollup, "roll_up", lambda **kwargs: 0)  # the rollup fails to count

    report = purge(now)

    assert left_of(conversation)["events"] == events
    assert left_of(conversation)["conversation"]
    assert left_of(conversation)["lines"] == 0
    assert (report.events, report.conversations, report.uncounted_events_kept) == (0, 0, events)


# --- batches, interruptions, dry runs -----------------------------------------------------------


def test_a_purge_that_dies_after_a_batch_loses_nothing_and_the_next_one_finishes(
    acme_widget, acme_dialogue, now, cutoff, monkeypatch
):
    old = [age(chat(acme_widget, acme_dialogue, "yes"), cutoff - n * SECOND) for n in (3, 2, 1)]
    whole = [left_of(c) for c in old]
    monkeypatch.setattr(retention, "CONVERSATION_BATCH", 1)
    real_batch = retention._purge_conversations
    calls = []

    def dies_after_the_first_batch(*args, **kwargs):
        if calls:
            raise RuntimeError("worker lost")
        calls.append(1)
        return real_batch(*args, **kwargs)

    monkeypatch.setattr(retention, "_purge_conversations", dies_after_the_first_batch)
    with pytest.raises(RuntimeError):
        purge(now)

    # The oldest went whole; the others are untouched, visitors included.
    assert left_of(old[0])["conversation"] is False
    assert [left_of(c) for c in old[1:]] == whole[1:]

    monkeypatch.setattr(retention, "_purge_conversations", real_batch)
    report = purge(now)  # not "busy": the dead purge's lock was freed

    assert not report.busy
    assert report.conversations == 2
    assert not Conversation.objects.exists() and not Visitor.objects.exists()


def test_a_batch_that_fails_halfway_is_undone_whole(
    acme_widget, acme_dialogue, now, cutoff, monkeypatch
):
    conversation = age(chat(acme_widget, acme_dialogue, "yes"), cutoff - SECOND)
    whole = left_of(conversation)

    def fails(model, ids):
        raise RuntimeError("connection lost")

    # Events and lines are deleted, then deleting the conversation fails.
    monkeypatch.setattr(retention, "delete_by_ids", fails)
    with pytest.raises(RuntimeError):
        purge(now)

    assert left_of(conversation) == whole


def test_the_work_does_not_grow_with_the_rows_deleted(acme_widget, acme_dialogue, now, cutoff):
    def queries_to_purge(count, moment):
        for _ in range(count):
            age(chat(acme_widget, acme_dialogue, "yes"), moment - SECOND)
        with CaptureQueriesContext(connection) as queries:
            report = purge(moment + timedelta(days=DAYS))
        assert report.conversations == count
        return len(queries)

    assert queries_to_purge(1, cutoff) == queries_to_purge(6, cutoff + timedelta(days=1))


@pytest.mark.usefixtures("writeback_on")
def test_a_dry_run_counts_what_would_go_and_changes_nothing(
    acme_widget, acme_dialogue, alex, now, cutoff
):
    age(chat(acme_widget, acme_dialogue, "yes", "Ann"), cutoff - SECOND)
    age(chat(acme_widget, acme_dialogue, "yes"), cutoff + SECOND)
    booked = to_booking(acme_widget, acme_dialogue, email="cy@bigco.com")
    book(acme_widget, booked, first_slot(acme_widget, booked))
    age(Conversation.objects.get(pk=booked["conversation_id"]), cutoff - SECOND)
    Activity.objects.create(
        marketo_guid="old", lead_id=7, activity_date=cutoff - SECOND, activity_type_id=1
    )
    before, tables = everything(), report_tables()

    dry = purge(now, dry_run=True)

    assert everything() == before and report_tables() == tables
    assert not ConversationEvent.objects.filter(rolled_up=True).exists()
    real = purge(now)
    skip = {"dry_run", "seconds", "counted"}
    assert {k: v for k, v in dry.as_dict().items() if k not in skip} == {
        k: v for k, v in real.as_dict().items() if k not in skip
    }
    assert dry.counted == dry.events  # none was counted yet: the purge counts them first
    assert (real.conversations, real.meetings_kept, real.activities) == (2, 1, 1)
    assert real.outbox_records == 1  # the anonymous visitor's engagement


def test_a_second_purge_at_the_same_time_does_nothing(
    acme_widget, acme_dialogue, now, cutoff, purge_lock_held_elsewhere
):
    conversation = age(chat(acme_widget, acme_dialogue, "yes"), cutoff - SECOND)

    report = purge(now)

    assert report.busy
    assert left_of(conversation)["conversation"]


@pytest.fixture
def purge_lock_held_elsewhere():
    """Another worker running a purge."""
    import psycopg

    params = connection.get_connection_params()
    keys = ("dbname", "user", "host", "port", "password")
    with psycopg.connect(**{k: v for k, v in params.items() if k in keys}) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [retention.LOCK_KEY])
        yield


def test_the_period_is_at_least_a_day(db):
    with pytest.raises(ValueError, match="at least one day"):
        retention.purge_expired(days=0)


# --- the command and the task -------------------------------------------------------------------


def run(*args) -> str:
    out = StringIO()
    call_command("purge_expired", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_command_purges_and_says_what_went(acme_widget, acme_dialogue, settings):
    settings.RETENTION_DAYS = 30
    conversation = age(chat(acme_widget, acme_dialogue, "no"), timezone.now() - timedelta(31))
    kept = age(chat(acme_widget, acme_dialogue, "no"), timezone.now() - timedelta(29))
    lines = TranscriptEntry.objects.filter(conversation=conversation).count()

    printed = run()

    assert "conversations: 1" in printed
    assert f"transcript entries: {lines}" in printed
    assert f", {lines} transcript lines, 1 conversation, 1 anonymous visitor." in printed
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert Conversation.objects.filter(pk=kept.pk).exists()


def test_the_command_dry_run_prints_json_and_deletes_nothing(acme_widget, acme_dialogue):
    conversation = age(chat(acme_widget, acme_dialogue, "no"), timezone.now() - timedelta(11))

    printed = json.loads(run("--days", "10", "--dry-run", "--json"))

    assert printed["dry_run"] is True
    assert printed["conversations"] == 1 and printed["visitors"] == 1
    assert printed["events"] == ConversationEvent.objects.count()
    assert Conversation.objects.filter(pk=conversation.pk).exists()
    assert "Would delete: " in run("--days", "10", "--dry-run")


def test_the_command_refuses_a_period_under_a_day(db):
    with pytest.raises(CommandError, match="--days must be at least 1"):
        run("--days", "0")


def test_the_command_fails_while_another_purge_runs(db, purge_lock_held_elsewhere):
    with pytest.raises(CommandError, match="Another purge is running"):
        run()


def test_the_nightly_task_purges_with_the_configured_period(acme_widget, acme_dialogue, settings):
    settings.RETENTION_DAYS = 7
    conversation = age(chat(acme_widget, acme_dialogue, "no"), timezone.now() - timedelta(8))

    result = tasks.purge_expired.apply().get()

    assert result["conversations"] == 1 and result["busy"] is False
    assert json.loads(json.dumps(result)) == result  # what Celery's JSON serializer carries
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
