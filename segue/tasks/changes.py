"""Status changes, told twice: inside the transaction that makes them, and after its commit.

Inside, ``writers`` add what must exist exactly when the change does (the callback
deliveries: an outbox), in the same transaction, so that a crash or an error between
the two can leave neither half alone. After the commit, ``committed`` hears of the
change (metrics, waking the dispatcher): what was rolled back is never counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from segue.tasks.schema import TaskRow

log = logging.getLogger("segue.tasks")

_PENDING = "segue_status_changes"  # the session's changes not yet committed (Session.info)


class StatusChanges:
    def __init__(self) -> None:
        # called in the changing transaction: an error there undoes the change
        self.writers: list[Callable[[Session, TaskRow], None]] = []
        # called after the commit, once per change: an error there is logged
        self.committed: list[Callable[[TaskRow], None]] = []

    def record(self, session: Session, row: TaskRow) -> None:
        """``row``'s status has just been set in ``session``."""
        for write in self.writers:
            write(session, row)
        session.info.setdefault(_PENDING, []).append(row)

    @staticmethod
    def take(session: Session) -> list[TaskRow]:
        """The changes made in ``session`` so far (called just before it commits)."""
        rows: list[TaskRow] = session.info.pop(_PENDING, [])
        return rows

    def announce(self, rows: list[TaskRow]) -> None:
        for row in rows:
            for hear in self.committed:
                try:
                    hear(row)
                except Exception:  # the change is stored: a listener cannot undo it
                    log.exception("status listener failed", extra={"task_id": row.id})
