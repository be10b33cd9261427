"""Account routing lists as CSV: reading an upload and writing a download. No Django.

The format: a header row naming the columns `company`, `domain` and `owner_email` (any order,
any case; other columns are ignored), then one account per row. UTF-8 with or without a byte
order mark, comma-separated (a semicolon-separated file, as some spreadsheets save, is read
too). Rows are numbered as a spreadsheet shows them: the header is row 1.

`read_accounts` checks everything a file can tell on its own (names, domains, emails,
duplicates within the file) and reports every problem with its row and column; whether the
owners are agents of the site is for the caller, who has the database.
"""

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

COLUMNS = ("company", "domain", "owner_email")
MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 10_000
MAX_COMPANY_LENGTH = 255
MAX_DOMAIN_LENGTH = 253
# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_TLD = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class DomainInvalid(ValueError):
    """Not a host name."""


class FileRefused(ValueError):
    """The file as a whole cannot be read (size, encoding, header, number of rows)."""


@dataclass(frozen=True)
class AccountRow:
    row: int  # as a spreadsheet numbers it: the header is row 1
    company: str
    domain: str  # normalised (normalise_domain), or "" when none was given
    owner_email: str  # lower-cased


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    message: str


@dataclass(frozen=True)
class ReadAccounts:
    rows: list[AccountRow]  # the rows without a problem of their own
    errors: list[RowError]  # in row order


def normalise_domain(text: str) -> str:
    """The host name in `text`, as accounts are matched on: lower-case, without scheme, path,
    port or a leading "www.". Raises DomainInvalid when what remains is not a host name.

    >>> normalise_domain("https://www.Acme.com/about")
    'acme.com'
    """
    value = text.strip()
    if "://" not in value:
        value = "//" + value  # so urlsplit reads "acme.com/x" as a host and a path
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        # Reading the port validates it ("acme.com:x" raises ValueError).
        parts.port  # noqa: B018
    except ValueError:
        raise DomainInvalid(text) from None
    if parts.username is not None or parts.password is not None:
        raise DomainInvalid(text)  # an email address or credentials, not a domain
    host = host.rstrip(".")
    if host.startswith("www.") and host.count(".") >= 2:
        host = host[4:]
    try:
        host = host.encode("idna").decode("ascii")  # bücher.de -> xn--bcher-kva.de
    except UnicodeError:
        raise DomainInvalid(text) from None
    labels = host.split(".")
    if (
        len(host) > MAX_DOMAIN_LENGTH
        or len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
        or not _TLD.fullmatch(labels[-1])
    ):
        raise DomainInvalid(text)
    return host


def _unguard(value: str) -> str:
    # A cell written by `write_accounts` as '=SUM… reads back as =SUM…, so a download uploaded
    # again is the same list.
    if value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


def _decode(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise FileRefused(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileRefused(
            "The file is not UTF-8 text. Save it as “CSV UTF-8” and upload it again."
        ) from None
    if not text.strip():
        raise FileRefused("The file is empty.")
    return text


def _dialect_delimiter(text: str) -> str:
    header = text.splitlines()[0] if text else ""
    return ";" if ";" in header and "," not in header else ","


def read_accounts(data: bytes) -> ReadAccounts:
    """Every row of an uploaded file, checked. Raises FileRefused when the file cannot be read
    at all; otherwise returns the good rows and every row's problems."""
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_dialect_delimiter(text))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise FileRefused("The file has no header row.") from None
    names = [name.strip().lower() for name in header]
    missing = [column for column in COLUMNS if column not in names]
    if missing:
        raise FileRefused(
            "The first row must name the columns company, domain and owner_email; "
            f"missing: {', '.join(missing)}."
        )
    index = {column: names.index(column) for column in COLUMNS}

    rows, errors = [], []
    seen_domains: dict[str, int] = {}
    seen_companies: dict[str, int] = {}
    number = 1
    try:
        for number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue  # blank lines are allowed, and still counted as rows
            if number - 1 > MAX_ROWS:
                raise FileRefused(f"The file has more than {MAX_ROWS:,} rows; split it.")
            values = {
                column: _unguard(cells[i].strip()) if i < len(cells) else ""
                for column, i in index.items()
            }
            row, problems = _check_row(number, values, seen_domains, seen_companies)
            errors.extend(problems)
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        raise FileRefused(f"Row {number + 1} cannot be read as CSV: {exc}.") from None
    if not rows and not errors:
        raise FileRefused("The file has no accounts below its header row.")
    return ReadAccounts(rows=rows, errors=errors)


def _check_row(
    number: int, values: dict[str, str], seen_domains: dict, seen_companies: dict
) -> tuple[AccountRow | None, list[RowError]]:
    problems = []
    company, domain, owner = values["company"], "", values["owner_email"].lower()
    if len(company) > MAX_COMPANY_LENGTH:
        problems.append(
            RowError(number, "company", f"Longer than {MAX_COMPANY_LENGTH} characters.")
        )
    if values["domain"]:
        try:
            domain = normalise_domain(values["domain"])
        except DomainInvalid:
            problems.append(
                RowError(
                    number,
                    "domain",
                    f"“{values['domain']}” is not a domain name (such as acme.com).",
                )
            )
    if not company and not values["domain"]:
        problems.append(RowError(number, "company", "Give a company name, a domain or both."))
    key = company_key(company)
    if key:
        if key in seen_companies:
            problems.append(
                RowError(number, "company", f"“{company}” is also on row {seen_companies[key]}.")
            )
        else:
            seen_companies[key] = number
    if domain:
        if domain in seen_domains:
            problems.append(
                RowError(number, "domain", f"{domain} is also on row {seen_domains[domain]}.")
            )
        else:
            seen_domains[domain] = number
    if not owner:
        problems.append(RowError(number, "owner_email", "Give the owner's email."))
    elif not _EMAIL.fullmatch(owner):
        problems.append(
            RowError(number, "owner_email", f"“{values['owner_email']}” is not an email address.")
        )
    if problems:
        return None, problems
    return AccountRow(row=number, company=company, domain=domain, owner_email=owner), []


def company_key(name: str) -> str:
    """How company names are compared (the same as routing.models.company_key): case-folded,
    inner spaces collapsed."""
    return " ".join(str(name or "").split()).casefold()


def guard_cell(value: str) -> str:
    """A cell a spreadsheet will show as text, never run as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def write_accounts(rows: Iterable[tuple[str, str, str]]) -> str:
    """The CSV of (company, domain, owner_email) rows, with the header, every cell guarded
    against formula injection. Starts with a byte order mark so spreadsheets read UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([guard_cell(str(cell)) for cell in row])
    return "\ufeff" + out.getvalue()
