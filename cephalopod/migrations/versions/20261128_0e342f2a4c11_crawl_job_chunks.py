"""crawl_job_chunks

The progress of each chunk of a crawl that Celery workers share, so that a chunk delivered
again (``acks_late``, after its worker died) is counted once, and a job ends only when every
distinct chunk has finished. Only the latest delivery of a chunk (its token) counts.

Revision ID: 0e342f2a4c11
Revises: 52ed236e3964
Create Date: 2026-11-28 20:15:00.000000

"""
from alembic import op
import sqlalchemy as sa

revision = '0e342f2a4c11'
down_revision = '52ed236e3964'
branch_labels = None
depends_on = None


def _has_table() -> bool:
    # tables made by "db create" from these models (then stamped with the first revision
    # by ensure_schema) have it already
    return sa.inspect(op.get_bind()).has_table('crawl_job_chunks')


def upgrade():
    if _has_table():
        return
    op.create_table(
        'crawl_job_chunks',
        sa.Column('job_id', sa.String(length=36), nullable=False),
        sa.Column('first_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('ok', sa.Integer(), nullable=False),
        sa.Column('failed', sa.Integer(), nullable=False),
        sa.Column('finished', sa.Boolean(), nullable=False),
        sa.Column('delivery', sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ['job_id'], ['crawl_jobs.id'],
            name=op.f('fk_crawl_job_chunks_job_id_crawl_jobs'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('job_id', 'first_id', name=op.f('pk_crawl_job_chunks')),
    )


def downgrade():
    if _has_table():
        op.drop_table('crawl_job_chunks')
