"""display values without a foreign key

Checking the foreign key cost PostgreSQL a trigger and a row lock for each of the eight
display values an instance has, nearly a third of its work in a first crawl. The rows are
derived data, inserted only under the instance's row lock; deletes are explicit.

Revision ID: 5b1e0c7d2a94
Revises: 93c83a738a03
Create Date: 2026-11-28 02:05:00.000000

"""
from alembic import op
import sqlalchemy as sa

revision = '5b1e0c7d2a94'
down_revision = '93c83a738a03'
branch_labels = None
depends_on = None

TABLE = 'instance_fields'
NAME = 'fk_instance_fields_instance_id_instances'


def _has_foreign_key() -> bool:
    # tables made by "db create" from these models (then stamped with the first revision
    # by ensure_schema) never had it
    foreign_keys = sa.inspect(op.get_bind()).get_foreign_keys(TABLE)
    return any(fk['referred_table'] == 'instances' for fk in foreign_keys)


def upgrade():
    if _has_foreign_key():
        with op.batch_alter_table(TABLE) as batch:  # SQLite rebuilds the table
            batch.drop_constraint(NAME, type_='foreignkey')


def downgrade():
    if not _has_foreign_key():
        op.execute(
            'DELETE FROM instance_fields WHERE NOT EXISTS '
            '(SELECT 1 FROM instances WHERE instances.id = instance_fields.instance_id)'
        )
        with op.batch_alter_table(TABLE) as batch:
            batch.create_foreign_key(
                NAME, 'instances', ['instance_id'], ['id'], ondelete='CASCADE'
            )
