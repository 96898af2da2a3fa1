"""`segue migrate` upgrades the schema; `serve` and `worker` refuse an older one, clearly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from segue.services import Services
from segue.tasks.db import SchemaOutOfDate, alembic_config, head_revision, make_engine
from tests.conftest import make_settings

OLD = "0001"  # the first released schema


def _at_revision(url: str, revision: str) -> None:
    engine = make_engine(url)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()


def _segue(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SEGUE_DATA_DIR=str(data), SEGUE_LOG_LEVEL="warning",
               COLUMNS="200")
    env.pop("SEGUE_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "segue", *args], env=env, text=True,
                          capture_output=True, timeout=120)


def test_serve_and_worker_refuse_an_old_schema_until_migrated(tmp_path: Path) -> None:
    _at_revision(f"sqlite:///{tmp_path / 'segue.db'}", OLD)
    for args in (("worker",), ("serve", "--port", "1")):
        refused = _segue(*args, data=tmp_path)
        assert refused.returncode == 2, (args, refused.stderr)
        message = " ".join(refused.stderr.split())  # rich wraps long lines
        assert f"at revision {OLD}" in message and head_revision() in message, message
        assert "segue migrate" in message

    migrated = _segue("migrate", data=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert f"from revision {OLD} to {head_revision()}" in migrated.stdout
    again = _segue("migrate", data=tmp_path)
    assert again.returncode == 0 and "up to date" in again.stdout, again.stdout
    # and the processes start now (the in-process equivalent of `segue worker`)
    Services.build(make_settings(tmp_path))


@pytest.mark.postgres
def test_postgres_old_and_unknown_schemas_are_refused(pg_url: str, tmp_path: Path) -> None:
    _at_revision(pg_url, OLD)
    with pytest.raises(SchemaOutOfDate, match="Run `segue migrate` once"):
        Services.build(make_settings(tmp_path, database_url=pg_url))
    _at_revision(pg_url, "head")
    services = Services.build(make_settings(tmp_path, database_url=pg_url))
    with services.db.begin() as conn:  # as if a newer Segue had migrated it
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaOutOfDate, match="migrated by a newer Segue"):
        Services.build(make_settings(tmp_path, database_url=pg_url))


def test_an_empty_database_is_created_at_start(tmp_path: Path) -> None:
    services = Services.build(make_settings(tmp_path))
    with services.db.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() \
            == head_revision()
