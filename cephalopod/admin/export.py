"""Every instance matching the list's filters, streamed as CSV or JSON in constant memory.

One ordered query is read with a server-side cursor (``yield_per``); each row brings its
display values (folded into one JSON object by the database) and its duplicate mark, so the
stream holds one partition of rows at a time whatever the number of instances. The shared
URL keys are found once per export, so only duplicates probe for their earliest instance.

The two formats hold the same table: the main columns under their API names, then each
visible crawled field's display value under its label. The CSV is UTF-8 with a byte order
mark (so spreadsheets do not guess Latin-1), a header row and CRLF line ends; a text cell
starting with ``= + - @`` or a tab or carriage return gets a leading ``'`` so a
spreadsheet never runs it as a formula (numbers stay numbers).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from cephalopod.db import db
from cephalopod.instances.queries import (
    ListQuery,
    earliest_if_duplicate,
    fields_table,
    filters,
    instances,
    ordered,
)
from cephalopod.instances.rows import item_columns
from cephalopod.instances.urls import is_local_address
from cephalopod.stats.fields import FieldRegistry
from cephalopod.stats.queries import stored_field_names

FORMATS = ("csv", "json")
PARTITION = 1000
#: The main columns: an instance item's fields (``instances.rows.InstanceItem``), in order.
BASE_COLUMNS = item_columns()
FORMULA_CHARS = frozenset("=+-@\t\r")


def columns(registry: FieldRegistry) -> tuple[list[str], list[str]]:
    """Return (headers, field names): field columns are labelled, made unique if labels clash."""
    names = stored_field_names(registry)
    headers = list(BASE_COLUMNS)
    taken = set(headers)
    for name in names:
        label = registry.spec(name).label
        if label in taken:
            label = f"{label} ({name})"
        taken.add(label)
        headers.append(label)
    return headers, names


def folded_fields() -> sa.ColumnElement[str]:
    """A column: the row's display values as one JSON object text (the stored texts are JSON)."""
    pairs = (fields_table.c.field, fields_table.c.value_text)
    folded: sa.ColumnElement[Any]
    if db.engine.dialect.name == "postgresql":
        folded = sa.func.json_object_agg(pairs[0], sa.cast(pairs[1], postgresql.JSON))
        folded = sa.cast(folded, sa.Text)
    else:
        folded = sa.func.json_group_object(pairs[0], sa.func.json(pairs[1]))
    return (
        sa.select(folded)
        .where(fields_table.c.instance_id == instances.c.id)
        .scalar_subquery()
        .label("fields")
    )


def _text(column: sa.ColumnElement[Any], kind: str) -> sa.ColumnElement[str]:
    """Render a uuid or timestamp column as text in SQL: no Python objects per value.

    Timestamps come as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC (SQLite stores exactly that),
    uuids as the database keeps them.
    """
    postgres = db.engine.dialect.name == "postgresql"
    if kind == "uuid":
        return sa.cast(column, sa.Text) if postgres else sa.type_coerce(column, sa.String)
    if postgres:
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD HH24:MI:SS.US")
    return sa.type_coerce(column, sa.String)


def _uuid(text: str | None) -> str | None:
    """Dash the 32 hex digits SQLite stores; PostgreSQL's text has the dashes already."""
    if text is None or len(text) != 32:
        return text
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _iso(text: str | None) -> str | None:
    """Turn 'YYYY-MM-DD HH:MM:SS.ffffff' into the API's ISO form (as ``iso`` writes it)."""
    if text is None:
        return None
    fraction = text[20:26]
    return f"{text[:10]}T{text[11:19]}{'.' + fraction if fraction.strip('0') else ''}Z"


def _sql_columns() -> dict[str, sa.ColumnElement[Any]]:
    """Each main column's SQL, by its name in ``BASE_COLUMNS`` (uuids and times as text)."""
    c = instances.c
    return {
        "uuid": _text(c.uuid, "uuid"),
        "url": c.url,
        "organization": c.organization,
        "contact": c.contact,
        "email": c.email,
        "enabled": c.enabled,
        "registered": _text(c.registered_at, "time"),
        "last_crawl": _text(c.last_crawl_at, "time"),
        "last_success": _text(c.last_success_at, "time"),
        "crawl_status": c.crawl_status,
        "crawl_error": c.crawl_error,
        "consecutive_failures": c.consecutive_failures,
        "country_code": c.country_code,
        "country_name": c.country_name,
        "latitude": c.latitude,
        "longitude": c.longitude,
        "duplicate_of": _text(earliest_if_duplicate(), "uuid"),
        "local_address": c.url,  # judged in Python (is_local_address) as the rows stream
    }


_TIMES = [BASE_COLUMNS.index(name) for name in ("registered", "last_crawl", "last_success")]
_UUID = BASE_COLUMNS.index("uuid")
_DUPLICATE = BASE_COLUMNS.index("duplicate_of")
_ENABLED = BASE_COLUMNS.index("enabled")
_LOCAL = BASE_COLUMNS.index("local_address")


def rows(query: ListQuery, names: Sequence[str]) -> Iterator[list[Any]]:
    """Yield one list of cell values per matching instance, in the list's order.

    One query with a server-side cursor: each row carries its duplicate mark and its display
    values folded into a JSON object, so nothing else is read while streaming, and uuids and
    timestamps arrive as text (SQLite's uuid: 32 hex digits, dashed here).
    """
    sql = _sql_columns()
    if set(sql) != set(BASE_COLUMNS):  # pragma: no cover - caught by any export test
        raise RuntimeError("the export's columns and InstanceItem's fields differ")
    select = sa.select(*(sql[name] for name in BASE_COLUMNS), folded_fields())
    select = ordered(select.where(*filters(query)), query)
    if db.engine.dialect.name == "postgresql":
        # the per-row subqueries make the estimate look huge: JIT would compile for 2 s
        db.session.execute(sa.text("SET LOCAL jit = off"))
    result = db.session.execute(select.execution_options(yield_per=PARTITION))
    loads = json.loads
    for row in result:
        cells: list[Any] = list(row)
        fields: str | None = cells.pop()
        values = loads(fields) if fields else {}
        for index in _TIMES:
            cells[index] = _iso(cells[index])
        uuid = cells[_UUID] = _uuid(cells[_UUID])
        earliest = _uuid(cells[_DUPLICATE])
        cells[_DUPLICATE] = None if earliest == uuid else earliest
        cells[_ENABLED] = bool(cells[_ENABLED])
        cells[_LOCAL] = is_local_address(cells[_LOCAL])
        cells.extend([values.get(name) for name in names])
        yield cells


def safe_cell(value: Any) -> Any:
    """Render a value for a spreadsheet cell, defusing text that would run as a formula."""
    kind = type(value)
    if kind is str:
        return "'" + value if value[:1] in FORMULA_CHARS else value
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    return value


#: Columns people or instances wrote (free text) and the booleans (written true or false);
#: the others are ours (uuids, dates, codes).
_FREE_TEXT = [BASE_COLUMNS.index(name) for name in (
    "url", "organization", "contact", "email", "enabled", "crawl_error", "country_name",
    "local_address",
)]  # fmt: skip


def csv_chunks(query: ListQuery, registry: FieldRegistry) -> Iterator[bytes]:
    """Yield the CSV export in chunks of encoded bytes."""
    headers, names = columns(registry)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow([safe_cell(h) for h in headers])
    first_field = len(BASE_COLUMNS)
    for count, row in enumerate(rows(query, names), 1):
        for index in _FREE_TEXT:
            row[index] = safe_cell(row[index])
        row[first_field:] = [safe_cell(value) for value in row[first_field:]]
        writer.writerow(row)
        if count % PARTITION == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def json_chunks(query: ListQuery, registry: FieldRegistry) -> Iterator[bytes]:
    """Yield the JSON export (an array of objects keyed like the CSV header) in chunks."""
    headers, names = columns(registry)
    parts: list[str] = ["["]
    separator = "\n"
    for count, row in enumerate(rows(query, names), 1):
        parts.append(
            separator + json.dumps(dict(zip(headers, row, strict=True)), ensure_ascii=False)
        )
        separator = ",\n"
        if count % PARTITION == 0:
            yield "".join(parts).encode("utf-8")
            parts = []
    parts.append("\n]\n")
    yield "".join(parts).encode("utf-8")
