"""The schema as the first live broker made it (its hand-rolled schema_version 1).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )
    op.create_table(
        "sites",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("number", sa.Integer, nullable=False, unique=True),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("gpus", sa.JSON, nullable=False),
        sa.Column("pue", sa.Float, nullable=False),
        sa.Column("egress_usd_per_gb", sa.Float, nullable=False),
        sa.Column("token_sha256", sa.String(64), unique=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("registered_at_s", sa.Float, nullable=False),
        sa.Column("deregistered_at_s", sa.Float),
    )
    op.create_table(
        "offers",
        sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.id"), primary_key=True),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("start_h", sa.Float, nullable=False),
        sa.Column("slot_h", sa.Float, nullable=False),
        sa.Column("free_gpus", sa.JSON, nullable=False),
        sa.Column("price_usd_per_mwh", sa.JSON, nullable=False),
        sa.Column("carbon_g_per_kwh", sa.JSON, nullable=False),
        sa.Column("received_at_s", sa.Float, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("home_site", sa.String(64), sa.ForeignKey("sites.id"), nullable=False),
        sa.Column("job_type", sa.String(64), nullable=False),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("work_steps", sa.Float, nullable=False),
        sa.Column("submit_h", sa.Float, nullable=False),
        sa.Column("deadline_h", sa.Float),
        sa.Column("dataset_gb", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("submitted_at_s", sa.Float, nullable=False),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_table(
        "plan_rounds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("now_h", sa.Float, nullable=False),
        sa.Column("created_at_s", sa.Float, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("objective_usd", sa.Float),
        sa.Column("bound_usd", sa.Float),
        sa.Column("n_options", sa.Integer, nullable=False),
        sa.Column("queued", sa.Integer, nullable=False),
        sa.Column("solve_time_s", sa.Float, nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
    )
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.id"), nullable=False),
        sa.Column("gpu_type", sa.String(64), nullable=False),
        sa.Column("round_id", sa.Integer, sa.ForeignKey("plan_rounds.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_h", sa.Float, nullable=False),
        sa.Column("transfer_h", sa.Float, nullable=False),
        sa.Column("runtime_h", sa.Float, nullable=False),
        sa.Column("energy_kwh", sa.Float, nullable=False),
        sa.Column("carbon_kg", sa.Float, nullable=False),
        sa.Column("energy_cost_usd", sa.Float, nullable=False),
        sa.Column("transfer_cost_usd", sa.Float, nullable=False),
        sa.Column("created_at_s", sa.Float, nullable=False),
        sa.Column("acknowledged_at_s", sa.Float),
        sa.Column("started_at_s", sa.Float),
        sa.Column("completed_at_s", sa.Float),
    )
    op.create_index("ix_assignments_site_status", "assignments", ["site_id", "status"])
    op.create_index("ix_assignments_job", "assignments", ["job_id"])


def downgrade() -> None:
    for table in ("assignments", "plan_rounds", "jobs", "offers", "sites", "meta"):
        op.drop_table(table)
