"""Round robin under load: bookings per second through the booking endpoint (`make bench`).

The issue's target: at least 100 bookings/s through the booking endpoint with 50 concurrent
clients on PostgreSQL, with zero double bookings and zero rotation errors; and the time
bookings wait for the round-robin pointer's lock.

Set-up, in the bench database (PostgreSQL; its name must contain "bench"): one site whose
published dialogue asks for an email and then offers a booking card, and --agents sales agents
on the built-in calendar (every day 0:00-23:30 UTC, 30-minute meetings, an hour's notice, 14
days ahead: 658 times each). Before each round every meeting and pointer of the site is
deleted, and one conversation per booking is walked to the booking card through the widget's
services (not measured).

Each round: --clients threads (one keep-alive HTTP connection each) are released together and
POST /bookings for their share of the conversations, each at its own time, so every agent is
free at every time booked: the assignments must follow the queue exactly. The server is
gunicorn with the bench settings, like the widget API bench: --workers sync workers (3, as the
Docker image runs), rate limits raised. Celery tasks queue to the bench Redis db (no worker
runs; enqueueing is part of the request, as in production).

Measured per round: bookings/s (201 answers over the wall time from release to the last
answer), request latency, the lock wait each booking reports (`Server-Timing: lock;dur=`),
and, from the database afterwards, double bookings (pairs of booked meetings of one agent
that overlap) and rotation errors (meetings, in assignment order, whose agent is not the next
one in the queue after the previous meeting's). Any answer but 201 is an error. The round with
the median throughput is reported; results go to var/bench/routing.json.
"""

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

from bench.widget_api import (  # noqa: E402 - after the path fix above
    ORIGIN,
    ensure_database,
    start_gunicorn,
    stop_gunicorn,
    wait_until_serving,
)

OUT_DIR = ROOT / "var" / "bench"
TARGET_PER_SECOND = 100.0
SITE_NAME = "Routing bench"
USER_PREFIX = "routing-bench-"
FLOW = {
    "start": "email",
    "cards": [
        {
            "id": "email",
            "type": "capture",
            "text": "Your work email?",
            "input_type": "email",
            "attribute": "email",
            "next": "book",
        },
        {"id": "book", "type": "booking", "text": "Pick a time.", "days": 14, "next": "done"},
        {"id": "done", "type": "end", "text": "Booked: {{answer.book}}."},
    ],
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--bookings", type=int, default=600, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=4, help="per gthread worker")
    parser.add_argument("--port", type=int, default=8767)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import bench.settings  # noqa: F401 - sets the bench DATABASE_URL / REDIS_URL defaults

    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    cache.clear()
    site, agents = build_site(args.agents)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    log_path = OUT_DIR / "routing-gunicorn.log"
    server = start_gunicorn(args, log_path)
    base = f"http://127.0.0.1:{args.port}"
    rounds = []
    try:
        wait_until_serving(base, server, log_path)
        for number in range(1, args.rounds + 1):
            jobs = prepare_round(site, args.bookings)
            result = run_round(args, site, jobs)
            result.update(check_round(site, agents))
            rounds.append(result)
            print(f"round {number}: " + summary_line(result), flush=True)
    finally:
        stop_gunicorn(server)
    report = {
        "agents": args.agents,
        "clients": args.clients,
        "bookings_per_round": args.bookings,
        "server": f"gunicorn {args.workers} x {args.worker_class}",
        "target_per_second": TARGET_PER_SECOND,
        "rounds": rounds,
        "median": sorted(rounds, key=lambda r: r["bookings_per_second"])[len(rounds) // 2],
    }
    median = report["median"]
    report["met"] = (
        median["bookings_per_second"] >= TARGET_PER_SECOND
        and all(r["double_bookings"] == 0 and r["rotation_errors"] == 0 for r in rounds)
        and all(r["errors"] == 0 for r in rounds)
    )
    (OUT_DIR / "routing.json").write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    return 0 if report["met"] else 1


def build_site(agent_count: int):
    """The bench site, its dialogue and agents, made afresh each run (the old ones deleted)."""
    from django.contrib.auth import get_user_model

    from calendars.models import Availability
    from calendars.services import save_connection
    from dialogues import services as dialogue_services
    from dialogues.models import Dialogue, Membership, Site
    from widget.models import Conversation, ConversationEvent

    User = get_user_model()
    # Conversations and their events hold their dialogue version (PROTECT): they go first.
    ConversationEvent.objects.filter(site__name=SITE_NAME).delete()
    Conversation.objects.filter(site__name=SITE_NAME).delete()
    Site.objects.filter(name=SITE_NAME).delete()
    User.objects.filter(username__startswith=USER_PREFIX).delete()
    site = Site.objects.create(name=SITE_NAME, allowed_origins=[ORIGIN])
    dialogue = Dialogue.objects.create(site=site, name="Book a meeting", flow=FLOW)
    dialogue_services.publish_dialogue(dialogue_id=dialogue.pk, user=None)
    agents = []
    for n in range(agent_count):
        user = User.objects.create(
            username=f"{USER_PREFIX}{n}",
            email=f"agent{n}@bench.test",
            first_name=f"Agent {n}",
        )
        Membership.objects.create(user=user, site=site, role=Membership.Role.AGENT)
        save_connection(user, "builtin", account_email=user.email)  # joins the queue
        Availability.objects.create(
            user=user,
            time_zone="UTC",
            weekly_hours={str(day): [["00:00", "23:30"]] for day in range(1, 8)},
            meeting_minutes=30,
            minimum_notice_minutes=60,
            booking_horizon_days=14,
        )
        agents.append(user)
    return site, agents


def prepare_round(site, count: int) -> list[dict]:
    """Delete the site's meetings and pointers, then walk `count` conversations to the booking
    card, each paired with its own free time."""
    from dialogues.models import Dialogue
    from dialogues.targeting import ANONYMOUS
    from meetings.models import Meeting
    from routing import routes
    from routing.models import Pointer
    from widget import keys
    from widget import services as conversations

    Meeting.objects.filter(site=site).delete()
    Pointer.objects.filter(site=site).delete()
    starts = list(routes.offer(site, ANONYMOUS).slots)
    if len(starts) < count:
        sys.exit(f"bench: only {len(starts)} free times for {count} bookings")
    dialogue = Dialogue.objects.get(site=site)
    jobs = []
    for n in range(count):
        step, token = conversations.start_conversation(
            site=site,
            visitor_key=keys.new_visitor_key(site.pk),
            dialogue_id=dialogue.pk,
            page_url="https://www.bench.test/pricing",
        )
        state = step.outcome.state
        step = conversations.answer_conversation(
            site=site,
            conversation_id=str(step.conversation.pk),
            token=token,
            card_id=state.waiting_on,
            step=state.step,
            value=f"visitor{n}@bigco.example",
        )
        state = step.outcome.state
        jobs.append(
            {
                "path": f"/api/widget/v1/sites/{site.public_key}/conversations/"
                f"{step.conversation.pk}/bookings",
                "token": token,
                "body": json.dumps(
                    {
                        "card_id": state.waiting_on,
                        "step": state.step,
                        "start": starts[n].isoformat(),
                        "time_zone": "Europe/Paris",
                    }
                ),
            }
        )
    return jobs


def run_round(args, site, jobs: list[dict]) -> dict:
    """POST every job from args.clients threads released together."""
    results: list = [None] * len(jobs)
    barrier = threading.Barrier(args.clients + 1)

    def client(indexes):
        connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
        barrier.wait()
        for i in indexes:
            job = jobs[i]
            began = time.perf_counter()
            connection.request(
                "POST",
                job["path"],
                body=job["body"],
                headers={
                    "Origin": ORIGIN,
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {job['token']}",
                },
            )
            response = connection.getresponse()
            response.read()
            took = time.perf_counter() - began
            timing = response.getheader("Server-Timing") or ""
            lock_ms = float(timing.partition(";dur=")[2]) if ";dur=" in timing else None
            results[i] = (response.status, took, lock_ms)
        connection.close()

    threads = [
        threading.Thread(target=client, args=(range(n, len(jobs), args.clients),))
        for n in range(args.clients)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    booked = [r for r in results if r and r[0] == 201]
    latencies = sorted(r[1] * 1000 for r in booked)
    locks = sorted(r[2] for r in booked if r[2] is not None)
    return {
        "bookings": len(booked),
        "errors": len(jobs) - len(booked),
        "statuses": sorted({r[0] for r in results if r}),
        "seconds": round(wall, 3),
        "bookings_per_second": round(len(booked) / wall, 1),
        "latency_ms": percentiles(latencies),
        "lock_wait_ms": percentiles(locks),
    }


def check_round(site, agents) -> dict:
    """Double bookings and rotation errors, read from the database."""
    from django.db import connection

    from meetings.models import Meeting

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM meetings_meeting a JOIN meetings_meeting b
              ON a.agent_id = b.agent_id AND a.id < b.id
             AND tstzrange(a.start, a."end") && tstzrange(b.start, b."end")
             WHERE a.site_id = %s AND a.status = 'booked' AND b.status = 'booked'
            """,
            [site.pk],
        )
        double_bookings = cursor.fetchone()[0]
    queue = [agent.pk for agent in agents]  # every agent free at every time: plain turns
    meetings = list(
        Meeting.objects.filter(site=site)
        .order_by("assignment")
        .values_list("assignment", "agent_id")
    )
    rotation_errors = sum(
        1
        for n, (assignment, agent_id) in enumerate(meetings)
        if assignment != n + 1 or agent_id != queue[n % len(queue)]
    )
    return {"double_bookings": double_bookings, "rotation_errors": rotation_errors}


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    return {
        "p50": round(statistics.median(values), 2),
        "p99": round(values[min(len(values) - 1, int(len(values) * 0.99))], 2),
        "max": round(values[-1], 2),
    }


def summary_line(result: dict) -> str:
    return (
        f"{result['bookings']} bookings in {result['seconds']} s = "
        f"{result['bookings_per_second']}/s; lock wait p50 {result['lock_wait_ms']['p50']} ms, "
        f"p99 {result['lock_wait_ms']['p99']} ms; errors {result['errors']}, double bookings "
        f"{result['double_bookings']}, rotation errors {result['rotation_errors']}"
    )


def print_report(report: dict) -> None:
    print()
    print(
        f"Routing: {report['agents']} agents, {report['clients']} clients, "
        f"{report['bookings_per_round']} bookings per round, {report['server']}"
    )
    print()
    print(
        "| round | bookings/s | latency p50 / p99 ms | lock wait p50 / p99 / max ms "
        "| errors | double bookings | rotation errors |"
    )
    print("|---|---|---|---|---|---|---|")
    for n, r in enumerate(report["rounds"], start=1):
        lat, lock = r["latency_ms"], r["lock_wait_ms"]
        print(
            f"| {n} | {r['bookings_per_second']} | {lat['p50']} / {lat['p99']} "
            f"| {lock['p50']} / {lock['p99']} / {lock['max']} | {r['errors']} "
            f"| {r['double_bookings']} | {r['rotation_errors']} |"
        )
    verdict = "met" if report["met"] else "NOT met"
    print()
    print(
        f"Target: >= {report['target_per_second']} bookings/s (median round "
        f"{report['median']['bookings_per_second']}), no double bookings, no rotation errors: "
        f"{verdict}"
    )


if __name__ == "__main__":
    sys.exit(main())
