"""Frames made ahead in worker threads while the caller encodes them."""

from __future__ import annotations

import ctypes
import functools
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import cv2
import numpy as np

T = TypeVar("T")


def both(make: Callable[..., T], one: tuple[object, ...], other: tuple[object, ...]
         ) -> tuple[T, T]:
    """``(make(*one), make(*other))``, the second made in a thread meanwhile.

    Why: much of the work on the pair is done twice, once per direction or per end (dense
    flow, doubling the end frames, the first frame's two key times), in OpenCV and NumPy
    calls that release the GIL but use one core: two threads do both at once, before the
    frame workers start. (Reversing the two flows of every key time at once was tried too:
    +28 MB of peak RSS at 720p, for no CPU saved.)
    """
    with ThreadPoolExecutor(1, thread_name_prefix="flow-pair") as pool:
        later = pool.submit(make, *other)
        return make(*one), later.result()


def in_parallel(make: Callable[[float], np.ndarray], times: Iterator[float], workers: int
                 ) -> Iterator[np.ndarray]:
    """Frames made ahead by ``workers`` threads, yielded in order.

    Why: the caller encodes while the threads make the next frames; OpenCV and the encoder
    release the GIL, so together they fill the cores. The pair analysis runs first, with
    OpenCV's own thread pool; the per-frame work then runs with one OpenCV thread per
    worker, as OpenCV's pool would otherwise fight the encoder and the workers for the cores
    (measured at 720p on 2 cores: 4.3 s with the pool, 2.9 s without). Twice as many frames
    as workers are queued: with one more than workers, a worker that finished while the
    caller was encoding waited for the next submission (720p ``segue generate``: 2.72 ->
    2.64 s, 3.05 -> 2.95 s, at the same peak RSS). Errors come out in order; closing the
    generator cancels what was not started.
    """
    for t in times:  # frames up to and including the first in-between one, made right here
        yield make(t)
        if 0.0 < t < 1.0:
            break
    pending: deque[Future[np.ndarray]] = deque()
    with _one_opencv_thread(), ThreadPoolExecutor(workers, thread_name_prefix="flow") as pool:
        try:
            for t in times:
                pending.append(pool.submit(make, t))
                if len(pending) > 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


_threads_lock = threading.Lock()
_threads_users = 0
_threads_saved = 0


@contextmanager
def _one_opencv_thread() -> Iterator[None]:
    """OpenCV's thread count is process-wide: set it to one while any render needs that,
    and give the old value back when the last such render ends (renders may overlap)."""
    global _threads_users, _threads_saved
    with _threads_lock:
        if _threads_users == 0:
            _threads_saved = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                cv2.setNumThreads(_threads_saved)


_M_ARENA_MAX = -8  # glibc's mallopt parameter


@functools.cache
def glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has ``mallopt``); None elsewhere (musl, macOS)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt  # noqa: B018 - glibc's, not another C library's
    except (OSError, AttributeError):
        return None
    return libc


def one_malloc_arena() -> None:
    """Ask glibc for a single malloc arena (as ``MALLOC_ARENA_MAX=1`` would), process-wide.

    Why: every thread that allocates (frame workers, the pair analysis, the encoder's own
    threads) otherwise gets an arena of its own, which keeps its freed buffers: at 720p
    about 45 MB of a render's peak RSS (320 MB -> 280 MB), for no measurable speed. Only
    threads that have not allocated yet are affected, so the engine asks when it is made,
    before the encoder starts its threads. Elsewhere than glibc (musl, macOS) there is no
    such call and nothing is done.
    """
    libc = glibc()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, 1)
