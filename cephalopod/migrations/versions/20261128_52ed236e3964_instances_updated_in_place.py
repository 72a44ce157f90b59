"""instances updated in place

Every crawl rewrites every ``instances`` row. On PostgreSQL an update that changes no
indexed column and finds room on the row's page is a HOT update: no index gets a new entry.
``ix_instances_last_crawl_at`` made every crawl update non-HOT (and no query used it: the
list's sort puts never-crawled instances last with an expression the index cannot serve),
and pages filled to the brim leave no room: fillfactor 80 keeps a fifth of each new page
free (existing pages gain room as vacuum reclaims the old row versions).

Revision ID: 52ed236e3964
Revises: a3d9e5f17c42
Create Date: 2026-11-28 19:20:00.000000

"""
from alembic import op

revision = '52ed236e3964'
down_revision = 'a3d9e5f17c42'
branch_labels = None
depends_on = None


def upgrade():
    # IF EXISTS: tables made by "db create" from these models never had it
    op.drop_index('ix_instances_last_crawl_at', 'instances', if_exists=True)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE instances SET (fillfactor = 80)')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE instances RESET (fillfactor)')
    op.create_index(
        'ix_instances_last_crawl_at', 'instances', ['last_crawl_at'], if_not_exists=True
    )
