"""Writes behind the agent's calendar page: their hours, the built-in calendar, disconnecting.

Connections are created and replaced by calendars.services.save_connection (the one way to
save one); these functions call it, and own the two writes it does not do.
"""

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from calendars import providers
from calendars.models import Availability, CalendarConnection
from calendars.services import save_connection
from calendars.slots import parse_rules

log = logging.getLogger(__name__)

AVAILABILITY_FIELDS = (
    "time_zone",
    "weekly_hours",
    "date_overrides",
    "meeting_minutes",
    "buffer_before_minutes",
    "buffer_after_minutes",
    "minimum_notice_minutes",
    "booking_horizon_days",
)


@transaction.atomic
def save_availability(*, user: AbstractBaseUser, cleaned: dict) -> Availability:
    """Create or replace `user`'s availability with `cleaned` (Availability's field names and
    JSON shapes, every field in AVAILABILITY_FIELDS). The slot engine's own parser checks it
    first and raises calendars.slots.RulesInvalid(field, message) before anything is written,
    so a row is never left that the slots could not use."""
    values = {name: cleaned[name] for name in AVAILABILITY_FIELDS}
    parse_rules(**values)
    availability, _ = Availability.objects.update_or_create(user=user, defaults=values)
    return availability


def use_builtin_calendar(*, user: AbstractBaseUser) -> CalendarConnection:
    """Switch `user` to the DynChat calendar (their bookings are their only busy times). A
    Google or Microsoft grant they had is revoked first, best effort."""
    _revoke_quietly(CalendarConnection.objects.filter(user=user).first())
    return save_connection(user, CalendarConnection.Provider.BUILTIN, account_email=user.email)


def disconnect_calendar(*, user: AbstractBaseUser) -> CalendarConnection | None:
    """Revoke `user`'s calendar grant (best effort) and delete the connection: they are out of
    booking until they connect one again. Returns the deleted connection (for its provider's
    name), or None when there was none.

    The revoke is a network call and runs outside any transaction; a failure is logged and the
    connection is deleted anyway (the agent asked to be disconnected; a grant left at the
    provider is theirs to remove there)."""
    connection = CalendarConnection.objects.filter(user=user).first()
    if connection is None:
        return None
    _revoke_quietly(connection)
    CalendarConnection.objects.filter(pk=connection.pk).delete()
    return connection


def _revoke_quietly(connection: CalendarConnection | None) -> None:
    if connection is None:
        return
    try:
        # Through the module attribute: calendars.providers.provider is the seam tests replace.
        providers.provider(connection.provider).revoke(connection)
    except Exception:  # any failure: the provider, the network, a missing client
        log.warning("revoking calendar %s failed", connection.pk, exc_info=True)
