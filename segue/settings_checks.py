"""The checks of the settings that are more than a type and a range (``settings.py``).

Each returns the value or raises ``ValueError`` with what is wrong, which the ``segue``
command prints as one line (``segue: SEGUE_X=...: why``) before it stops with status 2.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit


def http_url(value: str) -> str:
    """An absolute http(s) URL with a host (a base that links or requests are made from)."""
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
        parts.port  # noqa: B018  # raises ValueError for a port out of range
    except ValueError as exc:
        raise ValueError(f"is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError("must be an http(s) URL with a host, e.g. https://videos.example.com")
    return value.strip()


def storage_url(value: str) -> str:
    """``file:///folder``, ``s3://bucket/prefix`` (``storage.base.open_store``), or a bare
    absolute folder (``/srv/segue/objects``, ``~/videos``), taken as its ``file://`` URL."""
    value = value.strip()
    if "://" not in value:
        folder = Path(value).expanduser()
        if not folder.is_absolute():
            raise ValueError("is a relative path; give the folder as an absolute path "
                             "(or file:///folder), or s3://bucket/prefix")
        return folder.as_uri()
    parts = urlsplit(value)
    if parts.scheme == "file" and (parts.netloc + parts.path):
        return value
    if parts.scheme == "s3" and parts.netloc:
        return value
    raise ValueError("is neither file:///folder nor s3://bucket/prefix")


def database_url(value: str) -> str:
    """A SQLite or PostgreSQL URL; a SQLite file's folder must exist.

    Why the folder: a mistyped path would otherwise start a new, empty store beside the
    real one (every task and key seemingly gone). The default database, in
    ``SEGUE_DATA_DIR``, is still created with its folder.
    """
    from sqlalchemy.engine import make_url  # only when a database is configured
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value.strip())
    except ArgumentError:
        raise ValueError("is not a database URL; use sqlite:///path/segue.db or "
                         "postgresql://user@host/database") from None
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"names {backend}, which Segue does not run on; use sqlite:///... "
                         "or postgresql://...")
    path = url.database or ""
    if backend == "sqlite" and path and path != ":memory:" and not path.startswith("file:"):
        folder = Path(path).expanduser().parent
        if not folder.is_dir():
            raise ValueError(f"names a file in {folder}, a folder that does not exist "
                             "(create it, or correct the path)")
    return value.strip()
