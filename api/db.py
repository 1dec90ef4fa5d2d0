"""Database engine and schema: SQLite file by default, PostgreSQL when the URL says so.

SQLite is made safe for a threaded server: WAL journal (readers never block the writer), a busy
timeout (writers of other processes queue instead of failing), ``BEGIN IMMEDIATE`` for every
transaction that may write, so one that reads and then writes cannot be refused half-way (a
deferred transaction that upgrades its read lock fails at once with "database is locked",
whatever the timeout), and in-process writers take turns on a lock first: SQLite's own busy
wait sleeps in steps of up to 100 ms, which under 200 concurrent writers cost seconds at p99.
Read-only transactions begin deferred and never wait.

The routes every site calls every few seconds (offer, heartbeat) write right on the event loop,
on SQLite and PostgreSQL alike. Handed to threads (anyio's pool, or one writer thread), a write
waited for the GIL after every call into the driver while the loop parsed the next requests (a
convoy): at 1,000 agents the writes fell up to 700 behind, p99 0.6-3 s on SQLite and 5.7 s on
PostgreSQL, although each write takes 1-4 ms. On the loop, every round trip to PostgreSQL
stalls it, so an offer makes one (``soft_write``: autocommit, one guarded statement; it made
five in a transaction). An asyncio driver (psycopg's, through SQLAlchemy's asyncio extension)
was tried and measured worse on the 2-core machine: 3.9 ms of API CPU a request against 2.7,
p99 6.6 s against 1.9 s. The loop also waits while a planning round writes (a few statements,
milliseconds).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from api.models import Meta

READ_ONLY = "carbonfed_read_only"
# SQLite: no BEGIN, so each statement commits by itself (the driver is in autocommit mode)
STANDALONE = "carbonfed_standalone_statements"
SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The revision of a database made before Alembic (its tables, no alembic_version table).
PRE_ALEMBIC_REVISION = "0001"
# The PostgreSQL driver is an extra (pyproject's ``postgres``): a plain install has no psycopg.
POSTGRES_DRIVER = "psycopg"
POSTGRES_EXTRA = 'pip install "carbonfed[postgres]"'


def normalize_db_url(url: str) -> str:
    """A SQLAlchemy URL from ``url``; a plain file path is taken as a SQLite file.

    Raises ValueError with a one-line reason (unparsable URL, folder that does not exist,
    PostgreSQL without its driver installed).
    """
    if "://" not in url:
        url = f"sqlite:///{url}"
    try:
        parsed = make_url(url)
    except Exception as error:  # sqlalchemy raises ArgumentError and others; one line each
        raise ValueError(f"not a database URL ({error})") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            folder = Path(database).expanduser().resolve().parent
            if not folder.is_dir():
                raise ValueError(f"folder {folder} does not exist (database {url})")
    elif parsed.get_backend_name() != "postgresql":
        raise ValueError(f"unsupported database {parsed.get_backend_name()!r} "
                         "(sqlite:///FILE or postgresql://...)")
    else:
        # checked here, before an engine exists: SQLAlchemy would raise ModuleNotFoundError
        # from deep inside create_engine. A plain postgresql:// URL gets psycopg (_psycopg).
        driver = POSTGRES_DRIVER if parsed.drivername == "postgresql" else parsed.get_driver_name()
        if importlib.util.find_spec(driver) is None:
            raise ValueError(f"PostgreSQL needs the {driver} driver, which is not installed: "
                             f"{POSTGRES_EXTRA}")
    return url


def is_in_memory(url: str) -> bool:
    """An in-memory SQLite database: only the process (and connection pool) that made it sees
    it."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def create_private(url: str) -> None:
    """Create a SQLite database file that does not exist yet readable by its owner only
    (0600): it holds token hashes. SQLite gives its ``-wal`` and ``-shm`` files the database
    file's permissions."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or is_in_memory(url) or database is None or (
            database.startswith("file:")):
        return
    path = Path(database).expanduser()
    if path.parent.is_dir() and not path.exists():
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def safe_url(url: str) -> str:
    """The URL with its password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not parsable: nothing to mask reliably, show no detail
        return "<database URL>"


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
    # No ping before each use ("optimistic" disconnect handling): the ping's round trip made
    # an offer cost 3.4 ms of API CPU instead of 2.2 and p99 6.9 s instead of 0.45 s at 1,000
    # agents. A connection found dead invalidates the pool; that request gets 503 (api.errors).
    return create_engine(_psycopg(url), pool_size=20, max_overflow=20)


def _soft_engine(url: str) -> Engine:
    """PostgreSQL connections in autocommit, each with ``synchronous_commit = off``. The
    event loop uses one at a time (a few more for the threads' rare writes)."""
    engine = create_engine(_psycopg(url), isolation_level="AUTOCOMMIT", pool_size=4,
                           max_overflow=16)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")
        dbapi_connection.commit()

    return engine


def _psycopg(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


@contextlib.contextmanager
def postgres_schema(url: str, prefix: str = "carbonfed") -> Iterator[str]:
    """A fresh schema of its own on the PostgreSQL server at ``url``, dropped afterwards; yields
    a URL whose connections use it. Tests, benchmarks and other checkouts sharing one server
    never see each other's tables."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    # a connection per use: one kept in a pool between CREATE and DROP could have died
    engine = create_engine(_psycopg(normalize_db_url(url)), poolclass=NullPool)
    with engine.begin() as c:
        c.exec_driver_sql(f"CREATE SCHEMA {name}")
    try:
        scoped = make_url(normalize_db_url(url)).update_query_dict(
            {"options": f"-csearch_path={name}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with engine.begin() as c:
            c.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        engine.dispose()


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
        options = connection.get_execution_options()
        if options.get(STANDALONE, False):
            return
        connection.exec_driver_sql("BEGIN" if options.get(READ_ONLY, False) else "BEGIN IMMEDIATE")


class Database:
    """An engine plus short transactions: ``read()`` and ``write()`` yield a Session."""

    def __init__(self, url: str) -> None:
        self.url = url
        create_private(url)
        self.engine = make_engine(url)
        self._reader = self.engine.execution_options(**{READ_ONLY: True})
        self._standalone = self.engine.execution_options(**{STANDALONE: True})
        self._write_lock = threading.Lock() if url.startswith("sqlite") else None
        self._soft_engine: Engine | None = None  # PostgreSQL: made on first use

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

    @contextlib.contextmanager
    def soft_write(self) -> Iterator[Connection]:
        """A connection for state its writer sends again within seconds (an offer), whose
        statements each stand alone (conditional, guarded: no transaction needed).

        On PostgreSQL: autocommit and ``synchronous_commit = off`` from a pool of its own, so
        a statement is one round trip to the server: a transaction added BEGIN, SET LOCAL and
        COMMIT to each offer's two, all on the event loop. A crash may lose the last moments
        of such commits, never consistency. On SQLite: each statement commits by itself (no
        BEGIN IMMEDIATE and COMMIT around it, which cost an offer about a tenth of its CPU),
        after the in-process writers' lock; its WAL commits never wait for a flush here anyway
        (``synchronous=NORMAL``)."""
        if self._write_lock is not None:
            with self._write_lock, self._standalone.connect() as connection:
                yield connection
            return
        if self._soft_engine is None:
            self._soft_engine = _soft_engine(self.url)
        with self._soft_engine.connect() as connection:
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()
        if self._soft_engine is not None:
            self._soft_engine.dispose()


def upgrade_schema(engine: Engine, revision: str = "head") -> None:
    """Bring the database to the newest schema (or to ``revision``: tests of a migration)
    with Alembic (``api/migrations``).

    A database made before Alembic (tables but no ``alembic_version``) is first stamped with
    the revision it has, so the migrations after it run and keep every row.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            # SQLite alters a table by copying it; with foreign keys enforced, dropping the old
            # copy would fail (rows of other tables point at it). The pragma is a no-op inside a
            # transaction, so it goes straight to the driver before SQLAlchemy begins one.
            _driver(connection).execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                tables = set(inspect(connection).get_table_names())
                if "alembic_version" not in tables and "sites" in tables:
                    command.stamp(config, PRE_ALEMBIC_REVISION)
                command.upgrade(config, revision)
        finally:
            if sqlite:
                _driver(connection).execute("PRAGMA foreign_keys=ON")


def _driver(connection: Connection) -> Any:
    driver = connection.connection.driver_connection
    if driver is None:
        raise RuntimeError("no driver connection")
    return driver


def schema_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if "alembic_version" not in inspect(connection).get_table_names():
            return None
        return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def stored_meta(url: str, key: str) -> str | None:
    """``key``'s value in the database at ``url`` if it has one, creating nothing: no SQLite
    file is made when there is none, no table when the schema is not there yet."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if is_in_memory(url) or database is None:
            return None
        if not database.startswith("file:") and not Path(database).expanduser().is_file():
            return None
    engine = create_engine(_psycopg(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            if Meta.__tablename__ not in inspect(connection).get_table_names():
                return None
            return connection.scalar(select(Meta.value).where(Meta.key == key))
    finally:
        engine.dispose()


def read_meta(session: Session, key: str) -> str | None:
    return session.scalar(select(Meta.value).where(Meta.key == key))


def write_meta(session: Session, key: str, value: str) -> None:
    row = session.get(Meta, key)
    if row is None:
        session.add(Meta(key=key, value=value))
    else:
        row.value = value
