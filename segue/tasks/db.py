"""Database engine set-up and schema migrations (Alembic: `segue migrate`, or at first start)."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import namedtuple
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any

import pydantic_core
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Select, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import PoolProxiedConnection

from segue.errors import ServiceUnavailable, StorageFull
from segue.tasks.watchdog import UNWATCHED, Watchdog

log = logging.getLogger("segue.tasks")

MIGRATIONS = Path(__file__).parent / "migrations"
READ_ONLY = "segue_read_only"  # execution option of SqlStore._read's connections
_WRITERS: dict[str, threading.RLock] = {}  # one per SQLite database file in this process
_WRITERS_LOCK = threading.Lock()
DATABASE_TIMEOUT = 30.0  # seconds: SQLite's busy wait, PostgreSQL's longest statement
CONNECT_TIMEOUT = 5  # seconds to reach a PostgreSQL server before a request is answered 503
WATCHDOG_MARGIN = 5.0  # seconds past the statement timeout before a held connection is cut
STORE_RETRY_AFTER = 5  # the Retry-After of a 503 while the database is unavailable
WARN_EVERY = 10.0  # at most one log line this often while the database stays unavailable
_warned = [0.0]


@contextmanager
def store_errors(engine: Engine) -> Iterator[None]:
    """Turn the database being unavailable into a 503 the client may retry.

    Unavailable means the driver's *operational* errors: a server down or restarting, a
    connection lost, a statement or lock timeout, a full disk. Anything else (a constraint,
    a programming error) stays what it is. ``RowReader`` works on the driver's own
    connections, whose errors SQLAlchemy has not wrapped, hence both kinds.
    """
    dbapi = engine.dialect.dbapi
    raw = (dbapi.OperationalError,) if dbapi is not None else ()
    try:
        yield
    except (OperationalError, *raw) as exc:
        reason = exc.orig if isinstance(exc, DBAPIError) else exc
        full = _disk_full(reason)
        now = time.monotonic()
        if now - _warned[0] >= WARN_EVERY:
            _warned[0] = now
            log.warning("task store full" if full else "task store unavailable",
                        extra={"reason": str(reason).strip()})
        if full:
            raise StorageFull(
                "The task store's disk is full: nothing can be written until space is freed.",
                retry_after=STORE_RETRY_AFTER) from exc
        raise ServiceUnavailable(
            "The task store is unavailable for the moment. Retry in a few seconds.",
            retry_after=STORE_RETRY_AFTER) from exc


def _disk_full(error: BaseException | None) -> bool:
    """SQLite's SQLITE_FULL, or PostgreSQL's disk_full (SQLSTATE 53100)."""
    return (getattr(error, "sqlstate", None) == "53100"
            or "database or disk is full" in str(error))


def _writer_lock(engine: Engine) -> AbstractContextManager[object]:
    """SQLite writers of this process queue here, in order, for the one write lock.

    Left to SQLite, a writer that finds the lock taken sleeps in its busy handler (up to
    100 ms a try) while newcomers take the lock: under load some creates waited seconds.
    Writers of other processes still meet at SQLite's busy timeout.
    """
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _WRITERS_LOCK:
        return _WRITERS.setdefault(str(engine.url), threading.RLock())


def _to_json(value: Any) -> str:
    return pydantic_core.to_json(value).decode()


# JSON columns are written and read with pydantic's encoder and parser rather than the
# standard library's: a create's 0.86 MB of data-URL images is encoded in 0.9 ms instead of
# 3.7, a poll's stored request decoded in 3.6 µs instead of 9.4.
JSON_CODEC: dict[str, Any] = {"json_serializer": _to_json,
                              "json_deserializer": pydantic_core.from_json}


def make_engine(url: str, timeout: float | None = None) -> Engine:
    """An engine whose waits are bounded by ``timeout`` seconds (``DATABASE_TIMEOUT``):
    SQLite's wait for another process's write lock, PostgreSQL's longest statement (and
    ``CONNECT_TIMEOUT`` to connect), so that a database in trouble answers 503 instead of
    holding requests."""
    timeout = DATABASE_TIMEOUT if timeout is None else timeout
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        # a "file:...?uri=true" URL names a file by URI (read-only opens, shared caches):
        # its folder must exist already, and "file:" is no folder to make
        if path and path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # As many connections as the API's thread pool has threads (40): a request must
        # not wait for a connection while WAL lets every reader run at once.
        engine = create_engine(url, connect_args={"check_same_thread": False,
                                                  "timeout": timeout},
                               pool_size=10, max_overflow=30, **JSON_CODEC)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # WAL lets readers work while a worker writes; the busy timeout makes
            # concurrent writers wait instead of failing.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
            dbapi_conn.isolation_level = None  # SQLAlchemy's BEGIN below, not pysqlite's

        @event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            # Writers take the write lock at BEGIN so read-then-write transactions never
            # deadlock into SQLITE_BUSY halfway through. Readers (SqlStore._read) begin
            # deferred: WAL gives them a snapshot, so they neither wait for nor block writers.
            read = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(_with_timeouts(url, timeout), pool_size=10, max_overflow=20,
                           pool_timeout=timeout, **JSON_CODEC)
    # pings at check-out and cuts a connection held past the statement timeout: a frozen
    # server answers neither, and libpq would wait for it forever
    Watchdog(engine, limit=timeout + WATCHDOG_MARGIN, ping=CONNECT_TIMEOUT)
    return engine


def _with_timeouts(url: str, timeout: float) -> str:
    """The URL with libpq's connect timeout and a statement timeout, unless it sets its own."""
    parsed = make_url(url)
    query = dict(parsed.query)
    query.setdefault("connect_timeout", str(CONNECT_TIMEOUT))
    options = str(query.get("options", ""))
    if "statement_timeout" not in options:
        query["options"] = f"{options} -c statement_timeout={int(timeout * 1000)}".strip()
    return parsed.set(query=query).render_as_string(hide_password=False)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


class SchemaOutOfDate(RuntimeError):
    """The database was made by another version of Segue; ``segue migrate`` settles it."""


def _locked(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        # A migration (or the wait for another process's) may outlast the statement
        # timeout meant for requests.
        conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
        conn.connection.info[UNWATCHED] = True  # nor is it cut by the watchdog
        # One migrator at a time when many processes start together.
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7261934)")


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision (``segue migrate``); (before, after)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        _locked(conn)
        before = MigrationContext.configure(conn).get_current_revision()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, head_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None  # the package ships its migrations
    return head


def ensure_schema(engine: Engine) -> None:
    """At start: create the schema in an empty database, refuse one at another revision.

    Upgrading is ``segue migrate``'s job alone, run once before new processes roll out,
    so that API replicas and workers of two versions never migrate under each other.
    """
    with engine.begin() as conn:
        _locked(conn)
        current = MigrationContext.configure(conn).get_current_revision()
    head = head_revision()
    if current is None:
        migrate(engine)
    elif current != head:
        scripts = ScriptDirectory.from_config(alembic_config())
        known = {rev.revision for rev in scripts.walk_revisions()}
        if current in known:
            raise SchemaOutOfDate(
                f"The database schema is at revision {current}; this version of Segue needs "
                f"{head}. Run `segue migrate` once (with the same SEGUE_DATABASE_URL), then "
                "start the API and worker processes again.")
        raise SchemaOutOfDate(
            f"The database schema is at revision {current}, which this version of Segue does "
            f"not know (its newest is {head}): the database was migrated by a newer Segue. "
            "Run that version instead.")


class SqlStore:
    """Base of the stores: one short transaction per operation."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._readers = sessionmaker(engine.execution_options(**{READ_ONLY: True}),
                                     expire_on_commit=False)
        self._postgres = engine.dialect.name == "postgresql"
        self._writer = _writer_lock(engine)

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with store_errors(self.engine), self._writer, self._sessions.begin() as session:
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        """A transaction that only reads (polls, listings, key look-ups): it takes no lock."""
        with store_errors(self.engine), self._readers.begin() as session:
            yield session

    @property
    def reads_inline(self) -> bool:
        """Whether a short read is cheaper run on the caller's thread than handed to another.

        SQLite's reads are local and, under WAL, never wait for a writer: a primary-key read
        takes less time than a hand-off to the thread pool. A server's reads wait on the
        network, so async code must not make them on its event loop.
        """
        return self.engine.dialect.name == "sqlite"


class _Held:
    """A connection taken out of the pool for good by the thread that holds this.

    Closed as soon as the thread ends (its ``threading.local`` is cleared then): left to the
    garbage collector, the connections of the API thread pool's threads, which end after ten
    idle seconds, would keep their files open until a full collection.
    """

    _serials = itertools.count()

    def __init__(self, connection: PoolProxiedConnection) -> None:
        connection.detach()
        self.connection = connection
        self._serial = next(self._serials)
        self._pragma = connection.cursor()

    def version(self) -> tuple[int, int]:
        """SQLite's ``PRAGMA data_version``, with this connection's serial: it changes
        whenever another connection, of this process or another, commits (this one only
        reads). Its values mean nothing across connections, hence the serial."""
        (version,) = self._pragma.execute("PRAGMA data_version").fetchone()
        return self._serial, version

    def __del__(self) -> None:
        with suppress(Exception):  # at interpreter exit, say: the file closes with the process
            self.connection.close()


class RowReader:
    """One read statement run on the driver's cursor: for the hottest read, a poll.

    SQLAlchemy compiles the statement once, for the engine's dialect, and the columns' own
    types decode the values (JSON on SQLite); what is skipped is SQLAlchemy's per-call
    execution machinery, two thirds of a poll's read. On SQLite the driver's connection is
    in autocommit mode (``make_engine``): one statement reads one snapshot, with no BEGIN.
    Rows are named tuples with the selected columns' names.

    On SQLite each thread that reads keeps a connection of its own for this statement
    (taken out of the pool once): a check-out and check-in cost more than the read does
    (43-52 µs a read through the pool against 12-22 held, in the same loop). The threads
    that read are few (the event loop, the API's thread pool, the workers), and a SQLite
    connection is a file handle. A database server's connections are too dear to hold one
    per thread, so there they come from the pool each time. (As with the pool, a process
    that forks must not read through its parent's readers; Segue never forks.)
    """

    def __init__(self, engine: Engine, statement: Select[Any]) -> None:
        self._engine = engine
        compiled = statement.compile(dialect=engine.dialect)
        self._compiled = compiled
        self._sql = str(compiled)
        self._columns = list(statement.selected_columns)
        self._record: Any = namedtuple("Record", [c.name for c in self._columns])  # type: ignore[misc]
        self._decoders: list[tuple[int, Any]] | None = None  # (column, decoder), first result
        self._held = threading.local() if engine.dialect.name == "sqlite" else None

    def first(self, **params: object) -> Any:
        with store_errors(self._engine):
            return self._first(params)

    def _first(self, params: dict[str, object]) -> Any:
        bound = self._compiled.construct_params(params)
        positions = self._compiled.positiontup  # None where the driver takes names
        args = tuple(bound[name] for name in positions) if positions else bound
        if self._held is None:
            pooled = self._engine.raw_connection()  # from the pool, and back to it
            try:
                values = self._fetch(pooled, args)
            finally:
                pooled.close()
        else:
            values = self._fetch(self._held_connection().connection, args)
        if values is None:
            return None
        if self._decoders:
            values = list(values)
            for column, decode in self._decoders:
                values[column] = decode(values[column])
        return self._record._make(values)

    def version(self) -> object | None:
        """A value that changes whenever anything is committed to the database, as this
        thread's connection sees it (``_Held.version``); None on a database server, which
        cannot tell as cheaply."""
        return None if self._held is None else self._held_connection().version()

    def _held_connection(self) -> _Held:
        assert self._held is not None
        held: _Held | None = getattr(self._held, "connection", None)
        if held is None:
            held = self._held.connection = _Held(self._engine.raw_connection())
        return held

    def _fetch(self, conn: Any, args: Any) -> Any:
        cursor = conn.cursor()
        try:
            cursor.execute(self._sql, args)
            values = cursor.fetchone()
            if self._decoders is None:
                dialect = self._engine.dialect
                processors = (
                    c.type.dialect_impl(dialect).result_processor(dialect, described[1])
                    for c, described in zip(self._columns, cursor.description, strict=True))
                self._decoders = [(n, p) for n, p in enumerate(processors) if p is not None]
            return values
        finally:
            cursor.close()
