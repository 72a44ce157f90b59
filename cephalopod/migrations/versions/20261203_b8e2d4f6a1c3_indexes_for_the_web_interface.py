"""indexes for the web interface

The country index also holds the instance id on PostgreSQL (``INCLUDE``; SQLite's indexes
hold it anyway): the server list filtered by country and the charts aggregated by country
then find ids, countries and statuses without reading the wide instance rows. The index on
``crawl_status`` becomes one on ``(crawl_status, enabled)``: Home counts registered, active
and each health from it alone, in one pass. Neither adds a column that a crawl changes.

Revision ID: b8e2d4f6a1c3
Revises: 7c1f4e2a9b60
Create Date: 2026-12-03 12:30:00.000000

"""
from alembic import op

revision = 'b8e2d4f6a1c3'
down_revision = '7c1f4e2a9b60'
branch_labels = None
depends_on = None

COUNTRY = 'ix_instances_country_code_country_name_enabled'
COUNTRY_COLUMNS = ['country_code', 'country_name', 'enabled']


def _postgres() -> bool:
    return op.get_bind().dialect.name == 'postgresql'


def upgrade():
    if _postgres():
        op.drop_index(COUNTRY, table_name='instances', if_exists=True)
        op.create_index(COUNTRY, 'instances', COUNTRY_COLUMNS, postgresql_include=['id'])
    # IF (NOT) EXISTS: tables made by "db create" from these models (then stamped with the
    # first revision by ensure_schema) have the new index already
    op.drop_index('ix_instances_crawl_status', table_name='instances', if_exists=True)
    op.create_index(
        'ix_instances_crawl_status_enabled', 'instances', ['crawl_status', 'enabled'],
        if_not_exists=True,
    )


def downgrade():
    op.drop_index('ix_instances_crawl_status_enabled', table_name='instances', if_exists=True)
    op.create_index(
        'ix_instances_crawl_status', 'instances', ['crawl_status'], if_not_exists=True
    )
    if _postgres():
        op.drop_index(COUNTRY, table_name='instances', if_exists=True)
        op.create_index(COUNTRY, 'instances', COUNTRY_COLUMNS)
