"""Hardening (issue 25): assignments record the run time their site reported (broker-clock
hours between its start and completion reports, beside the expected ``runtime_h``); offers
record the site's last heartbeat (liveness); jobs record their GPU-hours on the reference GPU
(the per-site queue quota). All empty for existing rows.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("reported_runtime_h", sa.Float))
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("heartbeat_at_s", sa.Float))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("reference_gpu_h", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("reference_gpu_h")
    with op.batch_alter_table("offers") as batch:
        batch.drop_column("heartbeat_at_s")
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("reported_runtime_h")
