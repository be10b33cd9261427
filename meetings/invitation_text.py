"""The invitation email's token language: {{person.firstName | "there"}} in a subject or body.

The same syntax as the dialogues' message tokens (dialogues.flow.tokens: its TOKEN regex is
reused, so marketers learn one language), with the invitation's own namespaces: `person`,
`company`, `agent` and `meeting`. The fallback after `|` is used when the value is missing or
blank. Rendering produces plain text for a plain-text email; whoever shows it in a page escapes
it. Pure: no database, no Django, so the booking task and the editor's preview share it.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialogues.flow.tokens import TOKEN

# Anything that opens like a token but does not parse is an authoring mistake worth reporting.
# DOTALL so that a token broken over two lines is reported too, not sent as typed.
TOKEN_LIKE = re.compile(r"\{\{.*?\}\}", re.DOTALL)

# (token, what it becomes), in the order the editor's help lists them.
TOKENS: list[tuple[str, str]] = [
    ("person.firstName", "The visitor's first name"),
    ("person.lastName", "The visitor's last name"),
    ("person.email", "The visitor's email address"),
    ("company.name", "The visitor's company"),
    ("agent.name", "The name of the agent they booked with"),
    ("agent.email", "The agent's email address"),
    (
        "meeting.time",
        "Date, time and time zone, e.g. Monday, 23 November 2026 at 9:00 AM (Europe/Paris)",
    ),
    ("meeting.date", "The date alone, e.g. Monday, 23 November 2026"),
    ("meeting.duration", "How long it lasts, e.g. 30 minutes"),
    ("meeting.link", "The video call link (empty when the calendar made none)"),
    (
        "meeting.cancel_link",
        "The page where the visitor can cancel the meeting (added at the end when not used)",
    ),
]
# Every invitation carries its cancel link: a template without the token gets this line added.
CANCEL_LINK_TOKEN = "meeting.cancel_link"  # noqa: S105 - a token's name, not a secret
CANCEL_FOOTER = "Can't make it? Cancel the meeting here: {url}"
KNOWN = frozenset(name for name, _ in TOKENS)
EXAMPLE = '{{person.firstName | "there"}}'

# English only (PRODUCT.md), and not strftime's %A/%B, which follow the process locale.
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True)
class InvitationContext:
    """What one invitation is about. `start`/`end` are aware datetimes (any zone); they are
    written to the visitor in `time_zone`, the IANA zone they booked in."""

    person_first_name: str
    person_last_name: str
    person_email: str
    company_name: str
    agent_name: str
    agent_email: str
    start: datetime
    end: datetime
    time_zone: str
    join_url: str
    cancel_url: str = ""

    def zone(self) -> ZoneInfo:
        # The booking stores the zone the widget reported; a zone this machine does not know
        # should not stop the email, so the times go out in UTC (and say so).
        try:
            return ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def values(self) -> dict[str, str]:
        zone = self.zone()
        local = self.start.astimezone(zone)
        return {
            "person.firstName": self.person_first_name,
            "person.lastName": self.person_last_name,
            "person.email": self.person_email,
            "company.name": self.company_name,
            "agent.name": self.agent_name,
            "agent.email": self.agent_email,
            "meeting.time": f"{format_date(local)} at {format_time(local)} ({zone.key})",
            "meeting.date": format_date(local),
            "meeting.duration": format_duration(self.end - self.start),
            "meeting.link": self.join_url,
            "meeting.cancel_link": self.cancel_url,
        }


def format_date(moment: datetime) -> str:
    """'Monday, 23 November 2026', in `moment`'s own zone."""
    return f"{DAYS[moment.weekday()]}, {moment.day} {MONTHS[moment.month - 1]} {moment.year}"


def format_time(moment: datetime) -> str:
    """'9:00 AM', '12:30 PM', in `moment`'s own zone."""
    hour = moment.hour % 12 or 12
    return f"{hour}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"


def format_duration(length: timedelta) -> str:
    """'30 minutes', '1 hour', '1 hour 30 minutes'."""
    minutes = max(0, round(length.total_seconds() / 60))
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes or not hours:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)


def template_problems(text: str) -> list[str]:
    """What is wrong with the tokens of `text`, one sentence per problem naming the token;
    empty when every token is known and well formed."""
    problems = []
    for raw in TOKEN_LIKE.findall(text):
        match = TOKEN.fullmatch(raw)
        shown = " ".join(raw.split())  # a token broken over lines, on one line
        if not match:
            problems.append(f"{shown} is not a token: write tokens like {EXAMPLE}.")
            continue
        name = f"{match['ns']}.{match['name']}"
        if name not in KNOWN:
            problems.append(f"{shown} is not a token you can use here. {_suggestion(match['ns'])}")
    # An opening {{ left without its closing }} would go out to visitors as typed.
    unclosed = TOKEN_LIKE.sub("", text)
    if "{{" in unclosed:
        problems.append("A token is opened with {{ but not closed with }}.")
    return problems


def _suggestion(namespace: str) -> str:
    names = [name for name, _ in TOKENS if name.split(".")[0] == namespace]
    if names:
        return "Tokens of " + namespace + ": " + ", ".join(names) + "."
    namespaces = dict.fromkeys(name.split(".")[0] for name, _ in TOKENS)
    return "Namespaces: " + ", ".join(namespaces) + "."


def render(text: str, context: InvitationContext) -> str:
    """`text` with every token replaced by its value, or by its fallback when the value is
    missing or blank. Plain text, not escaped. Templates are checked when saved
    (template_problems); an unknown token that slipped through becomes its fallback, never
    the raw braces."""
    values = context.values()

    def substitute(match: re.Match) -> str:
        value = values.get(f"{match['ns']}.{match['name']}", "")
        if value is None or str(value).strip() == "":
            return match["fallback"] or ""
        return str(value)

    return TOKEN.sub(substitute, text)


def uses_token(text: str, name: str) -> bool:
    """Whether `text` has the token `name` in it (with or without a fallback)."""
    return any(f"{m['ns']}.{m['name']}" == name for m in TOKEN.finditer(text))


def render_body(text: str, context: InvitationContext) -> str:
    """render() for an invitation's body: the cancel link is added at the end when the
    marketer's text does not place it, so every visitor can cancel."""
    body = render(text, context)
    if context.cancel_url and not uses_token(text, CANCEL_LINK_TOKEN):
        body = body.rstrip("\n") + "\n\n" + CANCEL_FOOTER.format(url=context.cancel_url) + "\n"
    return body


def render_subject(text: str, context: InvitationContext) -> str:
    """render() for an email subject: one line whatever the visitor typed into their name
    (a header with a line break in it is refused by Django's mail, or worse, injected)."""
    return " ".join(render(text, context).split())


def sample_context(now: datetime | None = None) -> InvitationContext:
    """A made-up booking for previews: two days from `now` (default: the current time), at
    9:00 AM in Paris, for 30 minutes, with a video link and a (made-up) cancel link."""
    now = now or datetime.now(UTC)
    zone = ZoneInfo("Europe/Paris")
    day = now.astimezone(zone).date() + timedelta(days=2)
    start = datetime.combine(day, time(9, 0), tzinfo=zone)
    return InvitationContext(
        person_first_name="Jamie",
        person_last_name="Rivera",
        person_email="jamie.rivera@example.com",
        company_name="Example Corp",
        agent_name="Alex Morgan",
        agent_email="alex.morgan@example.com",
        start=start.astimezone(UTC),
        end=(start + timedelta(minutes=30)).astimezone(UTC),
        time_zone=zone.key,
        join_url="https://meet.example.com/abc-defg-hij",
        cancel_url="https://dynchat.example.com/m/0f8fad5b-d9cb-469f-a165-70867728950e/cancel/example/",
    )
