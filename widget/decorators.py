"""The one gate every widget API view goes through.

`widget_api` resolves the site from the key in the URL, refuses origins the site has not
allowed, answers CORS preflights, rate-limits per site and client, caps and parses the JSON
body into the view's pydantic model, and turns every refusal into the one error shape:
{"error": {"code": ..., "message": ..., "field": ...}}.
"""

import json
import re
from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ValidationError

from dialogues.models import Site
from dialogues.selectors import site_for_key
from widget import ratelimit

PREFLIGHT_MAX_AGE = 600


def error(code: str, message: str, status: int, field: str | None = None) -> JsonResponse:
    return JsonResponse(
        {"error": {"code": code, "message": message, "field": field}}, status=status
    )


def request_origin(request) -> str | None:
    """The calling page's origin. Browsers send Origin on every cross-origin request and on
    same-origin POSTs; a same-origin GET carries Sec-Fetch-Site instead, so it is our own."""
    # META, not request.headers: the latter copies every header into a new dict per request.
    origin = request.META.get("HTTP_ORIGIN")
    if origin:
        return origin
    if request.META.get("HTTP_SEC_FETCH_SITE") == "same-origin":
        return f"{request.scheme}://{request.get_host()}"
    return None


def normalise_origin(origin: str) -> str | None:
    """The origin in one spelling, or None when it cannot be one (a port that is not a number
    or out of range, a broken IPv6 address): the header is the caller's to choose."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    netloc = parts.hostname or ""
    if port and port != default_port:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}"


def origin_allowed(site: Site, origin: str | None) -> bool:
    if not origin or origin == "null":
        return False
    if origin in site.allowed_origins:  # the usual case: the browser spells it as we stored it
        return True
    wanted = normalise_origin(origin)
    return wanted is not None and any(
        normalise_origin(allowed) == wanted for allowed in site.allowed_origins
    )


def _cors(response: HttpResponse, origin: str) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = origin
    response["Vary"] = "Origin"
    response["Access-Control-Expose-Headers"] = "Retry-After"
    # The widget sends no cookies (fetch credentials: "omit"); we never allow them.
    return response


def _validation_error(exc: ValidationError) -> JsonResponse:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    if first["type"] == "missing":
        return error("missing_field", f"{field} is required.", 400, field)
    if first["type"] == "extra_forbidden":
        return error("unknown_field", f"{field} is not a field of this request.", 400, field)
    message = str(first["msg"]).removeprefix("Value error, ")
    return error("invalid_field", f"{field}: {message}", 400, field)


def widget_api(
    *, methods: tuple[str, ...], body: type[BaseModel] | None = None, scope: str = "api"
):
    def decorator(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request, site_key: str, **kwargs):
            site = site_for_key(site_key)
            if site is None:
                return error("unknown_site", "No site has this key.", 404)
            origin = request_origin(request)
            if not origin_allowed(site, origin):
                return error(
                    "origin_not_allowed", "This site does not allow requests from this origin.", 403
                )

            if request.method == "OPTIONS":
                response = _cors(HttpResponse(status=204), origin)
                response["Access-Control-Allow-Methods"] = ", ".join((*methods, "OPTIONS"))
                response["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
                response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
                return response
            if request.method not in methods:
                response = error("method_not_allowed", f"Use {' or '.join(methods)}.", 405)
                response["Allow"] = ", ".join(methods)
                return _cors(response, origin)

            limit = (
                settings.WIDGET_SESSION_RATE_LIMIT_PER_MINUTE
                if scope == "session"
                else settings.WIDGET_RATE_LIMIT_PER_MINUTE
            )
            if not ratelimit.allow(f"{scope}:{site.pk}", ratelimit.client_ip(request), limit=limit):
                response = error("rate_limited", "Too many requests; try again in a minute.", 429)
                response["Retry-After"] = "60"
                return _cors(response, origin)

            if body is not None:
                parsed = parse_body(request, body)
                if isinstance(parsed, JsonResponse):
                    return _cors(parsed, origin)
                kwargs["data"] = parsed
            return _cors(view(request, site, **kwargs), origin)

        return wrapper

    return decorator


def parse_query(request, model: type[BaseModel]):
    """The query string as `model`, or the error response saying which parameter is wrong."""
    if any(len(values) > 1 for _, values in request.GET.lists()):
        return error("invalid_query", "Give each query parameter once.", 400)
    try:
        return model.model_validate(request.GET.dict())
    except ValidationError as exc:
        return _validation_error(exc)


def parse_body(request, model: type[BaseModel]):
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if request.content_type != "application/json":
        return error(
            "unsupported_media_type", "Send JSON with Content-Type: application/json.", 415
        )
    limit = settings.WIDGET_MAX_BODY_BYTES
    if length > limit:
        return error("body_too_large", f"Request bodies are limited to {limit} bytes.", 413)
    # Read one byte past the limit so a body whose Content-Length lies is still caught.
    raw = request.read(limit + 1)
    if len(raw) > limit:
        return error("body_too_large", f"Request bodies are limited to {limit} bytes.", 413)
    try:
        data = json.loads(raw)
    # RecursionError: "[[[[..." nested deeper than the parser can go, which no client sends.
    except (ValueError, UnicodeDecodeError, RecursionError):
        return error("malformed_json", "The request body is not valid JSON.", 400)
    if not isinstance(data, dict):
        return error("invalid_body", "The request body must be a JSON object.", 400)
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        return _validation_error(exc)
    for name, value in parsed:
        if _unstorable_text(value):
            message = f"{name} contains a NUL character or an unpaired surrogate."
            return error("invalid_field", message, 400, name)
    return parsed


# Valid JSON escapes ("\u0000", "\ud800") that PostgreSQL can store neither in text nor in jsonb.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _unstorable_text(value: object) -> bool:
    pending = [value]
    while pending:  # iterative: the value may be nested as deep as the JSON parser allowed
        item = pending.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
