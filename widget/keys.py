"""Bearer secrets handed to browsers (visitor keys, conversation tokens).

We hand out 144-192 random bits and keep only a SHA-256 of them, so a database leak reveals no
usable token; a fast hash is right for random secrets of this length (no dictionary to guess).

Visitor keys are also signed (HMAC-SHA256 with SECRET_KEY, salted per site), so the server can
tell a key it issued from an invented one without a database row: a session start for a new
visitor writes nothing, and the Visitor row is made the first time the visitor does something
(starts a conversation, is identified). Keys signed with a key listed in SECRET_KEY_FALLBACKS
stay valid, so SECRET_KEY can be rotated. The format is django.core.signing.Signer's, written
out here because building a Signer costs more than the rest of a page-view request.
"""

import hashlib
import hmac
import secrets

from django.conf import settings
from django.core.signing import b64_encode
from django.utils.crypto import constant_time_compare, salted_hmac


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)


def _visitor_signature(site_id: int, value: str, secret: str) -> str:
    # The salt binds a key to its site: a key issued on one site is not a visitor of another.
    mac = salted_hmac(f"dynchat.visitor.{site_id}signer", value, secret, algorithm="sha256")
    return b64_encode(mac.digest()).decode()


def new_visitor_key(site_id: int) -> str:
    """A fresh visitor key for `site_id`: 24 random characters, a dot, a 43-character signature."""
    value = secrets.token_urlsafe(18)
    return f"{value}.{_visitor_signature(site_id, value, settings.SECRET_KEY)}"


def is_visitor_key(key: str, site_id: int) -> bool:
    """Whether we issued `key` for this site (no database access)."""
    value, dot, signature = key.rpartition(".")
    if not dot or not value:
        return False
    return any(
        constant_time_compare(signature, _visitor_signature(site_id, value, secret))
        for secret in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)
    )


def visitor_state_token(site_id: int, key_hash: str, completed_dialogue_ids) -> str:
    """A signed statement of what a page view needs to know about a visitor: the dialogues
    they completed. The widget keeps it beside the visitor key and sends it with every session
    start, so a returning visitor's page view needs no database read. It is bound to the site
    and to the visitor (by their key's digest, which is all the server keeps), and made from the
    visitor's row whenever a completion changes it."""
    listed = "-".join(str(pk) for pk in sorted(set(completed_dialogue_ids)))
    signature = _state_signature(site_id, key_hash, listed, settings.SECRET_KEY)
    return f"{listed}.{signature}"


def read_visitor_state(token: str, site_id: int, key_hash: str) -> set[int] | None:
    """The completed dialogue ids in `token`, or None when it is not ours for this visitor."""
    listed, dot, signature = token.rpartition(".")
    if not dot or not all(part.isdigit() for part in listed.split("-") if listed):
        return None
    if not any(
        constant_time_compare(signature, _state_signature(site_id, key_hash, listed, secret))
        for secret in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)
    ):
        return None
    return {int(part) for part in listed.split("-")} if listed else set()


def _state_signature(site_id: int, key_hash: str, listed: str, secret: str) -> str:
    mac = salted_hmac(
        f"dynchat.visitor-state.{site_id}", f"{key_hash}|{listed}", secret, algorithm="sha256"
    )
    return b64_encode(mac.digest()).decode()
