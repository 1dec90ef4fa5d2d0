"""Job ids per home site (issue 25): a job keeps the id its home site gave it (``client_id``,
unique within that home) beside the broker's key (``id``, ``home/client_id`` for new jobs), so
two sites may each have a "train-1" and a site never learns another's ids.

Existing rows keep their id as their key (it was unique across the federation, and plans,
assignments, run specs and the ledger already refer to it) and take it as their client id too.
Keys are longer now (home, "/", id): the key columns widen.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID_LENGTH = 64
KEY_LENGTH = 2 * ID_LENGTH + 1  # api.models.JOB_KEY_LENGTH when this was written


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("id", type_=sa.String(KEY_LENGTH), existing_type=sa.String(ID_LENGTH),
                           existing_nullable=False)
        batch.add_column(sa.Column("client_id", sa.String(ID_LENGTH)))
    for table in ("job_runs", "assignments"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("job_id", type_=sa.String(KEY_LENGTH),
                               existing_type=sa.String(ID_LENGTH))
    jobs = sa.table("jobs", sa.column("id", sa.String), sa.column("client_id", sa.String))
    op.execute(jobs.update().values(client_id=jobs.c.id))
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("client_id", existing_type=sa.String(ID_LENGTH), nullable=False)
        batch.create_unique_constraint("uq_jobs_home_client", ["home_site", "client_id"])


def downgrade() -> None:
    # the keys stay as they are (and their columns wide): a job submitted since is known by
    # its key ("home/id") to the code before this revision
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("uq_jobs_home_client", type_="unique")
        batch.drop_column("client_id")
