"""Fill a database fast with a fake fleet: instances, display values and weekly snapshots.

The crawled data comes from the fleet simulator (``benchmarks.fleet``: 8 fields, 5 charts in
its FIELD_SETTINGS) and the display values from ``display_rows``, exactly as a crawl stores
them; rows go in with bulk inserts (COPY on PostgreSQL).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from benchmarks.fleet import stats, system_info
from cephalopod.instances.models import Instance, InstanceField, Snapshot
from cephalopod.instances.urls import url_key
from cephalopod.stats.fields import FieldRegistry
from cephalopod.stats.values import display_rows

#: (code, name, weight): a skewed spread like a real installed base.
COUNTRIES = [
    ("DE", "Germany", 10), ("US", "United States", 12), ("FR", "France", 8),
    ("CH", "Switzerland", 6),
    ("IT", "Italy", 6), ("ES", "Spain", 5), ("GB", "United Kingdom", 5), ("BR", "Brazil", 4),
    ("JP", "Japan", 3), ("CN", "China", 3), ("IN", "India", 3), ("PL", "Poland", 3),
    ("NL", "Netherlands", 2), ("BE", "Belgium", 2), ("AT", "Austria", 2), ("CZ", "Czechia", 2),
    ("PT", "Portugal", 2), ("SE", "Sweden", 1), ("NO", "Norway", 1), ("FI", "Finland", 1),
    ("DK", "Denmark", 1), ("GR", "Greece", 1), ("MX", "Mexico", 1), ("AR", "Argentina", 1),
    ("CL", "Chile", 1), ("ZA", "South Africa", 1), ("KR", "South Korea", 1), ("AU", "Australia", 1),
    ("CA", "Canada", 2), ("RU", "Russia", 1), ("TR", "Türkiye", 1), ("IL", "Israel", 1),
]  # fmt: skip
START = datetime(2023, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def crawled(n: int, week: int = 0) -> dict[str, Any]:
    """Instance n's crawled data, as many weeks ago as ``week`` (older weeks: older versions)."""
    data = {**system_info(n + week), **stats(n)}
    data["events"] = max(0, data["events"] - 7 * week)
    return data


def instance_rows(num: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    """Yield the instances table rows of a fleet of ``num``."""
    rng = random.Random(seed)
    codes, weights = zip(*(((c, n), w) for c, n, w in COUNTRIES), strict=True)
    span = (NOW - START).total_seconds()
    for n in range(1, num + 1):
        country = rng.choices(codes, weights)[0] if rng.random() > 0.03 else (None, None)
        health = rng.random()
        status = "ok" if health < 0.9 else "error" if health < 0.97 else "never"
        registered = START + timedelta(seconds=span * n / (num + 1))
        url = (
            f"https://indico{n}.example.org"
            if n % 500
            else f"https://WWW.indico{n - 1}.example.org/"
        )
        last = NOW - timedelta(hours=rng.randrange(1, 48)) if status != "never" else None
        yield {
            "id": n,
            "uuid": uuid.UUID(int=rng.getrandbits(128), version=4),
            "url": url,
            "url_key": url_key(url),
            "contact": f"Contact Person {n}",
            "email": f"admin{n}@example.org",
            "organization": f"{rng.choice(['University', 'Institute', 'Lab', 'Agency'])} {n}",
            "enabled": rng.random() > 0.05,
            "registered_at": registered,
            "updated_at": registered,
            "crawled_data": crawled(n) if status != "never" else None,
            "last_crawl_at": last,
            "last_success_at": last if status == "ok" else None,
            "crawl_status": status,
            "crawl_error": "Connection refused" if status == "error" else None,
            "consecutive_failures": 1 if status == "error" else 0,
            "ip": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}",
            "country_code": country[0],
            "country_name": country[1],
            "city": None,
            "latitude": 46.2 if country[0] else None,
            "longitude": 6.1 if country[0] else None,
        }


def seed(engine: Engine, num: int, registry: FieldRegistry, weeks: int = 0) -> None:
    """Insert a fleet of ``num`` instances with their display values and ``weeks`` snapshots."""
    chunk: list[dict[str, Any]] = []
    for row in instance_rows(num):
        chunk.append(row)
        if len(chunk) == 5000:
            _insert_chunk(engine, chunk, registry, weeks)
            chunk = []
    if chunk:
        _insert_chunk(engine, chunk, registry, weeks)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))
        else:
            conn.execute(sa.text("ANALYZE"))
            conn.commit()


def _insert_chunk(
    engine: Engine, rows: list[dict[str, Any]], registry: FieldRegistry, weeks: int
) -> None:
    values: list[dict[str, Any]] = []
    snapshots: list[dict[str, Any]] = []
    for row in rows:
        if row["crawled_data"] is None:
            continue
        values.extend(display_rows(row["id"], row["crawled_data"], registry))
        for week in range(weeks):
            day = (NOW - timedelta(days=7 * week)).date()
            snapshots.append(
                {"instance_id": row["id"], "day": day, "data": crawled(row["id"], week)}
            )
    tables = [
        (Instance.__table__, rows),
        (InstanceField.__table__, values),
        (Snapshot.__table__, snapshots),
    ]
    if engine.dialect.name == "postgresql":
        _copy(engine, tables)
        return
    with engine.begin() as conn:
        for table, data in tables:
            if data:
                conn.execute(sa.insert(table), data)


def _copy(engine: Engine, tables: list[tuple[sa.Table, list[dict[str, Any]]]]) -> None:
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:  # type: ignore[attr-defined]
            for table, data in tables:
                if not data:
                    continue
                names = list(data[0])
                columns = ", ".join(names)
                with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
                    for row in data:
                        copy.write_row([_pg_value(row[name]) for name in names])
        raw.commit()
    finally:
        raw.close()
    if tables[1][1] or tables[0][1]:
        with engine.begin() as conn:  # COPY with explicit ids leaves the sequence behind
            conn.execute(
                sa.text("SELECT setval('instances_id_seq', (SELECT max(id) FROM instances))")
            )


def _pg_value(value: Any) -> Any:
    if isinstance(value, dict):
        return json.dumps(value)
    return value
