"""The chat history bench/reports.py measures: one site, 200 dialogues, 90 days of chat and one
day more (past the retention cutoff), written with COPY.

A conversation is a sequence of *units*, each what one request of the real chat writes: the
start, an answer, a booking, a routing fallback. The units are made once per dialogue version
and kind of visitor by the real flow engine (dialogues.flow.engine), with stand-in values
(name, email, phone, meeting), and stored exactly as widget.services.record_step and
meetings.services store them (the same events, event data, transcript lines and states). Each
conversation then stamps them with its own ids, times, page and visitor, the stand-ins
replaced: a string format per row instead of an engine run per step.

The daily report tables get what reports.rollup counts: each unit's tally is computed once by
rollup.tally_of (at a stand-in day and page), the units written per report day and page are
counted, and the sum goes in through rollup.write. bench/reports.py checks a sample of it
against rollup.tally_of of the raw events read back.
"""

import bisect
import hashlib
import json
import os
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

HOST = "https://www.bench.test"
SITE_NAME = "Reports bench"
MARKETER = "reports-bench-marketer"
# Sales agents taking the meetings booked (about 800 a day), 07:00-19:00 UTC: room for 1,440
# half-hour meetings a day, so a booking finds a time within days, as in life.
AGENTS = 60
WORKING_HOURS = (7, 19)
# A conversation's visitor was seen in the last 30 days (else they are new), and a new visitor
# was identified by the host page (DynChat.identify, with their email) before chatting.
RETURNING = 0.3
IDENTIFIED = 0.12
# Visitors whose email is at a company the flows send to a booking (their branch card).
BIG_COMPANY = 0.4

# What visitors do at each prompt; the rest leave the conversation there. About 40% of
# anonymous visitors answer the first question.
WANT_YES = {"anon": 0.34, "named": 0.38, "known": 0.45}
WANT_NO = {"anon": 0.08, "named": 0.08, "known": 0.10}
CONTINUE = {"name": 0.8, "email": 0.7, "phone": 0.75}
CONTINUE_KNOWN_EMAIL = 0.9
AT_BOOKING = {"book": 0.5, "skip": 0.25, "fallback_skip": 0.1, "fallback": 0.05}  # 0.1 leave
# Seconds between two steps of a conversation (the visitor reads and types).
GAP = (6.0, 75.0)

# Stand-ins the engine runs with, replaced by each conversation's own values.
S_NAME = "Zqfirstname"
S_EMAIL = {True: "zqstandin@bigco.com", False: "zqstandin@othercorp.com"}
S_PHONE = "+14155552671"
S_LABEL = "ZQLABEL"
S_MEETING = "00000000-0000-4000-8000-0000000zqzqz"
S_START = "ZQSTART"
S_URL = "https://zq.standin/zq"
S_TIME = datetime(2000, 6, 1, 12, tzinfo=UTC)
STANDINS = (S_NAME, *S_EMAIL.values(), S_PHONE, S_LABEL, S_MEETING, S_START)

FIRST_NAMES = [
    "Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jon", "Kofi",
    "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Victor",
    "Wen", "Xavier", "Yara", "Zoe",
]  # fmt: skip
TOPICS = [
    "demo", "pricing", "free trial", "webinar", "enterprise plan", "product tour",
    "partner program", "migration help", "security review", "integrations",
]  # fmt: skip
# The site's pages (300 paths), and the query strings and fragments they are visited with
# (page_key drops them); plain more often than tagged.
SECTIONS = [
    ("", 1), ("pricing", 1), ("product", 30), ("solutions", 20), ("customers", 25),
    ("blog", 153), ("docs", 60), ("company", 10),
]  # fmt: skip
QUERIES = [
    "", "?utm_source=google&utm_medium=cpc", "?utm_source=linkedin",
    "?utm_campaign=spring&ref=newsletter", "#contact",
]  # fmt: skip
QUERY_WEIGHTS = [6, 1, 1, 1, 1]
# Relative traffic per UTC hour (a Europe and Americas audience) and weekday (Monday first).
HOURS = [2, 1, 1, 1, 2, 3, 5, 8, 11, 13, 14, 14, 13, 14, 16, 17, 16, 14, 11, 8, 6, 5, 4, 3]
WEEKDAYS = [1.0, 1.05, 1.05, 1.0, 0.85, 0.4, 0.35]

EVENT_FIELDS = [
    "id", "conversation", "site", "dialogue", "version", "kind", "card_id", "data", "page_url",
    "created_at", "rolled_up",
]  # fmt: skip
LINE_FIELDS = ["id", "conversation", "seq", "author", "card_id", "text", "created_at"]
CONVERSATION_FIELDS = [
    "id", "site", "visitor", "dialogue", "version", "token_hash", "status", "state",
    "transcript_length", "page_url", "visitor_known", "started_at", "engaged_at",
    "completed_at", "updated_at",
]  # fmt: skip
VISITOR_FIELDS = [
    "id", "site", "key_hash", "attributes", "email", "marketo_cookie", "marketo_lead_id",
    "completed_dialogue_ids", "created_at", "last_seen_at",
]  # fmt: skip
MEETING_FIELDS = [
    "id", "site", "agent", "agent_name", "agent_email", "conversation", "dialogue",
    "lead_email", "lead_first_name", "lead_last_name", "lead_company", "visitor_time_zone",
    "start", "end", "status", "calendar_status", "calendar_error", "calendar_attempts",
    "provider", "provider_event_id", "ical_uid", "join_url", "invitation_sent_at",
    "agent_notified_at", "routed_by", "routing_rule_name", "assignment", "outcome",
    "outcome_marked_at", "outcome_marked_by", "cancelled_at", "cancelled_by", "cancel_reason",
    "agent_cancellation_sent_at", "visitor_cancellation_sent_at", "created_at", "updated_at",
]  # fmt: skip
NULL = "\\N"
MEETING_ZONE = "Europe/Berlin"


def flow_for(n: int, revision: int) -> dict:
    """Dialogue n's flow: the shape of tests/conftest.py's EVERY_CARD_FLOW (a message, a
    question with two choices, name / email / phone captures, a goal, a branch to a booking,
    two ends), worded for its topic; revision 2 rewords the greeting."""
    topic = TOPICS[n % len(TOPICS)]
    greeting = (
        f'Hi {{{{lead.firstName | "there"}}}}! Questions about our {topic}?'
        if revision == 1
        else f'Hello {{{{lead.firstName | "there"}}}}, shall we talk about the {topic}?'
    )
    return {
        "start": "hello",
        "cards": [
            {"id": "hello", "type": "message", "text": greeting, "next": "want"},
            {
                "id": "want",
                "type": "question",
                "text": f"Would you like to talk to someone about the {topic}?",
                "choices": [
                    {"label": "Yes please", "value": "yes", "next": "name"},
                    {"label": "Just looking", "value": "no", "next": "bye"},
                ],
            },
            {
                "id": "name",
                "type": "capture",
                "text": "Your first name?",
                "input_type": "text",
                "attribute": "firstName",
                "skip_if_known": True,
                "next": "email",
            },
            {
                "id": "email",
                "type": "capture",
                "text": "Thanks {{lead.firstName}}. Your work email?",
                "input_type": "email",
                "attribute": "email",
                "placeholder": "you@company.com",
                "next": "goal",
            },
            {"id": "goal", "type": "goal", "name": f"{topic.capitalize()} lead", "next": "phone"},
            {
                "id": "phone",
                "type": "capture",
                "text": "And a phone number we can reach you on?",
                "input_type": "phone",
                "attribute": "phone",
                "next": "route",
            },
            {
                "id": "route",
                "type": "branch",
                "rules": [
                    {
                        "conditions": [
                            {"subject": "lead.email", "operator": "contains", "value": "@bigco."}
                        ],
                        "next": "book",
                    }
                ],
                "default_next": "bye",
            },
            {
                "id": "book",
                "type": "booking",
                "text": "Pick a time with our team.",
                "skip_label": "None of these times work",
                "next": "booked",
                "skip_next": "bye",
            },
            {"id": "booked", "type": "end", "text": "See you on {{answer.book}}."},
            {"id": "bye", "type": "end", "text": "Thanks, talk soon."},
        ],
    }


def copy_text(value: str) -> str:
    """A value as COPY's text format reads it."""
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def columns_of(model, names: list[str], generated: tuple = ()) -> list[str]:
    """The columns of `names`, which with `generated` (left to the database) must name every
    concrete field of `model`: a field added later fails here, loudly, instead of loading rows
    without it."""
    fields = {f.name: f for f in model._meta.concrete_fields}
    missing = set(fields) - set(names) - set(generated)
    assert not missing, f"{model.__name__}: the bench writes no value for {sorted(missing)}"
    return [connection_quote(fields[name].column) for name in names]


def connection_quote(name: str) -> str:
    from django.db import connection

    return connection.ops.quote_name(name)


@dataclass
class Unit:
    """What one request writes, for one version and kind of visitor, with stand-ins."""

    id: int
    events: list[tuple[str, str, dict]]  # kind, card id, data
    answer: tuple[str, str] | None  # the visitor's transcript line: card id, text
    bot: list[tuple[str, str]]  # card id, text
    state: dict
    engaged: bool = False
    done: bool = False
    booked: bool = False
    fallback: bool = False
    # Filled by History._fragments: each event's and line's middle columns in COPY form, the
    # state, whether any stand-in needs replacing, and the unit's tally.
    event_rows: list[str] = field(default_factory=list)
    line_rows: list[str] = field(default_factory=list)
    state_json: str = ""
    standins: bool = False
    tally: object = None


@dataclass
class Option:
    """One way a conversation goes: some units of a route, and what they leave on the visitor
    (fields told, the dialogue completed)."""

    units: list[Unit]
    gave_name: bool
    gave_email: bool
    gave_phone: bool
    done: bool


@dataclass
class Dialogue:
    id: int
    versions: list[tuple[int, float]]  # (version id, live from), oldest first
    paths: list[int]  # the pages it is shown on
    path_cumulative: list[float]
    # (version id, kind of visitor, big company) -> (options, cumulative weights)
    options: dict = field(default_factory=dict)

    def version_at(self, moment: float) -> int:
        chosen = self.versions[0][0]
        for version_id, since in self.versions:
            if moment >= since:
                chosen = version_id
        return chosen


class Sink:
    """Rows for one table, COPY'd in chunks through its own connection, so the tables load
    side by side in PostgreSQL while this process makes the next rows."""

    CHUNK = 4 << 20

    def __init__(self, dsn: dict, table: str, columns: list[str]):
        import psycopg
        from psycopg.copy import QueuedLibpqWriter

        self.connection = psycopg.connect(**dsn)
        # Superuser only: the foreign-key triggers are skipped (every reference is made
        # consistent here); Django's deferred constraints would queue one check per row.
        self.connection.execute("SET session_replication_role = replica")
        self.cursor = self.connection.cursor()
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        # Written from a thread of psycopg's: making rows goes on while PostgreSQL reads.
        self.context = self.cursor.copy(statement, writer=QueuedLibpqWriter(self.cursor))
        self.copy = self.context.__enter__()
        self.parts: list[str] = []
        self.size = 0
        self.rows = 0

    def add(self, row: str) -> None:
        self.parts.append(row)
        self.size += len(row)
        if self.size >= self.CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.copy.write("".join(self.parts))
            self.rows += len(self.parts)
            self.parts, self.size = [], 0

    def close(self) -> None:
        self.flush()
        self.context.__exit__(None, None, None)
        self.connection.commit()
        self.backend_cpu = backend_cpu_seconds(self.connection.info.backend_pid)
        self.connection.close()


def backend_cpu_seconds(pid: int) -> float:
    """The CPU time a PostgreSQL backend of this machine used so far (0 if not readable)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            parts = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


class History:
    """Writes the history: `days` days before `now` with about `events` events, and
    `expired_days` days before those at the same daily rate. Each day's events are written in
    time order, as the chat would have; `seed` makes two runs write the same history."""

    def __init__(self, *, now: datetime, days: int, expired_days: int, events: int, seed: int):
        from django.conf import settings

        self.now = now
        self.days = days
        self.expired_days = expired_days
        self.target_events = events
        self.seed = seed
        self.rng = random.Random(seed)
        self.zone = ZoneInfo(settings.REPORTS_TIME_ZONE)
        self.returning = RETURNING
        self.units: list[Unit] = []
        self.dialogues: list[Dialogue] = []
        self.urls: list[str] = []
        self.url_page: list[int] = []  # url -> page key id
        self.page_keys: list[str] = []
        self.path_weights: list[float] = []
        # (unit id, report day ordinal, page key id) -> units written rolled up there.
        self.counts: Counter = Counter()
        # Visitors (index = id - 1): what they told, when seen, dialogues completed.
        self.v_created: list[float] = []
        self.v_seen: list[float] = []
        self.v_big: list[bool] = []
        self.v_name: list[bool] = []
        self.v_email: list[bool] = []
        self.v_phone: list[bool] = []
        self.v_completed: list[list[int] | None] = []
        self.first_visitor_of_day: list[int] = []
        self.next_event_id = self.next_line_id = self.next_visitor_id = 1
        self.visitor_base = 1  # the id of the first visitor in the lists above
        self.slots: Counter = Counter()  # meeting start (epoch s) -> agents booked then
        self.assignments = 0
        self.agents: list = []
        self._day_prefix: dict[int, str] = {}
        self._midnights: list[float] = []
        self._ordinals: list[int] = []
        self._dialogue_cumulative: list[float] = []

    # ----- the site, its dialogues and pages (through the product's services) -----

    def build_site(self) -> None:
        from django.contrib.auth import get_user_model

        from dialogues import services
        from dialogues.models import Dialogue as DialogueModel
        from dialogues.models import DialogueVersion, Membership, Site

        User = get_user_model()
        Site.objects.filter(name=SITE_NAME).delete()
        User.objects.filter(username__startswith="reports-bench-").delete()
        marketer = User.objects.create_user(
            username=MARKETER, email="marketer@bench.test", password=None
        )
        site = services.create_site(name=SITE_NAME, allowed_origins=[HOST])
        services.add_member(site=site, user=marketer, role=Membership.Role.MARKETER)
        for n in range(AGENTS):
            agent = User.objects.create_user(
                username=f"reports-bench-agent-{n}",
                email=f"agent{n}@bench.test",
                first_name=FIRST_NAMES[n % len(FIRST_NAMES)],
                last_name="Agent",
                password=None,
            )
            services.add_member(site=site, user=agent, role=Membership.Role.AGENT)
        first = self.now.timestamp() - (self.days + self.expired_days) * 86400
        rng = random.Random(self.seed)
        for n in range(200):
            dialogue = DialogueModel.objects.create(
                site=site,
                name=f"{TOPICS[n % len(TOPICS)].capitalize()} #{n + 1}",
                flow=flow_for(n, 1),
                priority=200 - n,
            )
            services.publish_dialogue(dialogue_id=dialogue.pk, user=marketer)
            live = [first - 7 * 86400]
            if n % 5 == 2:
                # Republished with a new greeting during the period: two versions.
                DialogueModel.objects.filter(pk=dialogue.pk).update(flow=flow_for(n, 2))
                services.publish_dialogue(dialogue_id=dialogue.pk, user=marketer)
                live.append(first + (self.now.timestamp() - first) * rng.uniform(0.2, 0.8))
            for version, since in zip(
                DialogueVersion.objects.filter(dialogue=dialogue).order_by("number"),
                live,
                strict=True,
            ):
                DialogueVersion.objects.filter(pk=version.pk).update(
                    published_at=datetime.fromtimestamp(since, UTC)
                )
        self.load_site()

    def load_site(self) -> None:
        """The bench site as build_site left it: its dialogues (busiest first), versions and
        pages, and the agents that take its meetings."""
        from django.contrib.auth import get_user_model

        from dialogues.models import Dialogue as DialogueModel
        from dialogues.models import DialogueVersion, Site

        self.site = Site.objects.get(name=SITE_NAME)
        User = get_user_model()
        self.marketer = User.objects.get(username=MARKETER)
        self.agents = list(
            User.objects.filter(username__startswith="reports-bench-agent-").order_by("pk")
        )
        self._build_pages()
        self.dialogues = []
        rows = DialogueModel.objects.filter(site=self.site).order_by("-priority")
        for n, dialogue in enumerate(rows):
            versions = [
                (v.pk, v.published_at.timestamp())
                for v in DialogueVersion.objects.filter(dialogue=dialogue).order_by("number")
            ]
            # The three busiest are on every page; the others on 3 to 40 pages of their own.
            rng = random.Random(f"{self.seed}-{n}")
            paths = (
                list(range(len(self.path_weights)))
                if n < 3
                else rng.sample(range(len(self.path_weights)), rng.randint(3, 40))
            )
            cumulative, total = [], 0.0
            for path in paths:
                total += self.path_weights[path]
                cumulative.append(total)
            self.dialogues.append(Dialogue(dialogue.pk, versions, paths, cumulative))
        total, self._dialogue_cumulative = 0.0, []
        for rank in range(len(self.dialogues)):
            total += 1 / (rank + 1)  # Zipf: the busiest has 1/H(200), about 17%
            self._dialogue_cumulative.append(total)

    def _build_pages(self) -> None:
        from reports.rollup import page_key

        paths = []
        for section, count in SECTIONS:
            if count == 1:
                paths.append(f"/{section}")
            else:
                paths.extend(f"/{section}/{section}-topic-{i + 1}" for i in range(count))
        keys: dict[str, int] = {}
        self.urls, self.url_page, self.path_weights = [], [], []
        for rank, path in enumerate(paths):
            self.path_weights.append(1 / (rank + 1) ** 0.8)
            for query in QUERIES:
                url = f"{HOST}{path}{query}"
                self.urls.append(url)
                self.url_page.append(keys.setdefault(page_key(url), len(keys)))
        self.page_keys = list(keys)
        self._query_cumulative = [sum(QUERY_WEIGHTS[: i + 1]) for i in range(len(QUERIES))]

    # ----- units, and the ways a conversation goes, from the flow engine -----

    def prepare(self) -> None:
        from dialogues.flow.cards import parse_flow
        from dialogues.models import DialogueVersion
        from routing.routes import fallback_message

        fallback = fallback_message(self.site)
        for dialogue in self.dialogues:
            for version_id, _ in dialogue.versions:
                flow = parse_flow(DialogueVersion.objects.get(pk=version_id).flow)
                for kind in ("anon", "named", "known"):
                    for big in (False, True):
                        options = self._options(flow, kind, big, fallback)
                        for option, _ in options:
                            for unit in option.units:
                                if unit.tally is None:
                                    self._fragments(unit, dialogue.id, version_id, kind)
                        cumulative, total = [], 0.0
                        for _, weight in options:
                            total += weight
                            cumulative.append(total)
                        dialogue.options[(version_id, kind, big)] = (
                            [option for option, _ in options],
                            cumulative,
                        )

    def _options(self, flow, kind: str, big: bool, fallback: str) -> list[tuple[Option, float]]:
        """Every way a conversation of this kind of visitor goes, with its probability."""
        email = S_EMAIL[big]
        lead = {}
        if kind in ("named", "known"):
            lead["firstName"] = S_NAME
        if kind == "known":
            lead["email"] = email
        names = ["no", "book", "skip", "fallback_skip", "fallback"] if big else ["no", "yes"]
        routes = {name: self._route(flow, lead, email, name, fallback) for name in names}
        yes, no = WANT_YES[kind], WANT_NO[kind]
        path = routes["book" if big else "yes"]
        ways = [(path[:1], 1 - yes - no), (routes["no"], no)]
        weight = yes
        for i in range(2, len(path)):
            prompt = path[i - 1].state["waiting_on"]
            if prompt == "book":
                ways.append((path[:i], weight * (1 - sum(AT_BOOKING.values()))))
                ways.extend((routes[r], weight * share) for r, share in AT_BOOKING.items())
                break
            go_on = CONTINUE[prompt]
            if kind == "known" and prompt == "email":
                go_on = CONTINUE_KNOWN_EMAIL
            ways.append((path[:i], weight * (1 - go_on)))
            weight *= go_on
        else:
            ways.append((path, weight))
        options = []
        for units, weight in ways:
            told = {e[2]["attribute"] for u in units for e in u.events if e[0] == "field_captured"}
            option = Option(
                units=units,
                gave_name="firstName" in told,
                gave_email="email" in told,
                gave_phone="phone" in told,
                done=units[-1].done,
            )
            options.append((option, weight))
        return options

    def _route(self, flow, lead: dict, email: str, route: str, fallback: str) -> list[Unit]:
        """The units of a conversation that goes all the way along `route`, as
        widget.services (start, answers) and meetings.services (a booking, a routing
        fallback) write them."""
        from dialogues.flow import engine
        from widget.services import _event_data, shown_cards

        email_before = lead.get("email", "")

        def unit(outcome, events, answer) -> Unit:
            step = engine.Event(
                "step", answer[0] if answer else "", {"shown": shown_cards(outcome)}
            )
            made = Unit(
                id=len(self.units),
                events=[(e.kind, e.card_id, _event_data(e, email_before)) for e in [*events, step]],
                answer=answer,
                bot=[(m.card_id, m.text) for m in outcome.messages],
                state=outcome.state.to_dict(),
                engaged=any(e.kind == "engaged" for e in events),
                done=outcome.state.done,
                booked=any(e.kind == "meeting_booked" for e in events),
            )
            self.units.append(made)
            return made

        outcome = engine.start(flow, lead=lead)
        units = [unit(outcome, [engine.Event("triggered", ""), *outcome.events], None)]
        state = outcome.state
        answers = {"name": S_NAME, "email": email, "phone": S_PHONE}
        while not state.done:
            card = state.waiting_on
            if card == "book" and route.startswith("fallback") and not units[-1].fallback:
                # meetings.services.record_fallback: an event and the message, no step.
                made = Unit(
                    id=len(self.units),
                    events=[("routing_fallback", card, {"step": state.step})],
                    answer=None,
                    bot=[(card, fallback)],
                    state=state.to_dict(),
                    fallback=True,
                )
                self.units.append(made)
                units.append(made)
                if route == "fallback":
                    break
                continue
            if card == "book" and route == "book":
                outcome = engine.book(
                    flow,
                    state,
                    card_id=card,
                    step=state.step,
                    label=S_LABEL,
                    meeting={"meeting_id": S_MEETING, "start": S_START},
                    lead=lead,
                )
            else:
                if card == "want":
                    value = "no" if route == "no" else "yes"
                elif card == "book":
                    value = engine.SKIP
                else:
                    value = answers[card]
                outcome = engine.answer(
                    flow, state, card_id=card, step=state.step, value=value, lead=lead
                )
            events = list(outcome.events)
            if not any(u.engaged for u in units):
                events.insert(0, engine.Event("engaged", card))
            units.append(unit(outcome, events, (card, outcome.answer_text)))
            state = outcome.state
        return units

    def _fragments(self, unit: Unit, dialogue_id: int, version_id: int, kind: str) -> None:
        from reports import rollup

        site_id = self.site.pk
        unit.event_rows = [
            f"\t{site_id}\t{dialogue_id}\t{version_id}\t{kind_of}\t{copy_text(card_id)}"
            f"\t{copy_text(json.dumps(data))}\t"
            for kind_of, card_id, data in unit.events
        ]
        if unit.answer:
            unit.line_rows.append(f"\tvisitor\t{unit.answer[0]}\t{copy_text(unit.answer[1])}\t")
        unit.line_rows.extend(f"\tbot\t{card}\t{copy_text(text)}\t" for card, text in unit.bot)
        unit.state_json = copy_text(json.dumps(unit.state))
        written = "".join([*unit.event_rows, *unit.line_rows, unit.state_json])
        unit.standins = any(s in written for s in STANDINS)
        unit.tally = rollup.tally_of(
            rollup.Event(site_id, dialogue_id, version_id, k, c, d, S_URL, S_TIME, kind == "known")
            for k, c, d in unit.events
        )

    # ----- the conversations -----

    def _mean_events(self) -> float:
        """Events per conversation, estimated on 20,000 drawn as generate() draws them."""
        rng = random.Random(self.seed + 1)
        events = 0
        for _ in range(20_000):
            dialogue = self.dialogues[self._pick_dialogue(rng)]
            kind = rng.choices(["anon", "named", "known"], weights=[75, 8, 17])[0]
            key = (dialogue.versions[-1][0], kind, rng.random() < BIG_COMPANY)
            options, cumulative = dialogue.options[key]
            option = options[bisect.bisect(cumulative, rng.random() * cumulative[-1])]
            events += sum(len(u.events) for u in option.units)
        return events / 20_000

    def _pick_dialogue(self, rng: random.Random) -> int:
        cumulative = self._dialogue_cumulative
        return min(bisect.bisect(cumulative, rng.random() * cumulative[-1]), len(cumulative) - 1)

    def generate(self, dsn: dict) -> dict:
        """Writes the whole history. Returns the rows written, by table, and how many events
        fall in the expired days and in the retained ones."""
        self._open(dsn)
        now = self.now.timestamp()
        # Conversations keep going for minutes after they start: the last ones start a
        # quarter of an hour before `now`.
        end = now - 900
        windows = []
        for n in range(self.days + self.expired_days, 0, -1):
            start = now - n * 86400
            windows.append((start, min(start + 86400, end), n > self.days))

        def weight(start: float) -> float:
            weekday = datetime.fromtimestamp(start + 43200, UTC).weekday()
            growth = 1 + 0.25 * (start - windows[0][0]) / (now - windows[0][0])
            return WEEKDAYS[weekday] * growth

        weights = [weight(start) * (stop - start) / 86400 for start, stop, _ in windows]
        retained_weight = sum(w for w, (_, _, old) in zip(weights, windows, strict=True) if not old)
        mean = self._mean_events()
        expired_events = 0
        written = 0  # events in the retained days
        left_weight = retained_weight
        for (start, stop, expired), day_weight in zip(windows, weights, strict=True):
            self.first_visitor_of_day.append(self.next_visitor_id)
            before = self.next_event_id
            if expired:
                # One day's worth: the retained days' average (their total over their number).
                conversations = self.target_events / self.days / mean
            else:
                # Aim the rest of the target at the days left, at the mean measured so far.
                conversations = (self.target_events - written) * day_weight / left_weight / mean
                left_weight -= day_weight
            self._window(start, stop, round(conversations), rolled_up=True)
            made = self.next_event_id - before
            if expired:
                expired_events += made
            else:
                written += made
            mean = (expired_events + written) / max(1, self._conversations)
        rows = self._close()
        rows["events_expired_days"] = expired_events
        rows["events_retained_days"] = written
        return rows

    def backlog(self, dsn: dict, *, events: int, end: float) -> dict:
        """About `events` more events, not counted yet, from new visitors' conversations in
        the hour before `end`: what the rollup finds after its workers were down a while."""
        self._open(dsn)
        self.returning = 0.0
        first = self.next_event_id
        moment = end - 3600
        while self.next_event_id - first < events and moment < end:
            self._window(moment, moment + 300, 2000, rolled_up=False, until=first + events)
            moment += 300
        rows = self._close()
        rows["events"] = self.next_event_id - first
        return rows

    def _open(self, dsn: dict) -> None:
        from meetings.models import Meeting
        from widget.models import Conversation, ConversationEvent, TranscriptEntry

        self._conversations = 0
        self.sinks = {
            "events": Sink(
                dsn, ConversationEvent._meta.db_table, columns_of(ConversationEvent, EVENT_FIELDS)
            ),
            "transcript_entries": Sink(
                dsn, TranscriptEntry._meta.db_table, columns_of(TranscriptEntry, LINE_FIELDS)
            ),
            "conversations": Sink(
                dsn, Conversation._meta.db_table, columns_of(Conversation, CONVERSATION_FIELDS)
            ),
            "meetings": Sink(dsn, Meeting._meta.db_table, columns_of(Meeting, MEETING_FIELDS)),
        }

    def _close(self) -> dict:
        for sink in self.sinks.values():
            sink.close()
        rows = {name: sink.rows for name, sink in self.sinks.items()}
        rows["postgres_cpu_s"] = round(sum(sink.backend_cpu for sink in self.sinks.values()), 1)
        return rows

    def _window(
        self, start: float, stop: float, count: int, *, rolled_up: bool, until: int = 0
    ) -> None:
        """`count` conversations started between `start` and `stop`, in time order, more of
        them at busy hours."""
        rng = self.rng
        top = max(HOURS)
        starts = []
        while len(starts) < count:
            moment = rng.uniform(start, stop)
            if rng.random() * top < HOURS[int(moment // 3600) % 24]:
                starts.append(moment)
        starts.sort()
        for moment in starts:
            if until and self.next_event_id >= until:
                return
            self._conversation(self.dialogues[self._pick_dialogue(rng)], moment, rolled_up)

    def _new_visitor(self, started: float) -> int:
        identified = self.rng.random() < IDENTIFIED
        self.v_created.append(started)
        self.v_seen.append(started)
        self.v_big.append(self.rng.random() < BIG_COMPANY)
        self.v_name.append(identified)
        self.v_email.append(identified)
        self.v_phone.append(False)
        self.v_completed.append(None)
        self.next_visitor_id += 1
        return self.next_visitor_id - 1

    def _conversation(self, dialogue: Dialogue, started: float, rolled_up: bool) -> None:
        rng = self.rng
        self._conversations += 1
        vid = 0
        if self.returning and rng.random() < self.returning:
            low = self.first_visitor_of_day[max(0, len(self.first_visitor_of_day) - 30)]
            if low < self.next_visitor_id:
                vid = rng.randrange(low, self.next_visitor_id)
                completed = self.v_completed[vid - self.visitor_base]
                if completed and dialogue.id in completed:
                    vid = 0  # a completed dialogue is never offered again: someone new
        if not vid:
            vid = self._new_visitor(started)
        i = vid - self.visitor_base
        known = self.v_email[i]
        kind = "known" if known else ("named" if self.v_name[i] else "anon")
        big = self.v_big[i]
        version_id = dialogue.version_at(started)
        options, cumulative = dialogue.options[(version_id, kind, big)]
        option = options[bisect.bisect(cumulative, rng.random() * cumulative[-1])]
        path = dialogue.paths[
            bisect.bisect(dialogue.path_cumulative, rng.random() * dialogue.path_cumulative[-1])
        ]
        query = bisect.bisect(self._query_cumulative, rng.random() * self._query_cumulative[-1])
        url_id = path * len(QUERIES) + min(query, len(QUERIES) - 1)
        url, page = self.urls[url_id], self.url_page[url_id]

        name = FIRST_NAMES[vid % len(FIRST_NAMES)]
        email = visitor_email(vid, big)
        conversation_id = str(uuid.UUID(bytes=os.urandom(16), version=4))
        prefix = f"\t{conversation_id}"
        flag = "t" if rolled_up else "f"
        events, lines, counts = self.sinks["events"], self.sinks["transcript_entries"], self.counts
        substitutions = None
        meeting = None
        moment = started
        seq = 0
        engaged_at = completed_at = NULL
        for n, unit in enumerate(option.units):
            if n:
                moment += 2.5 if unit.fallback else rng.uniform(*GAP)
            stamp = self._stamp(moment)
            event_rows, line_rows = unit.event_rows, unit.line_rows
            if unit.standins:
                if substitutions is None:
                    substitutions = [
                        (S_NAME, name),
                        (S_EMAIL[big], email),
                        (S_PHONE, visitor_phone(vid)),
                    ]
                if unit.booked:
                    meeting = self._meeting_slot(moment)
                    substitutions += [
                        (S_MEETING, meeting["id"]),
                        (S_START, meeting["start_z"]),
                        (S_LABEL, meeting["label"]),
                    ]
                event_rows = [_replace(r, substitutions) for r in event_rows]
                line_rows = [_replace(r, substitutions) for r in line_rows]
            tail = f"{url}\t{stamp}\t{flag}\n"
            for row in event_rows:
                events.add(f"{self.next_event_id}{prefix}{row}{tail}")
                self.next_event_id += 1
            for row in line_rows:
                lines.add(f"{self.next_line_id}{prefix}\t{seq}{row}{stamp}\n")
                self.next_line_id += 1
                seq += 1
            if rolled_up:
                counts[(unit.id, self._day_of(moment), page)] += 1
            if unit.engaged:
                engaged_at = stamp
            if unit.done:
                completed_at = stamp
        last = option.units[-1]
        state = _replace(last.state_json, substitutions) if substitutions else last.state_json
        self.sinks["conversations"].add(
            f"{conversation_id}\t{self.site.pk}\t{vid}\t{dialogue.id}\t{version_id}"
            f"\t{os.urandom(32).hex()}\t{'completed' if option.done else 'open'}\t{state}"
            f"\t{seq}\t{url}\t{'t' if known else 'f'}\t{self._stamp(started)}"
            f"\t{engaged_at}\t{completed_at}\t{self._stamp(moment)}\n"
        )
        if meeting:
            self._meeting(meeting, conversation_id, dialogue.id, email, name, moment)
        # What the visitor told stays on their row (widget.services._remember).
        self.v_name[i] = self.v_name[i] or option.gave_name
        self.v_email[i] = self.v_email[i] or option.gave_email
        self.v_phone[i] = self.v_phone[i] or option.gave_phone
        if option.done:
            completed = self.v_completed[i] or []
            if dialogue.id not in completed:
                self.v_completed[i] = [*completed, dialogue.id]
        self.v_seen[i] = max(self.v_seen[i], moment)

    def _meeting_slot(self, booked_at: float) -> dict:
        """The meeting a booking at `booked_at` makes: the first working half hour, one to ten
        days later, at which an agent is still free (agents taken in turn, never double
        booked: the exclusion constraint would refuse it)."""
        from calendars.display import when_label

        slot = booked_at + self.rng.randint(1, 10) * 86400
        slot -= slot % 1800
        opens, closes = WORKING_HOURS
        agents = len(self.agents)
        while not opens <= (slot % 86400) // 3600 < closes or self.slots[slot] >= agents:
            slot += 1800
        agent = self.slots[slot]
        self.slots[slot] += 1
        moment = datetime.fromtimestamp(slot, UTC)
        return {
            "id": str(uuid.uuid4()),
            "start_z": moment.isoformat()[:19] + "Z",
            "label": when_label(moment, ZoneInfo(MEETING_ZONE)),
            "agent": agent,
            "start": slot,
        }

    def _meeting(self, meeting: dict, conversation_id, dialogue_id, email, name, booked_at):
        agent = self.agents[meeting["agent"]]
        self.assignments += 1
        booked = self._stamp(booked_at)
        start = meeting["start"]
        self.sinks["meetings"].add(
            "\t".join(
                [
                    meeting["id"], str(self.site.pk), str(agent.pk), agent.get_full_name(),
                    agent.email, conversation_id, str(dialogue_id), email, name, "", "",
                    MEETING_ZONE, self._stamp(start), self._stamp(start + 1800), "booked",
                    "builtin", "", "0", "builtin", "", "", "", booked, booked, "round_robin",
                    "", str(self.assignments), "", NULL, NULL, NULL, NULL, "", NULL, NULL,
                    booked, booked,
                ]
            )
            + "\n"
        )  # fmt: skip

    def continue_from(self, *, event_id: int, line_id: int, visitor_id: int) -> None:
        """Go on writing after rows already in the tables (new visitors only)."""
        self.next_event_id, self.next_line_id = event_id, line_id
        self.next_visitor_id = self.visitor_base = visitor_id
        self.first_visitor_of_day = [visitor_id]
        for values in (
            self.v_created, self.v_seen, self.v_big, self.v_name, self.v_email, self.v_phone,
            self.v_completed,
        ):  # fmt: skip
            values.clear()

    def write_visitors(self, dsn: dict) -> int:
        """The visitors in the lists, as their last conversation left them (what they told,
        the dialogues they completed), created when first seen."""
        from widget.models import Visitor

        sink = Sink(dsn, Visitor._meta.db_table, columns_of(Visitor, VISITOR_FIELDS))
        site_id = self.site.pk
        for i in range(len(self.v_created)):
            vid = i + self.visitor_base
            attributes = {}
            email = ""
            if self.v_name[i]:
                attributes["firstName"] = FIRST_NAMES[vid % len(FIRST_NAMES)]
            if self.v_email[i]:
                email = attributes["email"] = visitor_email(vid, self.v_big[i])
            if self.v_phone[i]:
                attributes["phone"] = visitor_phone(vid)
            key_hash = hashlib.sha256(b"reports-bench-visitor-%d" % vid).hexdigest()
            sink.add(
                f"{vid}\t{site_id}\t{key_hash}\t{json.dumps(attributes)}\t{email}\t\t{NULL}"
                f"\t{json.dumps(self.v_completed[i] or [])}\t{self._stamp(self.v_created[i])}"
                f"\t{self._stamp(self.v_seen[i])}\n"
            )
        sink.close()
        return sink.rows

    def write_tally(self, dsn: dict, tally) -> dict:
        """COPY a tally into the (empty) report tables: the rows rollup.write would insert,
        without its per-row parameters (1.5 million rows would take it minutes)."""
        from reports import rollup
        from reports.models import CardDay, DialogueDay, PageDay

        written = {}
        for model, key_names, count_names, counts in (
            (DialogueDay, ["site", "dialogue", "version", "day", "known"],
             list(dict.fromkeys([*rollup.DIALOGUE_COUNTS.values(), "captured"])), tally.dialogues),
            (CardDay, ["site", "dialogue", "version", "day", "known", "card_id"],
             ["reached", "answered"], tally.cards),
            (PageDay, ["site", "dialogue", "day", "known", "page"],
             ["triggered", "engaged", "completed", "captured"], tally.pages),
        ):  # fmt: skip
            sink = Sink(
                dsn,
                model._meta.db_table,
                columns_of(model, [*key_names, *count_names], generated=("id",)),
            )
            for key, counter in sorted(counts.items()):
                values = [*key, *(counter[name] for name in count_names)]
                sink.add(
                    "\t".join(
                        ("t" if v else "f") if isinstance(v, bool) else copy_text(str(v))
                        for v in values
                    )
                    + "\n"
                )
            sink.close()
            written[model._meta.db_table] = sink.rows
        return written

    def tally(self):
        """What rollup counts for every unit written rolled up: each unit's own tally at the
        day and page it was written on, times how often. A rollup.Tally."""
        from reports.rollup import Tally, page_key, report_day

        standin_day, standin_page = report_day(S_TIME), page_key(S_URL)
        total = Tally()
        days: dict[int, date] = {}
        for (unit_id, ordinal, page), n in self.counts.items():
            unit = self.units[unit_id]
            day = days.get(ordinal) or days.setdefault(ordinal, date.fromordinal(ordinal))
            page_name = self.page_keys[page]
            for into, mine in (
                (total.dialogues, unit.tally.dialogues),
                (total.cards, unit.tally.cards),
                (total.pages, unit.tally.pages),
            ):
                for key, counter in mine.items():
                    real = tuple(
                        day if v == standin_day else page_name if v == standin_page else v
                        for v in key
                    )
                    target = into.get(real)
                    if target is None:
                        target = into[real] = Counter()
                    for column, value in counter.items():
                        target[column] += value * n
        return total

    # ----- times -----

    def _stamp(self, moment: float) -> str:
        """A timestamptz in COPY's text form (one strftime per day, not per row)."""
        whole = int(moment)
        day, second = divmod(whole, 86400)
        prefix = self._day_prefix.get(day)
        if prefix is None:
            prefix = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")
            self._day_prefix[day] = prefix
        hour, rest = divmod(second, 3600)
        minute, sec = divmod(rest, 60)
        return f"{prefix} {hour:02d}:{minute:02d}:{sec:02d}.{int((moment - whole) * 1e6):06d}+00"

    def _day_of(self, moment: float) -> int:
        """rollup.report_day of the moment (REPORTS_TIME_ZONE's calendar), as an ordinal."""
        if not self._midnights:
            first = datetime.fromtimestamp(self.now.timestamp() - 400 * 86400, UTC)
            local = first.astimezone(self.zone).date()
            for n in range(420):
                day = local + timedelta(days=n)
                midnight = datetime(day.year, day.month, day.day, tzinfo=self.zone)
                self._midnights.append(midnight.timestamp())
                self._ordinals.append(day.toordinal())
        return self._ordinals[bisect.bisect(self._midnights, moment) - 1]


def visitor_email(vid: int, big: bool) -> str:
    name = FIRST_NAMES[vid % len(FIRST_NAMES)].lower()
    return f"{name}.{vid}@{'bigco.com' if big else f'company{vid % 97}.com'}"


def visitor_phone(vid: int) -> str:
    return f"+1415555{vid % 10000:04d}"


def _replace(text: str, substitutions) -> str:
    for old, new in substitutions:
        text = text.replace(old, new)
    return text
