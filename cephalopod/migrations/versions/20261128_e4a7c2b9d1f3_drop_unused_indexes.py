"""drop unused indexes

``ix_instance_fields_field_value_num`` was never chosen by the list or the statistics, and
``ix_instances_country_code`` duplicates the leading column of the country index: each cost
a crawl an index insert per stored row and nothing else.

Revision ID: e4a7c2b9d1f3
Revises: 5b1e0c7d2a94
Create Date: 2026-11-28 02:40:00.000000

"""
from alembic import op

revision = 'e4a7c2b9d1f3'
down_revision = '5b1e0c7d2a94'
branch_labels = None
depends_on = None


def upgrade():
    # IF EXISTS: tables made by "db create" from these models (then stamped with the first
    # revision by ensure_schema) never had them
    op.drop_index('ix_instance_fields_field_value_num', 'instance_fields', if_exists=True)
    op.drop_index('ix_instances_country_code', 'instances', if_exists=True)


def downgrade():
    op.create_index(
        'ix_instance_fields_field_value_num', 'instance_fields', ['field', 'value_num'],
        if_not_exists=True,
    )
    op.create_index('ix_instances_country_code', 'instances', ['country_code'], if_not_exists=True)
