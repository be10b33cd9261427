"""The invitation email editor's form: the subject and body a site's marketers write."""

from django import forms
from django.core.exceptions import ValidationError

from meetings.invitation_text import template_problems

# Typing in either box asks for a fresh preview (the fragment alone); the page works without.
LIVE_PREVIEW = {
    "hx-trigger": "input changed delay:300ms",
    "hx-target": "#invitation-preview",
    "hx-swap": "outerHTML",
    "hx-vals": '{"preview": "1"}',
}


class InvitationForm(forms.Form):
    subject = forms.CharField(
        label="Subject",
        max_length=200,
        widget=forms.TextInput(attrs={"size": 80, **LIVE_PREVIEW}),
    )
    body = forms.CharField(
        label="Body",
        max_length=5000,
        # Leading blank lines and indentation are the marketer's to keep.
        strip=False,
        widget=forms.Textarea(attrs={"rows": 14, **LIVE_PREVIEW}),
        help_text="Plain text. The invitation (.ics) is attached to the email.",
    )

    def __init__(self, *args, preview_url: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("subject", "body"):
            self.fields[name].widget.attrs["hx-post"] = preview_url

    def clean_subject(self) -> str:
        subject = self.cleaned_data["subject"]
        if "\n" in subject or "\r" in subject:
            raise ValidationError("The subject must be one line.")
        return _without_token_problems(subject)

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        if not body.strip():
            raise ValidationError("This field is required.")
        # Browsers send textareas with CRLF line ends; the email is written with LF.
        return _without_token_problems(body.replace("\r\n", "\n"))


def _without_token_problems(text: str) -> str:
    problems = template_problems(text)
    if problems:
        raise ValidationError(problems)
    return text
