"""python manage.py purge_expired [--days N] [--dry-run] [--json]

Delete raw chat and Marketo data older than the retention period (RETENTION_DAYS unless
--days says otherwise), as Celery beat does every night (reports.retention); --dry-run counts
what would go and changes nothing."""

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from reports import retention


class Command(BaseCommand):
    help = "Delete raw data older than the retention period (the daily reports are kept)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"Keep this many days instead of RETENTION_DAYS ({settings.RETENTION_DAYS}).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, days, dry_run, json, **options):
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1.")
        report = retention.purge_expired(days=days, dry_run=dry_run)
        if report.busy:
            raise CommandError("Another purge is running; nothing was deleted.")
        if json:
            self.stdout.write(_json(report.as_dict()))
            return
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"Older than {report.cutoff:%Y-%m-%d %H:%M} UTC:")
        for name in retention.PurgeReport.DELETED:
            self.stdout.write(f"{name.replace('_', ' '):>20}: {getattr(report, name)}")
        self.stdout.write(f"{'meetings kept':>20}: {report.meetings_kept}")
        counted = "not counted yet" if dry_run else "counted first"
        self.stdout.write(f"{'events ' + counted:>20}: {report.counted}")
        if report.uncounted_events_kept:
            self.stderr.write(
                self.style.WARNING(
                    f"{report.uncounted_events_kept} old events are not counted into the "
                    "reports yet and were kept; the next purge deletes them once counted."
                )
            )
        self.stdout.write(self.style.SUCCESS(f"{verb}: {report.summary()}."))


def _json(data: dict) -> str:
    return json.dumps(data, indent=2)
