"""Helpers for the list and report pages that take their filters from the query string."""

from django.http import HttpResponseBadRequest


def query_without_page(request) -> str:
    """The request's query string without its `page`, for pagination links to add theirs to."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def export_refused(form) -> HttpResponseBadRequest | None:
    """The answer to a CSV download whose filters do not validate (None when they do): a page
    falls back to its defaults and shows the errors, but a file cannot show them, so the
    download says what was wrong instead of holding something else than asked for."""
    if not form.errors:
        return None
    problems = "\n".join(
        f"{form[name].label if name in form.fields else 'Filters'}: {' '.join(errors)}"
        for name, errors in form.errors.items()
    )
    return HttpResponseBadRequest(
        f"Nothing was exported: fix the filters.\n{problems}\n",
        content_type="text/plain; charset=utf-8",
    )
