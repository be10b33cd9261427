"""Allowed origins of a site: exact "scheme://host[:port]" strings, as browsers send them.
Also the one other address a site sets for visitors' browsers: its privacy policy link."""

from urllib.parse import urlsplit


def origin_problem(origin: object) -> str | None:
    """Why `origin` is not a valid origin, or None when it is."""
    if not isinstance(origin, str):
        return f"{origin!r} is not text"
    try:
        parts = urlsplit(origin)
        host = parts.hostname
    except ValueError:  # a broken IPv6 address: "https://[::1"
        host = None
    if not host or parts.scheme not in ("http", "https"):
        return f"{origin!r} must look like https://www.example.com"
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return f"{origin!r} must be an origin only: scheme, host and port, no path"
    return None


def privacy_url_problem(url: str) -> str | None:
    """Why `url` cannot be a site's privacy policy link, or None when it can ("" is no link).
    Only http(s): the widget puts it in an href on the customer's page."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
    if not host or parts.scheme not in ("http", "https"):
        return "Use a web address starting with https:// or http://."
    if len(url) > 500:
        return "Keep the address under 500 characters."
    return None
