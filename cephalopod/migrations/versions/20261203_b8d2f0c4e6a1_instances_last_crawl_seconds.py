"""instances.last_crawl_seconds

How long the latest crawl of each instance took: a crawl of all instances starts those that
were slow first, so that they run beside the others instead of ending the crawl late.

Revision ID: b8d2f0c4e6a1
Revises: b8e2d4f6a1c3
Create Date: 2026-12-03 13:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

revision = 'b8d2f0c4e6a1'
down_revision = 'b8e2d4f6a1c3'
branch_labels = None
depends_on = None


def _columns() -> set[str]:
    # tables made by "db create" from these models (then stamped with the first revision
    # by ensure_schema) have it already
    return {column['name'] for column in sa.inspect(op.get_bind()).get_columns('instances')}


def upgrade():
    if 'last_crawl_seconds' not in _columns():
        op.add_column('instances', sa.Column('last_crawl_seconds', sa.Double(), nullable=True))


def downgrade():
    # ALTER TABLE ... DROP COLUMN on SQLite too (3.35 and later), not batch mode: copying
    # instances into a new table would drop the old one, and its snapshots with it (cascade)
    if 'last_crawl_seconds' in _columns():
        op.drop_column('instances', 'last_crawl_seconds')
