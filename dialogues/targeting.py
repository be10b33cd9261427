"""Who sees a dialogue, where and when. Stored as JSON on Dialogue.targeting.

Plain Python, no Django: `Targeting` validates what the marketer saved; `compile_targeting`
turns it into a `Rules` object (URL patterns as regular expressions) once per published dialogue
and process, and `Rules.admits_page` / `Rules.admits_visitor` answer for one session start.

Page rules follow Marketo's documented formats: `https://www.example.com/pricing`,
`https://*.example.com`, `https://www.example.com/blog/*`. `*` stands for any run of characters;
a rule without a scheme matches http and https; host names ignore case; a trailing slash does not
matter. URL parameters and fragments are not part of the match (Marketo ignores them too).
No include rule means every page; an exclude rule always wins over an include rule.

Audience rules are groups of conditions on the person (`lead.<field>`: the synced Marketo lead,
overlaid with what the visitor told the chat), the company (`company.<field>`), and what the
visitor told the chat (`chat.<field>`). Each group matches when all (or any) of its conditions
hold; the audience matches when all (or any) of its groups do. No group means everyone.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from dialogues.flow.cards import OPERATORS
from dialogues.flow.conditions import compare

SOURCES = {"lead": "Person", "company": "Company", "chat": "Told the chat"}
FIELD_NAME = r"[A-Za-z][A-Za-z0-9_]{0,49}"
AUDIENCE_SUBJECT = re.compile(rf"^(lead|company|chat)\.{FIELD_NAME}$")
MAX_URL_RULES = 50
MAX_GROUPS = 10
MAX_CONDITIONS = 20


def url_rule_problem(rule: str) -> str | None:
    """Why `rule` cannot be a page rule, or None when it can."""
    if len(rule) > 500:
        return "is longer than 500 characters"
    if any(char.isspace() for char in rule):
        return "must not contain spaces"
    if "?" in rule or "#" in rule:
        return "cannot use URL parameters or fragments; match the path only"
    scheme, sep, rest = rule.partition("://")
    if not sep:
        rest, scheme = rule, ""
    if scheme and scheme.lower() not in ("http", "https"):
        return "must start with http:// or https:// (or leave the scheme out)"
    host = rest.split("/", 1)[0]
    if not host or not re.fullmatch(r"[A-Za-z0-9*.:-]+", host):
        return "needs a host name, such as www.example.com or *.example.com"
    return None


def _url_rule(rule: str) -> str:
    problem = url_rule_problem(rule)
    if problem:
        raise ValueError(f"{rule!r} {problem}")
    return rule


UrlRule = Annotated[str, Field(min_length=1), AfterValidator(_url_rule)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class AudienceCondition(_Model):
    subject: Annotated[str, Field(pattern=AUDIENCE_SUBJECT.pattern)]
    operator: Literal[OPERATORS]  # type: ignore[valid-type]
    value: str | list[str] = ""

    @model_validator(mode="after")
    def _value_fits_operator(self) -> "AudienceCondition":
        if self.operator == "in_list":
            if not isinstance(self.value, list) or not [v for v in self.value if v.strip()]:
                raise ValueError("'in list' needs at least one value")
        elif isinstance(self.value, list):
            raise ValueError("only 'in list' compares with several values")
        elif self.operator not in ("is_empty", "is_not_empty") and not self.value:
            raise ValueError("this operator needs a value to compare with")
        return self


class AudienceGroup(_Model):
    match: Literal["all", "any"] = "all"
    conditions: Annotated[list[AudienceCondition], Field(min_length=1, max_length=MAX_CONDITIONS)]


class Targeting(_Model):
    include_urls: Annotated[list[UrlRule], Field(max_length=MAX_URL_RULES)] = []
    exclude_urls: Annotated[list[UrlRule], Field(max_length=MAX_URL_RULES)] = []
    audience_match: Literal["all", "any"] = "all"
    audience: Annotated[list[AudienceGroup], Field(max_length=MAX_GROUPS)] = []
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _schedule_is_ordered(self) -> "Targeting":
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("the end of the schedule must come after its start")
        return self


def _pattern(rule: str) -> re.Pattern:
    """A URL rule as a regular expression over a normalised URL (see normalise_url)."""
    scheme, sep, rest = rule.partition("://")
    if not sep:
        rest, scheme = rule, ""
    host, slash, path = rest.partition("/")
    scheme_re = re.escape(scheme.lower()) if scheme else "https?"
    # A host wildcard stays inside the host: *.example.com must not match evil.test/x.example.com.
    host_re = "[^/]*".join(re.escape(part) for part in host.lower().split("*"))
    path_re = ".*".join(re.escape(part) for part in (slash + path).rstrip("/").split("*"))
    return re.compile(f"{scheme_re}://{host_re}{path_re}/?")


def normalise_url(url: str) -> str:
    """The part of a page URL rules match: scheme and host lower-cased, no query or fragment."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path or '/'}"


@dataclass(frozen=True)
class VisitorFacts:
    """What is known about the visitor at session start, by condition namespace."""

    lead: dict
    company: dict
    chat: dict

    @property
    def anonymous(self) -> bool:
        return not self.lead.get("email")


ANONYMOUS = VisitorFacts(lead={}, company={}, chat={})


@dataclass(frozen=True)
class Rules:
    include: tuple[re.Pattern, ...]
    exclude: tuple[re.Pattern, ...]
    audience: Targeting
    starts_at: datetime | None
    ends_at: datetime | None

    @property
    def needs_facts(self) -> bool:
        """Whether deciding needs the visitor's attributes (so they are read only then)."""
        return bool(self.audience.audience)

    def in_schedule(self, now: datetime) -> bool:
        if self.starts_at and now < self.starts_at:
            return False
        return not (self.ends_at and now >= self.ends_at)

    def admits_page(self, page_url: str) -> bool:
        url = normalise_url(page_url)
        if any(pattern.fullmatch(url) for pattern in self.exclude):
            return False
        return not self.include or any(pattern.fullmatch(url) for pattern in self.include)

    def admits_visitor(self, facts: VisitorFacts) -> bool:
        groups = self.audience.audience
        if not groups:
            return True
        results = (_group_holds(group, facts) for group in groups)
        return all(results) if self.audience.audience_match == "all" else any(results)


def _group_holds(group: AudienceGroup, facts: VisitorFacts) -> bool:
    results = (_condition_holds(condition, facts) for condition in group.conditions)
    return all(results) if group.match == "all" else any(results)


def _condition_holds(condition: AudienceCondition, facts: VisitorFacts) -> bool:
    namespace, _, name = condition.subject.partition(".")
    source = {"lead": facts.lead, "company": facts.company, "chat": facts.chat}[namespace]
    return compare(condition.operator, source.get(name), condition.value)


def parse_targeting(data: object) -> Targeting:
    """Validate stored or submitted targeting; raises pydantic's ValidationError."""
    return Targeting.model_validate(data or {})


def compile_targeting(data: object) -> Rules:
    """Rules for a published dialogue. Stored targeting that no longer validates (edited by
    hand in the database) shows the dialogue nowhere rather than everywhere."""
    try:
        targeting = parse_targeting(data)
    except ValidationError:
        return NOWHERE
    return Rules(
        include=tuple(_pattern(rule) for rule in targeting.include_urls),
        exclude=tuple(_pattern(rule) for rule in targeting.exclude_urls),
        audience=targeting,
        starts_at=targeting.starts_at,
        ends_at=targeting.ends_at,
    )


NOWHERE = Rules(
    include=(re.compile(r"(?!)"),),
    exclude=(),
    audience=Targeting(),
    starts_at=None,
    ends_at=None,
)
EVERYWHERE = compile_targeting({})
