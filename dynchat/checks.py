from django.conf import settings
from django.core.checks import Error, Warning, register

INSECURE_KEY_PREFIX = "dynchat-insecure"


@register(deploy=True)
def check_secret_key(app_configs, **kwargs):
    if settings.SECRET_KEY.startswith(INSECURE_KEY_PREFIX):
        return [
            Warning(
                "SECRET_KEY is the development fallback.",
                hint="Set SECRET_KEY in the environment to a long random value.",
                id="dynchat.W001",
            )
        ]
    return []


@register(deploy=True)
def check_calendar_token_keys(app_configs, **kwargs):
    if not settings.CALENDAR_TOKEN_KEYS:
        return [
            Warning(
                "CALENDAR_TOKEN_KEYS is not set: calendar tokens are encrypted with a key derived "
                "from SECRET_KEY.",
                hint="Set CALENDAR_TOKEN_KEYS to a Fernet key (see README, Configuration), so a "
                "SECRET_KEY change does not make the stored tokens unreadable.",
                id="dynchat.W002",
            )
        ]
    return []


@register
def check_calendar_token_keys_are_keys(app_configs, **kwargs):
    from cryptography.fernet import Fernet

    errors = []
    for number, key in enumerate(settings.CALENDAR_TOKEN_KEYS, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            errors.append(
                Error(
                    f"CALENDAR_TOKEN_KEYS entry {number} is not a Fernet key.",
                    hint="Make one with: python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'",
                    id="dynchat.E001",
                )
            )
    return errors
