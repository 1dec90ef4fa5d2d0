"""Enrolment (site states, one-time enrolment tokens, per-site bounds) and job leases.

``sites.active`` becomes ``sites.state`` (active / deregistered; existing rows keep their
meaning); offers gain the assignments a site holds; assignments gain lease renewal, requeue
and late-completion stamps.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("state", sa.String(16), nullable=False,
                                   server_default="active"))
        batch.add_column(sa.Column("enrol_token_sha256", sa.String(64)))
        for column in ("min_price_usd_per_mwh", "max_price_usd_per_mwh",
                       "min_carbon_g_per_kwh", "max_carbon_g_per_kwh"):
            batch.add_column(sa.Column(column, sa.Float))
        batch.create_unique_constraint("uq_sites_enrol_token_sha256", ["enrol_token_sha256"])
    sites = sa.table("sites", sa.column("state", sa.String), sa.column("active", sa.Boolean))
    op.execute(sites.update().where(sites.c.active == sa.false()).values(state="deregistered"))
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("active")
    with op.batch_alter_table("offers") as batch:
        batch.add_column(sa.Column("holding", sa.JSON, nullable=False, server_default="[]"))
        # sequences go up to 2^62: INTEGER overflowed on PostgreSQL (a 500 the fuzzer found)
        batch.alter_column("sequence", type_=sa.BigInteger, existing_type=sa.Integer,
                           existing_nullable=False)
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("renewed_at_s", sa.Float))
        batch.add_column(sa.Column("requeued_at_s", sa.Float))
        batch.add_column(sa.Column("requeue_reason", sa.String(32)))
        batch.add_column(sa.Column("late_completion_at_s", sa.Float))
    # leases already acknowledged count from their last known sign of life
    assignments = sa.table(
        "assignments", sa.column("renewed_at_s", sa.Float),
        sa.column("acknowledged_at_s", sa.Float), sa.column("started_at_s", sa.Float))
    op.execute(assignments.update().values(renewed_at_s=sa.func.coalesce(
        assignments.c.started_at_s, assignments.c.acknowledged_at_s)))


def downgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        for column in ("late_completion_at_s", "requeue_reason", "requeued_at_s",
                       "renewed_at_s"):
            batch.drop_column(column)
    with op.batch_alter_table("offers") as batch:
        batch.drop_column("holding")
        batch.alter_column("sequence", type_=sa.Integer, existing_type=sa.BigInteger,
                           existing_nullable=False)
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("active", sa.Boolean, nullable=False,
                                   server_default=sa.true()))
    sites = sa.table("sites", sa.column("state", sa.String), sa.column("active", sa.Boolean))
    op.execute(sites.update().where(sites.c.state != "active").values(active=False))
    with op.batch_alter_table("sites") as batch:
        batch.drop_constraint("uq_sites_enrol_token_sha256", type_="unique")
        for column in ("max_carbon_g_per_kwh", "min_carbon_g_per_kwh", "max_price_usd_per_mwh",
                       "min_price_usd_per_mwh", "enrol_token_sha256", "state"):
            batch.drop_column(column)
