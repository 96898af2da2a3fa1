"""The object-store seam: where finished videos and last frames are kept, and how links are made.

One small protocol so that the worker and the sweeper never care whether the bytes sit in a
local folder (one machine) or an S3 bucket (many machines). ``open_store`` is the only place
that reads the storage settings.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from segue.settings import Settings


@runtime_checkable
class ObjectStore(Protocol):
    """Keys are relative, slash-separated names such as ``videos/<task id>.mp4``."""

    def put(self, key: str, source: Path, content_type: str) -> None:
        """Store the file at ``source`` under ``key``, replacing what was there, atomically."""

    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error (sweeps may run twice)."""

    def url(self, key: str, expires_at: int) -> str:
        """A link that downloads ``key`` until the Unix time ``expires_at``."""

    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""

    def download(self, key: str, dest: Path) -> None:
        """Copy ``key`` into the local file ``dest``."""


@contextmanager
def local_file(store: ObjectStore, key: str) -> Iterator[Path]:
    """``key`` as a local file: the store's own file where it keeps one, else a download."""
    from segue.storage.local import LocalStore

    if isinstance(store, LocalStore):
        yield store.path(key)
        return
    with tempfile.TemporaryDirectory(prefix="segue-object-") as tmp:
        dest = Path(tmp) / Path(key).name
        store.download(key, dest)
        yield dest


def open_store(settings: Settings) -> ObjectStore:
    """Build the store named by ``settings.storage_url``.

    ``None`` or ``file://`` keeps objects under ``<data_dir>/objects`` (or the folder a
    ``file:///path`` URL names) and signs links with a secret kept in ``<data_dir>/secret.key``;
    ``s3://bucket/prefix`` uses S3 (or an S3-compatible endpoint) with presigned links.
    """
    from segue.storage.local import LocalStore, load_secret

    raw = settings.storage_url
    parts = urlsplit(raw) if raw else None
    if parts is None or parts.scheme == "file":
        folder = unquote(parts.netloc + parts.path) if parts is not None else ""
        root = Path(folder) if folder else settings.data_dir / "objects"
        secret = load_secret(settings.data_dir / "secret.key")
        return LocalStore(root, secret, settings.resolved_public_url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"SEGUE_STORAGE_URL {raw!r} names no bucket (s3://bucket/prefix)")
        from segue.storage.s3 import S3Store  # boto3 is optional: import only when asked for

        return S3Store(parts.netloc, parts.path.strip("/"), endpoint_url=settings.s3_endpoint_url,
                       public_endpoint_url=settings.s3_public_endpoint_url)
    raise ValueError(f"SEGUE_STORAGE_URL {raw!r} is neither file://... nor s3://bucket/prefix")
