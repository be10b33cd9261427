"""Fixed-window rate limits kept where every web process sees them: Redis when REDIS_URL is set
(one round trip per request), else the cache (a single development server)."""

import time
from functools import cache as memoise

import redis
from django.conf import settings
from django.core.cache import cache


@memoise
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def allow(scope: str, ident: str, *, limit: int, window: int = 60) -> bool:
    """Count one hit for (scope, ident) and say whether it is within `limit` per `window` s."""
    key = f"{settings.CACHE_KEY_PREFIX}:rl:{scope}:{ident}:{int(time.time() // window)}"
    if settings.REDIS_URL:
        # One round trip per hit; the window's first hit also sets the key's expiry. Should that
        # second call be lost, the key still names its window, so only memory would be spent.
        client = _redis(settings.REDIS_URL)
        count = client.incr(key)
        if count == 1:
            client.expire(key, window + 1)
    elif cache.add(key, 1, timeout=window + 1):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add() and incr(): the window's first hit
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
