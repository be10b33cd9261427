from django.conf import settings
from django.core.checks import Warning, register

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
