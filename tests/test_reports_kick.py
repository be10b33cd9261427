"""When the rollup runs after a chat step."""

import pytest

from reports import rollup
from reports.models import DialogueDay


@pytest.fixture(autouse=True)
def _no_recent_kick(monkeypatch):
    monkeypatch.setattr(rollup, "_last_kick", [0.0])


def test_in_the_embedded_mode_a_step_is_counted_right_after_its_commit(
    acme_dialogue, acme_widget, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True

    with django_capture_on_commit_callbacks(execute=True):
        acme_widget.start_conversation(acme_dialogue)

    assert DialogueDay.objects.get().triggered == 1
    assert rollup.pending() == 0


def test_with_a_worker_a_step_starts_one_rollup_a_few_seconds_later(
    acme_dialogue, acme_widget, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    started = []
    from reports import tasks

    monkeypatch.setattr(tasks.roll_up, "apply_async", lambda **options: started.append(options))

    with django_capture_on_commit_callbacks(execute=True):
        acme_widget.start_conversation(acme_dialogue)
    with django_capture_on_commit_callbacks(execute=True):
        acme_widget.start_conversation(acme_dialogue)

    # One waiting task is enough for both steps; nothing is counted before it runs.
    assert started == [{"countdown": rollup.KICK_DELAY_SECONDS}]
    assert not DialogueDay.objects.exists()
    assert tasks.roll_up() > 0  # what the worker runs
    assert DialogueDay.objects.get().triggered == 2


def test_a_failing_rollup_after_a_step_does_not_fail_the_step(
    acme_dialogue, acme_widget, settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.CELERY_TASK_ALWAYS_EAGER = True

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(rollup, "roll_up", broken)
    with django_capture_on_commit_callbacks(execute=True):
        conversation = acme_widget.start_conversation(acme_dialogue)

    assert conversation["conversation_id"]
    assert rollup.pending() > 0  # beat or the next step counts it
