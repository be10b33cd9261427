"""Throughput and latency of the widget API against gunicorn on PostgreSQL (`make bench`).

Scenarios, run against the same server with the same concurrency and duration:

- bare: a Django JSON view doing nothing, behind the product's full middleware stack
  (bench/urls.py), the reference every other scenario is divided by;
- session_new: POST /sessions as a new visitor (issues a visitor key, picks the dialogue);
- session_returning: POST /sessions with the visitor_id and visitor_state of a visitor who has
  chatted, as the widget sends them (half of them completed the top dialogue, so the next one
  is offered);
- answer: POST /conversations/{id}/answers, each conversation used by one request at a time.

The scenarios are interleaved over --rounds rounds, with one more bare run at the end, and each
reports its median run, so a burst of CPU from another process skews a run, not a scenario.

The site has 50 published dialogues; the highest-priority one loops on a question forever, so a
conversation takes as many answers as the run needs. The load generator is wrk (bench/
widget_api.lua checks every response). The server is gunicorn with the bench settings
(bench/settings.py: the product's settings, DEBUG off, the bare view added, rate limits raised),
by default 3 sync workers, as the Docker image runs it (WEB_CONCURRENCY=3): the requests are
CPU-bound on 2 cores shared with PostgreSQL, Redis and wrk, and sync workers take connections
from one accept queue, while gthread workers keep each keep-alive connection on the worker
that accepted it, which made identical runs differ by 2.5x (see bench/README.md).

Besides latency and throughput, each run records the CPU time per request of gunicorn,
PostgreSQL, Redis and wrk (from /proc), and the CPU used meanwhile by anything else.

Results are printed as a table and written to var/bench/widget_api.json.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
# Run as `python bench/widget_api.py`: import the project, not siblings of this file.
sys.path[0] = str(ROOT)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/dynchat_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
ORIGIN = "https://www.bench.test"
PAGE_URL = "https://www.bench.test/pricing"
LUA_SCRIPT = ROOT / "bench" / "widget_api.lua"
OUT_DIR = ROOT / "var" / "bench"
TARGET_RATIO = 0.5
HUGE_RATE_LIMIT = str(10**9)

LOOP_DIALOGUE_NAME = "Bench: rate this page (loops forever)"
# The dialogue every benchmark visitor is offered: a greeting, then one question that any
# answer except "stop" brings back after a short acknowledgement. The next prompt is always
# card "rate", one step further on.
LOOP_FLOW = {
    "start": "hello",
    "cards": [
        {
            "id": "hello",
            "type": "message",
            "text": 'Hi {{lead.firstName | "there"}}! A quick question.',
            "next": "rate",
        },
        {
            "id": "rate",
            "type": "question",
            "text": "How useful is this page?",
            "choices": [
                {"label": "Very useful", "value": "good", "next": "noted"},
                {"label": "So-so", "value": "meh", "next": "noted"},
                {"label": "Not useful", "value": "bad", "next": "noted"},
                {"label": "Stop asking", "value": "stop", "next": "bye"},
            ],
        },
        {"id": "noted", "type": "message", "text": "Thanks, noted.", "next": "rate"},
        {"id": "bye", "type": "end", "text": "Thanks for your time."},
    ],
}

SCENARIOS = {
    "bare": "bare Django JSON view",
    "session_new": "start session (new visitor)",
    "session_returning": "start session (returning visitor)",
    "answer": "post an answer",
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds measured per scenario")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per scenario")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="interleaved rounds; each scenario reports its median run (the lower of two)",
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--worker-class", default="sync", choices=("sync", "gthread"))
    parser.add_argument("--threads", type=int, default=2, help="threads per gthread worker")
    parser.add_argument("--dialogues", type=int, default=50, help="published dialogues on the site")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--scenarios",
        default="bare,session_new,session_returning,answer",
        help="comma-separated subset of " + ", ".join(SCENARIOS),
    )
    parser.add_argument("--json", type=Path, default=OUT_DIR / "widget_api.json")
    return parser.parse_args()


# --- Preparation -----------------------------------------------------------------------------


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing; installing the Debian package", flush=True)
        install = ["apt-get", "install", "-y", "-q", "wrk"]
        if subprocess.run(install, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], check=True)
            subprocess.run(install, check=True)
        wrk = shutil.which("wrk")
    if not wrk:
        sys.exit("bench: wrk is required (Debian/Ubuntu: apt-get install wrk)")
    return wrk


def ensure_database(url: str) -> None:
    """Create the benchmark database if it does not exist yet."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        sys.exit(f"bench: DATABASE_URL must be PostgreSQL, got {url!r}")
    name = parts.path.lstrip("/")
    if "bench" not in name:
        # The benchmark empties its database; refuse to touch one that is not clearly its own.
        sys.exit(f"bench: the database name must contain 'bench' (it is emptied), got {name!r}")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}", flush=True)


def prepare_data(dialogue_count: int, rounds: int) -> dict:
    """Empty the bench database, seed the site and its dialogues, and pre-create the visitors
    and conversations the scenarios replay. Returns what the wrk scripts need."""
    import django
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    from dialogues import services as dialogue_services
    from dialogues.models import Dialogue
    from dynchat.demo import DEMO_FLOW
    from widget import services

    call_command("migrate", verbosity=0, interactive=False)
    call_command("flush", verbosity=0, interactive=False)
    cache.clear()

    site = dialogue_services.create_site(name="Bench", allowed_origins=[ORIGIN])
    top = None
    for i in range(dialogue_count):
        if i == 0:
            name, flow, priority = LOOP_DIALOGUE_NAME, LOOP_FLOW, 1000
        else:
            name, flow, priority = f"Bench dialogue {i}", DEMO_FLOW, i
        dialogue = Dialogue.objects.create(site=site, name=name, flow=flow, priority=priority)
        dialogue_services.publish_dialogue(dialogue_id=dialogue.pk)
        top = top or dialogue

    def new_conversation():
        # What the widget does: a session (which issues the visitor key), then a conversation.
        session = services.start_visitor_session(site=site, visitor_key=None)
        assert session.offer and session.offer.dialogue_id == top.pk, session.offer
        step, token = services.start_conversation(
            site=site, visitor_key=session.visitor_key, dialogue_id=top.pk, page_url=PAGE_URL
        )
        prompt = step.outcome.prompt
        return session, str(step.conversation.pk), token, prompt

    # Returning visitors, each with the visitor state the widget keeps: half of them have
    # completed the top dialogue (so the next dialogue is offered), half have not.
    returning = []
    for i in range(400):
        session, conversation_id, token, prompt = new_conversation()
        state = session.visitor_state
        if i % 2:
            state = services.answer_conversation(
                site=site,
                conversation_id=conversation_id,
                token=token,
                card_id=prompt.card_id,
                step=prompt.step,
                value="stop",
            ).visitor_state
        returning.append(f"{session.visitor_key} {state}")

    def pool(size):
        lines = []
        for _ in range(size):
            _, conversation_id, token, prompt = new_conversation()
            lines.append(f"{conversation_id} {token} {prompt.card_id} {prompt.step}")
        return lines

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    returning_file = OUT_DIR / "returning_visitors.txt"
    returning_file.write_text("\n".join(returning) + "\n")
    # Per (scenario, round): the data files of its warm-up and of its measured run. Every run
    # answers its own conversations: wrk stops with answers in flight, so the steps it last saw
    # may be stale afterwards.
    files = {}
    for round_ in range(rounds):
        files["session_returning", round_] = (returning_file, returning_file)
        warmup_file = OUT_DIR / f"conversations_warmup_{round_}.txt"
        warmup_file.write_text("\n".join(pool(64)) + "\n")
        answer_file = OUT_DIR / f"conversations_{round_}.txt"
        answer_file.write_text("\n".join(pool(512)) + "\n")
        files["answer", round_] = (warmup_file, answer_file)

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    connection.close()
    return {
        "site_key": site.public_key,
        "files": files,
        "top_dialogue_id": top.pk,
        "returning": returning,
    }


# --- The server ------------------------------------------------------------------------------


def start_gunicorn(args, log_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DEBUG": "0",
        "WIDGET_RATE_LIMIT_PER_MINUTE": HUGE_RATE_LIMIT,
        "WIDGET_SESSION_RATE_LIMIT_PER_MINUTE": HUGE_RATE_LIMIT,
        "LOG_LEVEL": "WARNING",
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [
        str(gunicorn),
        "dynchat.wsgi",
        "--chdir",
        str(ROOT),
        "--bind",
        f"127.0.0.1:{args.port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        args.worker_class,
        "--log-level",
        "warning",
        "--backlog",
        "2048",
        "--keep-alive",
        "5",
    ]
    if args.worker_class == "gthread":
        command += ["--threads", str(args.threads)]
    log = log_path.open("w")
    # Its own process group, so cleanup reaches the workers even if the master is wedged.
    return subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=log, stderr=log, start_new_session=True
    )


def stop_gunicorn(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def post(url: str, body: dict, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310 - our own http:// URL
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Origin": ORIGIN, "Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our URL
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"body": raw[:300].decode(errors="replace")}


def wait_until_serving(base_url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"bench: gunicorn exited ({process.returncode}):\n{log_path.read_text()}")
        try:
            if post(f"{base_url}/bench/bare", {})[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.2)
    sys.exit(f"bench: gunicorn did not answer within 60 s:\n{log_path.read_text()}")


def smoke_test(base_url: str, api: str, data: dict) -> None:
    """One request per endpoint before loading it, so a broken setup fails with a clear message."""
    returning, state = data["returning"][0].split()
    status, body = post(
        f"{base_url}{api}/sessions",
        {"page_url": PAGE_URL, "visitor_id": returning, "visitor_state": state},
    )
    # A key the server does not recognise (say, signed with another SECRET_KEY) would get a new one.
    assert status == 200 and body["visitor_id"] == returning, (status, body)
    status, body = post(f"{base_url}{api}/sessions", {"page_url": PAGE_URL})
    assert status == 200 and body["dialogue"]["id"] == data["top_dialogue_id"], (status, body)
    status, body = post(
        f"{base_url}{api}/conversations",
        {
            "visitor_id": body["visitor_id"],
            "dialogue_id": body["dialogue"]["id"],
            "page_url": PAGE_URL,
        },
    )
    assert status == 201, (status, body)
    for _ in range(3):
        prompt = body["prompt"]
        status, answer = post(
            f"{base_url}{api}/conversations/{body['conversation_id']}/answers",
            {"card_id": prompt["card_id"], "step": prompt["step"], "value": "good"},
            {"Authorization": f"Bearer {body['token']}"},
        )
        assert status == 200 and answer["prompt"]["step"] == prompt["step"] + 1, (status, answer)
        body = {**answer, "token": body["token"]}


# --- Load ------------------------------------------------------------------------------------


class CpuMeter:
    """CPU time used by each part of the system under test, read from /proc around a run:
    the gunicorn process group, the PostgreSQL processes serving the bench database (plus
    its background writers), redis-server, and wrk itself. Whatever else the machine did in
    the meantime is reported as "other" (in cores), so a run disturbed by a neighbour shows."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, server_pgid: int, database: str):
        self.server_pgid, self.database = server_pgid, database
        self.admin_url = urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path="/postgres"))

    def _postgres_pids(self) -> set[int]:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = %s OR backend_type <> 'client backend'",
                [self.database],
            ).fetchall()
        return {pid for (pid,) in rows}

    def snapshot(self) -> dict:
        """CPU seconds so far: per process of the system under test, wrk, and the machine."""
        postgres = self._postgres_pids()
        processes = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            pid = int(entry.name)
            if int(fields[2]) == self.server_pgid:
                group = "app"
            elif pid in postgres:
                group = "postgres"
            elif comm == "redis-server":
                group = "redis"
            else:
                continue
            processes[pid] = (group, (int(fields[11]) + int(fields[12])) / self.TICK)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return {
            "processes": processes,
            "wrk": usage.ru_utime + usage.ru_stime,
            "machine_busy": (sum(ticks) - ticks[3] - ticks[4]) / self.TICK,
            "wall": time.monotonic(),
        }

    @staticmethod
    def usage(before: dict, after: dict, requests: int) -> dict:
        delta = {"app": 0.0, "postgres": 0.0, "redis": 0.0}
        # Per process, so one that started during the run (a database connection reopened
        # after CONN_MAX_AGE) counts from zero; one that ended is missed (a few ms at most).
        for pid, (group, cpu) in after["processes"].items():
            delta[group] += cpu - before["processes"].get(pid, (group, 0.0))[1]
        delta["wrk"] = after["wrk"] - before["wrk"]
        wall = after["wall"] - before["wall"]
        ours = sum(delta.values())
        other = max(after["machine_busy"] - before["machine_busy"] - ours, 0.0)
        return {
            "cpu_ms_per_request": {
                k: round(v / max(requests, 1) * 1000, 3) for k, v in delta.items()
            },
            "cores_used": {
                **{k: round(v / wall, 2) for k, v in delta.items()},
                "other": round(other / wall, 2),
            },
        }


def run_wrk(wrk: str, args, mode: str, seconds: int, base_url: str, path: str, data_file) -> dict:
    command = [
        wrk,
        "-t",
        str(args.wrk_threads),
        "-c",
        str(args.connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA_SCRIPT),
        base_url,
        "--",
        mode,
        path,
        ORIGIN,
        PAGE_URL,
        str(data_file or "-"),
        str(args.wrk_threads),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON "))
    raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def run_result(raw: dict, cpu: dict) -> dict:
    seconds = raw["duration_us"] / 1e6
    socket_errors = sum(raw["socket_errors"].values())
    # Every completed response was checked by the Lua script; anything else is an error.
    errors = raw["bad_status"] + raw["bad_body"] + raw["starved"] + socket_errors
    latency = raw["latency_us"]
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 2),
        "rps": round(raw["requests"] / seconds, 1),
        "p50_ms": round(latency["p50"] / 1000, 2),
        "p90_ms": round(latency["p90"] / 1000, 2),
        "p99_ms": round(latency["p99"] / 1000, 2),
        "mean_ms": round(latency["mean"] / 1000, 2),
        "max_ms": round(latency["max"] / 1000, 2),
        "errors": errors,
        "error_detail": {
            "non_2xx": raw["bad_status"],
            "unexpected_body": raw["bad_body"],
            "no_idle_conversation": raw["starved"],
            **raw["socket_errors"],
        },
        "error_samples": raw["samples"],
        **cpu,
    }


def summarise(name: str, runs: list[dict]) -> dict:
    """One row per scenario: the median run by throughput (the only run when rounds=1)."""
    median = sorted(runs, key=lambda r: r["rps"])[(len(runs) - 1) // 2]
    return {
        "scenario": name,
        "label": SCENARIOS[name],
        **{k: v for k, v in median.items() if k not in ("errors", "error_detail")},
        "errors": sum(r["errors"] for r in runs),
        "runs": runs,
    }


def print_table(results: list[dict], reference_rps: float) -> None:
    header = (
        f"{'scenario':<35}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}{'vs bare':>8}"
        f"  {'CPU ms/req: app':>15}{'pg':>6}{'redis':>6}{'wrk':>6}{'CPU ratio':>10}"
        f"{'other cores':>12}"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        cpu, cores = r["cpu_ms_per_request"], r["cores_used"]
        print(
            f"{r['label']:<35}{r['rps']:>8.1f}{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}"
            f"{r['errors']:>7}{r['ratio']:>7.2f}x  {cpu['app']:>15.2f}{cpu['postgres']:>6.2f}"
            f"{cpu['redis']:>6.2f}{cpu['wrk']:>6.2f}{r['cpu_ratio']:>9.2f}x{cores['other']:>12.2f}"
        )
    bare_runs = len(results[0]["runs"])
    print(
        f"\nreference: bare view, median of {bare_runs} runs, {reference_rps:.1f} req/s;"
        f" target >= {TARGET_RATIO}x.\nCPU ms/req: CPU time per request of gunicorn, PostgreSQL,"
        " Redis and wrk. CPU ratio: the bare view's total CPU per request over this one's.\n"
        "other cores: CPU used meanwhile by processes outside the benchmark (should be ~0)."
    )


def main() -> int:
    args = parse_args()
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(wanted) - set(SCENARIOS)
    if unknown:
        sys.exit(f"bench: unknown scenarios {sorted(unknown)}")

    wrk = ensure_wrk()
    ensure_database(os.environ["DATABASE_URL"])
    print(f"preparing data: 1 site, {args.dialogues} published dialogues ...", flush=True)
    data = prepare_data(args.dialogues, args.rounds)

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    log_path = OUT_DIR / "gunicorn.log"
    base_url = f"http://127.0.0.1:{args.port}"
    api = f"/api/widget/v1/sites/{data['site_key']}"
    # Rounds interleave the scenarios, and the bare view runs once more at the end, so a
    # neighbour's burst of CPU skews one run rather than one scenario.
    widget = [name for name in SCENARIOS if name != "bare" and name in wanted]
    plan = [(round_, name) for round_ in range(args.rounds) for name in ("bare", *widget)]
    plan.append((args.rounds, "bare"))

    # A SIGTERM (a CI timeout, `kill`) unwinds through the finally below like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    server = start_gunicorn(args, log_path)
    runs: dict[str, list[dict]] = {name: [] for name in ("bare", *widget)}
    try:
        wait_until_serving(base_url, server, log_path)
        smoke_test(base_url, api, data)
        meter = CpuMeter(server.pid, urlsplit(os.environ["DATABASE_URL"]).path.lstrip("/"))
        for round_, name in plan:
            path = "/bench/bare" if name == "bare" else api
            warmup_file, data_file = data["files"].get((name, round_), (None, None))
            print(
                f"round {round_ + 1}, {name}: {args.warmup} s warm-up, {args.duration} s measured",
                flush=True,
            )
            if args.warmup:
                run_wrk(wrk, args, name, args.warmup, base_url, path, warmup_file)
            before = meter.snapshot()
            raw = run_wrk(wrk, args, name, args.duration, base_url, path, data_file)
            cpu = CpuMeter.usage(before, meter.snapshot(), raw["requests"])
            runs[name].append(run_result(raw, cpu))
    finally:
        stop_gunicorn(server)

    results = [summarise(name, name_runs) for name, name_runs in runs.items()]
    reference = results[0]["rps"]
    reference_cpu = sum(results[0]["cpu_ms_per_request"].values())
    for r in results:
        r["ratio"] = round(r["rps"] / reference, 3)
        # The throughput ratio the CPU costs predict when the machine is saturated: unlike
        # req/s, it hardly moves when another process takes some of the CPU during a run.
        r["cpu_ratio"] = round(reference_cpu / sum(r["cpu_ms_per_request"].values()), 3)
    print_table(results, reference)
    errors = sum(r["errors"] for r in results)
    for r in results:
        for run in r["runs"]:
            for sample in run["error_samples"]:
                print(f"  {r['scenario']}: {sample}")

    report = {
        "benchmark": "widget_api",
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "target_ratio": TARGET_RATIO,
        "reference_bare_rps": reference,
        "meets_target": {
            r["scenario"]: r["ratio"] >= TARGET_RATIO for r in results if r["scenario"] != "bare"
        },
        "config": {
            "server": f"gunicorn {args.workers} x {args.worker_class}"
            + (f" ({args.threads} threads)" if args.worker_class == "gthread" else ""),
            "load": f"wrk -t{args.wrk_threads} -c{args.connections}",
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "published_dialogues": args.dialogues,
            "cpus": os.cpu_count(),
            "machine": platform.platform(),
            "database": urlsplit(os.environ["DATABASE_URL"])._replace(netloc="").geturl(),
        },
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    shown = args.json.relative_to(ROOT) if args.json.is_relative_to(ROOT) else args.json
    print(f"\nwrote {shown}")
    if errors:
        print(f"bench: {errors} failed requests; the numbers above are not valid", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
