"""python manage.py marketo_sync full|incremental [--async] [--fresh]
python manage.py marketo_sync status [--json]"""

import json
import sys
import threading

from django.core.management.base import BaseCommand, CommandError

from marketo_sync import selectors, services, tasks
from marketo_sync.models import SyncRun


class Command(BaseCommand):
    help = "Run the Marketo full or incremental sync, or show its status."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["full", "incremental", "status"])
        parser.add_argument(
            "--async",
            dest="queue",
            action="store_true",
            help="Queue the sync for a Celery worker instead of running it here.",
        )
        parser.add_argument(
            "--fresh",
            action="store_true",
            help="Full sync: start over instead of resuming an unfinished full sync.",
        )
        parser.add_argument("--json", action="store_true", help="status: print JSON.")

    def handle(self, *args, action, queue, fresh, json, **options):
        if action == "status":
            return self.show_status(as_json=json)
        if not services.marketo_configured():
            raise CommandError(
                "Marketo is not configured: set MARKETO_BASE_URL, MARKETO_CLIENT_ID and "
                "MARKETO_CLIENT_SECRET."
            )
        if queue:
            task = tasks.full_sync if action == "full" else tasks.incremental_sync
            kwargs = {"started_by": "command"}
            if action == "full":
                kwargs["fresh"] = fresh
            result = task.delay(**kwargs)
            self.stdout.write(f"Queued the {action} sync (task {result.id}).")
            return
        run = self.run_with_progress(action, fresh=fresh)
        if run is None:
            raise CommandError("A Marketo sync is already running.")
        summary = ", ".join(f"{k} {v}" for k, v in run.counts.items()) or "nothing to do"
        if run.status != SyncRun.Status.SUCCEEDED:
            raise CommandError(f"Sync #{run.pk} {run.status}: {run.error_message}")
        self.stdout.write(self.style.SUCCESS(f"Sync #{run.pk} succeeded: {summary}."))

    def run_with_progress(self, action: str, *, fresh: bool) -> SyncRun | None:
        """Run the sync in a thread; draw its progress here until it ends."""
        outcome: dict = {}

        def work():
            from django.db import connection

            try:
                outcome["run"] = services.run_sync(kind=action, started_by="command", fresh=fresh)
            except services.SyncBusy:
                outcome["run"] = None
            except BaseException as exc:
                outcome["error"] = exc
            finally:
                connection.close()

        thread = threading.Thread(target=work, name="marketo-sync")
        thread.start()
        tty = self.stdout.isatty()
        last_line = ""
        while thread.is_alive():
            thread.join(0.5)
            line = self.progress_line()
            if line and line != last_line:
                self.stdout.write(("\r" + line.ljust(100)) if tty else line, ending="")
                if not tty:
                    self.stdout.write("")
                last_line = line
        if tty and last_line:
            self.stdout.write("")
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("run")

    def progress_line(self) -> str:
        run = selectors.current_run()
        if run is None:
            return ""
        live = selectors.live_figures(run)
        bar = ""
        if run.windows_total:
            done = int(30 * live["windows_done"] / run.windows_total)
            bar = f"[{'#' * done}{'.' * (30 - done)}] {live['windows_done']}/{run.windows_total} "
        counts = " ".join(f"{k} {v:,}" for k, v in live["counts"].items())
        megabytes = live["bytes"] / 1e6
        rate = live["bytes_per_second"] / 1e6
        return f"{bar}{live['phase']} · {counts} · {megabytes:.1f} MB ({rate:.1f} MB/s)"

    def show_status(self, *, as_json: bool) -> None:
        runs = selectors.recent_runs(1)
        last = runs[0] if runs else None
        status = {
            "configured": services.marketo_configured(),
            "stored": selectors.stored_counts(),
            "cursors": selectors.cursors(),
            "last_run": None
            if last is None
            else {
                "id": last.pk,
                "kind": last.kind,
                "status": last.status,
                "phase": last.phase,
                "started_at": last.started_at,
                "finished_at": last.finished_at,
                "counts": last.counts,
                "bytes_downloaded": last.bytes_downloaded,
                "windows": f"{last.windows_done}/{last.windows_total}",
                "error_code": last.error_code,
                "error_message": last.error_message,
            },
        }
        if as_json:
            self.stdout.write(json.dumps(status, default=str, indent=2))
            return
        stored = status["stored"]
        self.stdout.write(f"Marketo configured: {'yes' if status['configured'] else 'no'}")
        for name in ("leads", "companies", "activities", "activity_types"):
            self.stdout.write(f"{name.replace('_', ' ').capitalize():>16}: {stored[name]:,}")
        for name, token in status["cursors"].items():
            self.stdout.write(f"Cursor {name}: {token}")
        if last is None:
            self.stdout.write("No sync has run yet.")
            return
        self.stdout.write(
            f"Last run: #{last.pk} {last.kind}, {last.status}, "
            f"started {last.started_at:%Y-%m-%d %H:%M:%S} UTC"
        )
        if last.error_message:
            self.stdout.write(f"Error ({last.error_code}): {last.error_message}")
        sys.stdout.flush()
