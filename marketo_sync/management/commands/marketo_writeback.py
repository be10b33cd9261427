"""python manage.py marketo_writeback activity-types | deliver | status [--json]

- activity-types: create (or complete) DynChat's custom activity types in Marketo and approve
  them, instead of waiting for the first activity to do it;
- deliver: send what the outbox holds now, here (a worker does it every minute);
- status: the outbox's counts and the delivery's state."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Min
from django.utils import timezone

from marketo_sync import delivery, writeback
from marketo_sync.client import MarketoClient
from marketo_sync.errors import MarketoError
from marketo_sync.models import DeliveryState, OutboxRecord


class Command(BaseCommand):
    help = "Marketo write-back: create the activity types, deliver the outbox, or show its state."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["activity-types", "deliver", "status"])
        parser.add_argument("--json", action="store_true", help="status: print JSON.")

    def handle(self, *args, action, json, **options):
        if action == "status":
            return self.show_status(as_json=json)
        if not writeback.enabled():
            raise CommandError(
                "Marketo is not configured: set MARKETO_BASE_URL, MARKETO_CLIENT_ID and "
                "MARKETO_CLIENT_SECRET."
            )
        if action == "activity-types":
            try:
                with MarketoClient(delivery.client_config()) as client:
                    ids = delivery.ensure_activity_types(client)
            except MarketoError as exc:
                raise CommandError(exc.explain()) from None
            for event, spec in writeback.ACTIVITY_TYPES.items():
                self.stdout.write(f"{spec.name} ({spec.api_name}): activity type {ids[event]}")
            return
        report = delivery.deliver()
        if report is None:
            raise CommandError(
                "Nothing was delivered: another delivery is running, or Marketo's daily quota "
                "is spent (see `marketo_writeback status`)."
            )
        summary = ", ".join(f"{k} {v}" for k, v in report.as_dict().items() if v)
        if report.stopped:
            state = DeliveryState.load()
            raise CommandError(f"Delivery stopped: {state.problem_message} ({summary})")
        self.stdout.write(self.style.SUCCESS(f"Delivered: {summary or 'nothing was due'}."))

    def show_status(self, *, as_json: bool):
        counts = dict(OutboxRecord.objects.values_list("status").annotate(n=Count("id")).order_by())
        oldest = OutboxRecord.objects.filter(status=OutboxRecord.Status.PENDING).aggregate(
            at=Min("created_at")
        )["at"]
        state = DeliveryState.load()
        data = {
            "counts": {status: counts.get(status, 0) for status in OutboxRecord.Status.values},
            "oldest_pending_seconds": (
                round((timezone.now() - oldest).total_seconds()) if oldest else None
            ),
            "last_run_at": state.last_run_at.isoformat() if state.last_run_at else None,
            "problem": state.problem_code or None,
            "problem_message": state.problem_message or None,
            "resume_at": state.resume_at.isoformat() if state.resume_at else None,
            "calls": state.calls,
        }
        if as_json:
            self.stdout.write(json.dumps(data, indent=2))
            return
        for status, count in data["counts"].items():
            self.stdout.write(f"{status:>10}: {count}")
        if oldest:
            self.stdout.write(f"oldest pending: {data['oldest_pending_seconds']} s")
        if state.problem_code:
            self.stdout.write(f"problem: {state.problem_code}: {state.problem_message}")
