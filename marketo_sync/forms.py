from django import forms

from marketo_sync.models import (
    COMPANY_SYSTEM_FIELDS,
    LEAD_SYSTEM_FIELDS,
    MAX_SYNCED_FIELDS,
)


class SyncSettingsForm(forms.Form):
    """Which person and company fields (together at most 50) and which activity types to sync.

    Choices come from Marketo's describe endpoints and activity-type catalogue; the system
    fields the sync always keeps are not offered."""

    person_fields = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Person fields"
    )
    company_fields = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Company fields"
    )
    activity_type_ids = forms.TypedMultipleChoiceField(
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Activity types",
    )

    def __init__(self, *args, lead_fields, company_fields, activity_types, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["person_fields"].choices = _choices(lead_fields, LEAD_SYSTEM_FIELDS)
        self.fields["company_fields"].choices = _choices(company_fields, COMPANY_SYSTEM_FIELDS)
        self.fields["activity_type_ids"].choices = [
            (t.id, f"{t.name} ({t.id})") for t in activity_types
        ]

    def clean(self):
        cleaned = super().clean()
        picked = len(cleaned.get("person_fields", [])) + len(cleaned.get("company_fields", []))
        if picked > MAX_SYNCED_FIELDS:
            raise forms.ValidationError(
                f"Pick at most {MAX_SYNCED_FIELDS} person and company fields together; "
                f"you picked {picked}.",
                code="too_many_fields",
            )
        return cleaned


def _choices(fields: list[dict], system: tuple[str, ...]) -> list[tuple[str, str]]:
    return [
        (f["name"], f"{f['displayName']} ({f['name']}, {f['dataType']})")
        for f in sorted(fields, key=lambda f: f["displayName"].lower())
        if f["name"] not in system
    ]
