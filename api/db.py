"""Database engine and schema: SQLite file by default, PostgreSQL when the URL says so.

SQLite is made safe for a threaded server: WAL journal (readers never block the writer), a busy
timeout (writers of other processes queue instead of failing), ``BEGIN IMMEDIATE`` for every
transaction that may write, so one that reads and then writes cannot be refused half-way (a
deferred transaction that upgrades its read lock fails at once with "database is locked",
whatever the timeout), and in-process writers take turns on a lock first: SQLite's own busy
wait sleeps in steps of up to 100 ms, which under 200 concurrent writers cost seconds at p99.
Read-only transactions begin deferred and never wait.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.orm import Session

from api.models import Base, Meta

SCHEMA_VERSION = 1
READ_ONLY = "carbonfed_read_only"
SQLITE_BUSY_TIMEOUT_MS = 30_000

# version -> step that migrates a database from version - 1; create_all makes new tables.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=20,
            max_overflow=20,
        )
        _make_sqlite_safe(engine)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


def _make_sqlite_safe(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's begin event issues BEGIN itself
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "synchronous=NORMAL",  # durable in WAL mode across process crashes
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class Database:
    """An engine plus short transactions: ``read()`` and ``write()`` yield a Session."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._reader = self.engine.execution_options(**{READ_ONLY: True})
        self._write_lock = threading.Lock() if url.startswith("sqlite") else None

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self._reader) as session, session.begin():
            yield session

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction committed on leaving (rolled back on an error)."""
        with self._write_lock or contextlib.nullcontext(), Session(self.engine) as session, \
                session.begin():
            yield session

    @contextlib.contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """Like ``write()`` but a Core connection, for hot paths that need no ORM objects."""
        with self._write_lock or contextlib.nullcontext(), self.engine.begin() as connection:
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()


def create_schema(engine: Engine) -> None:
    """Create missing tables, then run the migrations from the stored schema version."""
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        row = session.get(Meta, "schema_version")
        version = int(row.value) if row else SCHEMA_VERSION
        for step in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[step](session.connection())
        if row is None:
            session.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
        else:
            row.value = str(SCHEMA_VERSION)


def read_meta(session: Session, key: str) -> str | None:
    return session.scalar(select(Meta.value).where(Meta.key == key))


def write_meta(session: Session, key: str, value: str) -> None:
    row = session.get(Meta, key)
    if row is None:
        session.add(Meta(key=key, value=value))
    else:
        row.value = value
