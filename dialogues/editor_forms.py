"""The flow editor's forms: one per card type, with rows for a question's choices and a
branch's rules and their conditions.

A form refuses what cannot be a card of its type (no text, a malformed token, an unknown
attribute, a condition without the value its operator needs...) with the error next to the
field, and accepts what is merely unfinished: a way out not chosen yet is stored as empty and
shown as a problem by dialogues/flow/checks.py until it is chosen.

Rows are numbered fields ("choice-0-label", "rule-1-cond-0-operator") with a count per list
("choices", "rules", "rule-1-conditions"); "add a choice" and "remove" buttons post the form
with an `action`, and the form comes back with the rows changed and what was typed kept
(`CardForm.with_action`), so the editor works the same with or without JavaScript.
"""

import re

from django import forms
from django.core.validators import RegexValidator
from pydantic import TypeAdapter, ValidationError

from dialogues.flow.cards import OPERATORS, STANDARD_ATTRIBUTES, SUBJECT, Card
from dialogues.flow.tokens import token_problems

MAX_CHOICES, MAX_RULES, MAX_CONDITIONS = 10, 20, 20
_CARD = TypeAdapter(Card)
# Links may be left unchosen in a draft; the schema's complaints about them are the checks'.
_LINKS = re.compile(r"^(next|default_next|choices\.\d+\.next|rules\.\d+\.next)$")
OPERATOR_LABELS = {
    "equals": "equals",
    "not_equals": "does not equal",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "is_empty": "is empty",
    "is_not_empty": "is not empty",
    "greater_than": "is greater than",
    "less_than": "is less than",
    "in_list": "is one of",
}
CARD_TYPE_LABELS = {
    "message": "Message",
    "question": "Question (buttons)",
    "capture": "Capture a field",
    "branch": "Branch",
    "goal": "Goal",
    "booking": "Booking",
    "end": "End",
}


def _check_tokens(text: str) -> str:
    problems = token_problems(text)
    if problems:
        raise forms.ValidationError("; ".join(problems))
    return text


def _text_field(*, required: bool = True) -> forms.CharField:
    return forms.CharField(
        required=required,
        max_length=2000,
        label="Text",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='Personalise with tokens: {{lead.firstName | "there"}}, {{company.industry}}, '
        "{{answer.<card id>}}.",
        validators=[_check_tokens],
        error_messages={"required": "Write what the bot says."},
    )


class _TargetsMixin:
    """Fields naming another card get the draft's cards as choices (blank: not chosen)."""

    target_fields: tuple[str, ...] = ()

    def set_targets(self, targets: list[tuple[str, str]]) -> None:
        for name in self.target_fields:
            self.fields[name] = forms.ChoiceField(
                required=False,
                label=self.fields[name].label,
                choices=[("", "\u2014 choose the next card \u2014"), *targets],
            )


class MessageForm(_TargetsMixin, forms.Form):
    text = _text_field()
    next = forms.CharField(required=False, label="Then")
    target_fields = ("next",)


class QuestionForm(_TargetsMixin, forms.Form):
    text = _text_field()


class ChoiceRow(_TargetsMixin, forms.Form):
    label = forms.CharField(
        max_length=80, label="Button label", error_messages={"required": "Give the button a label."}
    )
    value = forms.CharField(
        max_length=200,
        label="Stored value",
        error_messages={"required": "Say what is stored when this button is chosen."},
    )
    next = forms.CharField(required=False, label="Then")
    target_fields = ("next",)


class CaptureForm(_TargetsMixin, forms.Form):
    text = _text_field()
    input_type = forms.ChoiceField(
        label="Input", choices=[("text", "Text"), ("email", "Email"), ("phone", "Phone")]
    )
    attribute = forms.ChoiceField(
        label="Store it as",
        choices=[
            *((name, f"{label} ({name})") for name, label in STANDARD_ATTRIBUTES.items()),
            ("custom", "A custom field\u2026"),
        ],
    )
    custom_field = forms.CharField(
        required=False,
        max_length=50,
        label="Custom field name",
        help_text="Letters, digits and _, starting with a letter (stored as custom:<name>).",
        validators=[
            RegexValidator(
                r"^[A-Za-z][A-Za-z0-9_]*$",
                "Use letters, digits and _, starting with a letter.",
            )
        ],
    )
    placeholder = forms.CharField(required=False, max_length=100, label="Placeholder")
    skip_if_known = forms.BooleanField(
        required=False, label="Skip this card when the visitor's value is already known"
    )
    next = forms.CharField(required=False, label="Then")
    target_fields = ("next",)

    def clean(self):
        data = super().clean()
        if data.get("attribute") == "custom" and not data.get("custom_field"):
            self.add_error("custom_field", "Name the custom field to store the answer in.")
        # As CaptureCard checks it: by lead field, so custom:email counts as email.
        field = (
            data.get("custom_field") if data.get("attribute") == "custom" else data.get("attribute")
        )
        for needs in ("email", "phone"):
            if field == needs and data.get("input_type") not in (None, needs):
                self.add_error(
                    "input_type", f"A {needs} is captured with the {needs.capitalize()} input."
                )
        return data


class BranchForm(_TargetsMixin, forms.Form):
    default_next = forms.CharField(required=False, label="Otherwise (no rule matches)")
    target_fields = ("default_next",)


class RuleRow(_TargetsMixin, forms.Form):
    match = forms.ChoiceField(
        label="Match", choices=[("all", "all of these conditions"), ("any", "any of them")]
    )
    next = forms.CharField(required=False, label="Then")
    target_fields = ("next",)


class ConditionRow(forms.Form):
    subject = forms.CharField(
        max_length=91,
        label="Field",
        help_text="lead.<field>, company.<field> or answer.<card id>",
        validators=[
            RegexValidator(
                SUBJECT.pattern,
                "Name a field as lead.<field>, company.<field> or answer.<card id>.",
            )
        ],
        error_messages={"required": "Name the field to test."},
    )
    # Every operator of the schema, in its order (a new one without a label fails here).
    operator = forms.ChoiceField(
        label="Test", choices=[(op, OPERATOR_LABELS[op]) for op in OPERATORS]
    )
    value = forms.CharField(
        required=False,
        max_length=2000,
        label="Value",
        help_text="For \u201cis one of\u201d: values separated by commas or lines.",
        widget=forms.Textarea(attrs={"rows": 1}),
    )

    def clean(self):
        data = super().clean()
        operator, value = data.get("operator"), data.get("value", "")
        if operator == "in_list":
            items = [item.strip() for item in re.split(r"[,\n]", value) if item.strip()]
            if not items:
                self.add_error("value", "List at least one value.")
            data["value"] = items
        elif operator in ("is_empty", "is_not_empty"):
            data["value"] = ""
        elif operator and not value:
            self.add_error("value", "Give a value to compare with.")
        return data


class GoalForm(_TargetsMixin, forms.Form):
    name = forms.CharField(
        max_length=100,
        label="Goal name",
        help_text="Reported when a visitor gets here, e.g. \u201cDemo requested\u201d.",
        error_messages={"required": "Name the goal."},
    )
    next = forms.CharField(required=False, label="Then")
    target_fields = ("next",)


class BookingForm(_TargetsMixin, forms.Form):
    text = _text_field()
    days = forms.IntegerField(
        min_value=1,
        max_value=30,
        initial=7,
        label="Days shown",
        help_text="How many days with free times the visitor sees at once.",
        error_messages={"required": "Say how many days to show (1 to 30)."},
    )
    next = forms.CharField(required=False, label="After booking")
    skip_label = forms.CharField(
        required=False,
        max_length=80,
        label="Button for visitors no time suits",
        help_text="Leave empty to offer no way around booking.",
    )
    skip_next = forms.CharField(required=False, label="When no time suits")
    target_fields = ("next", "skip_next")


class EndForm(forms.Form):
    text = _text_field(required=False)


FORMS = {
    "message": MessageForm,
    "question": QuestionForm,
    "capture": CaptureForm,
    "branch": BranchForm,
    "goal": GoalForm,
    "booking": BookingForm,
    "end": EndForm,
}


class CardForm:
    """The form for one card: its own fields plus rows, bound to posted data or showing a card.

    `card` is the stored card (its id and type are kept whatever is posted); `targets` are
    (id, label) pairs for the cards it may lead to. After is_valid(), `cleaned_card()` is the
    new card and `revision` the one the form was opened with.
    """

    def __init__(self, card: dict, *, targets: list[tuple[str, str]], data=None, revision=""):
        self.card_id, self.type = card["id"], card["type"]
        self.targets, self.data = targets, data
        self.revision = data.get("revision", "") if data is not None else revision
        self.non_field_errors: list[str] = []
        initial = None if data is not None else _initial(card)
        self.main = self._form(FORMS[self.type], "", initial and initial["main"])
        self.choices: list[ChoiceRow] = []
        self.rules: list[tuple[RuleRow, list[ConditionRow]]] = []
        if self.type == "question":
            count = _count(data, "choices", initial and len(initial["choices"]), MAX_CHOICES)
            self.choices = [
                self._form(ChoiceRow, f"choice-{i}", initial and initial["choices"][i])
                for i in range(count)
            ]
        if self.type == "branch":
            count = _count(data, "rules", initial and len(initial["rules"]), MAX_RULES)
            for i in range(count):
                rule = initial and initial["rules"][i]
                conditions = _count(
                    data,
                    f"rule-{i}-conditions",
                    rule and len(rule["conditions"]),
                    MAX_CONDITIONS,
                )
                self.rules.append(
                    (
                        self._form(RuleRow, f"rule-{i}", rule and rule["main"]),
                        [
                            self._form(
                                ConditionRow, f"rule-{i}-cond-{j}", rule and rule["conditions"][j]
                            )
                            for j in range(conditions)
                        ],
                    )
                )

    def _form(self, form_class, prefix: str, initial: dict | None):
        form = form_class(
            data=self.data, initial=initial, prefix=prefix or None, auto_id=f"id_{self.card_id}_%s"
        )
        if isinstance(form, _TargetsMixin):
            form.set_targets(self.targets)
        if isinstance(form, ConditionRow):
            # Suggestions (lead fields, this dialogue's answers) from a <datalist> in the form.
            form.fields["subject"].widget.attrs["list"] = f"subjects-{self.card_id}"
        return form

    def forms(self):
        yield self.main
        yield from self.choices
        for rule, conditions in self.rules:
            yield rule
            yield from conditions

    def is_valid(self) -> bool:
        # A list, not a generator: every form must be validated to show all its errors.
        valid = all([form.is_valid() for form in self.forms()])
        if self.type == "question" and not self.choices:
            self.non_field_errors.append("Add at least one choice.")
        if self.type == "branch":
            if not self.rules:
                self.non_field_errors.append("Add at least one rule.")
            for number, (_, conditions) in enumerate(self.rules, start=1):
                if not conditions:
                    self.non_field_errors.append(f"Rule {number} needs at least one condition.")
        if not valid or self.non_field_errors:
            return False
        # The card's own rules (cards.py), for what the fields alone cannot tell.
        try:
            _CARD.validate_python(self.cleaned_card())
        except ValidationError as exc:
            for error in exc.errors():
                location = ".".join(str(part) for part in error["loc"][1:])
                if not _LINKS.match(location):
                    message = str(error["msg"]).removeprefix("Value error, ")
                    self.non_field_errors.append(_readable(location, message))
        return not self.non_field_errors

    def cleaned_card(self) -> dict:
        data = self.main.cleaned_data
        card = {"id": self.card_id, "type": self.type}
        if self.type in ("message", "question", "capture", "booking", "end"):
            card["text"] = data["text"]
        if self.type == "question":
            card["choices"] = [
                {
                    "label": row.cleaned_data["label"],
                    "value": row.cleaned_data["value"],
                    "next": row.cleaned_data["next"] or None,
                }
                for row in self.choices
            ]
        if self.type == "capture":
            attribute = data["attribute"]
            if attribute == "custom":
                attribute = f"custom:{data['custom_field']}"
            card.update(
                input_type=data["input_type"],
                attribute=attribute,
                placeholder=data["placeholder"],
                skip_if_known=data["skip_if_known"],
            )
        if self.type == "branch":
            card["rules"] = [
                {
                    "match": rule.cleaned_data["match"],
                    "conditions": [
                        {
                            "subject": c.cleaned_data["subject"],
                            "operator": c.cleaned_data["operator"],
                            "value": c.cleaned_data["value"],
                        }
                        for c in conditions
                    ],
                    "next": rule.cleaned_data["next"] or None,
                }
                for rule, conditions in self.rules
            ]
            card["default_next"] = data["default_next"] or None
        if self.type == "goal":
            card["name"] = data["name"]
        if self.type == "booking":
            card.update(
                days=data["days"],
                skip_label=data["skip_label"],
                skip_next=data["skip_next"] or None,
            )
        if self.type in ("message", "capture", "goal", "booking"):
            card["next"] = data["next"] or None
        return card

    def with_action(self, action: str) -> "CardForm":
        """A fresh form showing what was posted with a row added or removed (`action` like
        "add_choice", "remove_rule-1", "add_condition-0", "remove_condition-0-2")."""
        card = _posted_card(self)
        name, _, where = action.partition("-")
        numbers = [int(n) for n in where.split("-") if n.isdigit()]
        if name == "add_choice" and len(card["choices"]) < MAX_CHOICES:
            card["choices"].append({"label": "", "value": "", "next": None})
        elif name == "remove_choice" and numbers and numbers[0] < len(card["choices"]):
            del card["choices"][numbers[0]]
        elif name == "add_rule" and len(card["rules"]) < MAX_RULES:
            card["rules"].append(
                {
                    "match": "all",
                    "conditions": [{"subject": "", "operator": "equals", "value": ""}],
                    "next": None,
                }
            )
        elif name == "remove_rule" and numbers and numbers[0] < len(card["rules"]):
            del card["rules"][numbers[0]]
        elif name == "add_condition" and numbers and numbers[0] < len(card["rules"]):
            conditions = card["rules"][numbers[0]]["conditions"]
            if len(conditions) < MAX_CONDITIONS:
                conditions.append({"subject": "", "operator": "equals", "value": ""})
        elif name == "remove_condition" and len(numbers) == 2 and numbers[0] < len(card["rules"]):
            conditions = card["rules"][numbers[0]]["conditions"]
            if numbers[1] < len(conditions):
                del conditions[numbers[1]]
        return CardForm(card, targets=self.targets, revision=self.revision)


def _count(data, name: str, initial: int | None, maximum: int) -> int:
    if data is None:
        return initial or 0
    try:
        return max(0, min(int(data.get(name, 0)), maximum))
    except (TypeError, ValueError):
        return 0


def _value_text(value) -> str:
    return ", ".join(value) if isinstance(value, list) else str(value or "")


def _initial(card: dict) -> dict:
    """Initial values of every form of the card, read tolerantly (a draft may be partial)."""
    keys = ("text", "next", "name", "default_next", "days", "skip_label", "skip_next")
    main = {key: card.get(key) for key in keys}
    main = {key: value for key, value in main.items() if value is not None}
    if card.get("type") == "capture":
        attribute = str(card.get("attribute") or "")
        custom = attribute.startswith("custom:")
        main.update(
            input_type=card.get("input_type", "text"),
            attribute="custom" if custom else attribute,
            custom_field=attribute.removeprefix("custom:") if custom else "",
            placeholder=card.get("placeholder", ""),
            skip_if_known=bool(card.get("skip_if_known")),
        )
    choices = card.get("choices") if isinstance(card.get("choices"), list) else []
    rules = card.get("rules") if isinstance(card.get("rules"), list) else []
    return {
        "main": main,
        "choices": [c if isinstance(c, dict) else {} for c in choices][:MAX_CHOICES],
        "rules": [
            {
                "main": {"match": rule.get("match", "all"), "next": rule.get("next")},
                "conditions": [
                    {**c, "value": _value_text(c.get("value"))}
                    for c in rule.get("conditions", [])
                    if isinstance(c, dict)
                ][:MAX_CONDITIONS],
            }
            for rule in rules
            if isinstance(rule, dict)
        ][:MAX_RULES],
    }


def _posted_card(form: CardForm) -> dict:
    """The card as posted, unvalidated: what the marketer typed, to show again."""
    data = form.data or {}
    card = {"id": form.card_id, "type": form.type}
    for key in ("text", "next", "name", "default_next", "input_type", "placeholder"):
        card[key] = data.get(key, "")
    for key in ("days", "skip_label", "skip_next"):
        card[key] = data.get(key, "")
    attribute = data.get("attribute", "")
    if attribute == "custom":
        attribute = f"custom:{data.get('custom_field', '')}"
    card["attribute"] = attribute
    card["skip_if_known"] = data.get("skip_if_known") in ("on", "true", "1")
    card["choices"] = [
        {key: data.get(f"choice-{i}-{key}", "") for key in ("label", "value", "next")}
        for i in range(len(form.choices))
    ]
    card["rules"] = [
        {
            "match": data.get(f"rule-{i}-match", "all"),
            "next": data.get(f"rule-{i}-next", ""),
            "conditions": [
                {
                    key: data.get(f"rule-{i}-cond-{j}-{key}", "")
                    for key in ("subject", "operator", "value")
                }
                for j in range(len(conditions))
            ],
        }
        for i, (_, conditions) in enumerate(form.rules)
    ]
    return card


def _readable(location: str, message: str) -> str:
    """ "choices: each choice needs its own stored value" -> "Choices: each choice ..."."""
    if not location:
        return message[:1].upper() + message[1:] + "."
    where = location.replace("_", " ").replace(".", " ")
    return f"{where[:1].upper()}{where[1:]}: {message}."
