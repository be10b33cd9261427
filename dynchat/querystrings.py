"""Query-string helpers shared by the paginated list pages."""


def query_without_page(request) -> str:
    """The request's query string without its `page`, for pagination links to add theirs to."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()
