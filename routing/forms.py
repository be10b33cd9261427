"""The routing pages' forms: the fallback message, one account entry, a CSV upload, and a custom
rule with its conditions.

A rule's conditions are rows like the targeting page's audience conditions (the same
`ConditionRow`, operators and checks), in one flat list: `c0-source`, `c0-field`,
`c0-operator`, `c0-value`, `c1-…`. Buttons named `add_condition` and `remove` change the rows
and redisplay the form without saving."""

from django import forms
from django.core.exceptions import ValidationError

from dialogues.targeting import MAX_CONDITIONS
from dialogues.targeting_forms import OPERATOR_LABELS, ConditionRow, checked_conditions
from dialogues.targeting_forms import condition_row_problem as audience_row_problem
from routing import selectors
from routing.accounts_csv import (
    MAX_BYTES,
    MAX_COMPANY_LENGTH,
    MAX_ROWS,
    DomainInvalid,
    normalise_domain,
)
from routing.models import RoutingRule
from routing.services import MAX_FALLBACK_LENGTH


def agent_label(user) -> str:
    name = user.get_full_name()
    email = user.email or user.get_username()
    return f"{name} ({email})" if name else email


class AgentChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return agent_label(obj)


class AgentsChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return agent_label(obj)


class FallbackForm(forms.Form):
    fallback_message = forms.CharField(
        label="Message when nobody can take the visitor",
        max_length=MAX_FALLBACK_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown at a booking card when nobody can take the visitor.",
        error_messages={"required": "Write the message visitors see."},
    )


class AccountForm(forms.Form):
    company_name = forms.CharField(
        label="Company name", max_length=MAX_COMPANY_LENGTH, required=False
    )
    domain = forms.CharField(
        label="Domain",
        max_length=300,
        required=False,
        help_text="Such as acme.com; a web address is cut down to its domain.",
    )
    owner = AgentChoiceField(
        label="Owner",
        queryset=None,
        empty_label="Choose an agent",
        error_messages={"required": "Choose the agent who owns this account."},
    )

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        self.site = site
        self.fields["owner"].queryset = selectors.site_agents(site)

    def clean_domain(self):
        domain = self.cleaned_data["domain"].strip()
        if not domain:
            return ""
        try:
            return normalise_domain(domain)
        except DomainInvalid:
            raise ValidationError(f"“{domain}” is not a domain name (such as acme.com).") from None

    def clean(self):
        data = super().clean()
        company, domain = data.get("company_name", "").strip(), data.get("domain", "")
        if "company_name" in data and "domain" in data and not company and not domain:
            self.add_error("company_name", "Give a company name, a domain or both.")
        elif company or domain:
            listed = selectors.listed_account(site=self.site, company_name=company, domain=domain)
            if listed:
                self.add_error(*listed)
        return data


class UploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text=(
            f"Columns company, domain, owner_email; UTF-8; up to {MAX_ROWS:,} rows and "
            f"{MAX_BYTES // (1024 * 1024)} MB."
        ),
        error_messages={"required": "Choose a CSV file.", "empty": "The file is empty."},
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_BYTES:
            raise ValidationError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
        return upload


class RuleForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100)
    description = forms.CharField(
        label="Description",
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    match = forms.ChoiceField(
        label="Visitors must match",
        choices=[("all", "all of the conditions"), ("any", "any of the conditions")],
        initial="all",
        widget=forms.RadioSelect,
    )
    agents = AgentsChoiceField(
        label="Agents",
        queryset=None,
        widget=forms.CheckboxSelectMultiple,
        help_text="Matching visitors go to these agents in turns.",
        error_messages={"required": "Choose at least one agent."},
    )

    def __init__(self, *args, site, rule: RoutingRule | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.site, self.rule = site, rule
        self.fields["agents"].queryset = selectors.site_agents(site)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        others = RoutingRule.objects.filter(site=self.site, name__iexact=name)
        if self.rule is not None:
            others = others.exclude(pk=self.rule.pk)
        if others.exists():
            raise ValidationError(f"Another rule is called “{name}”.")
        return name

    @staticmethod
    def initial_for(rule: RoutingRule) -> dict:
        return {
            "name": rule.name,
            "description": rule.description,
            "match": rule.match,
            "agents": list(rule.agents.all()),
        }


RULE_SOURCES = [("lead", "Person"), ("company", "Company")]


class RuleConditions:
    """A rule's conditions as the admin is editing them."""

    sources = RULE_SOURCES
    operators = list(OPERATOR_LABELS.items())

    def __init__(self, rows: list[ConditionRow]):
        self.rows = rows
        self.valid = True
        self.error = ""

    @classmethod
    def from_rule(cls, rule: RoutingRule | None) -> "RuleConditions":
        if rule is None:
            return cls([ConditionRow()])
        rows = []
        for condition in rule.conditions:
            source, _, name = condition["subject"].partition(".")
            value = condition.get("value", "")
            rows.append(
                ConditionRow(
                    source=source,
                    field=name,
                    operator=condition["operator"],
                    value=", ".join(value) if isinstance(value, list) else value,
                )
            )
        return cls(rows or [ConditionRow()])

    @classmethod
    def from_post(cls, data) -> "RuleConditions":
        rows = []
        for c in range(MAX_CONDITIONS):
            prefix = f"c{c}-"
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
        return cls(rows)

    def apply_button(self, data) -> bool:
        """Apply an add/remove button; True when one was pressed (the form is then redisplayed,
        not saved)."""
        if "add_condition" in data:
            if len(self.rows) < MAX_CONDITIONS:
                self.rows.append(ConditionRow())
            return True
        if "remove" in data:
            try:
                index = int(data.get("remove"))
            except (TypeError, ValueError):
                return True
            if 0 <= index < len(self.rows):
                del self.rows[index]
            return True
        return False

    def cleaned(self) -> list[dict]:
        """The conditions as rule JSON; marks rows with problems and sets `valid`."""
        conditions, valid = checked_conditions(self.rows, _row_problem)
        self.valid = self.valid and valid
        if self.valid and not conditions:
            self.valid = False
            self.error = (
                "Add at least one condition: a rule without conditions would take every visitor."
            )
        return conditions


def _row_problem(row: ConditionRow) -> str:
    if row.source not in dict(RULE_SOURCES):
        return "Choose person or company."
    # The rest (field name, operator, a value that fits it) as the targeting page checks it.
    return audience_row_problem(row)
