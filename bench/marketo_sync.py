"""The Marketo full sync of a large instance, against the fake Marketo on loopback (`make bench`).

The fake (tests/fakes/marketo.py, in its own process) holds a synthetic instance: by default
1,000,000 leads created over a year, 50,000 companies and 2,000,000 activities over the last 89
days. The product's full sync runs in this process exactly as a Celery worker runs it, against
PostgreSQL, with Marketo's real limits (100 calls per 20 s, 10 concurrent, 2 jobs processing).
The fake completes an export job about a second after it is queued; real Marketo takes minutes,
which is Marketo's time, not ours, so the poll interval is 1 s here instead of 60.

Measured:
- the whole sync's wall time, and each phase's;
- ingest rows/s per entity: rows / the time spent downloading, parsing and writing that
  entity's files (waiting for Marketo's jobs excluded);
- the physical reference: the same export files COPY'd into plain tables of text columns
  through the same driver, rows/s; the ratio is ingest rows/s / reference rows/s;
- peak memory (max RSS) of this process, which ran the sync.

Results are printed and written to var/bench/marketo_sync.json.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

OUT_DIR = ROOT / "var" / "bench"
TARGET_SECONDS = 300
TARGET_RATIO = 0.3
TARGET_PEAK_MB = 500
CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret"  # noqa: S105 - the fake's credentials


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--companies", type=int, default=50_000)
    parser.add_argument("--activities", type=int, default=2_000_000)
    parser.add_argument("--lead-days", type=int, default=365)
    args = parser.parse_args()

    files_dir = tempfile.mkdtemp(prefix="bench-marketo-")
    end = datetime.now(UTC).replace(microsecond=0)
    fake = start_fake(args, files_dir, end)
    try:
        base_url = fake.stdout.readline().strip()
        configure(base_url)
        import django

        django.setup()
        prepare_database()
        report = run(args, files_dir)
    finally:
        fake.terminate()
        fake.wait(10)
        shutil.rmtree(files_dir, ignore_errors=True)
    print_report(report)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "marketo_sync.json").write_text(json.dumps(report, indent=2, default=str))
    ok = (
        report["status"] == "succeeded"
        and report["seconds"] < TARGET_SECONDS
        and min(e["ratio"] for e in report["entities"].values() if "ratio" in e) >= TARGET_RATIO
        and report["peak_memory_mb"] < TARGET_PEAK_MB
    )
    return 0 if ok else 1


def start_fake(args, files_dir: str, end: datetime) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "tests.fakes.marketo",
        "--port=0",
        f"--client-id={CLIENT_ID}",
        f"--client-secret={CLIENT_SECRET}",
        f"--synthetic-leads={args.leads}",
        f"--synthetic-companies={args.companies}",
        f"--synthetic-activities={args.activities}",
        f"--lead-days={args.lead_days}",
        "--activity-days=89",
        f"--end={end.isoformat()}",
        "--bulk-status-delay=0.5",
        "--export-quota-mb=100000",
        f"--files-dir={files_dir}",
    ]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)


def configure(base_url: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    os.environ["MARKETO_BASE_URL"] = base_url
    os.environ["MARKETO_CLIENT_ID"] = CLIENT_ID
    os.environ["MARKETO_CLIENT_SECRET"] = CLIENT_SECRET
    os.environ["MARKETO_BULK_POLL_SECONDS"] = "1"
    os.environ["LOG_LEVEL"] = "WARNING"


def prepare_database() -> None:
    from django.db import connection

    from bench.database import create_and_migrate

    create_and_migrate()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE marketo_sync_lead, marketo_sync_company, marketo_sync_activity, "
            "marketo_sync_activitytype, marketo_sync_exportwindow, marketo_sync_syncrun, "
            "marketo_sync_synccursor, marketo_sync_syncsettings"
        )
        cursor.execute("DROP TABLE IF EXISTS bench_raw_leads, bench_raw_activities")
    from marketo_sync.client import MarketoConfig
    from marketo_sync.limits import Limiter

    config = MarketoConfig.from_settings()
    Limiter(config.limits, key=config.client_id, redis_url=config.redis_url).reset()


def run(args, files_dir: str) -> dict:
    from marketo_sync import services, sync
    from marketo_sync.models import Company, ExportWindow, Lead

    # Ingest workers overlap: an entity's ingest time is the union of its files' intervals.
    intervals: dict[str, list[tuple[float, float]]] = {"leads": [], "activities": []}
    phase_seconds: dict[str, float] = {}
    real_ingest = sync._ingest_file
    real_phase = sync.Progress.phase

    def timed_ingest(window, *rest, **kwargs):
        began = time.perf_counter()
        try:
            return real_ingest(window, *rest, **kwargs)
        finally:
            intervals[window.entity].append((began, time.perf_counter()))

    phase_started = {"name": None, "at": time.perf_counter()}

    def timed_phase(progress, name):
        now = time.perf_counter()
        if phase_started["name"]:
            phase_seconds[phase_started["name"]] = now - phase_started["at"]
        phase_started.update(name=name, at=now)
        return real_phase(progress, name)

    sync._ingest_file = timed_ingest
    sync.Progress.phase = timed_phase
    began = time.perf_counter()
    run = services.run_sync(kind="full", started_by="bench")
    seconds = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    ingest_seconds = {entity: union_length(spans) for entity, spans in intervals.items()}
    # Building the lookup indexes after a first load is part of ingesting.
    index_seconds = phase_seconds.get("Building indexes", 0.0)
    windows = list(ExportWindow.objects.filter(run=run))
    total_rows = sum(w.records for w in windows)
    entities = {}
    for entity, table, count in (
        ("leads", "bench_raw_leads", Lead.objects.count()),
        ("activities", "bench_raw_activities", None),
    ):
        files = [
            Path(files_dir) / f"{w.export_id}.csv"
            for w in windows
            if w.entity == entity and (Path(files_dir) / f"{w.export_id}.csv").exists()
        ]
        rows = sum(w.records for w in windows if w.entity == entity)
        reference = raw_copy(files, table)
        # The index build is shared: charge each entity its share by rows.
        entity_seconds = ingest_seconds[entity] + index_seconds * rows / max(total_rows, 1)
        ingest_rate = rows / entity_seconds if entity_seconds else 0
        entities[entity] = {
            "rows_exported": rows,
            "rows_stored": count if count is not None else table_count("marketo_sync_activity"),
            "bytes": sum(w.file_size for w in windows if w.entity == entity),
            "ingest_seconds": round(entity_seconds, 2),
            "ingest_rows_per_second": round(ingest_rate),
            "raw_copy_seconds": round(reference["seconds"], 2),
            "raw_copy_rows_per_second": round(reference["rows_per_second"]),
            "ratio": round(ingest_rate / reference["rows_per_second"], 3)
            if reference["rows_per_second"]
            else 0,
        }
    # Both entities together: every exported row over the time anything was being ingested
    # (plus the index build), against COPY of all the files.
    wall = union_length(intervals["leads"] + intervals["activities"]) + index_seconds
    reference_seconds = sum(entities[e]["raw_copy_seconds"] for e in ("leads", "activities"))
    entities["all"] = {
        "rows_stored": total_rows,
        "ingest_seconds": round(wall, 2),
        "ingest_rows_per_second": round(total_rows / wall) if wall else 0,
        "raw_copy_rows_per_second": round(total_rows / reference_seconds)
        if reference_seconds
        else 0,
        "ratio": round(reference_seconds / wall, 3) if wall else 0,
    }
    company_seconds = phase_seconds.get("Reading companies", 0)
    companies = Company.objects.count()
    entities["companies"] = {
        "rows_stored": companies,
        "seconds": round(company_seconds, 2),
        "rows_per_second": round(companies / company_seconds) if company_seconds else 0,
    }
    return {
        "status": run.status,
        "error": run.error_message,
        "seconds": round(seconds, 1),
        "phases": {k: round(v, 1) for k, v in phase_seconds.items()},
        "ingest_wall_seconds": round(union_length(intervals["leads"] + intervals["activities"]), 1),
        "entities": entities,
        "peak_memory_mb": round(peak_mb),
        "bytes_downloaded": run.bytes_downloaded,
        "windows": len(windows),
        "instance": {
            "leads": args.leads,
            "companies": args.companies,
            "activities": args.activities,
            "lead_days": args.lead_days,
        },
        "cpus": os.cpu_count(),
    }


def union_length(spans: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(spans):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def raw_copy(files: list[Path], table: str) -> dict:
    """COPY the export files as they are into a plain table of text columns: the physical
    reference for moving these rows into PostgreSQL."""
    from django.db import connection, transaction

    rows = 0
    seconds = 0.0
    for path in files:
        with path.open("rb") as fh:
            header = fh.readline().decode().strip().split(",")
            with transaction.atomic(), connection.cursor() as cursor:
                columns = ", ".join(f'"{name}" text' for name in header)
                cursor.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
                began = time.perf_counter()
                statement = f"COPY {table} FROM STDIN WITH (FORMAT csv, NULL 'null')"
                with cursor.cursor.copy(statement) as copy:
                    while chunk := fh.read(1 << 16):
                        copy.write(chunk.replace(b"\x00", b""))
                rows += cursor.cursor.rowcount
            seconds += time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
    return {"rows": rows, "seconds": seconds, "rows_per_second": rows / seconds if seconds else 0}


def table_count(table: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - a fixed table name
        return cursor.fetchone()[0]


def print_report(report: dict) -> None:
    print(f"Full sync: {report['status']} in {report['seconds']} s (target < {TARGET_SECONDS} s)")
    if report["error"]:
        print(f"  error: {report['error']}")
    for phase, seconds in report["phases"].items():
        print(f"  {phase:<45} {seconds:>7.1f} s")
    print(f"{'entity':<12}{'rows':>11}{'ingest rows/s':>15}{'COPY rows/s':>13}{'ratio':>8}")
    for name, e in report["entities"].items():
        if "ratio" in e:
            print(
                f"{name:<12}{e['rows_stored']:>11,}{e['ingest_rows_per_second']:>15,}"
                f"{e['raw_copy_rows_per_second']:>13,}{e['ratio']:>8.2f}"
            )
        else:
            print(f"{name:<12}{e['rows_stored']:>11,}{e['rows_per_second']:>15,}")
    print(f"Peak memory: {report['peak_memory_mb']} MB (target < {TARGET_PEAK_MB} MB)")
    print(f"Downloaded: {report['bytes_downloaded'] / 1e6:.0f} MB in {report['windows']} windows")


if __name__ == "__main__":
    sys.exit(main())
