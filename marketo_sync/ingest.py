"""Writing Marketo records into PostgreSQL in bulk.

Both the bulk export files and REST pages go the same way: COPY into a temporary staging table
of text columns (one per Marketo field), then one INSERT ... ON CONFLICT from it into the real
table. The conversion from Marketo's text to our columns and typed JSON happens in that one
statement, so a lead read from a CSV export and the same lead read from the REST API end up
byte-for-byte the same row, and running any of it twice leaves the same rows.

Export files are streamed straight into COPY: PostgreSQL's CSV parser handles quoting, embedded
newlines and Marketo's literal `null`; we only drop NUL bytes, which PostgreSQL cannot store.
"""

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from psycopg import sql

from marketo_sync.models import Activity, Company, Lead

NUMBER_TYPES = {"integer", "score", "percent", "float", "currency", "double"}
WHOLE_NUMBER_TYPES = {"integer", "score"}
NUMBER_PATTERN = r"^\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$"
WHOLE_PATTERN = r"^-?[0-9]+$"
# PostgreSQL allows 100 arguments per function call: build attribute objects in slices.
JSON_SLICE = 40

LEAD_COLUMNS = {
    "id": "id",
    "email": "email",
    "externalCompanyId": "external_company_id",
    "cookies": "cookies",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
}
COMPANY_COLUMNS = {
    "id": "id",
    "externalCompanyId": "external_company_id",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
}
ACTIVITY_FIELDS = [
    "marketoGUID",
    "leadId",
    "activityDate",
    "activityTypeId",
    "campaignId",
    "primaryAttributeValueId",
    "primaryAttributeValue",
    "attributes",
]


class IngestError(Exception):
    """An export file we cannot read (a header without the fields we asked for)."""


class Staging:
    """A temporary table of text columns c0..cN, one per Marketo field, dropped at commit.

    Must be used inside a transaction (`transaction.atomic`)."""

    def __init__(self, cursor, fields: Sequence[str]):
        # psycopg's own cursor (under Django's wrapper): COPY and composed SQL need it.
        self.cursor = getattr(cursor, "cursor", cursor)
        self.fields = list(fields)
        self.columns = {name: f"c{i}" for i, name in enumerate(self.fields)}
        self.table = "marketo_stage"
        cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
        column_list = ", ".join(f"c{i} text" for i in range(len(self.fields)))
        cursor.execute(f"CREATE TEMPORARY TABLE {self.table} ({column_list}) ON COMMIT DROP")

    def col(self, field: str) -> str | None:
        return self.columns.get(field)

    def copy_csv(self, body: Iterable[bytes]) -> int:
        """COPY Marketo CSV (without its header row) from byte chunks; returns rows copied."""
        column_list = ", ".join(self.columns.values())
        statement = (
            f"COPY {self.table} ({column_list}) FROM STDIN "
            f"WITH (FORMAT csv, NULL 'null', FORCE_NULL ({column_list}))"
        )
        with self.cursor.copy(statement) as copy:
            for chunk in body:
                copy.write(chunk.replace(b"\x00", b"") if b"\x00" in chunk else chunk)
        return self.cursor.rowcount

    def copy_rows(self, rows: Iterable[Sequence[str | None]]) -> int:
        """COPY rows of text values (None for null), as REST pages give them."""
        column_list = ", ".join(self.columns.values())
        count = 0
        with self.cursor.copy(f"COPY {self.table} ({column_list}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count


def split_header(chunks: Iterable[bytes]) -> tuple[list[str], Iterator[bytes]]:
    """Read a CSV export's header row off a byte stream; return it and the rest of the stream.

    Field names never contain quotes or newlines (we ask for REST names, no header overrides)."""
    iterator = iter(chunks)
    buffer = b""
    for chunk in iterator:
        buffer += chunk
        if b"\n" in buffer:
            break
    line, _, rest = buffer.partition(b"\n")
    header = line.decode("utf-8").strip("\r\ufeff")
    if not header:
        raise IngestError("The export file is empty: no header row.")

    def remainder():
        if rest:
            yield rest
        yield from iterator

    return header.split(","), remainder()


def rest_value(value) -> str | None:
    """A REST JSON value as the text Marketo's CSV export would hold."""
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False).replace("\\u0000", "")
    text = str(value).replace("\x00", "")
    # An export cannot tell the string "null" from no value; neither can we, then.
    return None if text == "null" else text


def _text(col: str) -> sql.Composable:
    return sql.SQL("NULLIF({}, '')").format(sql.Identifier(col))


def _typed(col: str, data_type: str) -> sql.Composable:
    """A JSON value from a staging text column, typed by Marketo's dataType."""
    value = _text(col)
    if data_type in NUMBER_TYPES:
        number = sql.SQL("{}::numeric").format(value)
        if data_type in WHOLE_NUMBER_TYPES:
            # Marketo sometimes exports integer fields with decimals; keep the whole part.
            number = sql.SQL("trunc({})").format(number)
        return sql.SQL("CASE WHEN {v} ~ {p} THEN to_jsonb({n}) ELSE to_jsonb({v}) END").format(
            v=value, p=sql.Literal(NUMBER_PATTERN), n=number
        )
    if data_type == "boolean":
        return sql.SQL(
            "CASE lower({v}) WHEN 'true' THEN 'true'::jsonb WHEN 'false' THEN 'false'::jsonb "
            "ELSE to_jsonb({v}) END"
        ).format(v=value)
    return sql.SQL("to_jsonb({})").format(value)


def _attributes(
    staging: Staging, fields: Sequence[str], types: dict
) -> tuple[sql.Composable, sql.Composable]:
    """jsonb of the picked fields present in the staging table, nulls left out: the expression,
    and the FROM clause addition it needs.

    The values are selected as a row named after the fields and turned into jsonb in one call
    (a fifth faster than building the object pair by pair, which matters on a million leads).
    A field name longer than PostgreSQL's 63-byte identifiers cannot name a column: then the
    object is built pair by pair."""
    present = [f for f in fields if staging.col(f)]
    if not present:
        return sql.SQL("'{}'::jsonb"), sql.SQL("")
    if all(len(name.encode()) <= 63 for name in present):
        columns = sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(
                _row_value(staging.col(name), types.get(name, "string")), sql.Identifier(name)
            )
            for name in present
        )
        lateral = sql.SQL(" CROSS JOIN LATERAL (SELECT {}) AS attrs").format(columns)
        return sql.SQL("jsonb_strip_nulls(to_jsonb(attrs))"), lateral
    parts = []
    for start in range(0, len(present), JSON_SLICE):
        pairs = []
        for name in present[start : start + JSON_SLICE]:
            pairs.append(sql.Literal(name))
            pairs.append(_typed(staging.col(name), types.get(name, "string")))
        parts.append(sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(pairs)))
    return sql.SQL("jsonb_strip_nulls({})").format(sql.SQL(" || ").join(parts)), sql.SQL("")


def _row_value(col: str, data_type: str) -> sql.Composable:
    """A staging column as a value of the attributes row: text stays text (to_jsonb makes it a
    JSON string), numbers and booleans are typed as _typed() types them."""
    if data_type in NUMBER_TYPES or data_type == "boolean":
        return _typed(col, data_type)
    return _text(col)


def _column(staging: Staging, field: str, kind: str) -> sql.Composable:
    col = staging.col(field)
    if col is None:
        if kind == "timestamp":
            return sql.SQL("NULL::timestamptz")
        return sql.SQL("NULL::bigint") if kind == "bigint" else sql.SQL("''")
    if kind == "timestamp":
        return sql.SQL("{}::timestamptz").format(_text(col))
    if kind == "bigint":
        return sql.SQL("CASE WHEN {v} ~ {p} THEN {v}::bigint END").format(
            v=_text(col), p=sql.Literal(WHOLE_PATTERN)
        )
    return sql.SQL("COALESCE({}, '')").format(sql.Identifier(col))


def _require(staging: Staging, fields: Sequence[str]) -> None:
    missing = [f for f in fields if staging.col(f) is None]
    if missing:
        raise IngestError(f"The export lacks the column(s) {', '.join(missing)}.")


def upsert_leads(
    staging: Staging, *, picked: Sequence[str], types: dict, first_load: bool = False
) -> int:
    """Insert or update leads from the staging table; returns rows written.

    `first_load`: the table cannot hold these leads yet, so they are plainly inserted (no
    de-duplication, no conflict handling); a duplicate raises IntegrityError, and the caller
    falls back to the upsert."""
    _require(staging, ["id"])
    table = sql.Identifier(Lead._meta.db_table)
    template = FIRST_LOAD_LEADS if first_load else UPSERT_LEADS
    attributes, lateral = _attributes(staging, [f for f in picked if f not in LEAD_COLUMNS], types)
    statement = sql.SQL(template).format(
        table=table,
        stage=sql.Identifier(staging.table),
        id=_column(staging, "id", "bigint"),
        email=_column(staging, "email", "text"),
        company=_column(staging, "externalCompanyId", "text"),
        cookies=_column(staging, "cookies", "text"),
        created=_column(staging, "createdAt", "timestamp"),
        updated=_column(staging, "updatedAt", "timestamp"),
        attributes=attributes,
        lateral=lateral,
    )
    staging.cursor.execute(statement)
    return staging.cursor.rowcount


FIRST_LOAD_LEADS = """
    INSERT INTO {table}
        (id, email, external_company_id, cookies, created_at, updated_at, attributes)
    SELECT * FROM (
        SELECT {id} AS id, {email}, {company}, {cookies}, {created}, {updated}, {attributes}
        FROM {stage}{lateral}
    ) AS s
    WHERE id IS NOT NULL
"""

UPSERT_LEADS = """
        INSERT INTO {table} AS t
            (id, email, external_company_id, cookies, created_at, updated_at, attributes)
        SELECT DISTINCT ON (id) * FROM (
            SELECT {id} AS id, {email}, {company}, {cookies}, {created} AS created_at,
                   {updated} AS updated_at, {attributes}
            FROM {stage}{lateral}
        ) AS s
        WHERE id IS NOT NULL
        ORDER BY id, updated_at DESC NULLS LAST
        ON CONFLICT (id) DO UPDATE SET
            email = EXCLUDED.email, external_company_id = EXCLUDED.external_company_id,
            cookies = EXCLUDED.cookies, created_at = EXCLUDED.created_at,
            updated_at = EXCLUDED.updated_at, attributes = EXCLUDED.attributes
        -- An older copy of a lead (a resumed export) never overwrites a newer one.
        WHERE t.updated_at IS NULL OR EXCLUDED.updated_at IS NULL
            OR EXCLUDED.updated_at >= t.updated_at
"""


def upsert_companies(
    staging: Staging, *, picked: Sequence[str], types: dict, synced_at: datetime
) -> int:
    _require(staging, ["id"])
    attributes, lateral = _attributes(
        staging, [f for f in picked if f not in COMPANY_COLUMNS], types
    )
    statement = sql.SQL(
        """
        INSERT INTO {table} AS t
            (id, external_company_id, name, created_at, updated_at, attributes, synced_at)
        SELECT DISTINCT ON (id) * FROM (
            SELECT {id} AS id, {external}, {name}, {created} AS created_at,
                   {updated} AS updated_at, {attributes}, {synced_at}::timestamptz
            FROM {stage}{lateral}
        ) AS s
        WHERE id IS NOT NULL
        ORDER BY id, updated_at DESC NULLS LAST
        ON CONFLICT (id) DO UPDATE SET
            external_company_id = EXCLUDED.external_company_id, name = EXCLUDED.name,
            created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
            attributes = EXCLUDED.attributes, synced_at = EXCLUDED.synced_at
        """
    ).format(
        table=sql.Identifier(Company._meta.db_table),
        stage=sql.Identifier(staging.table),
        id=_column(staging, "id", "bigint"),
        external=_column(staging, "externalCompanyId", "text"),
        name=_column(staging, "company", "text"),
        created=_column(staging, "createdAt", "timestamp"),
        updated=_column(staging, "updatedAt", "timestamp"),
        attributes=attributes,
        lateral=lateral,
        synced_at=sql.Literal(synced_at.isoformat()),
    )
    staging.cursor.execute(statement)
    return staging.cursor.rowcount


def insert_activities(staging: Staging, *, first_load: bool = False) -> int:
    """Insert activities not yet stored (they never change); returns rows inserted.

    `first_load`: the table has no primary key yet (see sync.drop_lookup_indexes), and no
    row of this window can be there: plain inserts."""
    _require(staging, ["marketoGUID", "leadId", "activityDate", "activityTypeId"])
    attributes = staging.col("attributes")
    attributes_sql = (
        sql.SQL("COALESCE(NULLIF(replace({}, '\\u0000', ''), '')::jsonb, '{{}}'::jsonb)").format(
            sql.Identifier(attributes)
        )
        if attributes
        else sql.SQL("'{}'::jsonb")
    )
    statement = sql.SQL(
        """
        INSERT INTO {table} (marketo_guid, lead_id, activity_date, activity_type_id, campaign_id,
            primary_attribute_value_id, primary_attribute_value, attributes)
        SELECT {guid}, {lead}, {date}, {type}, {campaign}, {pav_id}, {pav}, {attributes}
        FROM {stage}
        WHERE {guid_col} IS NOT NULL AND {lead} IS NOT NULL
        {conflict}
        """
    ).format(
        table=sql.Identifier(Activity._meta.db_table),
        stage=sql.Identifier(staging.table),
        guid=_column(staging, "marketoGUID", "text"),
        guid_col=sql.Identifier(staging.col("marketoGUID")),
        lead=_column(staging, "leadId", "bigint"),
        date=_column(staging, "activityDate", "timestamp"),
        type=sql.SQL("{}::integer").format(_text(staging.col("activityTypeId"))),
        campaign=_column(staging, "campaignId", "bigint"),
        pav_id=_column(staging, "primaryAttributeValueId", "bigint"),
        pav=sql.SQL("{}").format(_text(staging.col("primaryAttributeValue")))
        if staging.col("primaryAttributeValue")
        else sql.SQL("NULL"),
        attributes=attributes_sql,
        conflict=sql.SQL("" if first_load else "ON CONFLICT (marketo_guid) DO NOTHING"),
    )
    staging.cursor.execute(statement)
    return staging.cursor.rowcount


ACTIVITY_COLUMNS = {
    "marketoGUID": "marketo_guid",
    "leadId": "lead_id",
    "activityDate": "activity_date",
    "activityTypeId": "activity_type_id",
    "campaignId": "campaign_id",
    "primaryAttributeValueId": "primary_attribute_value_id",
    "primaryAttributeValue": "primary_attribute_value",
    "attributes": "attributes",
}


def copy_activities(cursor, header: Sequence[str], body: Iterable[bytes]) -> int:
    """COPY an activity export straight into the activity table (a first load: no row can
    exist yet, and PostgreSQL converts every column itself). Raises psycopg's IntegrityError
    or DataError when a row does not fit; the caller then takes the staging way."""
    unknown = [name for name in header if name not in ACTIVITY_COLUMNS]
    if unknown or "attributes" not in header:
        raise IngestError(f"Unexpected activity columns: {', '.join(unknown) or header}")
    raw = getattr(cursor, "cursor", cursor)
    columns = ", ".join(ACTIVITY_COLUMNS[name] for name in header)
    statement = (
        f"COPY {Activity._meta.db_table} ({columns}) FROM STDIN "
        f"WITH (FORMAT csv, NULL 'null', FORCE_NULL ({columns}))"
    )
    with raw.copy(statement) as copy:
        for chunk in body:
            copy.write(chunk.replace(b"\x00", b"") if b"\x00" in chunk else chunk)
    return raw.rowcount
