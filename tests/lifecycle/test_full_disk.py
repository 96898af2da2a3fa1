"""A full disk, for real: small tmpfs file systems as the data directory or the files' folder
(mounted by the test where the platform lets it; skipped elsewhere). Creates are refused with
a clear 507 before the disk is full, a video that cannot be stored fails its task in one log
line, a full database is a 507 rather than a 500, and the space a DELETE frees is used again."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer, make_settings, start_server
from tests.lifecycle.support import FIRST, TASKS, body, wait_until

MiB = 1024 * 1024


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """``tmpfs(size_mb)``: a new file system of that size, unmounted after the test."""
    mounted: list[Path] = []

    def _mount(size_mb: int) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs",
                               str(where)], capture_output=True)
        if done.returncode != 0:
            pytest.skip("this platform does not let the test mount a small file system")
        mounted.append(where)
        return where

    yield _mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Write a ballast file that leaves ``leave`` bytes free on ``disk`` (0: fill it)."""
    ballast = disk / "ballast"
    size = max(0, shutil.disk_usage(disk).free - leave)
    with open(ballast, "ab") as out, contextlib.suppress(OSError):  # full: as full as it gets
        chunk = b"\0" * MiB
        while size > 0:
            size -= out.write(chunk[:min(size, MiB)])
            out.flush()
    return ballast


def create(server: LiveServer, text: str = "a pan --rs 480p --dur 2") -> httpx.Response:
    with server.client() as c:
        return c.post(TASKS, json=body(text=text))


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage() + (" +traceback" if record.exc_info else ""))


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    logging.getLogger("segue").addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger("segue").removeHandler(handler)


def test_creates_stop_short_of_full_and_a_delete_gives_room_back(tmpfs) -> None:  # type: ignore[no-untyped-def]
    disk = tmpfs(48)
    server = start_server(make_settings(disk / "data", min_free_mb=8), workers=1)
    try:
        first = create(server, "a pan --rs 720p --dur 6").json()["id"]
        done = server.wait(first)
        assert done["status"] == "succeeded", done
        video = server.services.objects.path(server.services.tasks.get(first).video_key)
        size = video.stat().st_size
        assert size > 256 * 1024  # big enough to stand out from the database's own growth
        fill(disk, 8 * MiB - 32 * 1024)  # just short of the floor

        refused = create(server)
        assert refused.status_code == 507, refused.text
        error = refused.json()["error"]
        assert error["code"] == "InsufficientStorage" and "nearly full" in error["message"]
        assert "8 MB" in error["message"] and str(disk) not in error["message"]
        with server.client() as c:
            video_create = c.post("/v1/videos", json={
                "prompt": "x", "seconds": "2", "size": "640x360",
                "input_reference": {"image_url": FIRST}})
            assert video_create.status_code == 507, video_create.text
            assert video_create.json()["error"]["code"] == "InsufficientStorage"
            assert c.get(f"{TASKS}/{first}").status_code == 200  # reads go on
            assert c.delete(f"{TASKS}/{first}").status_code == 200
        assert not video.exists()
        assert create(server).status_code == 200  # the space the delete freed is used
    finally:
        server.stop()


def test_a_video_that_cannot_be_stored_fails_its_task_in_one_line(
        tmp_path: Path, tmpfs, lines: Lines) -> None:  # type: ignore[no-untyped-def]
    files = tmpfs(4)
    fill(files, 64 * 1024)
    server = start_server(make_settings(tmp_path / "data", storage_url=str(files),
                                        min_free_mb=0), workers=1)
    try:
        task_id = create(server, "a pan --rs 720p --dur 6").json()["id"]
        done = server.wait(task_id)
        assert done["status"] == "failed"
        assert done["error"]["code"] == "InsufficientStorage"
        assert "storage is full" in done["error"]["message"]
        assert sorted(p.name for p in files.rglob("*") if p.is_file()) == ["ballast"]
        mine = [m for m in lines.messages if "storage full" in m or "render failed" in m]
        assert mine == ["storage full: the task failed"], mine
    finally:
        server.stop()


def test_a_full_database_is_507_and_is_said_once_not_per_poll(
        tmpfs, lines: Lines) -> None:  # type: ignore[no-untyped-def]
    disk = tmpfs(8)
    server = start_server(make_settings(disk / "data", min_free_mb=0), workers=1)
    try:
        kept = create(server).json()["id"]
        server.wait(kept)
        ballast = fill(disk, 0)
        refused = create(server)
        assert refused.status_code == 507, refused.text
        assert "disk is full" in refused.json()["error"]["message"]
        with server.client() as c:
            assert c.get(f"{TASKS}/{kept}").json()["status"] == "succeeded"
        time.sleep(2)  # idle workers poll 20 times a second meanwhile
        said = [m for m in lines.messages if m.startswith("task store")]
        assert 1 <= len(said) <= 2 and not [m for m in said if "+traceback" in m], said
        ballast.unlink()
        os.sync()
        answered = wait_until(lambda: create(server).status_code == 200, 10, "create again")
        assert answered
    finally:
        server.stop()
