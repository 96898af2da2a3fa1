"""Every setting has a type and bounds: a bad one stops any `segue` command before it starts,
in one line per setting and exit status 2; so does a store that cannot be used."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from segue.cli import setting_errors
from segue.settings import Settings

# Each was accepted before, with the effect the issue found (or a traceback at start).
BAD = {
    "SEGUE_RECORD_TTL": "-1",  # deleted every finished task at the first sweep
    "SEGUE_CANCELLED_TTL": "0",
    "SEGUE_LINK_TTL": "-5",
    "SEGUE_POLL_INTERVAL": "0",  # a core spun while idle
    "SEGUE_SWEEP_INTERVAL": "-1",
    "SEGUE_EVENTS_POLL_INTERVAL": "0",
    "SEGUE_EVENTS_KEEPALIVE": "0",
    "SEGUE_LEASE_TTL": "0",  # healthy tasks failed
    "SEGUE_RATE_LIMIT_LITE": "-5",  # every create a 500
    "SEGUE_RATE_LIMIT_PRO": "0",
    "SEGUE_RATE_WINDOW": "0",
    "SEGUE_MAX_QUEUED": "-1",
    "SEGUE_MAX_BODY_BYTES": "-1",  # every POST a 413
    "SEGUE_IMAGE_MAX_BYTES": "0",
    "SEGUE_IMAGE_CONNECT_TIMEOUT": "0",
    "SEGUE_IMAGE_TOTAL_TIMEOUT": "-3",
    "SEGUE_INPUTS_TIMEOUT": "0",
    "SEGUE_IMAGE_MAX_REDIRECTS": "-1",
    "SEGUE_WORKERS": "-1",  # no task ever ran
    "SEGUE_VIDEO_PRESET": "bogus",  # every encode failed
    "SEGUE_VIDEO_ENCODER": "x265",
    "SEGUE_VIDEO_CRF": "99",
    "SEGUE_PORT": "70000",  # listened on 4464
    "SEGUE_PUBLIC_URL": "not a url",
    "SEGUE_S3_ENDPOINT_URL": "minio:9000",
    "SEGUE_API_KEYS": ",,, ,",  # an open server
    "SEGUE_LOG_LEVEL": "loud",
    "SEGUE_STORAGE_URL": "ftp://example/x",
    "SEGUE_MODELS_FILE": "/no/such/models.json",
    "SEGUE_DATABASE_URL": "not a database",
    "SEGUE_CALLBACK_TIMEOUT": "0",
    "SEGUE_CALLBACK_RETRIES": "-1",
    "SEGUE_CALLBACK_BACKOFF": "5,-1",
    "SEGUE_KEY_CACHE_TTL": "-1",
    "SEGUE_CREATE_CONCURRENCY": "0",
}


def _env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGUE_")}
    env.update(SEGUE_DATA_DIR=str(data), SEGUE_LOG_LEVEL="warning")
    env.update(extra)
    return env


def _segue(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segue", *args], env=env, text=True,
                          capture_output=True, timeout=60)


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_bad_value_is_refused(name: str, monkeypatch: pytest.MonkeyPatch,
                                   tmp_path: Path) -> None:
    monkeypatch.setenv("SEGUE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(name, BAD[name])
    with pytest.raises(ValidationError) as caught:
        Settings()
    lines = setting_errors(caught.value)
    assert len(lines) == 1 and lines[0].startswith(f"segue: {name}"), lines


def test_every_bad_setting_is_one_line_and_status_2(tmp_path: Path) -> None:
    done = _segue("keys", "list", env=_env(tmp_path, **BAD))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert sorted(line.split(":")[1].split("=")[0].strip() for line in lines) == sorted(BAD)
    # secrets are not echoed: keys, and a database URL that may hold a password
    assert not any(",,, ," in line or "=not a database" in line for line in lines)
    assert not (tmp_path / "segue.db").exists()


@pytest.mark.parametrize("args", [("serve",), ("worker", "--burst"), ("migrate",),
                                  ("keys", "create", "--name", "x"), ("tasks", "list")])
def test_every_command_stops(args: tuple[str, ...], tmp_path: Path) -> None:
    line = _one_line(_segue(*args, env=_env(tmp_path, SEGUE_SWEEP_INTERVAL="-1")))
    assert line.startswith("segue: SEGUE_SWEEP_INTERVAL=-1: Input should be greater than")


def test_a_database_folder_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "segue.db"
    line = _one_line(_segue("keys", "list", env=_env(
        tmp_path / "data", SEGUE_DATABASE_URL=f"sqlite:///{missing}")))
    assert "SEGUE_DATABASE_URL" in line and "does not exist" in line
    assert not missing.parent.exists()  # no new, empty store beside the real one


def test_a_corrupt_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "segue.db").write_bytes(b"this is not a database file" * 100)
    for args in (("keys", "list"), ("migrate",), ("worker", "--burst")):
        line = _one_line(_segue(*args, env=_env(tmp_path)))
        assert "cannot be used" in line and "not a database" in line, line


def test_a_read_only_database_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "segue.db"
    sqlite3.connect(path).close()
    # root writes through file permissions, so the read-only store is opened read-only
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    line = _one_line(_segue("keys", "list", env=_env(tmp_path, SEGUE_DATABASE_URL=url)))
    assert line.startswith("segue: SEGUE_DATABASE_URL cannot be used:") and "readonly" in line


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    url = "postgresql://segue@127.0.0.1:9/segue?connect_timeout=2"  # the discard port
    line = _one_line(_segue("tasks", "list", env=_env(tmp_path, SEGUE_DATABASE_URL=url)))
    assert "SEGUE_DATABASE_URL cannot be used" in line


def test_a_models_file_that_does_not_parse_is_one_line(tmp_path: Path) -> None:
    models = tmp_path / "models.json"
    models.write_text("{not json")
    line = _one_line(_segue("keys", "list", env=_env(tmp_path, SEGUE_MODELS_FILE=str(models))))
    assert line.startswith(f"segue: SEGUE_MODELS_FILE={models}: not a model registry")
    models.write_text(json.dumps({"models": [{"id": "x"}]}))
    line = _one_line(_segue("keys", "list", env=_env(tmp_path, SEGUE_MODELS_FILE=str(models))))
    assert "not a model registry" in line


@pytest.mark.parametrize("option", [("--rate-limit", "-1"), ("--rate-limit", "0"),
                                    ("--max-queued", "-5"), ("--max-queued", "0")])
def test_key_limits_below_one_are_refused(option: tuple[str, str], tmp_path: Path) -> None:
    env = _env(tmp_path)
    done = _segue("keys", "create", "--name", "x", *option, env=env)
    assert done.returncode == 2, done.stdout
    assert option[0] in done.stderr and "sk-" not in done.stdout
    listed = _segue("keys", "list", env=env)
    assert listed.returncode == 0 and "key-" not in listed.stdout  # nothing was stored


def test_keystore_refuses_limits_below_one(tmp_path: Path) -> None:
    from segue.keys import KeyStore
    from segue.tasks.db import ensure_schema, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'segue.db'}")
    ensure_schema(engine)
    with pytest.raises(ValueError, match="rate_limit must be at least 1"):
        KeyStore(engine, []).create("x", rate_limit=0)
    assert KeyStore(engine, []).create("y", rate_limit=5, max_queued=1)[1].rate_limit == 5


def test_a_uri_database_url_makes_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    """``sqlite:///file:...?uri=true`` names a file by URI: no "file:" folder appears."""
    from segue.tasks.db import make_engine

    path = tmp_path / "segue.db"
    sqlite3.connect(path).close()
    monkeypatch.chdir(tmp_path)
    make_engine(f"sqlite:///file:{path}?mode=ro&uri=true").dispose()
    assert not (tmp_path / "file:").exists()


def test_settings_read_the_environment_whatever_the_case(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    """Keyword arguments first, then SEGUE_* variables of any case, then the defaults; a
    list is split at commas, never read as JSON; other SEGUE_* names are ignored."""
    for name in [k for k in os.environ if k.upper().startswith("SEGUE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("segue_port", "8123")
    monkeypatch.setenv("Segue_Video_Preset", " Medium ")
    monkeypatch.setenv("SEGUE_API_KEYS", '["k1", k2')
    monkeypatch.setenv("SEGUE_NO_SUCH_SETTING", "x")
    settings = Settings(video_crf=20, data_dir=tmp_path)
    assert (settings.port, settings.video_preset, settings.video_crf) == (8123, "medium", 20)
    assert settings.api_keys == ['["k1"', "k2"]
    assert settings.data_dir == tmp_path and settings.workers == 1
    assert Settings(port=9000).port == 9000  # an argument wins over the environment
    monkeypatch.setenv("SEGUE_PORT", "0")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert caught.value.title == "Settings"
    assert setting_errors(caught.value) == [
        "segue: SEGUE_PORT=0: Input should be greater than or equal to 1."]


def test_the_cli_imports_no_encoder() -> None:
    """`segue generate` starts by importing segue.cli: PyAV (the encoder's library, loaded in
    a thread while the images decode) is not part of that."""
    probe = "import sys, segue.cli; print(sorted(m for m in ('av',) if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"
