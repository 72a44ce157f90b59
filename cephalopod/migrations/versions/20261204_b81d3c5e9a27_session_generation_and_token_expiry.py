"""users.session_generation and api_tokens.expires_at

A session stores the user's id with the generation of their sessions, which log-out raises:
a session cookie replayed after log-out is refused. Sessions made before this revision carry
no generation and end with it (everybody logs in again once). A token may expire.

Revision ID: b81d3c5e9a27
Revises: d41b7e9a3c58
Create Date: 2026-12-04 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

from cephalopod.db import UTCDateTime

revision = 'b81d3c5e9a27'
down_revision = 'd41b7e9a3c58'
branch_labels = None
depends_on = None


def _columns(table: str) -> set[str]:
    # tables made by "db create" from these models have them already
    return {column['name'] for column in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade():
    if 'session_generation' not in _columns('users'):
        op.add_column(
            'users',
            sa.Column('session_generation', sa.Integer(), server_default='0', nullable=False),
        )
    if 'expires_at' not in _columns('api_tokens'):
        op.add_column(
            'api_tokens', sa.Column('expires_at', UTCDateTime(timezone=True), nullable=True)
        )


def downgrade():
    for table, name in (('api_tokens', 'expires_at'), ('users', 'session_generation')):
        if name in _columns(table):
            with op.batch_alter_table(table) as batch:
                batch.drop_column(name)
