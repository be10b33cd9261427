"""Fixed-window rate limits kept in the shared cache (Redis in production), so every web
process counts against the same budget."""

import time

from django.conf import settings
from django.core.cache import cache


def allow(scope: str, ident: str, *, limit: int, window: int = 60) -> bool:
    """Count one hit for (scope, ident) and say whether it is within `limit` per `window` s."""
    key = f"rl:{scope}:{ident}:{int(time.time() // window)}"
    if cache.add(key, 1, timeout=window + 1):
        return True
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add() and incr(): this is the window's first hit
        cache.set(key, 1, timeout=window + 1)
        count = 1
    return count <= limit


def client_ip(request) -> str:
    # Behind our proxy (BEHIND_TLS_PROXY), the right-most X-Forwarded-For entry is the address
    # the proxy itself saw. Entries to its left come from the client and can be forged, so a
    # client choosing a new one per request would otherwise dodge every limit.
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if settings.SECURE_PROXY_SSL_HEADER and forwarded:
        return forwarded.rsplit(",", 1)[-1].strip()
    return request.META.get("REMOTE_ADDR", "")
