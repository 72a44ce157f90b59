"""The instance record: registration data, the latest crawl, its location and history."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cephalopod.db import JSONType, Model, UTCDateTime, intpk, str255, utcnow

#: Crawl health values.
CRAWL_STATUSES = ("ok", "error", "never")
#: Percent of each ``instances`` page PostgreSQL fills with new rows (see Instance).
INSTANCES_FILLFACTOR = 80
#: Longest ``instance_fields.value_text``: PostgreSQL refuses a longer one (SQLite would not),
#: so the display values are cut to fit (`cephalopod.stats.values`).
MAX_VALUE_TEXT = 1000


class Instance(Model):
    """One running installation that registered itself with the hub."""

    __tablename__ = "instances"
    __table_args__ = (
        # covers the statistics' count per country for any status, without reading rows; and
        # every look-up by country (an index on country_code alone would only add write cost).
        # With the id (SQLite's indexes hold it anyway) it also gives the ids of a country's
        # instances (the list filtered by country) and each instance's country and status
        # (charts aggregated by country) without reading the wide rows: an id never changes,
        # so in-place updates stay possible.
        sa.Index(
            "ix_instances_country_code_country_name_enabled",
            "country_code",
            "country_name",
            "enabled",
            postgresql_include=["id"],
        ),
        # Home's counts (registered, active, per health) in one pass over this index alone,
        # and the list's health filter (as the index on crawl_status alone did)
        sa.Index("ix_instances_crawl_status_enabled", "crawl_status", "enabled"),
        # Every crawl rewrites every row. Room left on each page, and no index on a column a
        # recrawl changes (last_crawl_at, last_success_at, consecutive_failures...), let
        # PostgreSQL update the row in place (a HOT update): none of the table's indexes gets
        # a new entry, where each daily crawl would otherwise add one to each of them.
        {"postgresql_with": {"fillfactor": INSTANCES_FILLFACTOR}},
    )

    id: Mapped[intpk]
    uuid: Mapped[uuid.UUID] = mapped_column(sa.Uuid(), unique=True, default=uuid.uuid4)
    url: Mapped[str] = mapped_column(sa.String(2048))
    #: ``url`` normalised (host case, default port, ``www.``, trailing slash) to spot duplicates
    url_key: Mapped[str] = mapped_column(sa.String(2048), index=True)
    contact: Mapped[str255]
    email: Mapped[str255]
    organization: Mapped[str255]
    enabled: Mapped[bool] = mapped_column(default=True, index=True)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    # the latest crawl (crawled_data only ever replaced by a successful one)
    crawled_data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    last_crawl_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # not indexed: above
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    crawl_status: Mapped[str] = mapped_column(sa.String(10), default="never")  # indexed: above
    crawl_error: Mapped[str | None] = mapped_column(sa.String(500))
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    #: successful crawls in a row up to the latest success; a failure leaves it as it is, so
    #: that with ``consecutive_failures`` it tells how long an instance had been fine before
    #: it started failing (`cephalopod.crawler.store` reports that flip, once). The database's
    #: default only: an INSERT need not name it (nor can, on a schema of older revisions)
    success_streak: Mapped[int] = mapped_column(server_default="0")
    #: when a successful crawl last found data different from the stored (the first included)
    data_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: seconds the latest crawl took (every endpoint, or until it failed): a crawl of all
    #: starts the instances that were slow first, so that they do not end it late
    last_crawl_seconds: Mapped[float | None]

    # where the server is, located from the address the crawler connected to
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    country_code: Mapped[str | None] = mapped_column(sa.String(2))  # indexed: __table_args__
    country_name: Mapped[str | None] = mapped_column(sa.String(100))
    city: Mapped[str | None] = mapped_column(sa.String(200))
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]

    fields: Mapped[list[InstanceField]] = relationship(
        back_populates="instance",
        cascade="all, delete-orphan",
        primaryjoin="Instance.id == foreign(InstanceField.instance_id)",
    )
    snapshots: Mapped[list[Snapshot]] = relationship(
        back_populates="instance", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<Instance {self.uuid} {self.url!r}>"


class InstanceField(Model):
    """A visible crawled field's display value, in columns SQL can group, sort and index.

    ``value_text`` holds the JSON text of the display value (so ``3`` and ``"3"`` stay
    different categories); ``value_num`` holds it as a number when it is one, for numeric
    sorting and sum/avg/min/max.
    """

    __tablename__ = "instance_fields"
    # Each index costs a crawl one insert per stored value; these are the ones the list and
    # the statistics use (a (field, value_num) index was never chosen: numeric aggregates
    # read the covering index, and the list's sort by a field needs more than value_num).
    __table_args__ = (
        sa.Index("ix_instance_fields_field_value_text", "field", "value_text"),
        # covering: a field's values by instance without reading the table (list sorted by a
        # field, charts grouped by country or by another field)
        sa.Index(
            "ix_instance_fields_field_instance_id",
            "field",
            "instance_id",
            "value_num",
            "value_text",
        ),
    )

    #: Deliberately no foreign key: checking one costs PostgreSQL a trigger and a row lock
    #: per inserted row, eight rows per instance, nearly a third of the database's work in a
    #: first crawl. These rows derive from ``instances.crawled_data`` and only two writers
    #: insert them, each while it holds the instance's row lock (the crawl store, a
    #: recompute); deleting an instance deletes them (`delete_instance`, the ORM cascade) and
    #: the daily maintenance drops any left behind, which no query would show anyway: every
    #: reader joins ``instances``.
    instance_id: Mapped[int] = mapped_column(primary_key=True)
    field: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    value_text: Mapped[str | None] = mapped_column(sa.String(MAX_VALUE_TEXT))
    value_num: Mapped[float | None]

    instance: Mapped[Instance] = relationship(
        back_populates="fields", primaryjoin="foreign(InstanceField.instance_id) == Instance.id"
    )

    def __repr__(self) -> str:
        return f"<InstanceField {self.instance_id} {self.field}={self.value_text}>"


class Snapshot(Model):
    """The crawled data of one day (the latest crawl of the day wins): the history of trends.

    Keyed by (instance, day), with no surrogate id: the table grows by one row per instance
    and day (millions over the retention period), and an id would cost each row a sequence
    number and an index entry that nothing uses.
    """

    __tablename__ = "snapshots"

    instance_id: Mapped[int] = mapped_column(
        sa.ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    day: Mapped[date] = mapped_column(sa.Date(), primary_key=True, index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)

    instance: Mapped[Instance] = relationship(back_populates="snapshots")

    def __repr__(self) -> str:
        return f"<Snapshot {self.instance_id} {self.day}>"
