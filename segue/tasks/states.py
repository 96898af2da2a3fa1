"""Every task state transition, in one place."""

from __future__ import annotations

from segue.domain import TaskStatus as S
from segue.errors import OperationDenied

# from-state -> the states it may move to
TRANSITIONS: dict[S, frozenset[S]] = {
    S.QUEUED: frozenset({S.RUNNING, S.CANCELLED, S.EXPIRED, S.FAILED}),
    # RUNNING -> QUEUED is lease recovery: the worker died and another takes over.
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.EXPIRED, S.QUEUED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
}


def can_move(current: S, target: S) -> bool:
    return target in TRANSITIONS[current]


def delete_action(task_id: str, status: S) -> str:
    """What DELETE does to a task in ``status``: "cancel" or "delete", or it is refused.

    Refusals are 400 (never 409, which the official SDK would retry).
    """
    if status is S.QUEUED:
        return "cancel"
    if status in (S.SUCCEEDED, S.FAILED, S.EXPIRED):
        return "delete"
    raise OperationDenied(
        f"The task {task_id} is {status.value} and cannot be deleted or cancelled: only queued "
        "tasks can be cancelled, and only succeeded, failed or expired tasks deleted.",
        param="task_id",
    )
