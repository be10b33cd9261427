"""Encryption at rest for calendar credentials (OAuth refresh tokens, MSAL token caches).

Keys come from CALENDAR_TOKEN_KEYS: Fernet keys (AES-128-CBC + HMAC-SHA256), newest first.
Every key decrypts; only the first encrypts. To rotate, put a new key in front, restart, and run
`python manage.py rotate_calendar_keys`, which re-encrypts every stored token with it; the old
key can then be dropped. Without the setting (a development checkout) one key is derived from
SECRET_KEY, and `manage.py check --deploy` warns (dynchat.W002).
"""

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class UnreadableSecret(Exception):
    """A stored secret no configured key can decrypt (the key that wrote it was dropped)."""


def derived_development_key(secret_key: str) -> str:
    digest = hashlib.sha256(b"dynchat calendar tokens\x00" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def configured_keys() -> tuple[str, ...]:
    keys = tuple(settings.CALENDAR_TOKEN_KEYS)
    return keys or (derived_development_key(settings.SECRET_KEY),)


def encrypt(plaintext: str) -> str:
    return _fernet(configured_keys()).encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _fernet(configured_keys()).decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise UnreadableSecret("no configured CALENDAR_TOKEN_KEYS key decrypts this") from None


def rotate(ciphertext: str) -> str:
    """The same secret, encrypted with the newest key."""
    try:
        return _fernet(configured_keys()).rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise UnreadableSecret("no configured CALENDAR_TOKEN_KEYS key decrypts this") from None
