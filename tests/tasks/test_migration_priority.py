"""Revision 0002 adds the task priority to a store that already holds tasks."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from segue.tasks.db import alembic_config, make_engine


def _upgrade(engine, revision: str) -> None:  # type: ignore[no-untyped-def]
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def test_existing_tasks_get_priority_zero(db_url: str) -> None:
    engine = make_engine(db_url)
    _upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO tasks (id, key_id, model, status, service_tier, request, seed, "
            "resolution, ratio, frames, progress, created_at, updated_at, expires_at, attempts) "
            "VALUES ('cgt-1', 'k', 'm', 'queued', 'default', '{}', 1, '720p', '16:9', 121, 0, "
            "1, 1, 2, 0)"))
    _upgrade(engine, "0002")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT priority FROM tasks WHERE id = 'cgt-1'")).scalar() == 0
    engine.dispose()
