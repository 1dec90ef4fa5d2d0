"""GPU counts: a job may give a range the planner chooses from (moldable), and every
assignment carries the count it was planned on.

Jobs gain ``min_gpus``/``max_gpus`` (empty: a fixed count); assignments gain ``gpus``, filled
for existing rows with their job's count (what they were planned on before).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("min_gpus", sa.Integer))
        batch.add_column(sa.Column("max_gpus", sa.Integer))
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("gpus", sa.Integer))
    jobs = sa.table("jobs", sa.column("id", sa.String), sa.column("gpus", sa.Integer))
    assignments = sa.table("assignments", sa.column("job_id", sa.String),
                           sa.column("gpus", sa.Integer))
    op.execute(assignments.update().values(gpus=sa.select(jobs.c.gpus).where(
        jobs.c.id == assignments.c.job_id).scalar_subquery()))
    with op.batch_alter_table("assignments") as batch:
        batch.alter_column("gpus", existing_type=sa.Integer, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("gpus")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("max_gpus")
        batch.drop_column("min_gpus")
