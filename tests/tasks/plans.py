"""What the query-plan tests share: the statements a store call sends, and their plans."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event, text


@contextmanager
def selects(engine: Engine, marker: str) -> Iterator[list[tuple[str, object]]]:
    """The SELECT statements (with their parameters) containing ``marker`` that ``engine``
    sends inside the block."""
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and marker in statement:
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def plan(engine: Engine, statement: str, params: object, *, no_sort: bool = False) -> str:
    """The database's plan for ``statement`` on freshly analysed tables. On PostgreSQL a
    sequential scan is ruled out (a table this small would be scanned) and, with
    ``no_sort``, a sort too: then only a usable index avoids one."""
    with engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        if engine.dialect.name == "postgresql":
            cursor.execute("SET enable_seqscan = off")
            if no_sort:
                cursor.execute("SET enable_sort = off")
            cursor.execute("ANALYZE tasks")
            cursor.execute("EXPLAIN " + statement, params)
        else:
            conn.execute(text("ANALYZE"))
            cursor.execute("EXPLAIN QUERY PLAN " + statement, params)
        return "\n".join(" ".join(str(c) for c in row) for row in cursor.fetchall())
