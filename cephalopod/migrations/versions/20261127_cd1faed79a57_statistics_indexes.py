"""statistics indexes

The statistics count instances per country (for any status) from this index alone,
without reading the instance rows and their crawled data.

Revision ID: cd1faed79a57
Revises: 9218ccd21f36
Create Date: 2026-11-27 21:28:05.801605

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'cd1faed79a57'
down_revision = '9218ccd21f36'
branch_labels = None
depends_on = None


NAME = 'ix_instances_country_code_country_name_enabled'


def upgrade():
    # IF NOT EXISTS: tables made by "db create" from these models (then stamped with the
    # first revision by ensure_schema) already have the index
    op.create_index(
        NAME, 'instances', ['country_code', 'country_name', 'enabled'], unique=False,
        if_not_exists=True,
    )


def downgrade():
    op.drop_index(NAME, table_name='instances', if_exists=True)
