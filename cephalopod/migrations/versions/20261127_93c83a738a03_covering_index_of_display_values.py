"""covering index of display values

A field's display values by instance, read from the index alone: the list sorted by a crawled
field and the charts grouped by country or by another field no longer read the table.

Revision ID: 93c83a738a03
Revises: cd1faed79a57
Create Date: 2026-11-27 21:59:20.954072

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '93c83a738a03'
down_revision = 'cd1faed79a57'
branch_labels = None
depends_on = None

NAME = 'ix_instance_fields_field_instance_id'


def upgrade():
    # IF NOT EXISTS: tables made by "db create" from these models (then stamped with the
    # first revision by ensure_schema) already have the index
    op.create_index(
        NAME, 'instance_fields', ['field', 'instance_id', 'value_num', 'value_text'],
        unique=False, if_not_exists=True,
    )


def downgrade():
    op.drop_index(NAME, table_name='instance_fields', if_exists=True)
