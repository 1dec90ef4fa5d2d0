"""Pauses and resizes (issue 20): jobs may be preemptible, with their checkpoint's overhead and
size, or elastic, with their resize overhead; a job keeps the work done before a pause and
where its checkpoint is; a running assignment may carry the broker's directive (pause, or
resize to a count) and when it was given. Existing rows: neither, no work done, no directive.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("preemptible", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("checkpoint_overhead_h", sa.Float, nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("checkpoint_gb", sa.Float, nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("done_steps", sa.Float, nullable=False, server_default="0"))
        batch.add_column(sa.Column("paused_site", sa.String(64)))
        batch.add_column(sa.Column("paused_gpu_type", sa.String(64)))
        batch.add_column(sa.Column("paused_gpus", sa.Integer))
        batch.add_column(sa.Column("elastic", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("resize_overhead_h", sa.Float, nullable=False,
                                   server_default="0"))
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("directive", sa.String(16)))
        batch.add_column(sa.Column("directive_gpus", sa.Integer))
        batch.add_column(sa.Column("directive_at_s", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("directive_at_s")
        batch.drop_column("directive_gpus")
        batch.drop_column("directive")
    with op.batch_alter_table("jobs") as batch:
        for name in ("resize_overhead_h", "elastic", "paused_gpus", "paused_gpu_type",
                     "paused_site", "done_steps", "checkpoint_gb", "checkpoint_overhead_h",
                     "preemptible"):
            batch.drop_column(name)
