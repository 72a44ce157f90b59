"""snapshots keyed by instance and day

The table grows by one row per instance and day (millions over the retention period); its
surrogate ``id`` cost each row a sequence number and an index entry that nothing used. The
unique (instance_id, day) becomes the primary key. Rows are kept.

Revision ID: 286acfd342b0
Revises: 0e342f2a4c11
Create Date: 2026-11-28 19:45:00.000000

"""
from alembic import op
import sqlalchemy as sa

revision = '286acfd342b0'
down_revision = '0e342f2a4c11'
branch_labels = None
depends_on = None


def _has_id() -> bool:
    # tables made by "db create" from these models (then stamped with the first revision
    # by ensure_schema) have the new key already
    columns = sa.inspect(op.get_bind()).get_columns('snapshots')
    return any(column['name'] == 'id' for column in columns)


def upgrade():
    if not _has_id():
        return
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            'ALTER TABLE snapshots DROP CONSTRAINT uq_snapshots_instance_id_day, '
            'DROP CONSTRAINT pk_snapshots, DROP COLUMN id, '
            'ADD CONSTRAINT pk_snapshots PRIMARY KEY (instance_id, day)'
        )
        return
    with op.batch_alter_table('snapshots', recreate='always') as batch:
        batch.drop_constraint('uq_snapshots_instance_id_day', type_='unique')
        batch.drop_column('id')
        batch.create_primary_key('pk_snapshots', ['instance_id', 'day'])


def downgrade():
    if _has_id():
        return
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            'ALTER TABLE snapshots DROP CONSTRAINT pk_snapshots, ADD COLUMN id SERIAL, '
            'ADD CONSTRAINT pk_snapshots PRIMARY KEY (id), '
            'ADD CONSTRAINT uq_snapshots_instance_id_day UNIQUE (instance_id, day)'
        )
        return
    with op.batch_alter_table('snapshots', recreate='always') as batch:
        batch.drop_constraint('pk_snapshots', type_='primary')
        batch.add_column(sa.Column('id', sa.Integer(), nullable=False))
        batch.create_primary_key('pk_snapshots', ['id'])
        batch.create_unique_constraint('uq_snapshots_instance_id_day', ['instance_id', 'day'])
