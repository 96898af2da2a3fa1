"""Commands that run or administer a Segue deployment: serve, worker, keys, tasks."""

from __future__ import annotations

import json
import signal
import threading
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from segue.settings import Settings

console = Console()
keys_app = typer.Typer(help="Manage stored API keys (kept hashed).", no_args_is_help=True)
tasks_app = typer.Typer(help="Inspect tasks in the store.", no_args_is_help=True)


def _services():  # type: ignore[no-untyped-def]
    from segue.services import Services

    return Services.build(Settings())


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (SEGUE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (SEGUE_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(
        help="In-process workers (SEGUE_WORKERS); 0 for an API-only process.")] = None,
) -> None:
    """Run the API, the playground and N in-process workers.

    [b]Example[/b]: segue serve --port 8000 --workers 2
    """
    import uvicorn

    from segue import logs
    from segue.app import create_app

    overrides: dict[str, Any] = {"host": host, "port": port, "workers": workers}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    logs.configure(settings.log_level)
    app = create_app(settings, workers=settings.workers)
    if app.state.services.keys.is_open():
        console.print("[yellow]No API key is configured: every request is accepted. Set "
                      "SEGUE_API_KEYS or run `segue keys create` before exposing this server."
                      "[/yellow]", highlight=False)
    uvicorn.run(app, host=settings.host, port=settings.port,
                log_config=None, timeout_graceful_shutdown=30)


def worker(
    burst: Annotated[bool, typer.Option(help="Drain the queue, then exit.")] = False,
    models: Annotated[str | None, typer.Option(
        help="Comma-separated model ids this worker serves (default: all).")] = None,
    threads: Annotated[int, typer.Option(help="Worker threads in this process.")] = 1,
) -> None:
    """Run workers without the API (one per GPU on many machines, one store).

    [b]Example[/b]: SEGUE_DATABASE_URL=postgresql://db/segue segue worker --models segue-flow
    """
    from segue import logs
    from segue.worker import EXIT_ENGINE_FAULT, Background, Worker, housekeeping

    settings = Settings()
    logs.configure(settings.log_level)
    services = _services()
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
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    background.start()
    stop.wait()
    background.stop()
    if background.faulted.is_set():  # exit non-zero: the supervisor starts a fresh process
        raise typer.Exit(EXIT_ENGINE_FAULT)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A label for the key.")],
    webhook_secret: Annotated[str | None, typer.Option(
        help="Sign this key's callbacks with Standard Webhooks (a whsec_... secret).")] = None,
    rate_limit: Annotated[int | None, typer.Option(help="Creates per window.")] = None,
    max_queued: Annotated[int | None, typer.Option(help="Queued tasks at most.")] = None,
) -> None:
    """Create a key; the key itself is printed once, as the last line."""
    if webhook_secret is not None:
        _check_secret(webhook_secret)
    key, row = _services().keys.create(name, webhook_secret=webhook_secret,
                                       rate_limit=rate_limit, max_queued=max_queued)
    console.print(f"Created key {row.id} ({row.name}). Keep it safe; it is not shown again:")
    print(key)


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
    table = Table("id", "name", "prefix", "created", "revoked", "webhook")
    for row in _services().keys.list():
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
    table = Table("id", "status", "model", "key", "created", "progress")
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


def _when(ts: float | None) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(worker)
    app.add_typer(keys_app, name="keys")
    app.add_typer(tasks_app, name="tasks")
