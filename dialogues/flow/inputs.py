"""Validation of what a visitor types into a capture card.

Each validator returns the normalised value to store, or raises InvalidAnswer with a message the
widget shows as is. Invalid input is re-asked and never stored.
"""

from collections.abc import Collection

import phonenumbers
from email_validator import EmailNotValidError, validate_email

MAX_TEXT = 1000


class InvalidAnswer(ValueError):
    """The visitor's answer cannot be accepted. `code` is stable for clients; `message` is shown."""

    def __init__(self, code: str, message: str, field: str = "value"):
        self.code, self.message, self.field = code, message, field
        super().__init__(message)


def clean_text(value: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidAnswer("required", "Please type an answer.")
    if len(value) > MAX_TEXT:
        raise InvalidAnswer("too_long", f"Please keep your answer under {MAX_TEXT} characters.")
    return value


def clean_email(value: str, *, blocked_domains: Collection[str] = ()) -> str:
    """The address, normalised. `blocked_domains` (lower-case ASCII, as the site stores them)
    are refused, and so are their subdomains: blocking gmail.com blocks mail.gmail.com."""
    value = clean_text(value)
    try:
        # Syntax only: a DNS lookup per keystroke-level answer would be slow and flaky.
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise InvalidAnswer(
            "invalid_email", "That doesn't look like an email address. Please try again."
        ) from None
    if blocked_domains and domain_blocked(result.ascii_domain, blocked_domains):
        raise InvalidAnswer("blocked_email_domain", "Please use your work email address.")
    return result.normalized


def domain_blocked(domain: str, blocked_domains: Collection[str]) -> bool:
    """Whether `domain` is one of `blocked_domains` or a subdomain of one."""
    domain = domain.lower().rstrip(".")
    return any(domain == b or domain.endswith("." + b) for b in blocked_domains)


def clean_phone(value: str, *, default_region: str = "US") -> str:
    """Return the number in E.164 (+14155552671). National numbers are read in default_region."""
    value = clean_text(value)
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise InvalidAnswer(
            "invalid_phone",
            "That doesn't look like a phone number. Please include the area code.",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
