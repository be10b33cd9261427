"""Calendar providers, by CalendarConnection.provider. See base.py for what each offers."""

from importlib import import_module
from types import ModuleType

MODULES = {
    "builtin": "calendars.providers.builtin",
    "google": "calendars.providers.google",
    "microsoft": "calendars.providers.microsoft",
}


def provider(name: str) -> ModuleType:
    return import_module(MODULES[name])
