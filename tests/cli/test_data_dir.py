"""The data folder is per user: a key made in one directory is read by a server started in
another (issue 23, point 9)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from segue.settings import Settings
from tests.conftest import TASKS, free_port, start_server


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SEGUE_DATA_DIR", "XDG_DATA_HOME")}
    return {**env, "HOME": str(home), "SEGUE_LOG_LEVEL": "warning", **extra}


def test_default_follows_xdg_then_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SEGUE_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert Settings().data_dir == tmp_path / "home" / ".local" / "share" / "segue"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")  # the XDG spec ignores these
    assert Settings().data_dir == tmp_path / "home" / ".local" / "share" / "segue"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert Settings().data_dir == tmp_path / "xdg" / "segue"
    monkeypatch.setenv("SEGUE_DATA_DIR", str(tmp_path / "mine"))
    assert Settings().data_dir == tmp_path / "mine"


def test_key_created_elsewhere_is_accepted(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    home, elsewhere, server_cwd = tmp_path / "home", tmp_path / "a", tmp_path / "b"
    for folder in (home, elsewhere, server_cwd):
        folder.mkdir()
    made = subprocess.run([sys.executable, "-m", "segue", "keys", "create", "--name", "me"],
                          cwd=elsewhere, env=_env(home), capture_output=True, text=True,
                          timeout=60)
    assert made.returncode == 0, made.stderr
    store = home / ".local" / "share" / "segue" / "segue.db"
    assert f"in {store}" in made.stdout.replace("\n", "")  # it says where the key went
    assert store.is_file() and not list(elsewhere.iterdir())  # nothing left in the cwd
    key = made.stdout.strip().splitlines()[-1]

    monkeypatch.chdir(server_cwd)
    for name, value in _env(home).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("SEGUE_DATA_DIR", raising=False)
    live = start_server(Settings(port=free_port()), workers=0)
    try:
        answer = httpx.get(f"{live.url}{TASKS}", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200, answer.text
        assert not list(server_cwd.iterdir())
    finally:
        live.stop()


def test_override_still_wins(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen"
    made = subprocess.run([sys.executable, "-m", "segue", "keys", "create", "--name", "me"],
                          cwd=tmp_path, env=_env(tmp_path / "home", SEGUE_DATA_DIR=str(chosen)),
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert (chosen / "segue.db").is_file()
    assert str(chosen / "segue.db") in made.stdout.replace("\n", "")
    assert not (tmp_path / "home").exists()
