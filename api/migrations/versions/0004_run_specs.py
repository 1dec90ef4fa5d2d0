"""Jobs carry what to run, and sites report how runs end.

A new table ``job_runs`` keeps each job's run spec (command or script, environment, image,
checkpoint directory, maximum run time) apart from the job; assignments gain what the site's
executor reported: ``run_ref`` (a Slurm job id, a pid), ``exit_code``, ``exit_state`` and
``run_message`` (a reject's reason, a failure's last log lines), and the run's
``measured_energy_kwh``. Existing rows keep nulls.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.id"), primary_key=True),
        sa.Column("spec", sa.JSON, nullable=False),
    )
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("run_ref", sa.String(64)))
        batch.add_column(sa.Column("exit_code", sa.Integer))
        batch.add_column(sa.Column("exit_state", sa.String(32)))
        batch.add_column(sa.Column("run_message", sa.String(2000)))
        batch.add_column(sa.Column("measured_energy_kwh", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        for column in ("measured_energy_kwh", "run_message", "exit_state", "exit_code", "run_ref"):
            batch.drop_column(column)
    op.drop_table("job_runs")
