"""CSV downloads of the report pages: one streaming response, safe to open in a spreadsheet.

Every report page's export goes through `csv_response(filename, header, rows)`:

- the rows are written as they are read (a generator of rows is never held in memory whole;
  pass `queryset.iterator(chunk_size=...)`-backed generators for long lists);
- the file starts with a byte-order mark, so Excel reads it as UTF-8;
- text cells that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) get
  a leading apostrophe (meetings.listing.csv_cell, OWASP "CSV injection"); numbers are written
  as they are, so a negative count stays a number;
- the response is an attachment named `filename` and is never cached (it holds lead data).

`None` becomes an empty cell, `True`/`False` "yes"/"no", dates and times their ISO form.
"""

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime

from django.http import StreamingHttpResponse

from meetings.listing import csv_cell

# What a file name in Content-Disposition may hold here: no quotes, slashes or line breaks.
_UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


class _Echo:
    """A file-like object whose write returns the line, for csv.writer to stream through."""

    def write(self, value: str) -> str:
        return value


def cell(value: object) -> str | int | float:
    """One value as a CSV cell (see the module's docstring for the conversions)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return csv_cell(str(value))


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    """The CSV text, line by line: the byte-order mark and header, then each row."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow([cell(name) for name in header])
    for row in rows:
        yield writer.writerow([cell(value) for value in row])


def safe_filename(filename: str) -> str:
    """`filename` with anything but letters, digits, dots, dashes and underscores replaced by
    a dash, so it cannot break out of the header's quotes."""
    return _UNSAFE_IN_FILENAME.sub("-", filename).strip("-") or "export.csv"


def csv_response(
    filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]
) -> StreamingHttpResponse:
    """A streamed CSV attachment of `header` and `rows` (each row a sequence of values in the
    header's order). `rows` is consumed lazily, while the response is sent."""
    response = StreamingHttpResponse(
        csv_lines(header, rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{safe_filename(filename)}"'
    response["Cache-Control"] = "no-store"
    return response
