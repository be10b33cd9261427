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
        # INCR and EXPIRE pipelined: one round trip. The key names its window, so refreshing
        # its expiry on every hit never stretches the window itself.
        pipe = _redis(settings.REDIS_URL).pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, window + 1)
        count, _ = pipe.execute()
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
