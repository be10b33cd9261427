"""Where a widget API request spends its time: queries, SQL time, cache time and Python time.

Runs in-process (Django's test client, the full middleware stack, no HTTP server) against the
data bench/widget_api.py left in the bench database, so run that first:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dynchat_bench \
    REDIS_URL=redis://127.0.0.1:6379/12 .venv/bin/python bench/widget_profile.py [--cprofile]

For each endpoint: SQL queries and Redis commands per request, and the mean over many requests
of the wall time, the CPU time of this process (Django), of its PostgreSQL backend and of
redis-server, and the time spent waiting on SQL and Redis. CPU times hardly move when other
processes share the machine, so they compare code changes better than wall times do.
Not included: CONN_HEALTH_CHECKS' "SELECT 1" (the test client skips the request signals).
"""

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dynchat_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
os.environ["WIDGET_RATE_LIMIT_PER_MINUTE"] = str(10**9)
os.environ["WIDGET_SESSION_RATE_LIMIT_PER_MINUTE"] = str(10**9)

ORIGIN = "https://www.bench.test"
PAGE_URL = "https://www.bench.test/pricing"
OUT_DIR = ROOT / "var" / "bench"


class Meter:
    """Counts SQL queries and Redis commands, and the time spent waiting on each."""

    def __init__(self):
        self.sql = self.redis = 0.0
        self.queries: list[str] = []
        self.redis_commands: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.sql += time.perf_counter() - start
            self.queries.append(sql)

    def wrap_redis(self):
        """Count Redis round trips: single commands, and pipelines as one (their commands
        joined by '+')."""
        from redis.client import Pipeline, Redis

        original_command, original_pipeline = Redis.execute_command, Pipeline.execute
        meter = self

        def execute_command(self, *args, **options):
            start = time.perf_counter()
            try:
                return original_command(self, *args, **options)
            finally:
                meter.redis += time.perf_counter() - start
                meter.redis_commands.append(str(args[0]))

        def execute_pipeline(self, *args, **kwargs):
            commands = "+".join(str(c[0][0]) for c in self.command_stack)
            start = time.perf_counter()
            try:
                return original_pipeline(self, *args, **kwargs)
            finally:
                meter.redis += time.perf_counter() - start
                meter.redis_commands.append(commands)

        Redis.execute_command, Pipeline.execute = execute_command, execute_pipeline

        def unwrap():
            Redis.execute_command, Pipeline.execute = original_command, original_pipeline

        return unwrap

    def reset(self):
        self.sql = self.redis = 0.0
        self.queries, self.redis_commands = [], []


def process_cpu(pid: int) -> float:
    """CPU seconds used so far by another process (the PostgreSQL backend, redis-server)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_server_pid() -> int | None:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if Path(entry.path, "comm").read_text().strip() == "redis-server":
                    return int(entry.name)
            except OSError:
                continue
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per endpoint")
    parser.add_argument("--cprofile", action="store_true", help="also print the top functions")
    parser.add_argument("--sort", default="tottime", help="cProfile order: tottime, cumulative")
    parser.add_argument("--top", type=int, default=25, help="cProfile rows to print")
    parser.add_argument("--verbose", action="store_true", help="print the SQL of one request")
    parser.add_argument("--only", default="", help="comma-separated endpoints to measure")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from dialogues.models import Site

    site = Site.objects.filter(name="Bench").first()
    if site is None:
        sys.exit("no bench site: run bench/widget_api.py first")
    base = f"/api/widget/v1/sites/{site.public_key}"
    client = Client(HTTP_HOST="127.0.0.1", HTTP_ORIGIN=ORIGIN)
    returning = (OUT_DIR / "returning_visitors.txt").read_text().split()

    def post(path, body, **headers):
        response = client.post(path, json.dumps(body), content_type="application/json", **headers)
        assert response.status_code in (200, 201), response.content
        return response.json()

    # One conversation to answer, started through the API.
    visitor_id = post(base + "/sessions", {"page_url": PAGE_URL})["visitor_id"]
    dialogue_id = post(base + "/sessions", {"page_url": PAGE_URL, "visitor_id": visitor_id})[
        "dialogue"
    ]["id"]
    conversation = post(
        base + "/conversations",
        {"visitor_id": visitor_id, "dialogue_id": dialogue_id, "page_url": PAGE_URL},
    )
    auth = {"HTTP_AUTHORIZATION": f"Bearer {conversation['token']}"}
    answer_path = f"{base}/conversations/{conversation['conversation_id']}/answers"
    state = {"prompt": conversation["prompt"], "i": 0}

    def answer():
        prompt = state["prompt"]
        body = {"card_id": prompt["card_id"], "step": prompt["step"], "value": "good"}
        state["prompt"] = post(answer_path, body, **auth)["prompt"]

    def session_returning():
        state["i"] += 1
        visitor_id = returning[state["i"] % len(returning)]
        session = post(base + "/sessions", {"page_url": PAGE_URL, "visitor_id": visitor_id})
        assert session["visitor_id"] == visitor_id, "visitor not recognised (another SECRET_KEY?)"

    endpoints = {
        "bare": lambda: post("/bench/bare", {"page_url": PAGE_URL}),
        "session_new": lambda: post(base + "/sessions", {"page_url": PAGE_URL}),
        "session_returning": session_returning,
        "answer": answer,
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend_pid = cursor.fetchone()[0]
    redis_pid = redis_server_pid()
    meter = Meter()
    unwrap_redis = meter.wrap_redis()
    header = (
        f"{'endpoint':<19}{'queries':>8}{'redis':>6}{'wall ms':>9}{'app CPU':>9}{'pg CPU':>8}"
        f"{'redis CPU':>10}{'SQL wait':>9}{'redis wait':>11}"
    )
    rows, details = [], []
    try:
        for name, call in endpoints.items():
            if args.only and name not in args.only.split(","):
                continue
            for _ in range(20):  # warm caches and connections
                call()
            with connection.execute_wrapper(meter):
                meter.reset()
                call()
                details.append((name, list(meter.queries), list(meter.redis_commands)))
                queries, commands = len(meter.queries), len(meter.redis_commands)
                meter.reset()
                profiler = cProfile.Profile(time.process_time) if args.cprofile else None
                pg0 = process_cpu(backend_pid)
                redis0 = process_cpu(redis_pid) if redis_pid else 0.0
                cpu0, wall0 = time.process_time(), time.perf_counter()
                if profiler:
                    profiler.enable()
                for _ in range(args.requests):
                    call()
                if profiler:
                    profiler.disable()
                wall = time.perf_counter() - wall0
                cpu = time.process_time() - cpu0
                pg = process_cpu(backend_pid) - pg0
                redis_cpu = (process_cpu(redis_pid) - redis0) if redis_pid else 0.0
            n = args.requests / 1000  # per request, in ms
            rows.append(
                f"{name:<19}{queries:>8}{commands:>6}{wall / n:>9.2f}{cpu / n:>9.2f}{pg / n:>8.2f}"
                f"{redis_cpu / n:>10.2f}{meter.sql / n:>9.2f}{meter.redis / n:>11.2f}"
            )
            if profiler:
                print(f"\n== cProfile of {name} (CPU time), by {args.sort}")
                pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
    finally:
        unwrap_redis()
    if args.verbose:
        for name, queries, commands in details:
            print(f"\n== {name}: {len(queries)} queries, Redis: {' '.join(commands) or '-'}")
            for sql in queries:
                print("   ", sql[:200])
    note = "; cProfile was on, which inflates app CPU" if args.cprofile else ""
    print(
        f"\nper request, mean of {args.requests} (ms){note}. Queries: SQL statements, not counting"
        " BEGIN/COMMIT; redis: round trips."
    )
    print(header)
    print("-" * len(header))
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
