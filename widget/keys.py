"""Bearer secrets handed to browsers (visitor keys, conversation tokens).

We hand out 192 random bits and keep only a SHA-256 of them, so a database leak reveals no
usable token; a fast hash is right for random secrets of this length (no dictionary to guess).
"""

import hashlib
import hmac
import secrets


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)
