"""Email domains a site refuses in its email capture cards: how they are written and checked.

No Django here; the site configuration form and the services use it. The match itself (an
address at a blocked domain or any of its subdomains) is in dialogues/flow/inputs.py, with
the rest of what visitors type.
"""

import re

MAX_DOMAINS = 1000
# One DNS label in its ASCII form: letters, digits and inner hyphens, 63 characters at most.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")

# The "common free mail providers" a B2B site usually turns away. Not exhaustive; marketers
# add and remove their own.
FREE_MAIL_DOMAINS = (
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "ymail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "aol.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "proton.me",
    "protonmail.com",
    "gmx.com",
    "gmx.net",
    "gmx.de",
    "web.de",
    "mail.com",
    "yandex.com",
    "yandex.ru",
    "mail.ru",
    "zoho.com",
    "fastmail.com",
    "hey.com",
    "tutanota.com",
    "qq.com",
    "163.com",
)


class DomainInvalid(ValueError):
    """A blocked domain that cannot be used; the message says why, for the marketer."""


def normalise_domain(text: str) -> str:
    """`text` as a domain in lower-case ASCII (IDNA for international names), without a leading
    "@" or "*." (subdomains are always included). Raises DomainInvalid."""
    domain = text.strip().lower().removeprefix("@").removeprefix("*.").rstrip(".")
    if not domain:
        raise DomainInvalid("Write a domain such as example.com.")
    if "@" in domain or "/" in domain or ":" in domain:
        raise DomainInvalid(f"{text.strip()!r} is not a domain; write only the part after @.")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise DomainInvalid(f"{text.strip()!r} is not a valid domain name.") from None
    labels = domain.split(".")
    if (
        len(domain) > 253
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise DomainInvalid(f"{text.strip()!r} is not a domain name such as example.com.")
    return domain


def normalise_domains(domains: list[str]) -> list[str]:
    """Each domain normalised, duplicates dropped, in the order given. Raises DomainInvalid on
    the first bad one."""
    if len(domains) > MAX_DOMAINS:
        raise DomainInvalid(f"At most {MAX_DOMAINS} domains.")
    return list(dict.fromkeys(normalise_domain(d) for d in domains))
