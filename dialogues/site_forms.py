"""Forms of a site's branding and configuration pages.

They turn what a marketer typed into the values the services take, with a message next to
the field at fault. The rules themselves live with the data (dialogues/theme.py, avatars.py,
email_domains.py, origins.py); the services check them again.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, URLValidator
from pydantic import ValidationError as SchemaError

from dialogues.avatars import MAX_BYTES, MAX_SIDE, MIN_SIDE, AvatarInvalid, avatar_content_type
from dialogues.email_domains import FREE_MAIL_DOMAINS, MAX_DOMAINS, DomainInvalid, normalise_domain
from dialogues.origins import origin_problem, privacy_url_problem
from dialogues.theme import HEX_COLOR, Theme

THEME_FIELDS = tuple(Theme.model_fields)
COLOR = RegexValidator(HEX_COLOR, "Use a colour written like #2457d6.")
FONT = RegexValidator(
    r"^[\w ,'\"-]+$", "Use font names separated by commas, e.g. Inter, sans-serif."
)
FONT_SUGGESTIONS = (
    "system-ui, sans-serif",
    "Inter, system-ui, sans-serif",
    "Helvetica, Arial, sans-serif",
    "Georgia, serif",
    "'Courier New', monospace",
)


class BrandingForm(forms.Form):
    bot_name = forms.CharField(label="Bot name", max_length=40)
    header = forms.CharField(label="Header label", max_length=80, required=False)
    primary_color = forms.CharField(
        label="Main colour",
        validators=[COLOR],
        widget=forms.TextInput(attrs={"type": "color"}),
        help_text="The header, the launcher, buttons and the visitor's messages.",
    )
    text_color = forms.CharField(
        label="Text on the main colour",
        validators=[COLOR],
        widget=forms.TextInput(attrs={"type": "color"}),
    )
    font_family = forms.CharField(
        label="Font",
        max_length=120,
        validators=[FONT],
        widget=forms.TextInput(attrs={"list": "font-suggestions"}),
        help_text="A CSS font list; the visitor's browser uses the first font it has.",
    )
    position = forms.ChoiceField(
        label="Position",
        choices=[("right", "Bottom right"), ("left", "Bottom left")],
        widget=forms.RadioSelect,
    )
    padding_px = forms.IntegerField(
        label="Distance from the corner (px)", min_value=0, max_value=120
    )
    response_delay_ms = forms.IntegerField(
        label="Response delay (ms)",
        min_value=0,
        max_value=5000,
        help_text="How long the bot shows “typing” before each message.",
    )
    new_message_sound = forms.BooleanField(label="Play a sound on new messages", required=False)
    avatar = forms.FileField(
        label="Avatar",
        required=False,
        widget=forms.FileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
        help_text=(
            f"PNG, JPEG or WebP, at most {MAX_BYTES // 1024} KB, "
            f"{MIN_SIDE} to {MAX_SIDE} pixels a side."
        ),
    )
    remove_avatar = forms.BooleanField(label="Remove the current avatar", required=False)

    def clean_avatar(self) -> bytes | None:
        upload = self.cleaned_data.get("avatar")
        if not upload:
            return None
        # Refuse an oversized upload by its size before reading it into memory.
        if upload.size > MAX_BYTES:
            raise ValidationError(
                f"The image is {upload.size // 1024} KB; the limit is {MAX_BYTES // 1024} KB."
            )
        data = upload.read()
        try:
            avatar_content_type(data)
        except AvatarInvalid as exc:
            raise ValidationError(str(exc)) from None
        return data

    def clean(self):
        cleaned = super().clean()
        # The theme's own rules, in case the form fields above ever say less than they do.
        if not any(name in self.errors for name in THEME_FIELDS):
            try:
                Theme.model_validate(self.theme())
            except SchemaError as exc:
                for problem in exc.errors():
                    name = str(problem["loc"][0]) if problem["loc"] else None
                    self.add_error(name if name in self.fields else None, problem["msg"])
        return cleaned

    def theme(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in THEME_FIELDS}


def _lines(text: str) -> list[tuple[int, str]]:
    """The non-blank lines of `text`, stripped, with their line numbers (from 1)."""
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


class SiteSettingsForm(forms.Form):
    allowed_origins = forms.CharField(
        label="Allowed origins",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "https://www.example.com"}),
        help_text="One per line: the scheme, host and port of each site the widget runs on.",
    )
    chat_enabled = forms.BooleanField(label="Chat enabled", required=False)
    blocked_email_domains = forms.CharField(
        label="Blocked email domains",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": "gmail.com"}),
        help_text=(
            "One per line. The email capture card refuses addresses at these domains and their "
            "subdomains, asking for a work address instead."
        ),
    )
    privacy_url = forms.CharField(
        label="Privacy policy link",
        required=False,
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://www.example.com/privacy"}),
        help_text="Shown at the bottom of the chat panel.",
    )

    def clean_allowed_origins(self) -> list[str]:
        origins, problems = [], []
        for number, line in _lines(self.cleaned_data["allowed_origins"]):
            problem = origin_problem(line)
            if problem:
                problems.append(f"Line {number}: {problem}.")
            else:
                origins.append(line.rstrip("/"))
        if problems:
            raise ValidationError(problems)
        return list(dict.fromkeys(origins))

    def clean_blocked_email_domains(self) -> list[str]:
        lines = _lines(self.cleaned_data["blocked_email_domains"])
        if len(lines) > MAX_DOMAINS:
            raise ValidationError(f"At most {MAX_DOMAINS} domains.")
        domains, problems = [], []
        for number, line in lines:
            try:
                domains.append(normalise_domain(line))
            except DomainInvalid as exc:
                problems.append(f"Line {number}: {exc}")
        if problems:
            raise ValidationError(problems)
        return list(dict.fromkeys(domains))

    def clean_privacy_url(self) -> str:
        url = self.cleaned_data["privacy_url"].strip()
        problem = privacy_url_problem(url)
        if not problem and url:
            try:
                URLValidator(schemes=["http", "https"])(url)
            except ValidationError:
                problem = "This is not a valid web address."
        if problem:
            raise ValidationError(problem)
        return url


def with_free_mail_domains(data) -> dict:
    """The submitted settings with the common free mail providers added to the blocked domains
    (kept as typed, nothing saved), for the page's one-click fill."""
    data = data.copy()
    typed = data.get("blocked_email_domains", "").splitlines()
    present = {line.strip().lower() for line in typed}
    added = [d for d in FREE_MAIL_DOMAINS if d not in present]
    data["blocked_email_domains"] = "\n".join([*(line for line in typed if line.strip()), *added])
    return data
