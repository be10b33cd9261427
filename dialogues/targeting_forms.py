"""The targeting page's form: pages, behaviour trigger, schedule and audience groups.

Audience groups are a nested list (groups of condition rows) that Django formsets express
poorly, so `AudienceRows` reads them from the POST data by name (`g0-match`, `g0-c1-field` …),
keeps every row for re-display, and attaches each problem to the row it came from. Buttons named
`add_condition`, `add_group` and `remove` change the rows without saving.
"""

import re
from dataclasses import dataclass, field

from django import forms
from pydantic import ValidationError

from dialogues.flow.cards import OPERATORS
from dialogues.targeting import (
    FIELD_NAME,
    MAX_CONDITIONS,
    MAX_GROUPS,
    MAX_URL_RULES,
    SOURCES,
    AudienceCondition,
    parse_targeting,
    url_rule_problem,
)
from dialogues.trigger import KINDS, Trigger

OPERATOR_LABELS = {
    "equals": "is",
    "not_equals": "is not",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "is_empty": "is empty",
    "is_not_empty": "is not empty",
    "greater_than": "greater than",
    "less_than": "less than",
    "in_list": "in list",
}
assert set(OPERATOR_LABELS) == set(OPERATORS)
MATCH_CHOICES = [("all", "all"), ("any", "any")]


def _url_lines(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_URL_RULES:
        raise forms.ValidationError(f"At most {MAX_URL_RULES} rules.")
    problems = [
        f"Line {number}: {rule} {problem}."
        for number, rule in enumerate(lines, start=1)
        if (problem := url_rule_problem(rule))
    ]
    if problems:
        raise forms.ValidationError(problems)
    return lines


class TargetingForm(forms.Form):
    include_urls = forms.CharField(
        label="Show on these pages",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "https://*.example.com/pricing/*"}),
        help_text="One rule per line; * matches anything. Leave empty for every page.",
    )
    exclude_urls = forms.CharField(
        label="Never on these pages",
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 2, "placeholder": "https://www.example.com/careers/*"}
        ),
        help_text="Exclusions win over the pages above.",
    )
    trigger_type = forms.ChoiceField(label="Show it after", choices=list(KINDS.items()))
    trigger_seconds = forms.IntegerField(
        label="Seconds", min_value=0, max_value=3600, required=False, initial=0
    )
    trigger_percent = forms.IntegerField(
        label="Percent of the page scrolled", min_value=0, max_value=100, required=False
    )
    starts_at = forms.DateTimeField(
        label="From (UTC)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    ends_at = forms.DateTimeField(
        label="Until (UTC)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    audience_match = forms.ChoiceField(
        label="Visitors must match", choices=MATCH_CHOICES, initial="all"
    )

    def clean_include_urls(self):
        return _url_lines(self.cleaned_data["include_urls"])

    def clean_exclude_urls(self):
        return _url_lines(self.cleaned_data["exclude_urls"])

    def clean(self):
        data = super().clean()
        kind = data.get("trigger_type")
        if kind == "scroll_depth":
            if data.get("trigger_percent") is None:
                self.add_error("trigger_percent", "Say how far down the page, in percent.")
            data["trigger"] = {"type": kind, "percent": data.get("trigger_percent") or 0}
        elif kind:
            data["trigger"] = {"type": kind, "seconds": data.get("trigger_seconds") or 0}
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "The end must come after the start.")
        return data

    @classmethod
    def initial_for(cls, dialogue) -> dict:
        targeting = parse_targeting(dialogue.targeting)
        trigger = Trigger.model_validate(dialogue.trigger)
        return {
            "include_urls": "\n".join(targeting.include_urls),
            "exclude_urls": "\n".join(targeting.exclude_urls),
            "trigger_type": trigger.type,
            "trigger_seconds": trigger.seconds,
            "trigger_percent": trigger.percent if trigger.type == "scroll_depth" else None,
            "starts_at": targeting.starts_at,
            "ends_at": targeting.ends_at,
            "audience_match": targeting.audience_match,
        }


@dataclass
class ConditionRow:
    source: str = "lead"
    field: str = ""
    operator: str = "equals"
    value: str = ""
    error: str = ""

    @property
    def blank(self) -> bool:
        return not self.field and not self.value

    def condition(self) -> dict:
        value: str | list[str] = self.value.strip()
        if self.operator == "in_list":
            value = [item.strip() for item in re.split(r"[,\n]", self.value) if item.strip()]
        elif self.operator in ("is_empty", "is_not_empty"):
            value = ""
        return {
            "subject": f"{self.source}.{self.field.strip()}",
            "operator": self.operator,
            "value": value,
        }


@dataclass
class GroupRow:
    match: str = "all"
    conditions: list[ConditionRow] = field(default_factory=list)


class AudienceRows:
    """The audience groups as the marketer is editing them."""

    sources = list(SOURCES.items())
    operators = list(OPERATOR_LABELS.items())
    matches = MATCH_CHOICES

    def __init__(self, groups: list[GroupRow]):
        self.groups = groups
        self.valid = True

    @classmethod
    def from_targeting(cls, targeting: dict) -> "AudienceRows":
        groups = []
        for group in parse_targeting(targeting).audience:
            rows = []
            for condition in group.conditions:
                source, _, name = condition.subject.partition(".")
                value = condition.value
                rows.append(
                    ConditionRow(
                        source=source,
                        field=name,
                        operator=condition.operator,
                        value=", ".join(value) if isinstance(value, list) else value,
                    )
                )
            groups.append(GroupRow(match=group.match, conditions=rows))
        return cls(groups)

    @classmethod
    def from_post(cls, data) -> "AudienceRows":
        groups = []
        for g in range(MAX_GROUPS):
            if f"g{g}-match" not in data:
                break
            match = data.get(f"g{g}-match")
            rows = []
            for c in range(MAX_CONDITIONS):
                prefix = f"g{g}-c{c}-"
                if prefix + "operator" not in data:
                    break
                rows.append(
                    ConditionRow(
                        source=data.get(prefix + "source", ""),
                        field=data.get(prefix + "field", "")[:50],
                        operator=data.get(prefix + "operator", ""),
                        value=data.get(prefix + "value", "")[:2000],
                    )
                )
            groups.append(
                GroupRow(match=match if match in ("all", "any") else "all", conditions=rows)
            )
        return cls(groups)

    def apply_button(self, data) -> bool:
        """Apply an add/remove button; True when one was pressed (the form is then redisplayed,
        not saved)."""
        if "add_group" in data:
            if len(self.groups) < MAX_GROUPS:
                self.groups.append(GroupRow(conditions=[ConditionRow()]))
            return True
        if "add_condition" in data:
            index = _index(data.get("add_condition"))
            if index is not None and index < len(self.groups):
                group = self.groups[index]
                if len(group.conditions) < MAX_CONDITIONS:
                    group.conditions.append(ConditionRow())
            return True
        if "remove" in data:
            g, _, c = str(data.get("remove")).partition("-")
            g, c = _index(g), _index(c)
            if g is not None and g < len(self.groups) and c is not None:
                conditions = self.groups[g].conditions
                if c < len(conditions):
                    del conditions[c]
                if not conditions:
                    del self.groups[g]
            return True
        return False

    def cleaned(self) -> list[dict]:
        """The groups as targeting JSON; marks rows with problems and sets `valid`."""
        groups = []
        for group in self.groups:
            conditions, valid = checked_conditions(group.conditions)
            self.valid = self.valid and valid
            if conditions:
                groups.append({"match": group.match, "conditions": conditions})
        return groups


def checked_conditions(rows, problem=None) -> tuple[list[dict], bool]:
    """The conditions of `rows` that are filled in, each row's problem (by `problem`, the
    targeting page's check unless given) set on its `error`; and whether none had one."""
    problem = problem or condition_row_problem
    conditions, valid = [], True
    for row in rows:
        if row.blank and row.operator not in ("is_empty", "is_not_empty"):
            continue
        row.error = problem(row)
        if row.error:
            valid = False
            continue
        conditions.append(row.condition())
    return conditions, valid


def condition_row_problem(row: ConditionRow) -> str:
    if row.source not in SOURCES:
        return "Choose person, company or chat."
    if not re.fullmatch(FIELD_NAME, row.field.strip()):
        return "Name a field: letters, digits and _, starting with a letter (e.g. country)."
    if row.operator not in OPERATOR_LABELS:
        return "Choose an operator."
    try:
        AudienceCondition.model_validate(row.condition())
    except ValidationError as exc:
        return (
            "; ".join(
                str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()
            ).capitalize()
            + "."
        )
    return ""


def _index(text) -> int | None:
    try:
        value = int(text)
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None
