"""The viewer's time zone, made Django's current time zone for the request.

Pages then show times in it (templates convert aware datetimes to the current zone; views read
it with `timezone.get_current_timezone()`). Where it comes from, in order:

1. the `tz` cookie, which static/js/timezone.js sets from the browser's own zone;
2. the signed-in user's `Availability.time_zone` (an agent who set their hours);
3. settings.TIME_ZONE.

Only names from the zone database are accepted (calendars.display.zone_named), so a forged
cookie can neither raise nor name a file; anything else is ignored.
"""

from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from calendars.display import zone_named
from calendars.models import Availability

COOKIE = "tz"


def viewer_zone(request) -> ZoneInfo:
    """The zone to show `request`'s viewer times in (see the module's docstring)."""
    # Zone names are at most ~32 characters; a longer cookie is nothing we would accept.
    zone = zone_named(request.COOKIES.get(COOKIE, "")[:64])
    if zone is not None:
        return zone
    # Only a request with a session can have a signed-in user. Not touching the session
    # otherwise keeps cookie-less requests (the widget API) free of a session read and of
    # `Vary: Cookie`.
    user = getattr(request, "user", None)
    has_session = settings.SESSION_COOKIE_NAME in request.COOKIES
    if user is not None and has_session and user.is_authenticated:
        name = Availability.objects.filter(user=user).values_list("time_zone", flat=True).first()
        zone = zone_named(name or "")
        if zone is not None:
            return zone
    return ZoneInfo(settings.TIME_ZONE)


class TimeZoneMiddleware:
    """Activates the viewer's zone for the request (after AuthenticationMiddleware)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = viewer_zone(request)
        request.time_zone = zone
        with timezone.override(zone):
            return self.get_response(request)
