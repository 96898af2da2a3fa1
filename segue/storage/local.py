"""Objects in a local folder, handed out as HMAC-signed, expiring ``/files/...`` links.

Used when Segue runs on one machine: the API process itself serves the files
(``segue.api.files``), so a link is only as good as its signature and expiry.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

# Suffix -> content type for what Segue stores; the route needs no side files.
CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".json": "application/json",
}


def load_secret(path: Path) -> bytes:
    """Read the link-signing secret, creating 32 random bytes (mode 0600) on first use.

    The file is written under a temporary name and hard-linked into place, so two processes
    starting at once agree on one secret and nobody reads a half-written file.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, secrets.token_bytes(32))
        os.fsync(fd)
        os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race: use its secret
    finally:
        os.unlink(tmp)
    return path.read_bytes()


def check_key(key: str) -> str:
    """Refuse keys that could name something outside the store's folder."""
    if not key or "\\" in key or "\x00" in key or key.startswith("/"):
        raise ValueError(f"object key {key!r} is not a relative slash-separated name")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"object key {key!r} has an empty, '.' or '..' segment")
    return key


def content_type_for(key: str) -> str:
    return CONTENT_TYPES.get(Path(key).suffix.lower(), "application/octet-stream")


class LocalStore:
    """Files under ``root/<key>``; links signed with HMAC-SHA256 over ``"{key}\\n{expires}"``."""

    def __init__(self, root: Path, secret: bytes, public_url: str) -> None:
        if len(secret) < 16:
            raise ValueError("the link-signing secret must be at least 16 bytes")
        self.root = Path(root)
        self._secret = secret
        self.public_url = public_url.rstrip("/")

    def path(self, key: str) -> Path:
        """The file for ``key``; raises ValueError for keys escaping the root (symlinks too)."""
        path = self.root / check_key(key)
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise ValueError(f"object key {key!r} leads outside the store")
        return path

    def put(self, key: str, source: Path, content_type: str) -> None:
        """Copy to a temporary file beside the target, then rename: readers never see half."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delete(self, key: str) -> None:
        path = self.path(key)
        path.unlink(missing_ok=True)
        # Tidy the now-empty folders so the sweeper leaves no skeleton behind.
        parent, root = path.parent, self.root.resolve()
        while parent.resolve() != root and parent.resolve().is_relative_to(root):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def download(self, key: str, dest: Path) -> None:
        shutil.copyfile(self.path(key), dest)

    def sign(self, key: str, expires_at: int) -> str:
        message = f"{key}\n{int(expires_at)}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def url(self, key: str, expires_at: int) -> str:
        check_key(key)
        signature = self.sign(key, expires_at)
        return (
            f"{self.public_url}/files/{quote(key, safe='/')}"
            f"?expires={int(expires_at)}&signature={signature}"
        )

    def signature_ok(self, key: str, expires: int, signature: str) -> bool:
        """Whether ``signature`` was made by this store for this key and expiry (constant-time)."""
        expected = self.sign(key, expires).encode()
        return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))

    def verify(self, key: str, expires: int, signature: str, now: float | None = None) -> bool:
        """True when the signature matches and ``expires`` has not passed."""
        current = time.time() if now is None else now
        return self.signature_ok(key, expires, signature) and current <= int(expires)
