"""The Services object: everything the API and the workers share, built once per process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine as SqlEngine

from segue.callbacks import Callbacks, check_callback_url
from segue.domain import GenerationRequest, ImageInput, MediaInput, Mode, TaskStatus, new_task_id
from segue.drafts import final_request
from segue.engines.base import Engine, create_engine
from segue.keys import KeyStore, Principal
from segue.media.images import check_image_reference
from segue.metrics import Metrics
from segue.models import ModelEntry, ModelRegistry
from segue.requests import build_request, fit_to_engine
from segue.settings import Settings
from segue.storage.base import ObjectStore, open_store
from segue.storage.local import LocalStore
from segue.storage.space import SpaceGuard
from segue.tasks.db import ensure_schema, make_engine
from segue.tasks.fleet import Fleet
from segue.tasks.schema import TaskRow
from segue.tasks.store import CreateLimits, TaskStore

log = logging.getLogger("segue.services")
# the statuses counted in segue_tasks_finished (a cancelled task never ran)
ENDED = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.EXPIRED})


@dataclass
class Services:
    settings: Settings
    db: SqlEngine
    tasks: TaskStore
    keys: KeyStore
    objects: ObjectStore
    models: ModelRegistry
    metrics: Metrics
    space: SpaceGuard
    fleet: Fleet  # which models the running workers serve
    wake: threading.Event = field(default_factory=threading.Event)  # new work for local workers
    # called with the task row after every status change has committed, in the process
    # that made it (the callback deliveries are written before: ``TaskStore.changes``)
    listeners: list[Callable[[TaskRow], None]] = field(default_factory=list)
    callbacks: Callbacks = field(init=False)  # stored deliveries, sent by Background
    _engines: dict[str, Engine] = field(default_factory=dict)
    _engines_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = make_engine(settings.resolved_database_url)
        ensure_schema(db)
        tasks = TaskStore(db)
        return cls(
            settings=settings, db=db, tasks=tasks, metrics=Metrics(tasks.counts),
            keys=KeyStore(db, settings.api_keys, settings.key_cache_ttl),
            objects=(objects := open_store(settings)),
            models=ModelRegistry.load(settings.models_file),
            space=SpaceGuard(_local_folders(db, objects), settings.min_free_mb),
            fleet=Fleet(db),
        )

    def __post_init__(self) -> None:
        self.callbacks = Callbacks(self.db, self.settings, self.objects, self.metrics)
        self.tasks.changes.writers.append(self.callbacks.record)
        self.tasks.changes.committed.append(self.on_status_change)
        self.metrics.watch_queue(self.tasks.queue_stats, self.callbacks.store.backlog)

    def on_status_change(self, row: TaskRow) -> None:
        """After a status change committed: count an ended task, wake the callback
        dispatcher, tell every listener; a failing listener must not undo the change."""
        if row.status in ENDED:
            self.metrics.finished.labels(row.model, row.status).inc()
        self.callbacks.wake.set()
        for listener in self.listeners:
            try:
                listener(row)
            except Exception:
                log.exception("status listener failed", extra={"task_id": row.id})

    def engine_for(self, entry: ModelEntry, load: bool = False) -> Engine:
        """One engine object per model id per process, kept between tasks.

        ``load`` also loads its weights (engines with a ``load`` method), once: worker
        threads of one process share the engine, and a GPU pipeline must not load twice.
        """
        with self._engines_lock:
            engine = self._engines.get(entry.id)
            if engine is None:
                engine = create_engine(entry.engine, entry.options)
                self._engines[entry.id] = engine
            if load and hasattr(engine, "load"):
                engine.load()
            return engine

    def engine_modes(self, entry: ModelEntry) -> frozenset[Mode]:
        return self.engine_for(entry).modes

    def prepare(
        self, principal: Principal, *, model: str, text: str | None,
        images: Sequence[ImageInput], fields: Mapping[str, object], surface: str,
        media: Sequence[MediaInput] = (), draft_id: str | None = None,
    ) -> GenerationRequest:
        """Validate a create from any surface against its model and the engine serving it.

        ``draft_id`` (a draft_task content item) makes the final of that draft; another
        key's draft is not found, as any other key's task.
        """
        entry = self.models.get(model)
        self.fleet.view().check(entry.id, model)
        if draft_id is not None:
            draft = self.tasks.get(draft_id, principal.key_id)
            request = final_request(entry, model, draft, self.tasks.full_request(draft),
                                    fields, time.time())
        else:
            request = build_request(entry, model=model, text=text, images=images,
                                    fields=fields, surface=surface, media=media)
        return fit_to_engine(entry, self.engine_for(entry), request)

    def create_task(
        self, principal: Principal, request: GenerationRequest, *,
        idempotency_key: str | None = None, request_hash: str | None = None,
    ) -> TaskRow:
        """Check what needs no download, then commit the task before its id is answered."""
        for index, image in enumerate(request.images):
            check_image_reference(image.url, image.name or f"image[{index}]", self.settings)
        check_callback_url(request.callback_url, self.settings)
        entry = self.models.get(request.model)
        self.space.check()
        now = time.time()
        row = TaskRow(
            id=new_task_id(), key_id=principal.key_id, model=request.model,
            status=TaskStatus.QUEUED.value, service_tier=request.service_tier.value,
            request=request.to_json(), seed=request.seed, resolution=request.resolution,
            ratio=request.ratio, duration=request.duration, frames=request.frames,
            progress=0.0, callback_url=request.callback_url, created_at=now, updated_at=now,
            priority=request.priority,
            expires_at=now + request.execution_expires_after, attempts=0,
            idempotency_key=idempotency_key, request_hash=request_hash,
        )
        created = self.tasks.create(row, self._limits(principal, entry))
        if created is row:  # not an idempotent replay
            self.metrics.created.labels(request.model).inc()
        self.wake.set()
        return created

    def delete_task(self, task_id: str, key_id: str) -> tuple[str, TaskRow]:
        """DELETE on any surface: cancel a queued task, or remove a finished one and its files."""
        action, row = self.tasks.delete(task_id, key_id)
        if action == "delete":
            for key in (row.video_key, row.last_frame_key):
                if key:
                    self.objects.delete(key)
        return action, row

    def _limits(self, principal: Principal, entry: ModelEntry) -> CreateLimits:
        s = self.settings
        default_rate = s.rate_limit_pro if entry.tier == "pro" else s.rate_limit_lite
        return CreateLimits(
            rate=principal.rate_limit or default_rate, window=s.rate_window,
            tier_models=self.models.spellings(m.id for m in self.models if m.tier == entry.tier),
            max_queued=principal.max_queued or s.max_queued,
        )


def _local_folders(db: SqlEngine, objects: ObjectStore) -> list[Path]:
    """The folders on local disks that Segue writes to: the SQLite file's, the files'."""
    folders = []
    if db.dialect.name == "sqlite" and db.url.database not in (None, "", ":memory:"):
        folders.append(Path(db.url.database).parent)
    if isinstance(objects, LocalStore):
        folders.append(objects.root)
    return folders
