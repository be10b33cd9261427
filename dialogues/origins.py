"""Allowed origins of a site: exact "scheme://host[:port]" strings, as browsers send them."""

from urllib.parse import urlsplit


def origin_problem(origin: object) -> str | None:
    """Why `origin` is not a valid origin, or None when it is."""
    if not isinstance(origin, str):
        return f"{origin!r} is not text"
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{origin!r} must look like https://www.example.com"
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return f"{origin!r} must be an origin only: scheme, host and port, no path"
    return None
