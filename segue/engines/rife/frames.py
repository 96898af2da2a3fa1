"""What the learned engine does around the network, without torch: the checks of its
arguments, the flows of the times between key times, both ends warped along flows, and
frames made in threads.

Apart from ``runtime`` (which imports torch, a second or so), so that the camera estimate
(``camera``) can run while the network loads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

from segue.engines.flow.parallel import glibc
from segue.engines.flow.warp import sample

if TYPE_CHECKING:
    from segue.engines.rife.runtime import Pair, Rife

BLENDS = ("linear", "mask")


def check_frames(first: np.ndarray, last: np.ndarray) -> None:
    for name, img in (("first", first), ("last", last)):
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 \
                or img.shape[2] != 3:
            shape = getattr(img, "shape", type(img).__name__)
            raise ValueError(f"{name} must be an H×W×3 uint8 RGB array, got {shape}")
    if first.shape != last.shape:
        raise ValueError(f"first {first.shape} and last {last.shape} differ in size")
    if min(first.shape[:2]) < 32:
        raise ValueError("frames must be at least 32×32")


def check_options(blend: str, keys: int | None) -> None:
    if blend not in BLENDS:
        raise ValueError(f"unknown blend {blend!r}; known: {', '.join(BLENDS)}")
    if keys is not None and keys < 1:
        raise ValueError(f"keys must be at least 1 (or None: every time), got {keys}")


def _time(t: float) -> float:
    t = float(t)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"time {t} is outside [0, 1]")
    return t


def ready(rife: Rife | Future[Rife]) -> Rife:
    """The network, waited for where it is still loading (``RifeEngine`` loads it in a
    thread while the work that does not need it runs); its loading's error raised here."""
    return rife.result() if isinstance(rife, Future) else rife


def run_frames(make: Callable[[float], np.ndarray], times: list[float], workers: int
               ) -> Iterator[np.ndarray]:
    if workers <= 1:
        yield from map(make, times)
        return
    from segue.engines.flow.parallel import in_parallel

    yield from in_parallel(make, iter(times), workers)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
KEPT = 1 << 30  # bytes: while the keys are made, blocks up to this size come from the heap
# after them, what glibc's own moving thresholds end at (their largest: 32 MB, trim twice that)
SETTLED_MMAP, SETTLED_TRIM = 32 << 20, 64 << 20
_kept_lock = threading.Lock()
_kept_users = 0


@contextmanager
def freed_memory_kept() -> Iterator[None]:
    """While the network's key passes run, glibc keeps the memory one pass freed for the
    next, instead of handing every large block back to the system and taking it again.

    Why: a 720p pass allocates tens of blocks of 10 to 60 MB (each layer's output), above
    glibc's mmap threshold (at most 32 MB, moved up only as blocks are freed): each was
    mapped, its pages faulted in, then unmapped, pass after pass (the first pass in a
    process the most). Measured at 720p on 2 cores, a pass took 0.75 -> 0.53 s (system
    time 0.45 -> 0.08 s). Kept only while the keys are made, and the free memory handed
    back after them (``malloc_trim``), so that it is not kept on top of the frames' and the
    encoder's. The thresholds are process-wide, and mallopt cannot give back glibc's moving
    ones: after the last user they are set where those end (``SETTLED_*``). Elsewhere than
    glibc nothing is done.
    """
    global _kept_users
    libc = glibc()
    if libc is None:
        yield
        return
    with _kept_lock:
        if _kept_users == 0:
            libc.mallopt(_M_MMAP_THRESHOLD, KEPT)
            libc.mallopt(_M_TRIM_THRESHOLD, KEPT)
        _kept_users += 1
    try:
        yield
    finally:
        with _kept_lock:
            _kept_users -= 1
            if _kept_users == 0:
                libc.mallopt(_M_MMAP_THRESHOLD, SETTLED_MMAP)
                libc.mallopt(_M_TRIM_THRESHOLD, SETTLED_TRIM)
                libc.malloc_trim(0)


class _Keys:
    """Flows at ``count`` evenly spaced key times inside (0, 1), each computed when first
    needed (or all at once: ``warm``). Between two keys the flows are interpolated
    linearly; between an end and its nearest key that key's flows are scaled, towards the
    end by the time left to it (zero at the end itself, as the flow from an end to itself
    is). ``weight`` (H×W×1), when given, is multiplied into each key's flows once, as the
    key is made: where the flows count (``camera``)."""

    def __init__(self, rife: Rife, pair: Pair, count: int,
                 weight: np.ndarray | None = None) -> None:
        self.rife, self.pair, self.weight = rife, pair, weight
        self.times = [(j + 1) / (count + 1) for j in range(count)]
        self.cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def warm(self) -> _Keys:
        """Every key now (20 bytes a pixel each): ``at`` then only reads, from any thread."""
        with freed_memory_kept():
            for i in range(len(self.times)):
                self._key(i)
        return self

    def _key(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i not in self.cache:
            flow, mask = self.rife.flows(self.pair, self.times[i])
            if self.weight is not None:
                np.multiply(flow, self.weight, out=flow)
            self.cache[i] = flow, mask
        return self.cache[i]

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(flows, mask) at t."""
        return (self._interpolated(t, lambda k: self._key(k)[0]),
                self._interpolated(t, lambda k: self._key(k)[1], scaled=False))

    def sampled(self, t: float, points: np.ndarray) -> np.ndarray:
        """The flows at t read at ``points`` (``flow.warp.sample``: bilinear, edges
        replicated): each key read there, then interpolated. The same values as reading
        ``at(t)``'s flows there (up to float rounding: reading is linear), without making
        the whole frame's flows (a fifth of a camera-path frame's time at 720p, where it
        reads a tenth of them)."""
        return self._interpolated(t, lambda k: sample(self._key(k)[0], points))

    def _interpolated(self, t: float, read: Callable[[int], np.ndarray], scaled: bool = True
                      ) -> np.ndarray:
        """Key k's ``read(k)`` interpolated to t (not ``scaled`` towards an end: the mask,
        a share, not a move). OpenCV's arithmetic, not NumPy's: one pass, no temporaries,
        the GIL released (a third of the time per 720p frame)."""
        times = self.times
        if t <= times[0] or t >= times[-1]:
            k = 0 if t <= times[0] else len(times) - 1
            if not scaled:
                return read(k)
            scale = (t / times[k],) * 2 + ((1 - t) / (1 - times[k]),) * 2
            return cv2.multiply(read(k), scale)
        i = next(j for j in range(len(times) - 1) if times[j] <= t <= times[j + 1])
        w = (t - times[i]) / (times[i + 1] - times[i])
        return cv2.addWeighted(read(i), 1 - w, read(i + 1), w, 0.0)


@lru_cache(maxsize=2)
def pixel_grid(hgt: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's x and y (float32 H×W), shared by every frame of that size."""
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(hgt, dtype=np.float32))
    gx.flags.writeable = gy.flags.writeable = False
    return gx, gy


def warp_blend(first: np.ndarray, last: np.ndarray, flow: np.ndarray, t: float,
               mask: np.ndarray | None = None) -> np.ndarray:
    """Both ends sampled along the flows from t, blended by time (or by ``mask``)."""
    gx, gy = pixel_grid(*first.shape[:2])
    w0 = cv2.remap(first, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_REPLICATE)
    w1 = cv2.remap(last, gx + flow[..., 2], gy + flow[..., 3], cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_REPLICATE)
    if mask is None:
        return cv2.addWeighted(w0, 1.0 - t, w1, t, 0.0)
    weight = mask.astype(np.float32)
    return cv2.blendLinear(w0, w1, weight, 1.0 - weight)
