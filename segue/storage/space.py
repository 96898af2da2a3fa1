"""Free space on the local disks Segue writes to: creates stop before a disk is full.

A full disk leaves nothing to write with: not a render's video, not the failure of a task
that could not store one, not even the DELETE that would free space (SQLite writes a delete
too). So creates are refused while a disk has less free space than ``SEGUE_MIN_FREE_MB``,
which keeps that much room for the work already accepted and for the deletes and sweeps
that give space back.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from segue.errors import StorageFull

log = logging.getLogger("segue.storage")
WARN_EVERY = 60.0  # seconds between log lines while creates stay refused


class SpaceGuard:
    """Checks the free space under each of ``folders`` (the SQLite file's, the files')."""

    def __init__(self, folders: Iterable[Path], min_free_mb: int) -> None:
        self.folders = list(dict.fromkeys(folders))
        self.min_free = min_free_mb * 1024 * 1024
        self._warned = 0.0

    def check(self) -> None:
        """Raise ``StorageFull`` (507) while any folder's disk has less than the minimum."""
        if not self.min_free:
            return
        for folder in self.folders:
            free = shutil.disk_usage(_existing(folder)).free
            if free < self.min_free:
                self._warn(free)
                raise StorageFull(
                    f"The server's storage is nearly full ({free // 2**20} MB free, below "
                    f"the {self.min_free // 2**20} MB kept for work in progress): no new "
                    "task is accepted until space is freed.", retry_after=60)

    def _warn(self, free: int) -> None:
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY:
            self._warned = now
            log.warning("storage nearly full: creates refused",
                        extra={"free_mb": free // 2**20, "min_free_mb": self.min_free // 2**20})


def _existing(folder: Path) -> Path:
    """The folder, or its nearest existing parent (the files' folder is made on first use)."""
    for path in (folder, *folder.parents):
        if path.exists():
            return path
    return folder
