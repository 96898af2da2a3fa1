"""On PostgreSQL the task table is vacuumed once 1 % of its rows are dead (migration 0008):
claims and finishes leave dead tuples in the queue's indexes, and PostgreSQL's default of
20 % lets a table of millions of tasks gather hundreds of thousands before a vacuum."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Engine, text

from segue.tasks.db import alembic_config, make_engine, migrate

pytestmark = pytest.mark.postgres
SETTINGS = ["autovacuum_analyze_scale_factor=0.02", "autovacuum_vacuum_scale_factor=0.01"]


def _options(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT reloptions FROM pg_class WHERE relname = 'tasks' "
            "AND relnamespace = current_schema()::regnamespace")).scalar() or [])


def test_the_task_table_is_vacuumed_early_and_the_migration_goes_back(pg_url: str) -> None:
    engine = make_engine(pg_url)
    migrate(engine)
    assert sorted(_options(engine)) == SETTINGS
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
    assert _options(engine) == []
    engine.dispose()
