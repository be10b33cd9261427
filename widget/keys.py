"""Bearer secrets handed to browsers (visitor keys, conversation tokens).

We hand out 144-192 random bits and keep only a SHA-256 of them, so a database leak reveals no
usable token; a fast hash is right for random secrets of this length (no dictionary to guess).

Visitor keys are also signed (with SECRET_KEY, per site), so the server can tell a key it issued
from an invented one without a database row: a session start for a new visitor writes nothing,
and the Visitor row is made the first time the visitor does something (starts a conversation,
is identified). Rotating SECRET_KEY keeps old keys valid through SECRET_KEY_FALLBACKS.
"""

import hashlib
import hmac
import secrets

from django.core import signing


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)


def _visitor_signer(site_id: int) -> signing.Signer:
    # The salt binds a key to its site: a key issued on one site is not a visitor of another.
    return signing.Signer(salt=f"dynchat.visitor.{site_id}", sep=".", algorithm="sha256")


def new_visitor_key(site_id: int) -> str:
    """A fresh visitor key for `site_id`: 24 random characters, a dot, a 43-character signature."""
    return _visitor_signer(site_id).sign(secrets.token_urlsafe(18))


def is_visitor_key(key: str, site_id: int) -> bool:
    """Whether we issued `key` for this site (no database access)."""
    try:
        _visitor_signer(site_id).unsign(key)
    except signing.BadSignature:
        return False
    return True
