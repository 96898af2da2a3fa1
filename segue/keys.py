"""API keys: the ones in ``SEGUE_API_KEYS`` and the ones stored (hashed) by ``segue keys``.

Every request is authenticated, so a stored key, once found, is remembered for
``ttl`` seconds: a key revoked (or its limits changed) by ``segue keys`` in another
process takes effect everywhere within that time. A new key works at once (misses are
never remembered), and once any key exists the store is never open again (keys are
revoked, not deleted), so closing needs no waiting either.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, select

from segue.errors import AuthenticationError, NotFound
from segue.tasks.db import SqlStore
from segue.tasks.schema import ApiKeyRow

OPEN_KEY_ID = "public"  # the owner of every task while no key is configured


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key id owns tasks; the rest are per-key settings."""

    key_id: str
    name: str
    webhook_secret: str | None = None
    rate_limit: int | None = None
    max_queued: int | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore(SqlStore):
    def __init__(self, engine: Engine, env_keys: list[str], ttl: float = 2.0) -> None:
        super().__init__(engine)
        self._env = {hash_key(k): Principal(key_id="env-" + hash_key(k)[:12], name="env")
                     for k in env_keys}
        self._ttl = ttl
        self._closed = bool(self._env)
        self._found: dict[str, tuple[Principal, float]] = {}  # digest -> (principal, until)
        self._lock = threading.Lock()

    def create(self, name: str, *, webhook_secret: str | None = None,
               rate_limit: int | None = None, max_queued: int | None = None
               ) -> tuple[str, ApiKeyRow]:
        """A new stored key; the plain key is returned once and never stored."""
        for label, limit in (("rate_limit", rate_limit), ("max_queued", max_queued)):
            if limit is not None and limit < 1:  # 0 read as "the default", -1 refused all
                raise ValueError(f"{label} must be at least 1 (None for the default)")
        key = "sk-" + secrets.token_urlsafe(32)
        row = ApiKeyRow(
            id="key-" + secrets.token_hex(6), name=name, key_hash=hash_key(key), prefix=key[:7],
            created_at=time.time(), webhook_secret=webhook_secret, rate_limit=rate_limit,
            max_queued=max_queued,
        )
        with self._tx() as s:
            s.add(row)
        return key, row

    def list(self) -> list[ApiKeyRow]:
        with self._read() as s:
            return list(s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at)).all())

    def revoke(self, key_id: str) -> ApiKeyRow:
        with self._tx() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFound(f"The specified key {key_id} is not found.")
            row.revoked_at = row.revoked_at or time.time()
        return row

    def is_open(self) -> bool:
        """True while no key is configured at all: then every request is let in."""
        if self._closed:
            return False
        with self._read() as s:
            self._closed = s.scalars(select(ApiKeyRow.id).limit(1)).first() is not None
        return not self._closed

    def remembered(self, key: str | None) -> Principal | None:
        """The caller, when that needs no query (an env key or a key found lately)."""
        if not key or not self._closed:
            return None
        digest = hash_key(key)
        for known, principal in self._env.items():
            if hmac.compare_digest(known, digest):
                return principal
        found = self._found.get(digest)
        if found is not None and time.monotonic() < found[1]:
            return found[0]
        return None

    def authenticate(self, key: str | None) -> Principal:
        if self.is_open():
            return Principal(key_id=OPEN_KEY_ID, name="open")
        if not key:
            raise AuthenticationError()
        principal = self.remembered(key)
        if principal is not None:
            return principal
        digest = hash_key(key)
        with self._read() as s:
            row = s.scalars(select(ApiKeyRow).where(ApiKeyRow.key_hash == digest)).first()
        if row is None or row.revoked_at is not None:
            with self._lock:
                self._found.pop(digest, None)
            raise AuthenticationError()
        principal = Principal(key_id=row.id, name=row.name, webhook_secret=row.webhook_secret,
                              rate_limit=row.rate_limit, max_queued=row.max_queued)
        with self._lock:
            self._found[digest] = (principal, time.monotonic() + self._ttl)
        return principal
