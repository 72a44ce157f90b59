"""audit_entries

The audit log: who registered, changed, enabled, disabled, deleted or crawled an instance,
who logged in or failed to, who made or revoked a token. No foreign key to instances: an
instance's entries outlive it, with its uuid, organization and URL as they were.

Revision ID: c5a8e1f3b7d2
Revises: 4f6a8c2e1b97
Create Date: 2026-12-04 16:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from cephalopod.db import UTCDateTime

revision = 'c5a8e1f3b7d2'
down_revision = '4f6a8c2e1b97'
branch_labels = None
depends_on = None


def _has_table() -> bool:
    # tables made by "db create" from these models have it already
    return sa.inspect(op.get_bind()).has_table('audit_entries')


def upgrade():
    if _has_table():
        return
    op.create_table(
        'audit_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('action', sa.String(length=20), nullable=False),
        sa.Column('actor_kind', sa.String(length=10), nullable=False),
        sa.Column('actor', sa.String(length=255), nullable=True),
        sa.Column('token_id', sa.Integer(), nullable=True),
        sa.Column('address', sa.String(length=45), nullable=True),
        sa.Column('instance_uuid', sa.Uuid(), nullable=True),
        sa.Column('instance_name', sa.String(length=255), nullable=True),
        sa.Column('instance_url', sa.String(length=2048), nullable=True),
        sa.Column(
            'changes',
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entries')),
    )
    op.create_index(
        op.f('ix_audit_entries_created_at'), 'audit_entries', ['created_at'], unique=False
    )
    op.create_index(
        'ix_audit_entries_instance_uuid_created_at',
        'audit_entries',
        ['instance_uuid', 'created_at'],
        unique=False,
    )


def downgrade():
    if _has_table():
        op.drop_table('audit_entries')
