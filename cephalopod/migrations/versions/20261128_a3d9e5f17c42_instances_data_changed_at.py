"""instances.data_changed_at

When a crawl last found the crawled data different from what was stored. The crawl store
sets it in the same UPDATE that replaces the data, so that a recrawl learns which instances
changed (and need their display values rewritten) without reading the stored values back.
Unknown (NULL) for data stored before.

Revision ID: a3d9e5f17c42
Revises: e4a7c2b9d1f3
Create Date: 2026-11-28 05:10:00.000000

"""
from alembic import op
import sqlalchemy as sa

import cephalopod.db

revision = 'a3d9e5f17c42'
down_revision = 'e4a7c2b9d1f3'
branch_labels = None
depends_on = None


def _has_column() -> bool:
    # tables made by "db create" from these models (then stamped with the first revision
    # by ensure_schema) have it already
    columns = sa.inspect(op.get_bind()).get_columns('instances')
    return any(column['name'] == 'data_changed_at' for column in columns)


def upgrade():
    if not _has_column():
        op.add_column(
            'instances',
            sa.Column('data_changed_at', cephalopod.db.UTCDateTime(timezone=True), nullable=True),
        )


def downgrade():
    if _has_column():
        with op.batch_alter_table('instances') as batch:
            batch.drop_column('data_changed_at')
