"""crawl_jobs.kind and crawl_jobs.instance_id

A crawl job is now either a crawl of all instances (``all``, the only kind before) or the
crawl of one instance that the admin API's "crawl now" submits (``instance``, with its
``instance_id``); only the first kind keeps another crawl of all from starting.

Revision ID: 7c1f4e2a9b60
Revises: 286acfd342b0
Create Date: 2026-12-03 07:20:00.000000

"""
from alembic import op
import sqlalchemy as sa

revision = '7c1f4e2a9b60'
down_revision = '286acfd342b0'
branch_labels = None
depends_on = None


def _columns() -> set[str]:
    # tables made by "db create" from these models (then stamped with the first revision
    # by ensure_schema) have them already
    return {column['name'] for column in sa.inspect(op.get_bind()).get_columns('crawl_jobs')}


def upgrade():
    columns = _columns()
    if 'kind' not in columns:
        op.add_column(
            'crawl_jobs',
            sa.Column('kind', sa.String(length=10), server_default='all', nullable=False),
        )
    if 'instance_id' not in columns:
        op.add_column('crawl_jobs', sa.Column('instance_id', sa.Integer(), nullable=True))


def downgrade():
    columns = _columns()
    with op.batch_alter_table('crawl_jobs') as batch:
        for name in ('instance_id', 'kind'):
            if name in columns:
                batch.drop_column(name)
