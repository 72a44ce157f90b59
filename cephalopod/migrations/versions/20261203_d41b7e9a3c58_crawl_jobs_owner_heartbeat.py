"""crawl_jobs.owner and crawl_jobs.heartbeat_at

The process running a crawl job records itself (``host:pid:token``) and touches the job's
heartbeat every few seconds, so that a job whose process was killed is recognised as dead
and ended, instead of blocking the next crawl of all for hours.

Revision ID: d41b7e9a3c58
Revises: b8d2f0c4e6a1
Create Date: 2026-12-03 12:30:00.000000

"""
from alembic import op
import sqlalchemy as sa

from cephalopod.db import UTCDateTime

revision = 'd41b7e9a3c58'
down_revision = 'b8d2f0c4e6a1'
branch_labels = None
depends_on = None


def _columns() -> set[str]:
    # tables made by "db create" from these models have them already
    return {column['name'] for column in sa.inspect(op.get_bind()).get_columns('crawl_jobs')}


def upgrade():
    columns = _columns()
    if 'owner' not in columns:
        op.add_column('crawl_jobs', sa.Column('owner', sa.String(length=300), nullable=True))
    if 'heartbeat_at' not in columns:
        op.add_column('crawl_jobs', sa.Column('heartbeat_at', UTCDateTime(), nullable=True))


def downgrade():
    columns = _columns()
    with op.batch_alter_table('crawl_jobs') as batch:
        for name in ('heartbeat_at', 'owner'):
            if name in columns:
                batch.drop_column(name)
