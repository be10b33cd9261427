"""Reports over 90 days of chat, and the nightly purge (`make bench`): issue 8's figures.

"With 10,000,000 engagement events over 90 days across 200 dialogues, the dialogue report and
the overall dashboard each render in under 300 ms, and the nightly purge of one day's worth of
expired data takes under a minute."

The bench database gets one site with 200 published dialogues (EVERY_CARD_FLOW's shape; a
fifth of them republished during the period, so they have two versions), 300 pages, and the
history bench/report_history.py writes with COPY: 10,000,000 events in the 90 days before now
(plus one more day of the same traffic past the retention cutoff), with their conversations,
transcript lines, visitors and booked meetings, as the chat writes them. The events are
marked counted and the daily report tables hold exactly what reports.rollup counts (checked
on a sample against rollup.tally_of of the raw events). Then ANALYZE, as autovacuum would.

Measured, in this process, with Django's test client logged in as a marketing user of the
site (the bench settings: DEBUG off), median and p95 of --runs requests after one warm-up:
- the dialogue report of the busiest dialogue: the default (last 30 days) and 90 days;
- the overall dashboard, all dialogues: the default (30 days) and 90 days;
target: p95 under 300 ms each;
- the rollup: --backlog fresh events not counted yet (new conversations of the last hour),
  counted by reports.rollup.roll_up(): events/s;
- the nightly purge: reports.retention.purge_expired() with exactly one day past the cutoff;
  target: under 60 s. Rows deleted per kind.

Results are printed and written to var/bench/reports.json. Exit status 1 if a target is
missed or a check fails. `--reuse` measures on the history the last run left instead of
writing it anew (the report pages only, once that run has purged its expired day).
"""

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

OUT_DIR = ROOT / "var" / "bench"

TARGET_PAGE_MS = 300.0
TARGET_PURGE_S = 60.0
LOADED_TABLES = (
    "widget_conversationevent",
    "widget_transcriptentry",
    "widget_conversation",
    "widget_visitor",
)


def state_file() -> Path:
    """The parameters and load figures of the history in the bench database (one file per
    database: two runs on two databases must not share it)."""
    return OUT_DIR / f"reports_state_{database_name()}.json"


def index_file() -> Path:
    """Indexes dropped for the load, kept here until they are rebuilt (a run killed half way
    rebuilds them on its next start), per database."""
    return OUT_DIR / f"reports_indexes_{database_name()}.json"


def database_name() -> str:
    from django.conf import settings

    return settings.DATABASES["default"]["NAME"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90, help="retention days (RETENTION_DAYS)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--reuse", action="store_true", help="keep the last run's history")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # WhiteNoise warns that collectstatic never ran; the pages need no static file here.
    warnings.filterwarnings("ignore", "No directory at", UserWarning)
    import django

    django.setup()
    from bench.database import create_and_migrate

    create_and_migrate()
    restore_indexes()

    report: dict = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "events_target": args.events,
        "days": args.days,
    }
    history, state = reusable(args) if args.reuse else (None, None)
    if history is None:
        history, report["load"] = load(args)
        state = {"used": False}
    else:
        report["load"] = {"reused": True, **state["load"]}
    report["data"] = data_sizes(history)
    print_data(report)

    checks = {"sample": check_sample(history, days=args.days, purged=state["used"])}
    print(f"  sample check (aggregates == rollup.tally_of of raw events): {checks['sample']}")
    report["pages"] = measure_pages(history, args.days, args.runs)
    print_pages(report["pages"])
    if state["used"]:
        print("  rollup and purge not measured: this history was purged already (load anew)")
    else:
        mark_used()  # the backlog and the purge change the history
        report["rollup"] = measure_rollup(history, args.backlog)
        checks["rollup"] = report["rollup"].pop("check")
        print_rollup(report["rollup"], checks["rollup"])
        report["purge"] = measure_purge(history, args.days)
        print_purge(report["purge"])
    report["checks"] = checks

    missed = [name for name, page in report["pages"].items() if page["p95_ms"] >= TARGET_PAGE_MS]
    if "purge" in report and report["purge"]["seconds"] >= TARGET_PURGE_S:
        missed.append("purge")
    failed = [name for name, result in checks.items() if result != "equal"]
    report["missed"], report["failed_checks"] = missed, failed
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "reports.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(
        f"  targets: pages p95 < {TARGET_PAGE_MS:.0f} ms, purge < {TARGET_PURGE_S:.0f} s: "
        + ("met" if not missed else "NOT met: " + ", ".join(missed))
        + ("" if not failed else "; checks FAILED: " + ", ".join(failed))
    )
    return 0 if not missed and not failed else 1


def machine() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    return f"{os.cpu_count()} cores, PostgreSQL {version.split()[0]}"


def dsn() -> dict:
    from django.conf import settings

    db = settings.DATABASES["default"]
    found = {
        "dbname": db["NAME"],
        "user": db["USER"],
        "host": db["HOST"],
        "port": db["PORT"] or 5432,
    }
    if db.get("PASSWORD"):
        found["password"] = db["PASSWORD"]
    return found


def sql(statement: str, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


# ----- loading -----


def load(args):
    """Empty the tables, build the site and write the history. Returns it, with the seconds
    each phase took."""
    from bench.report_history import History

    timings: dict = {}
    began = time.perf_counter()
    state_file().unlink(missing_ok=True)
    # Everything this bench writes (CASCADE also empties the Marketo outbox, whose records
    # point at visitors and conversations; every bench fills its own tables on each run).
    sql(
        "TRUNCATE widget_conversationevent, widget_transcriptentry, widget_conversation,"
        " widget_visitor, meetings_meeting, reports_dialogueday, reports_cardday,"
        " reports_pageday CASCADE"
    )
    now = datetime.now(UTC).replace(microsecond=0)
    history = History(now=now, days=args.days, expired_days=1, events=args.events, seed=args.seed)
    history.build_site()
    history.prepare()
    timings["site_and_units_s"] = lap(began)

    step = time.perf_counter()
    cpu = time.process_time()
    drop_indexes()
    rows = history.generate(dsn())
    rows["visitors"] = history.write_visitors(dsn())
    timings["copy_s"] = lap(step)
    timings["copy_python_cpu_s"] = round(time.process_time() - cpu, 1)
    step = time.perf_counter()
    restore_indexes()
    for table in LOADED_TABLES:
        if table != "widget_conversation":  # a UUID key
            sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608
                f" (SELECT max(id) FROM {table}))"
            )
    timings["indexes_s"] = lap(step)

    step = time.perf_counter()
    tally = history.tally()
    history.write_tally(dsn(), tally)
    timings["report_tables_s"] = lap(step)
    timings["report_rows"] = {
        "dialogue_days": len(tally.dialogues),
        "card_days": len(tally.cards),
        "page_days": len(tally.pages),
    }

    step = time.perf_counter()
    # Autovacuum would have visited these rows long before they were 90 days old: hint bits,
    # visibility map and statistics are what a live database has.
    for table in (
        *LOADED_TABLES,
        "meetings_meeting",
        "reports_dialogueday",
        "reports_cardday",
        "reports_pageday",
    ):
        sql(f"VACUUM (ANALYZE) {table}")
    timings["vacuum_analyze_s"] = lap(step)
    timings["total_s"] = lap(began)
    timings["rows"] = rows
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    state_file().write_text(
        json.dumps(
            {"now": now.isoformat(), "seed": args.seed, "days": args.days, "events": args.events,
             "load": timings, "used": False}
        )
    )  # fmt: skip
    print(
        f"Loaded in {timings['total_s']} s: site and units {timings['site_and_units_s']} s,"
        f" COPY {timings['copy_s']} s, indexes {timings['indexes_s']} s, report tables"
        f" {timings['report_tables_s']} s, VACUUM ANALYZE {timings['vacuum_analyze_s']} s"
    )
    return history, timings


def lap(since: float) -> float:
    return round(time.perf_counter() - since, 1)


def reusable(args):
    """The history an earlier run left with the same parameters, and its state (`used`: its
    backlog was counted and its expired day purged); (None, None) if there is none."""
    from bench.report_history import History

    if not state_file().exists():
        return None, None
    state = json.loads(state_file().read_text())
    if (state["seed"], state["days"], state["events"]) != (args.seed, args.days, args.events):
        return None, None
    history = History(
        now=datetime.fromisoformat(state["now"]),
        days=args.days,
        expired_days=1,
        events=args.events,
        seed=args.seed,
    )
    try:
        history.load_site()
    except Exception:  # another bench emptied the tables meanwhile
        return None, None
    history.prepare()
    return history, state


def mark_used() -> None:
    if state_file().exists():
        state = json.loads(state_file().read_text())
        state["used"] = True
        state_file().write_text(json.dumps(state))


def drop_indexes() -> None:
    """Drop the loaded tables' secondary indexes and unique constraints (as pg_restore loads
    before it builds them): COPY then costs a heap write per row, and each index is built
    once, sorted. Their definitions wait in index_file() until restore_indexes()."""
    statements = []
    for table in LOADED_TABLES:
        for name, definition in sql(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = %s::regclass AND contype = 'u'",
            [table],
        ):
            statements.append(
                (f'ALTER TABLE {table} DROP CONSTRAINT "{name}"',
                 f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            )  # fmt: skip
        for name, definition in sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT"
            " IN (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
            [table, table],
        ):
            statements.append((f'DROP INDEX "{name}"', definition))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    index_file().write_text(json.dumps([create for _, create in statements], indent=1))
    for drop, _ in statements:
        sql(drop)


def restore_indexes() -> None:
    if not index_file().exists():
        return
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        for create in json.loads(index_file().read_text()):
            try:
                cursor.execute(create)
            except Exception as error:  # already there (a run stopped half way through)
                if "already exists" not in str(error):
                    raise
        cursor.execute("RESET maintenance_work_mem")
    index_file().unlink()


def data_sizes(history) -> dict:
    from widget.models import ConversationEvent

    cutoff = history.now - timedelta(days=history.days)
    rows = {
        table: sql(f"SELECT reltuples::bigint FROM pg_class WHERE relname = '{table}'")[0][0]  # noqa: S608
        for table in (
            *LOADED_TABLES,
            "meetings_meeting",
            "reports_dialogueday",
            "reports_cardday",
            "reports_pageday",
        )
    }
    return {
        "events_retained": ConversationEvent.objects.filter(created_at__gte=cutoff).count(),
        "events_expired": ConversationEvent.objects.filter(created_at__lt=cutoff).count(),
        "rows_estimated": rows,
        "sizes": {
            table: sql(f"SELECT pg_size_pretty(pg_total_relation_size('{table}'))")[0][0]
            for table in (*LOADED_TABLES, "reports_pageday", "reports_cardday")
        },
        "database": sql("SELECT pg_size_pretty(pg_database_size(current_database()))")[0][0],
        "known_share": round(
            sql(
                "SELECT avg(visitor_known::int) FROM widget_conversation WHERE site_id = %s",
                [history.site.pk],
            )[0][0],
            3,
        ),
    }


# ----- checks -----


def check_sample(history, *, days: int, purged: bool = False) -> str:
    """The report tables against rollup.tally_of of the raw events, for: the busiest dialogue
    over three days, a busy one with two versions and two quiet ones over every day (from the
    first whole day after the cutoff once the expired day is purged). Returns "equal", or
    what differs."""
    from reports.rollup import report_day

    start_day = report_day(history.now - timedelta(days=days - 2))
    three_days = (start_day, start_day + timedelta(days=2))
    first = report_day(history.now - timedelta(days=days + 1))
    if purged:
        first = report_day(history.now - timedelta(days=days)) + timedelta(days=1)
    everything = (first, report_day(history.now) + timedelta(days=1))
    two_versions = next(d.id for d in history.dialogues if len(d.versions) > 1)
    samples = [
        ([history.dialogues[0].id], *three_days),
        ([two_versions, history.dialogues[150].id, history.dialogues[-1].id], *everything),
    ]
    problems = []
    for dialogue_ids, first, last in samples:
        problems += compare(dialogue_ids, first, last)
    return "equal" if not problems else "; ".join(problems[:5])


def compare(dialogue_ids: list[int], first, last) -> list[str]:
    """What differs between the report tables and the tally of the raw events of these
    dialogues on these report days (both included)."""
    from collections import Counter
    from zoneinfo import ZoneInfo

    from django.conf import settings

    from reports import rollup
    from reports.models import CardDay, DialogueDay, PageDay
    from widget.models import ConversationEvent

    zone = ZoneInfo(settings.REPORTS_TIME_ZONE)
    start = datetime(first.year, first.month, first.day, tzinfo=zone)
    end = datetime(last.year, last.month, last.day, tzinfo=zone) + timedelta(days=1)
    rows = ConversationEvent.objects.filter(
        dialogue_id__in=dialogue_ids, created_at__gte=start, created_at__lt=end
    ).values_list(
        "site_id",
        "dialogue_id",
        "version_id",
        "kind",
        "card_id",
        "data",
        "page_url",
        "created_at",
        "conversation__visitor_known",
    )
    tally = rollup.tally_of(rollup.Event(*row) for row in rows.iterator(chunk_size=20_000))
    problems = []
    for name, model, key, columns, expected in (
        (
            "dialogue days",
            DialogueDay,
            ("site_id", "dialogue_id", "version_id", "day", "known"),
            rollup.DIALOGUE_COUNTS.values(),
            tally.dialogues,
        ),
        (
            "card days",
            CardDay,
            ("site_id", "dialogue_id", "version_id", "day", "known", "card_id"),
            ("reached", "answered"),
            tally.cards,
        ),
        (
            "page days",
            PageDay,
            ("site_id", "dialogue_id", "day", "known", "page"),
            ("triggered", "engaged", "completed", "captured"),
            tally.pages,
        ),
    ):
        columns = sorted({*columns, "captured"} if model is not CardDay else set(columns))
        stored = {}
        for row in model.objects.filter(
            dialogue_id__in=dialogue_ids, day__gte=first, day__lte=last
        ).values_list(*key, *columns):
            counts = Counter(dict(zip(columns, row[len(key) :], strict=True)))
            stored[tuple(row[: len(key)])] = +counts
        wanted = {k: +Counter(v) for k, v in expected.items()}
        if stored != wanted:
            differing = [k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k)]
            problems.append(f"{name}: {len(differing)} of {len(wanted)} rows differ")
    return problems


# ----- measurements -----


def timed_runs(call, runs: int) -> dict:
    """Median, p95 and max of `runs` calls after one warm-up, and CPU time per call: this
    process (`app`), its PostgreSQL backend (`pg`), processes that came and went meanwhile
    (`pg workers`: PostgreSQL's parallel workers for this backend), and in cores the CPU of
    the machine's other processes (`other cores`: on a shared 2-core machine, above ~0.1 means
    the run was disturbed)."""
    from django.db import connection

    call()  # warm-up
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    timings = []
    machine, processes = machine_busy(), process_cpu()
    began_all = time.perf_counter()
    for _ in range(runs):
        began = time.perf_counter()
        call()
        timings.append((time.perf_counter() - began) * 1000)
    wall = time.perf_counter() - began_all
    machine, after = machine_busy() - machine, process_cpu()
    used = {pid: after[pid] - cpu for pid, cpu in processes.items() if pid in after}
    app, pg = used.get(os.getpid(), 0.0), used.get(backend, 0.0)
    others = sum(used.values()) - app - pg
    timings.sort()
    return {
        "runs": runs,
        "median_ms": round(statistics.median(timings), 1),
        "p95_ms": round(timings[max(0, round(len(timings) * 0.95) - 1)], 1),
        "max_ms": round(timings[-1], 1),
        "app_cpu_ms": round(app / runs * 1000, 1),
        "pg_cpu_ms": round(pg / runs * 1000, 1),
        "pg_workers_cpu_ms": round(max(0.0, machine - sum(used.values())) / runs * 1000, 1),
        "other_cores": round(others / wall, 2),
    }


def machine_busy() -> float:
    """CPU seconds the machine spent busy so far (all but idle and iowait)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def process_cpu() -> dict[int, float]:
    """CPU seconds used so far by every process, by pid."""
    from bench.report_history import backend_cpu_seconds

    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found[int(entry)] = backend_cpu_seconds(int(entry))
    return found


def measure_pages(history, days: int, runs: int) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from dialogues.models import Dialogue
    from reports.filters import today

    client = Client(HTTP_HOST="localhost")
    client.force_login(history.marketer)
    site = history.site
    busiest = Dialogue.objects.get(pk=history.dialogues[0].id)
    end = today()
    long_range = {"start": (end - timedelta(days=days - 1)).isoformat(), "end": end.isoformat()}
    dialogue_url = reverse("reports:dialogue", args=[site.pk, busiest.pk])
    overview_url = reverse("reports:overview", args=[site.pk])
    scenarios = {
        "dialogue report, 30 days (default)": (dialogue_url, {}, busiest.name),
        f"dialogue report, {days} days": (dialogue_url, long_range, busiest.name),
        "dashboard, 30 days (default)": (overview_url, {}, busiest.name),
        f"dashboard, {days} days": (overview_url, long_range, busiest.name),
    }
    results = {}
    for name, (url, query, expected) in scenarios.items():

        def get(url=url, query=query, expected=expected):
            response = client.get(url, query)
            assert response.status_code == 200, (url, response.status_code)
            assert expected.encode() in response.content, (url, "no", expected)
            return response

        results[name] = timed_runs(get, runs)
        with CaptureQueriesContext(connection) as queries:
            get()
        results[name]["queries"] = len(queries.captured_queries)
        results[name]["sql_ms"] = round(
            sum(float(q["time"]) for q in queries.captured_queries) * 1000, 1
        )
        slowest = max(queries.captured_queries, key=lambda q: float(q["time"]))
        results[name]["slowest_sql_ms"] = round(float(slowest["time"]) * 1000, 1)
        results[name]["slowest_sql"] = slowest["sql"][:300]
    return results


def measure_rollup(history, backlog: int) -> dict:
    """--backlog new events (new conversations of the last hour), then one roll_up()."""
    from reports import rollup
    from reports.rollup import report_day

    prepare_backlog_ids(history)
    began = time.perf_counter()
    rows = history.backlog(dsn(), events=backlog, end=time.time())
    rows["visitors"] = history.write_visitors(dsn())
    inserted_s = time.perf_counter() - began
    sql("ANALYZE widget_conversationevent")
    waiting = rollup.pending()
    began = time.perf_counter()
    counted = rollup.roll_up()
    seconds = time.perf_counter() - began
    today = report_day(datetime.now(UTC))
    check = compare([history.dialogues[0].id], today, today)
    return {
        "inserted": rows,
        "insert_s": round(inserted_s, 1),
        "waiting": waiting,
        "counted": counted,
        "seconds": round(seconds, 2),
        "events_per_s": round(counted / seconds) if seconds else None,
        "left": rollup.pending(),
        "check": "equal" if not check and rollup.pending() == 0 else "; ".join(check),
    }


def prepare_backlog_ids(history) -> None:
    """Go on from the ids in the tables (a --reuse run did not write them)."""
    after = {
        table: sql(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")[0][0]  # noqa: S608
        for table in ("widget_conversationevent", "widget_transcriptentry", "widget_visitor")
    }
    history.continue_from(
        event_id=after["widget_conversationevent"],
        line_id=after["widget_transcriptentry"],
        visitor_id=after["widget_visitor"],
    )
    history.assignments = sql("SELECT coalesce(max(assignment), 0) FROM meetings_meeting")[0][0]
    history.slots.clear()
    for start, taken in sql(
        "SELECT extract(epoch FROM start)::bigint, count(*) FROM meetings_meeting"
        " WHERE site_id = %s GROUP BY 1",
        [history.site.pk],
    ):
        history.slots[start] = taken


def measure_purge(history, days: int) -> dict:
    from reports import retention

    result = retention.purge_expired(now=history.now, days=days)
    found = result.as_dict()
    cutoff = history.now - timedelta(days=days)
    found["left_before_cutoff"] = {
        "events": sql(
            "SELECT count(*) FROM widget_conversationevent WHERE created_at < %s", [cutoff]
        )[0][0],
        "conversations": sql(
            "SELECT count(*) FROM widget_conversation WHERE started_at < %s", [cutoff]
        )[0][0],
    }
    return found


# ----- printing -----


def print_data(report: dict) -> None:
    data, load = report["data"], report["load"]
    print(
        f"Reports bench ({report['machine']}): {data['events_retained']:,} events in the"
        f" {report['days']} retained days, {data['events_expired']:,} in the expired day;"
        f" known visitors in {data['known_share']:.0%} of conversations; database"
        f" {data['database']}"
    )
    for table, rows in data["rows_estimated"].items():
        print(f"  {table:28} {rows:>12,} rows  {data['sizes'].get(table, '')}")
    if load.get("reused"):
        print("  (history reused from an earlier run)")


def print_pages(pages: dict) -> None:
    header = (
        f"{'median ms':>10} {'p95 ms':>8} {'max ms':>8} {'queries':>8} {'SQL ms':>7}"
        f" {'app CPU':>8} {'pg CPU':>7} {'workers':>7} {'other cores':>11}"
    )
    print(f"  {'page':38} {header}")
    for name, r in pages.items():
        print(
            f"  {name:38} {r['median_ms']:>10} {r['p95_ms']:>8} {r['max_ms']:>8}"
            f" {r['queries']:>8} {r['sql_ms']:>7} {r['app_cpu_ms']:>8} {r['pg_cpu_ms']:>7}"
            f" {r['pg_workers_cpu_ms']:>7} {r['other_cores']:>11}"
        )


def print_rollup(result: dict, check: str) -> None:
    print(
        f"  rollup: {result['counted']:,} waiting events counted in {result['seconds']} s:"
        f" {result['events_per_s']:,} events/s (check: {check})"
    )


def print_purge(result: dict) -> None:
    kinds = ", ".join(
        f"{result[k]:,} {k.replace('_', ' ')}"
        for k in ("events", "transcript_entries", "conversations", "visitors", "meetings_kept",
                  "outbox_records", "activities")
    )  # fmt: skip
    print(f"  purge of one expired day: {result['seconds']} s ({kinds})")


if __name__ == "__main__":
    sys.exit(main())
