"""instances.success_streak

Successful crawls in a row up to each instance's latest success: with consecutive_failures it
tells when an instance that had been fine for NOTIFY_FAILING_AFTER crawls starts failing.
Existing instances start from 0 (their streak so far is not known).

Revision ID: 4f6a8c2e1b97
Revises: b81d3c5e9a27
Create Date: 2026-12-04 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

revision = '4f6a8c2e1b97'
down_revision = 'b81d3c5e9a27'
branch_labels = None
depends_on = None


def _columns() -> set[str]:
    # tables made by "db create" from these models have it already
    return {column['name'] for column in sa.inspect(op.get_bind()).get_columns('instances')}


def upgrade():
    if 'success_streak' not in _columns():
        op.add_column(
            'instances',
            sa.Column('success_streak', sa.Integer(), server_default='0', nullable=False),
        )


def downgrade():
    # ALTER TABLE ... DROP COLUMN on SQLite too (3.35 and later), not batch mode: copying
    # instances into a new table would drop the old one, and its snapshots with it (cascade)
    if 'success_streak' in _columns():
        op.drop_column('instances', 'success_streak')
