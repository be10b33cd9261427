"""The privacy page's forms: erase a person (or first check what that would erase), and look
up whether an address was erased."""

from django import forms

from reports.models import Erasure

REFERENCE_LENGTH = Erasure._meta.get_field("reference").max_length


class EraseForm(forms.Form):
    email = forms.EmailField(
        label="The person's email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "off", "spellcheck": "false", "size": 40}),
    )
    reference = forms.CharField(
        label="Reference",
        required=False,
        max_length=REFERENCE_LENGTH,
        help_text="The privacy request's reference, such as a ticket number. Not the address.",
    )
    confirm = forms.BooleanField(label="I understand this cannot be undone", required=False)

    def __init__(self, *args, erasing: bool, **kwargs):
        """`erasing`: the erase button was pressed (the check button needs no confirmation)."""
        super().__init__(*args, **kwargs)
        self.erasing = erasing

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean(self):
        cleaned = super().clean()
        email, reference = cleaned.get("email"), cleaned.get("reference") or ""
        if email and email in reference.lower():
            # The log keeps the reference: it must not bring back what is erased.
            self.add_error("reference", "Leave the address out of the reference: it is kept.")
        if self.erasing and not cleaned.get("confirm"):
            self.add_error("confirm", "Tick this box to confirm the erasure.")
        return cleaned


class LookupForm(forms.Form):
    lookup_email = forms.EmailField(
        label="Email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "off", "spellcheck": "false", "size": 40}),
    )
