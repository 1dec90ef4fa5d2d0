"""Alembic's environment for the live broker: runs on the connection ``api.db`` hands over.

``carbonfed serve`` and ``carbonfed db upgrade`` call ``api.db.upgrade_schema``, which builds the
Alembic config in code (no alembic.ini) and passes its connection in ``config.attributes``.
"""

from __future__ import annotations

from alembic import context

from api.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=True)  # SQLite alters tables by copying them
with context.begin_transaction():
    context.run_migrations()
