"""The write-back pages' forms: a site's lead field mapping, the outbox filters, and one
Marketo action of a dialogue (when it runs, the program status it sets, the campaign it
requests with up to three tokens).

The action form offers Marketo's programs and campaigns as last read (MarketoProgram,
MarketoCampaign); the status choices follow the program posted, so a browser without
JavaScript that changed the program gets the new program's statuses with the error, and a
status that is not the program's is refused whatever was posted."""

import re

from django import forms
from django.core.exceptions import ValidationError

from dialogues.flow.cards import STANDARD_ATTRIBUTES
from marketo_sync import writeback_selectors as selectors
from marketo_sync.models import MarketoAction, OutboxRecord
from marketo_sync.writeback import TOKEN_VALUES
from marketo_sync.writeback_services import already_there

MARKETO_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
# Marketo's own: the lead's id is never written, and email is the lookup field.
RESERVED_FIELDS = {"id", "email"}
TOKEN_NAME = re.compile(r"^\{\{my\.[^{}]{1,100}\}\}$")
MAX_TOKENS = 3


def mapping_field_name(attribute: str) -> str:
    return f"map-{attribute}"


def check_marketo_field(value: str) -> str:
    value = value.strip()
    if not value:
        return ""
    if not MARKETO_FIELD.match(value):
        raise ValidationError(
            f"“{value}” is not a Marketo field name: a letter, then letters, digits or _ "
            "(its REST API name, such as firstName)."
        )
    if value.lower() in RESERVED_FIELDS:
        raise ValidationError(
            f"“{value}” cannot be updated from the chat: Marketo keeps the lead's id, and email "
            "is the lookup field, always sent."
        )
    return value


class FieldMappingForm(forms.Form):
    """One text box per chat attribute (but email): the Marketo field it updates, or blank."""

    def __init__(self, *args, attributes: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.attributes = [a for a in attributes if a != selectors.LOOKUP_ATTRIBUTE]
        for attribute in self.attributes:
            described = STANDARD_ATTRIBUTES.get(attribute, "custom field")
            self.fields[mapping_field_name(attribute)] = forms.CharField(
                label=attribute,
                required=False,
                max_length=100,
                help_text=described,
                widget=forms.TextInput(
                    attrs={"list": "marketo-fields", "placeholder": "not sent", "size": 30}
                ),
            )

    @staticmethod
    def initial_for(attributes: list[str], mapping: dict[str, str]) -> dict:
        return {mapping_field_name(a): mapping.get(a, "") for a in attributes}

    def clean(self):
        data = super().clean()
        for attribute in self.attributes:
            name = mapping_field_name(attribute)
            if name in data:
                try:
                    data[name] = check_marketo_field(data[name])
                except ValidationError as problem:
                    self.add_error(name, problem)
        return data

    def mapping(self) -> dict[str, str]:
        """Chat attribute -> Marketo field ("" = not sent), once valid."""
        return {a: self.cleaned_data[mapping_field_name(a)] for a in self.attributes}

    def rows(self):
        """(attribute, bound field) in the page's order."""
        return [(a, self[mapping_field_name(a)]) for a in self.attributes]


# --- The outbox ------------------------------------------------------------------------------

OUTBOX_STATUSES = [
    (OutboxRecord.Status.PARKED, "Parked"),
    (OutboxRecord.Status.PENDING, "Pending"),
    (OutboxRecord.Status.WAITING, "Waiting for an email"),
    (OutboxRecord.Status.DELIVERED, "Delivered"),
]


class OutboxFilterForm(forms.Form):
    status = forms.ChoiceField(label="Status", choices=OUTBOX_STATUSES, required=False)
    kind = forms.ChoiceField(
        label="Kind", choices=[("", "Every kind"), *OutboxRecord.Kind.choices], required=False
    )

    def filters(self) -> dict:
        """The valid filters; parked records unless another status is asked for."""
        data = self.cleaned_data if self.is_valid() else {}
        return {
            "status": data.get("status") or OutboxRecord.Status.PARKED,
            "kind": data.get("kind") or "",
        }


# --- A dialogue's Marketo action -------------------------------------------------------------

NO_GOAL_ERROR = "A goal is chosen only for “Visitor reaches a goal”; choose “Any goal”."


class ActionForm(forms.Form):
    on = forms.ChoiceField(label="When", choices=MarketoAction.On.choices)
    goal = forms.ChoiceField(
        label="Goal",
        required=False,
        help_text="For “Visitor reaches a goal”: which goal card, or any of them.",
    )
    program = forms.ChoiceField(label="Program", required=False)
    status = forms.CharField(
        label="Set the lead's status to", required=False, max_length=255, widget=forms.Select
    )
    campaign = forms.ChoiceField(
        label="Request the campaign",
        required=False,
        help_text="Smart campaigns with a “Campaign is Requested” trigger (Web Service API).",
    )

    def __init__(self, *args, dialogue, action: MarketoAction | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.dialogue, self.action = dialogue, action
        self.programs = {p.pk: p for p in selectors.programs()}
        self.campaigns = {c.pk: c for c in selectors.active_campaigns()}
        self.fields["goal"].choices = self._goal_choices()
        self.fields["program"].choices = self._program_choices()
        self.fields["campaign"].choices = self._campaign_choices()
        self.fields["status"].widget.choices = self.status_choices(self._picked_program())
        self.fields["status"].widget.attrs.pop("maxlength", None)  # a select has none
        for row in range(MAX_TOKENS):
            self.fields[f"token_name_{row}"] = forms.CharField(
                label=f"Token {row + 1} name",
                required=False,
                max_length=110,
                widget=forms.TextInput(attrs={"placeholder": "{{my.Goal Name}}"}),
            )
            self.fields[f"token_value_{row}"] = forms.ChoiceField(
                label=f"Token {row + 1} value",
                required=False,
                choices=[("", "—"), *TOKEN_VALUES.items()],
            )

    @staticmethod
    def initial_for(action: MarketoAction) -> dict:
        initial = {
            "on": action.on,
            "goal": action.goal,
            "program": str(action.program_id or ""),
            "status": action.program_status,
            "campaign": str(action.campaign_id or ""),
        }
        for row, token in enumerate(action.tokens[:MAX_TOKENS]):
            initial[f"token_name_{row}"] = token.get("name", "")
            initial[f"token_value_{row}"] = token.get("value", "")
        return initial

    # The choices: what Marketo has (as last read), and what the action holds even if gone.

    def _goal_choices(self):
        names = selectors.goal_names(self.dialogue)
        kept = self.action.goal if self.action else ""
        choices = [("", "Any goal"), *((name, name) for name in names)]
        if kept and kept not in names:
            choices.append((kept, f"{kept} (no longer in the flow)"))
        return choices

    def _program_choices(self):
        choices = [("", "No program")]
        choices += [(str(pk), program.name) for pk, program in self.programs.items()]
        if self.action and self.action.program_id and self.action.program_id not in self.programs:
            name = self.action.program_name or f"Program {self.action.program_id}"
            choices.append((str(self.action.program_id), f"{name} (not found in Marketo)"))
        return choices

    def _campaign_choices(self):
        choices = [("", "No campaign")]
        choices += [(str(pk), campaign.name) for pk, campaign in self.campaigns.items()]
        kept = self.action.campaign_id if self.action else None
        if kept and kept not in self.campaigns:
            name = self.action.campaign_name or f"Campaign {kept}"
            choices.append((str(kept), f"{name} (inactive or not found in Marketo)"))
        return choices

    def _picked_program(self) -> int | None:
        raw = self.data.get("program") if self.is_bound else self.initial.get("program")
        return _int(raw)

    def program_statuses(self, program_id: int | None) -> list[str]:
        if program_id is None:
            return []
        program = self.programs.get(program_id)
        if program is not None:
            return list(program.statuses)
        if self.action and self.action.program_id == program_id and self.action.program_status:
            return [self.action.program_status]
        return []

    def status_choices(self, program_id: int | None):
        statuses = self.program_statuses(program_id)
        if program_id is None:
            return [("", "Choose a program first")]
        return [("", "Choose a status"), *((s, s) for s in statuses)]

    def set_program(self, program_id: int | None) -> None:
        """Offer the statuses of `program_id` (the htmx fragment for a changed program)."""
        self.fields["status"].widget.choices = self.status_choices(program_id)

    # Validation.

    def clean(self):
        data = super().clean()
        on, goal = data.get("on"), data.get("goal", "")
        if on and on != MarketoAction.On.GOAL and goal:
            self.add_error("goal", NO_GOAL_ERROR)
        program_id, campaign_id = _int(data.get("program")), _int(data.get("campaign"))
        data["program_id"], data["campaign_id"] = program_id, campaign_id
        data["program_name"] = self._program_name(program_id)
        data["campaign_name"] = self._campaign_name(campaign_id)
        if "program" in data and "campaign" in data and program_id is None and not campaign_id:
            self.add_error(None, "Choose a program status to set, a campaign to request, or both.")
        status = data.get("status", "")
        if program_id is not None and "status" in data:
            name = data["program_name"]
            if not status:
                self.add_error("status", f"Choose the status to set in {name}.")
            elif status not in self.program_statuses(program_id):
                self.add_error(
                    "status", f"“{status}” is not a status of {name}: choose one of its statuses."
                )
        if program_id is None:
            data["status"] = ""
        data["tokens"] = self._tokens(campaign_id)
        if on and "goal" in data and not self.has_error("goal"):
            goal = goal if on == MarketoAction.On.GOAL else ""
            others = MarketoAction.objects.filter(dialogue=self.dialogue, on=on, goal=goal)
            if self.action is not None:
                others = others.exclude(pk=self.action.pk)
            if others.exists():
                self.add_error("on", already_there(on, goal))
        return data

    def _program_name(self, program_id):
        if program_id in self.programs:
            return self.programs[program_id].name
        if program_id is not None and self.action and self.action.program_id == program_id:
            return self.action.program_name or f"Program {program_id}"
        return ""

    def _campaign_name(self, campaign_id):
        if campaign_id in self.campaigns:
            return self.campaigns[campaign_id].name
        if campaign_id is not None and self.action and self.action.campaign_id == campaign_id:
            return self.action.campaign_name or f"Campaign {campaign_id}"
        return ""

    def _tokens(self, campaign_id) -> list[dict]:
        tokens, seen = [], set()
        for row in range(MAX_TOKENS):
            name_field, value_field = f"token_name_{row}", f"token_value_{row}"
            name = self.cleaned_data.get(name_field, "").strip()
            value = self.cleaned_data.get(value_field, "")
            if not name and not value:
                continue
            if not name:
                self.add_error(name_field, "Name the token, such as {{my.Goal Name}}.")
            elif not TOKEN_NAME.match(name):
                self.add_error(
                    name_field,
                    f"“{name}” is not a program token: write it as {{{{my.Token Name}}}}.",
                )
            elif name.lower() in seen:
                self.add_error(name_field, f"{name} is given twice.")
            if not value:
                self.add_error(value_field, "Choose what the token carries.")
            if campaign_id is None and name:
                self.add_error(name_field, "Tokens go to a campaign: choose one, or clear them.")
            seen.add(name.lower())
            tokens.append({"name": name, "value": value})
        return tokens

    def token_rows(self):
        return [(self[f"token_name_{r}"], self[f"token_value_{r}"]) for r in range(MAX_TOKENS)]


def _int(raw) -> int | None:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None
