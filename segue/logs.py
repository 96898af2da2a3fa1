"""Structured (JSON-lines) logs carrying the request id of the request being served."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar

import pydantic_core

request_id: ContextVar[str] = ContextVar("request_id", default="-")
# Not written: the record's own attributes, and uvicorn's ``color_message`` (its message
# again, with terminal colour codes).
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line (``json_line``): the record's time, level, logger, message,
    the request id and its ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__
        extra = {name: fields[name] for name in fields.keys() - _STANDARD}
        exc = self.formatException(record.exc_info) if record.exc_info else None
        return json_line(record.created, record.levelname.lower(), record.name,
                         record.getMessage(), extra, exc)


def json_line(created: float, level: str, logger: str, msg: str, fields: dict[str, object],
              exc: str | None = None) -> str:
    """A log line: time, level, logger, message, request id, then ``fields`` in name order
    (anything not JSON written as its ``str``), then the traceback if any."""
    entry: dict[str, object] = {"ts": round(created, 3), "level": level, "logger": logger,
                                "msg": msg, "request_id": request_id.get()}
    for name in sorted(fields):
        entry[name] = fields[name]
    if exc is not None:
        entry["exc"] = exc
    try:  # pydantic's encoder: a fifth of json.dumps's time, for a line per request
        return pydantic_core.to_json(entry, fallback=str).decode()
    except pydantic_core.PydanticSerializationError:  # bytes that are not UTF-8, say
        return json.dumps(entry, default=str)


_http = logging.getLogger("segue.http")
_handler: logging.StreamHandler | None = None  # type: ignore[type-arg]  # configure()'s


def request_line(method: str, path: str, status: int, ms: float) -> None:
    """Log a served request: logger ``segue.http``, level INFO, ``{"msg": "request", ...}``.

    Where logging is as ``configure`` left it, the line is written straight to its handler's
    stream, made by the ``json_line`` that ``JsonFormatter`` makes records' lines with: a
    record's way through the logging module (a ``LogRecord``, the logger, the handler's
    chain) cost 10-21 µs of a poll's 200-230 µs of server CPU (``benchmarks/README.md``).
    Anything else (another handler, a filter, a logger configured apart: an application
    embedding Segue's, tests) takes the logging module's way, like any other line.
    """
    if not _http.isEnabledFor(logging.INFO):
        return
    fields = {"method": method, "ms": ms, "path": path, "status": status}
    handler = _handler
    root = logging.root
    if (handler is None or _http.handlers or _http.filters or not _http.propagate
            or len(root.handlers) != 1 or root.handlers[0] is not handler or root.filters
            or handler.filters or handler.level > logging.INFO):
        _http.info("request", extra=fields)
        return
    text = json_line(time.time(), "info", "segue.http", "request", fields)
    with handler.lock:  # type: ignore[union-attr]
        try:
            handler.stream.write(text + handler.terminator)
            handler.flush()
        except Exception:  # a closed stream, say: as the logging module would report it
            handler.handleError(_http.makeRecord("segue.http", logging.INFO, "", 0,
                                                 "request", (), None, extra=fields))


class _DeclinedUpgrade(logging.Filter):
    """Drops uvicorn's warning about an h2c upgrade offer it declined: Java's HttpClient makes
    one with every request, and the request is served over HTTP/1.1 all the same."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Unsupported upgrade request."


class _MigrationChatter(logging.Filter):
    """Drops what Alembic says each time it looks at the schema ("Context impl SQLiteImpl.",
    "Will assume non-transactional DDL.": three times each at a first start); its
    "Running upgrade 0008 -> 0009, ..." lines, which say what changed, stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Context impl", "Will assume"))


def configure(level: str = "info") -> None:
    """JSON lines on stderr at ``level`` (``SEGUE_LOG_LEVEL``), uvicorn's own logs included.

    A record no longer looks up its thread, process and caller's source line: the lines do
    not show them, and they were a fifth of the cost of the access log's line per request
    (24 → 19 µs in a loop; the optimizations the logging HOWTO lists).
    """
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None  # type: ignore[attr-defined]  # the HOWTO's switch for findCaller
    global _handler
    handler = _handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs requests
    for name, kind in (("uvicorn.error", _DeclinedUpgrade),
                       ("alembic.runtime.migration", _MigrationChatter)):
        if not any(isinstance(f, kind) for f in logging.getLogger(name).filters):
            logging.getLogger(name).addFilter(kind())
