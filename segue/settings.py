"""All configuration, read once from the environment (prefix ``SEGUE_``) and passed down."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split(value: str | list[str]) -> list[str]:
    """``SEGUE_API_KEYS=k1,k2`` style lists (a list passed in code is kept)."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def metrics_host_port(addr: str) -> tuple[str, int]:
    """``0.0.0.0:9100``, ``[::]:9100`` or ``:9100`` (all addresses) -> (host, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"SEGUE_METRICS_ADDR must be host:port, e.g. 0.0.0.0:9100; got {addr!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, e.g. a container's cpuset), not the
    machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEGUE_", extra="ignore")

    # where things live
    data_dir: Path = Path("./segue-data")
    database_url: str | None = None  # default: sqlite:///<data_dir>/segue.db
    storage_url: str | None = None  # default: the local folder <data_dir>/objects; or s3://bucket/prefix
    s3_endpoint_url: str | None = None
    s3_public_endpoint_url: str | None = None  # where clients reach the store; signs links
    public_url: str | None = None  # base of the links handed out; default: from host and port
    models_file: Path | None = None  # a JSON model registry replacing the built-in one

    # the server
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1  # in-process workers started by `segue serve`
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)  # SEGUE_API_KEYS=k1,k2
    log_level: str = "info"
    # host:port of a separate /metrics listener (e.g. an admin network); when set, the API
    # port no longer serves /metrics, and `segue worker` processes serve it there too
    metrics_addr: str | None = None
    # FastAPI's own OpenTelemetry traces, metrics and logs, to the globally configured
    # providers (opentelemetry-instrument, say); off, a request does not look for them
    opentelemetry: bool = False
    max_body_bytes: int = 64 * 1024 * 1024
    # a stored key found is remembered this long: `segue keys revoke` takes effect within it
    key_cache_ttl: float = 2.0
    # creates decoding their images and storing their task at once in one API process; the
    # others wait their turn in arrival order (see api/deps.run_create)
    create_concurrency: int = Field(default_factory=usable_cpus, ge=1)

    # images
    allow_private_urls: bool = False
    image_max_bytes: int = 30 * 1024 * 1024
    image_connect_timeout: float = 10.0
    image_total_timeout: float = 60.0
    image_max_redirects: int = 3

    # video
    video_crf: int = 18
    video_preset: str = "veryfast"

    # lifetimes (seconds)
    link_ttl: int = 86_400
    record_ttl: int = 7 * 86_400
    cancelled_ttl: int = 86_400
    lease_ttl: int = 60  # a worker's claim lapses unless renewed (heartbeat)
    poll_interval: float = 0.5  # how often an idle worker looks for work
    # on PostgreSQL, idle workers also wake on LISTEN/NOTIFY; turn off behind a proxy that
    # pools by transaction (PgBouncer), where LISTEN does not work; the poll remains
    listen: bool = True
    sweep_interval: float = 60.0

    # limits per key (defaults; a stored key may override)
    rate_limit_lite: int = 300
    rate_limit_pro: int = 600
    rate_window: int = 60
    max_queued: int = 120

    # callbacks (docs/lifecycle.md): the timeout bounds a whole exchange; a final status is
    # retried on the backoff schedule (seconds before each retry, the last step repeating),
    # about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h as Standard Webhooks senders do
    callback_timeout: float = 5.0
    callback_retries: int = 6
    callback_backoff: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0]
    )

    # progress stream (GET .../tasks/{id}/events)
    events_poll_interval: float = 0.5  # how often the stream reads the task from the store
    events_keepalive: float = 15.0  # a comment line after this many silent seconds

    _split_lists = field_validator("api_keys", "callback_backoff", mode="before")(
        lambda value: _split(value)
    )

    @field_validator("metrics_addr")
    @classmethod
    def _check_metrics_addr(cls, value: str | None) -> str | None:
        if value:
            metrics_host_port(value)
        return value or None

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'segue.db'}"
