"""The meetings app's forms: the invitation email editor's (the subject and body a site's
marketers write), the meetings list's filters, and a meeting's outcome and cancellation."""

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q

from dialogues.models import Dialogue, Membership
from meetings.invitation_text import template_problems
from meetings.listing import ListStatus, MeetingFilters
from meetings.models import Meeting

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


# --- the meetings list and the meeting page ----------------------------------------------------


class MeetingFilterForm(forms.Form):
    """The meetings list's filters, read from the query string. Agents see only their own
    meetings, so they get no agent filter. Invalid fields are reported and left out; the
    valid ones still apply (`filters()`)."""

    agent = forms.ModelChoiceField(queryset=None, required=False, empty_label="Any agent")
    dialogue = forms.ModelChoiceField(queryset=None, required=False, empty_label="Any dialogue")
    status = forms.ChoiceField(required=False)
    date_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Email, name or company"}),
    )

    def __init__(self, data=None, *, viewer):
        super().__init__(data)
        site = viewer.site
        if viewer.sees_every_agent:
            # The site's agents, and anyone who had meetings here and has left the role since.
            agents = get_user_model().objects.filter(
                Q(membership__site=site, membership__role=Membership.Role.AGENT)
                | Q(meetings__site=site)
            )
            self.fields["agent"].queryset = agents.distinct().order_by(
                "first_name", "last_name", "username"
            )
            self.fields["agent"].label_from_instance = _agent_label
        else:
            del self.fields["agent"]
        self.fields["dialogue"].queryset = Dialogue.objects.filter(site=site).order_by("name")
        self.fields["status"].choices = [("", "Any status"), *ListStatus.choices]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date must not be before the start date.")
        return cleaned

    def filters(self):
        """The valid filters (call after is_valid()); fields with errors count as unset
        (Django leaves them out of cleaned_data)."""
        data = getattr(self, "cleaned_data", {})
        agent, dialogue = data.get("agent"), data.get("dialogue")
        return MeetingFilters(
            agent_id=agent.pk if agent else None,
            dialogue_id=dialogue.pk if dialogue else None,
            status=data.get("status") or "",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            query=(data.get("q") or "").strip(),
        )


def _agent_label(user) -> str:
    return user.get_full_name() or user.email or user.get_username()


class OutcomeForm(forms.Form):
    """Whether a past meeting took place, as its agent or an admin says ("" unmarks it)."""

    outcome = forms.ChoiceField(choices=Meeting.Outcome.choices, required=False)

    def clean(self):
        cleaned = super().clean()
        # A form sent without the field at all is a broken request, not an "unmark".
        if "outcome" not in self.data:
            raise ValidationError("Choose whether the meeting happened.")
        return cleaned


class CancelForm(forms.Form):
    reason = forms.CharField(
        label="Reason (optional, sent to the visitor)",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
