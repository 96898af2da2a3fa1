"""Commands that run or administer a Segue deployment: serve, worker, keys, tasks."""

from __future__ import annotations

import errno
import json
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from segue.settings import Settings

console = Console()
keys_app = typer.Typer(help="Manage stored API keys (kept hashed).", no_args_is_help=True)
tasks_app = typer.Typer(help="Inspect tasks in the store.", no_args_is_help=True)


def _services(settings: Settings | None = None):  # type: ignore[no-untyped-def]
    """The process's services; what keeps them from starting ends the command in one line."""
    from segue.services import Services

    settings = settings or Settings()
    with _startup_errors(settings):
        _check_models_file(settings)
        return Services.build(settings)


@contextmanager
def _startup_errors(settings: Settings) -> Iterator[None]:
    """A store that cannot be used (unreachable, corrupt, read-only, another version's
    schema) or a data folder that cannot be made: one line and status 2, not a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from segue.tasks.db import SchemaOutOfDate

    try:
        yield
    except SchemaOutOfDate as exc:
        _stop(str(exc))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        where = "SEGUE_DATABASE_URL" if settings.database_url else \
            f"the database in SEGUE_DATA_DIR ({settings.data_dir})"
        _stop(f"{where} cannot be used: {reason}.")
    except OSError as exc:
        _stop(f"SEGUE_DATA_DIR={settings.data_dir} cannot be used: {exc}.")


def _check_models_file(settings: Settings) -> None:
    if settings.models_file is None:
        return
    from segue.models import ModelRegistry

    try:
        ModelRegistry.load(settings.models_file)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _stop(f"SEGUE_MODELS_FILE={settings.models_file}: not a model registry Segue can "
              f"read ({type(exc).__name__}: {exc}).")


def _stop(message: str) -> NoReturn:
    # soft_wrap: one line however narrow the terminal; no markup: messages hold [brackets]
    Console(stderr=True, soft_wrap=True).print(f"segue: {message}", style="red",
                                               highlight=False, markup=False)
    raise typer.Exit(2)


def migrate() -> None:
    """Bring the database schema up to this version of Segue.

    Run it once per upgrade, before starting the new API and worker processes: they
    refuse to start on an older schema. Safe to run again (and from many places at once).

    [b]Example[/b]: SEGUE_DATABASE_URL=postgresql://db/segue segue migrate
    """
    from segue.tasks.db import make_engine
    from segue.tasks.db import migrate as upgrade

    settings = Settings()
    with _startup_errors(settings):
        before, after = upgrade(make_engine(settings.resolved_database_url))
    if before == after:
        console.print(f"The schema is up to date (revision {after}).")
    else:
        console.print(f"Migrated the schema from revision {before or '(empty)'} to {after}.")


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (SEGUE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (SEGUE_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(
        help="In-process workers (SEGUE_WORKERS); 0 for an API-only process.")] = None,
) -> None:
    """Run the API, the playground and N in-process workers.

    [b]Example[/b]: segue serve --port 8000 --workers 2
    """
    from segue import logs
    from segue.app import Server, create_app, server_config

    overrides: dict[str, Any] = {"host": host, "port": port, "workers": workers}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    _check_address(settings.host, settings.port)
    _check_metrics_address(settings)
    if settings.workers:
        check_encoder(settings)
    logs.configure(settings.log_level)
    app = create_app(settings, _services(settings), workers=settings.workers)
    if app.state.services.keys.is_open():
        console.print("[yellow]No API key is configured: every request is accepted. Set "
                      "SEGUE_API_KEYS or run `segue keys create` before exposing this server."
                      "[/yellow]", highlight=False)
    Server(server_config(app, settings.host, settings.port,
                         timeout_graceful_shutdown=30)).run()


def check_encoder(settings: Settings) -> None:
    """``SEGUE_VIDEO_ENCODER=h264_nvenc`` on a machine where NVENC does not open stops a
    rendering command in one line, before any task would fail on it."""
    if settings.video_encoder != "h264_nvenc":
        return
    from segue.media.video import encoder_unavailable

    why = encoder_unavailable(settings.video_encoder)
    if why:
        _stop(f"SEGUE_VIDEO_ENCODER=h264_nvenc: {why}. Use libx264, or auto (NVENC where "
              "it opens, libx264 elsewhere).")


def _check_metrics_address(settings: Settings) -> None:
    from segue.settings import metrics_host_port

    if settings.metrics_addr:
        _check_address(*metrics_host_port(settings.metrics_addr), setting="SEGUE_METRICS_ADDR")


def _check_address(host: str, port: int, setting: str = "--port or SEGUE_PORT") -> None:
    """A port in use (or an address that is not this machine's) stops the command in one
    line before anything starts; uvicorn would say it as a JSON log line, after starting the
    workers. Each address is tried as asyncio will bind it (SO_REUSEADDR, IPv6 only)."""
    try:
        found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        _stop(f"SEGUE_HOST={host} is not an address of this machine ({exc.strerror}).")
    for family, kind, proto, _, address in found:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                hint = (" (another process listens there: stop it, or choose another port "
                        f"with {setting})" if exc.errno == errno.EADDRINUSE else "")
                _stop(f"cannot listen on {host}:{port}: {exc.strerror}{hint}.")


def worker(
    burst: Annotated[bool, typer.Option(help="Drain the queue, then exit.")] = False,
    models: Annotated[str | None, typer.Option(
        help="Comma-separated model ids this worker serves (default: all).")] = None,
    threads: Annotated[int, typer.Option(help="Worker threads in this process.")] = 1,
    drain: Annotated[bool, typer.Option(
        help="On SIGTERM, finish the tasks in hand before exiting (up to --drain-timeout), "
             "instead of handing them back at once.")] = False,
    drain_timeout: Annotated[float, typer.Option(
        help="Seconds a drain may take; tasks still running then are handed back.")] = 600.0,
) -> None:
    """Run workers without the API (one per GPU on many machines, one store).

    SIGTERM or SIGINT stops claiming. Without --drain, renders in progress stop and their
    tasks go back to the queue at once; with --drain they finish first. A second signal
    hands them back now. Either way no task is left to wait for its lease to lapse.

    [b]Example[/b]: SEGUE_DATABASE_URL=postgresql://db/segue segue worker --models segue-flow
    """
    from segue import logs
    from segue.worker import EXIT_ENGINE_FAULT, Background, Worker, housekeeping

    settings = Settings()
    _check_metrics_address(settings)
    check_encoder(settings)
    logs.configure(settings.log_level)
    services = _services(settings)
    chosen = [m.strip() for m in models.split(",")] if models else None
    if burst:
        one = Worker(services, chosen)
        one.run(threading.Event(), burst=True)
        housekeeping(services)
        services.callbacks.drain()  # first attempts only; retries wait for a running process
        if one.fault is not None:
            raise typer.Exit(EXIT_ENGINE_FAULT)
        return
    background = Background(services, workers=threads, models=chosen)
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        if stop.is_set():  # the second signal: hand back now
            background.interrupt.set()
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    background.start()
    # Waited in steps, not at once: a signal delivered to another thread (the renders', the
    # encoder's) does not wake a wait without a timeout, and the handler, which runs only
    # in this thread, would wait with it until something else woke it.
    while not stop.wait(0.5):
        pass
    # after an engine fault the GPU context is gone: hand back at once, never drain
    background.stop(drain=drain_timeout if drain and not background.faulted.is_set() else 0.0)
    if background.faulted.is_set():  # exit non-zero: the supervisor starts a fresh process
        raise typer.Exit(EXIT_ENGINE_FAULT)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A label for the key.")],
    webhook_secret: Annotated[str | None, typer.Option(
        help="Sign this key's callbacks with Standard Webhooks (a whsec_... secret).")] = None,
    rate_limit: Annotated[int | None, typer.Option(
        min=1, help="Creates per window (default: SEGUE_RATE_LIMIT_LITE/PRO).")] = None,
    max_queued: Annotated[int | None, typer.Option(
        min=1, help="Queued tasks at most (default: SEGUE_MAX_QUEUED).")] = None,
) -> None:
    """Create a key; the key itself is printed once, as the last line."""
    if webhook_secret is not None:
        _check_secret(webhook_secret)
    services = _services()
    key, row = services.keys.create(name, webhook_secret=webhook_secret,
                                    rate_limit=rate_limit, max_queued=max_queued)
    # where: a key stored where the server does not look is refused without a word
    console.print(f"Created key {row.id} ({row.name}) in {_store_name(services.settings)}. "
                  "Keep it safe; it is not shown again:", soft_wrap=True, highlight=False)
    print(key)


def _store_name(settings: Settings) -> str:
    """The store as a person would look for it: the SQLite file, or the database's URL
    without its password."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        return str(Path(url.database).expanduser().resolve())
    return url.render_as_string(hide_password=True)


def _check_secret(secret: str) -> None:
    from standardwebhooks import Webhook

    try:
        if not secret.startswith("whsec_"):
            raise ValueError("it does not start with whsec_")
        Webhook(secret)
    except Exception as exc:
        raise typer.BadParameter(
            f"not a Standard Webhooks secret ({exc}); use whsec_ followed by base64, e.g. "
            "whsec_$(openssl rand -base64 32)", param_hint="--webhook-secret") from exc


@keys_app.command("list")
def keys_list() -> None:
    """List stored keys (never the keys themselves)."""
    rows = _services().keys.list()
    table = _ids_table([row.id for row in rows], "name", "prefix", "created", "revoked",
                       "webhook")
    for row in rows:
        table.add_row(row.id, row.name, row.prefix + "…", _when(row.created_at),
                      _when(row.revoked_at), "yes" if row.webhook_secret else "")
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id from `keys list`.")]
                ) -> None:
    """Revoke a stored key: its requests are refused from now on."""
    row = _services().keys.revoke(key_id)
    console.print(f"Revoked {row.id} ({row.name}).")


@tasks_app.command("list")
def tasks_list(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List tasks of every key, newest first."""
    from sqlalchemy import select

    from segue.tasks.schema import TaskRow

    services = _services()
    query = select(TaskRow).order_by(TaskRow.created_at.desc()).limit(limit)
    if status:
        query = query.where(TaskRow.status == status)
    with services.db.connect() as conn:
        rows = conn.execute(query).all()
    if as_json:
        print(json.dumps([{"id": r.id, "status": r.status, "model": r.model,
                           "key_id": r.key_id, "created_at": r.created_at} for r in rows]))
        return
    table = _ids_table([r.id for r in rows], "status", "model", "key", "created", "done")
    for r in rows:
        table.add_row(r.id, r.status, r.model, r.key_id, _when(r.created_at), f"{r.progress:.0f}%")
    console.print(table)


@tasks_app.command("show")
def tasks_show(task_id: str) -> None:
    """Show one task as its owner sees it, with its owner and its callback deliveries."""
    from segue.tasks.view import task_object

    services = _services()
    row = services.tasks.get(task_id)
    body = task_object(row, services.objects)
    body["key_id"] = row.key_id
    body["callback_deliveries"] = [
        {"id": d.id, "status": d.status, "url": d.url, "state": d.state,
         "attempts": d.attempts, "max_attempts": d.max_attempts,
         "next_attempt_at": _when(d.next_attempt_at) if d.state == "pending" else None,
         "last_status_code": d.last_status_code, "last_error": d.last_error}
        for d in services.callbacks.store.for_task(task_id)
    ]
    print(json.dumps(body, indent=2))


def _ids_table(ids: list[str], *headers: str) -> Table:
    """A table whose first column, the ids people copy into the next command, is never cut
    however narrow the terminal; the others fold onto more lines instead of losing their
    ends."""
    table = Table(box=box.SIMPLE_HEAD)  # no side borders: their width goes to the text
    table.add_column("id", no_wrap=True, min_width=max(map(len, ids), default=2))
    for header in headers:  # short words and numbers are kept whole too
        whole = header in ("status", "done", "prefix", "webhook")
        dated = header in ("created", "revoked")  # the date above the time
        table.add_column(header, no_wrap=whole, overflow="ellipsis" if whole else "fold",
                         min_width=10 if dated else None)
    return table


def _when(ts: float | None) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(worker)
    app.command()(migrate)
    app.add_typer(keys_app, name="keys")
    app.add_typer(tasks_app, name="tasks")
