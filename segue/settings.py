"""All configuration, read once from the environment (prefix ``SEGUE_``) and passed down."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, FilePath, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from segue import settings_checks as checks

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
# x264's presets: any other name fails every encode
Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                 "slower", "veryslow", "placebo"]


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


def default_data_dir() -> Path:
    """The platform's per-user data folder, so that every command finds the same store
    wherever it is run: ``$XDG_DATA_HOME/segue``, else ``~/.local/share/segue`` (the XDG
    convention), ``~/Library/Application Support/segue`` on macOS, ``%LOCALAPPDATA%\\segue``
    on Windows. ``SEGUE_DATA_DIR`` overrides it."""
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        return (Path(local) if local else Path.home() / "AppData" / "Local") / "segue"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "segue"
    xdg = os.environ.get("XDG_DATA_HOME", "")
    # the XDG spec: a relative path is invalid and ignored
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share") / "segue"


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, e.g. a container's cpuset), not the
    machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEGUE_", extra="ignore")

    # where things live
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None  # default: sqlite:///<data_dir>/segue.db
    storage_url: str | None = None  # default: the local folder <data_dir>/objects; or s3://bucket/prefix
    s3_endpoint_url: str | None = None
    s3_public_endpoint_url: str | None = None  # where clients reach the store; signs links
    public_url: str | None = None  # base of the links handed out; default: from host and port
    models_file: FilePath | None = None  # a JSON model registry replacing the built-in one

    # the server
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=0, le=256)  # in-process workers started by `segue serve`
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)  # SEGUE_API_KEYS=k1,k2
    log_level: LogLevel = "info"
    # host:port of a separate /metrics listener (e.g. an admin network); when set, the API
    # port no longer serves /metrics, and `segue worker` processes serve it there too
    metrics_addr: str | None = None
    # FastAPI's own OpenTelemetry traces, metrics and logs, to the globally configured
    # providers (opentelemetry-instrument, say); off, a request does not look for them
    opentelemetry: bool = False
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # a stored key found is remembered this long: `segue keys revoke` takes effect within it
    key_cache_ttl: float = Field(default=2.0, ge=0, le=3600)
    # creates decoding their images and storing their task at once in one API process; the
    # others wait their turn in arrival order (see api/deps.run_create)
    create_concurrency: int = Field(default_factory=usable_cpus, ge=1, le=1024)

    # images
    allow_private_urls: bool = False
    image_max_bytes: int = Field(default=30 * 1024 * 1024, ge=1024)
    image_connect_timeout: float = Field(default=10.0, gt=0, le=600)
    image_total_timeout: float = Field(default=60.0, gt=0, le=3600)
    # all of one task's input images together: a slow host must not hold a worker once for
    # each image it serves
    inputs_timeout: float = Field(default=60.0, gt=0, le=3600)
    image_max_redirects: int = Field(default=3, ge=0, le=20)

    # creates are refused (507) while the disk of the database or the files has less free
    # space than this, so that renders, deletes and sweeps still have room to write; 0: never
    min_free_mb: int = Field(default=64, ge=0)

    # video
    video_crf: int = Field(default=18, ge=0, le=51)  # x264's scale
    video_preset: Preset = "veryfast"
    # H.264 encoder: libx264 on the CPU; h264_nvenc on an NVIDIA GPU's encoder; auto: NVENC
    # where it opens, libx264 elsewhere (one setting for GPU and CPU workers alike)
    video_encoder: Literal["libx264", "h264_nvenc", "auto"] = "libx264"

    # lifetimes (seconds); an interval of 0 would spin a core, a lifetime of 0 or less would
    # delete records as soon as they end, a lease of 0 would take every task from its worker
    link_ttl: int = Field(default=86_400, ge=1)
    record_ttl: int = Field(default=7 * 86_400, ge=1)
    cancelled_ttl: int = Field(default=86_400, ge=1)
    lease_ttl: int = Field(default=60, ge=1)  # a worker's claim lapses unless renewed (heartbeat)
    poll_interval: float = Field(default=0.5, ge=0.01, le=3600)  # how often an idle worker looks
    # on PostgreSQL, idle workers also wake on LISTEN/NOTIFY; turn off behind a proxy that
    # pools by transaction (PgBouncer), where LISTEN does not work; the poll remains
    listen: bool = True
    # an idle worker's poll while its process's LISTEN is in effect: creates wake it then, and
    # the poll only finds what no notification announces (a lapsed lease, a flex task)
    listen_poll_interval: float = Field(default=5.0, ge=0.01, le=3600)
    sweep_interval: float = Field(default=60.0, ge=0.01, le=86_400)

    # limits per key (defaults; a stored key may override)
    rate_limit_lite: int = Field(default=300, ge=1)
    rate_limit_pro: int = Field(default=600, ge=1)
    rate_window: int = Field(default=60, ge=1)
    max_queued: int = Field(default=120, ge=1)

    # callbacks (docs/lifecycle.md): the timeout bounds a whole exchange; a final status is
    # retried on the backoff schedule (seconds before each retry, the last step repeating),
    # about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h as Standard Webhooks senders do
    callback_timeout: float = Field(default=5.0, gt=0, le=300)
    callback_retries: int = Field(default=6, ge=0, le=100)
    callback_backoff: Annotated[list[Annotated[float, Field(ge=0)]], NoDecode] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0]
    )

    # progress stream (GET .../tasks/{id}/events)
    # how often the stream reads the task from the store
    events_poll_interval: float = Field(default=0.5, ge=0.01, le=60)
    events_keepalive: float = Field(default=15.0, gt=0, le=3600)  # a comment after this silence

    _split_lists = field_validator("api_keys", "callback_backoff", mode="before")(
        lambda value: _split(value)
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _some_key(cls, value: object) -> object:
        # ",,, ," would otherwise start an open server: a value that names no key is a mistake
        if isinstance(value, str) and value.strip() and not _split(value):
            raise ValueError("names no key (keys are separated by commas)")
        return value

    @field_validator("log_level", "video_preset", "video_encoder", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("public_url", "s3_endpoint_url", "s3_public_endpoint_url")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        return checks.http_url(value) if value else None

    @field_validator("storage_url")
    @classmethod
    def _check_storage_url(cls, value: str | None) -> str | None:
        return checks.storage_url(value) if value else None

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        return checks.database_url(value) if value else None

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
