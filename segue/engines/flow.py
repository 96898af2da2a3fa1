"""The ``flow`` engine: classical optical-flow in-betweening on the CPU, no model weights.

How one video is made (all the heavy work happens once, on the pair):

1. Camera: ORB features matched between the two frames and a RANSAC homography. It is used
   only when enough matches agree (and never with ``camera_fixed``); it pre-aligns the pair so
   that dense flow only has to find what the camera did not explain.
2. Dense flow both ways with OpenCV DIS (plus variational refinement) at a working size,
   cleaned with a median filter; the homography is folded back in, so the flows are total.
   Objects that move farther than about their size are lost by DIS: the regions its flow
   does not explain are found again by template matching (``_flow_motion``).
3. Per key time (a few evenly spaced t, at the map size, about the working size): the flows
   from t back to each end, by forward splatting the pair's flows (holes, where something
   is uncovered, take the other direction's flow); and a visibility weight checked in the
   target frame's coordinates (``_flow_warp.visibility_weight``). Other times interpolate
   the two neighbouring keys.
4. Per output frame (the cheap part): sampling maps built at the map size, doubled back with
   ``cv2.pyrUp`` band by band, and two fixed-point ``cv2.remap`` calls from Lanczos-doubled
   end frames (sharper than bilinear on the originals), blended by time, and by visibility
   in the tiles where that differs. Frames are made ahead in worker threads while the
   caller encodes (see ``_in_parallel``).

When neither flow nor camera can be trusted (unrelated frames, huge changes) the engine falls
back to a cross-dissolve along the camera path (or a plain one), which never tears the frame.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np

from segue.domain import Mode
from segue.engines._flow_motion import recover_large_moves
from segue.engines._flow_warp import (
    Timeline,
    Warper,
    grid,
    map_levels,
    resample_flow,
    sample,
)
from segue.engines.base import RenderJob


@dataclass(frozen=True)
class Preset:
    """Speed/quality knobs. ``work_side`` bounds the longer side of the flow computation."""

    work_side: int
    dis_preset: int
    finest_scale: int
    patch_size: int
    patch_stride: int
    refine_iters: int
    key_times: int  # times at which flows are reversed exactly; others are interpolated
    upsample: int  # 2: end frames are Lanczos-doubled before bilinear warping (sharper); 1: not
    occlusion: bool  # visibility-weighted blending (else by time only)


PRESETS: dict[str, Preset] = {
    "fast": Preset(480, cv2.DISOPTICAL_FLOW_PRESET_FAST, 1, 8, 4, 5, 3, 1, False),
    "medium": Preset(640, cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, 0, 8, 3, 5, 5, 2, True),
    "high": Preset(1024, cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, 0, 8, 2, 10, 9, 2, True),
}

_MIN_INLIERS = 40  # matches that must agree before the homography is believed
_MIN_INLIER_RATIO = 0.35
_MIN_CONSISTENT = 0.45  # share of pixels whose forward/backward flows agree, else fallback


# --------------------------------------------------------------------------- camera motion


def estimate_camera(g0: np.ndarray, g1: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """Homography mapping frame-0 pixels to frame-1 pixels, or None when it is not trustworthy.

    Why: dense flow loses large global moves (pans, zooms); a robust global model recovers
    them, and the residual flow is then small. Only trusted with many, mostly agreeing matches.
    """
    orb = cv2.ORB_create(nfeatures=1500, fastThreshold=12)  # type: ignore[attr-defined]
    k0, d0 = orb.detectAndCompute(g0, None)
    k1, d1 = orb.detectAndCompute(g1, None)
    if d0 is None or d1 is None or len(k0) < _MIN_INLIERS or len(k1) < _MIN_INLIERS:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(d0, d1, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
    if len(good) < _MIN_INLIERS:
        return None
    src = np.asarray([k0[m.queryIdx].pt for m in good], np.float32)
    dst = np.asarray([k1[m.trainIdx].pt for m in good], np.float32)
    cv2.setRNGSeed(seed % 2**31)  # OpenCV takes a C int; request seeds go to 2**32-1
    tol = max(2.0, 0.004 * max(g0.shape))
    h, mask = cv2.findHomography(src, dst, cv2.RANSAC, tol, maxIters=2000, confidence=0.995)
    if h is None or mask is None:
        return None
    inliers = int(mask.sum())
    if inliers < _MIN_INLIERS or inliers < _MIN_INLIER_RATIO * len(good):
        return None
    return h if _plausible(h, g0.shape[1], g0.shape[0]) else None


def _plausible(h: np.ndarray, w: int, hgt: int) -> bool:
    """Reject homographies that fold, flip or blow the frame up: not a camera move."""
    corners = np.asarray([[0, 0], [w, 0], [w, hgt], [0, hgt]], np.float32).reshape(-1, 1, 2)
    moved = cv2.perspectiveTransform(corners, h).reshape(-1, 2)
    area = cv2.contourArea(moved)
    if not cv2.isContourConvex(moved.astype(np.float32)) or area <= 0:
        return False
    return 0.4 < area / (w * hgt) < 2.5


def _camera_at(h: np.ndarray, t: float, w: int, hgt: int) -> np.ndarray:
    """Homography from frame 0 to time t: frame corners moved linearly along the path."""
    c = np.asarray([[0, 0], [w, 0], [w, hgt], [0, hgt]], np.float32)
    c1 = cv2.perspectiveTransform(c.reshape(-1, 1, 2), h).reshape(-1, 2)
    return cv2.getPerspectiveTransform(c, (c + t * (c1 - c)).astype(np.float32))


# --------------------------------------------------------------------------- dense flow


def _dis(preset: Preset) -> cv2.DISOpticalFlow:
    dis = cv2.DISOpticalFlow_create(preset.dis_preset)  # type: ignore[attr-defined]
    dis.setFinestScale(preset.finest_scale)
    dis.setPatchSize(preset.patch_size)
    dis.setPatchStride(preset.patch_stride)
    dis.setVariationalRefinementIterations(preset.refine_iters)
    dis.setUseSpatialPropagation(True)
    return dis


def _clean(flow: np.ndarray) -> np.ndarray:
    """Median filtering removes isolated wrong vectors without moving motion boundaries."""
    return cv2.medianBlur(flow, 5)


def _flows(dis: cv2.DISOpticalFlow, ga: np.ndarray, gb: np.ndarray) -> np.ndarray:
    """Dense flow ga -> gb, large moves of objects recovered, cleaned."""
    return _clean(recover_large_moves(ga, gb, dis.calc(ga, gb, None)))


def _total_flows(
    g0: np.ndarray, g1: np.ndarray, h: np.ndarray | None, preset: Preset
) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward flows, the homography (if any) composed with the residual flow."""
    dis = _dis(preset)
    hgt, w = g0.shape
    if h is None:
        return _flows(dis, g0, g1), _flows(dis, g1, g0)
    inv = np.linalg.inv(h)
    aligned1 = cv2.warpPerspective(g1, inv, (w, hgt), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
    r01 = _flows(dis, g0, aligned1)  # frame 0 -> aligned frame 1
    r10 = _flows(dis, aligned1, g0)
    xy = grid(w, hgt)
    # F01(x) = H(x + r01(x)) - x
    f01 = cv2.perspectiveTransform(xy + r01, h) - xy
    # F10(y) = z + r10(z) - y with z = H^-1(y)
    z = cv2.perspectiveTransform(xy, inv)
    f10 = z + sample(r10, z) - xy
    return f01.astype(np.float32), f10.astype(np.float32)


def _consistent_share(f01: np.ndarray, f10: np.ndarray, grid: np.ndarray) -> float:
    """Share of pixels whose forward and backward flows agree (Sundaram et al. 2010).

    Following F01 then F10 should come back to the start; where it does not, the pixel is
    occluded or the flow is wrong. Too few agreeing pixels means the flow is not trusted.
    """
    back = sample(f10, grid + f01)
    err = np.sum((f01 + back) ** 2, axis=2)
    bound = 0.01 * (np.sum(f01**2, axis=2) + np.sum(back**2, axis=2)) + 0.5
    return float(np.mean(err < bound))


# --------------------------------------------------------------------------- the pair model


@dataclass
class _Motion:
    """Everything learned from the pair, at the working size (``scale`` = work / output)."""

    f01: np.ndarray | None  # None when the flow is not trusted (fallback)
    f10: np.ndarray | None
    camera: np.ndarray | None  # output-size homography, used by the fallback path
    scale: float


def _gray(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return g if g.shape[::-1] == size else cv2.resize(g, size, interpolation=cv2.INTER_AREA)


def analyse(
    first: np.ndarray, last: np.ndarray, preset: Preset, camera_fixed: bool, seed: int
) -> _Motion:
    """Estimate camera, flows and visibility once for the pair; decide whether flow is trusted."""
    hgt, w = first.shape[:2]
    scale = min(1.0, preset.work_side / max(w, hgt))
    size = (max(16, round(w * scale)), max(16, round(hgt * scale)))
    scale = size[0] / w
    g0, g1 = _gray(first, size), _gray(last, size)
    h = None if camera_fixed else estimate_camera(g0, g1, seed)
    f01, f10 = _total_flows(g0, g1, h, preset)
    xy = grid(*size)
    ok0, ok1 = _consistent_share(f01, f10, xy), _consistent_share(f10, f01, xy)
    camera = None
    if h is not None:
        to_work = np.diag([scale, size[1] / hgt, 1.0])
        camera = np.linalg.inv(to_work) @ h @ to_work
    if min(ok0, ok1) < _MIN_CONSISTENT or not _flow_explains(g0, g1, f01, xy):
        return _Motion(None, None, camera, scale)
    return _Motion(f01, f10, camera, scale)


def _flow_explains(g0: np.ndarray, g1: np.ndarray, f01: np.ndarray, grid: np.ndarray) -> bool:
    """Flow is trusted only if warping with it explains frame 1 much better than not moving."""
    warped = sample(g1, grid + f01)
    before = float(np.mean(cv2.absdiff(g0, g1)))
    after = float(np.mean(cv2.absdiff(g0, warped)))
    return after < 12.0 or after < 0.5 * before


# --------------------------------------------------------------------------- per-frame work


def _dissolve(first: np.ndarray, last: np.ndarray, camera: np.ndarray | None, t: float
              ) -> np.ndarray:
    """Fallback: cross-dissolve, both ends carried along the camera path when there is one."""
    if camera is not None:
        hgt, w = first.shape[:2]
        ht = _camera_at(camera, t, w, hgt)
        flags, border = cv2.INTER_LINEAR, cv2.BORDER_REPLICATE
        first = cv2.warpPerspective(first, ht, (w, hgt), flags=flags, borderMode=border)
        last = cv2.warpPerspective(last, ht @ np.linalg.inv(camera), (w, hgt), flags=flags,
                                   borderMode=border)
    return cv2.addWeighted(first, 1.0 - t, last, t, 0.0)


# --------------------------------------------------------------------------- public API


def _check(first: np.ndarray, last: np.ndarray) -> None:
    for name, img in (("first", first), ("last", last)):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"{name} must be an H×W×3 uint8 RGB array, got {img.shape}")
    if first.shape != last.shape:
        raise ValueError(f"first {first.shape} and last {last.shape} differ in size")
    if min(first.shape[:2]) < 32:
        raise ValueError("frames must be at least 32×32")


class _FrameMaker:
    """frame = maker(t); thread-safe. The pair is analysed on the first t inside (0, 1)."""

    def __init__(self, first: np.ndarray, last: np.ndarray, params: Preset, camera_fixed: bool,
                 seed: int) -> None:
        self.first, self.last = np.ascontiguousarray(first), np.ascontiguousarray(last)
        self.params, self.camera_fixed, self.seed = params, camera_fixed, seed
        self.render: Callable[[float], np.ndarray] | None = None
        self.lock = threading.Lock()

    def __call__(self, t: float) -> np.ndarray:
        if t in (0.0, 1.0):
            return (self.first if t == 0.0 else self.last).copy()  # the ends are exact
        with self.lock:
            if self.render is None:
                self.render = self._analyse()
        return self.render(t)

    def _analyse(self) -> Callable[[float], np.ndarray]:
        first, last, params = self.first, self.last, self.params
        m = analyse(first, last, params, self.camera_fixed, self.seed)
        if m.f01 is None or m.f10 is None:
            return partial(_dissolve, first, last, m.camera)
        hgt, w = first.shape[:2]
        levels = map_levels(w, hgt, params.work_side)
        f01, f10 = (resample_flow(f, (w, hgt), levels) for f in (m.f01, m.f10))
        line = Timeline(f01, f10, params.key_times, params.occlusion)
        return partial(Warper(first, last, levels, params.upsample).frame, line)


def _time(t: float) -> float:
    t = float(t)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"time {t} is outside [0, 1]")
    return t


def iter_interpolate(
    first: np.ndarray,
    last: np.ndarray,
    times: Iterable[float],
    *,
    preset: str = "medium",
    camera_fixed: bool = False,
    seed: int = 0,
    workers: int = 1,
) -> Iterator[np.ndarray]:
    """Yield one H×W×3 uint8 RGB frame per time in ``times`` (t=0 is ``first``, t=1 ``last``).

    A generator so that frames go to the encoder one by one; the pair is analysed lazily,
    on the first time strictly between 0 and 1. ``workers`` > 1 makes frames ahead in that
    many threads (see ``_in_parallel``); the output is the same.
    """
    _check(first, last)
    make = _FrameMaker(first, last, PRESETS[preset], camera_fixed, seed)
    if workers <= 1:
        for t in times:
            yield make(_time(t))
        return
    yield from _in_parallel(make, (_time(t) for t in times), workers)


def interpolate(
    first: np.ndarray, last: np.ndarray, times: Sequence[float], **options: object
) -> list[np.ndarray]:
    """All frames at once; see ``iter_interpolate`` for the options."""
    return list(iter_interpolate(first, last, times, **options))  # type: ignore[arg-type]


def _in_parallel(make: _FrameMaker, times: Iterator[float], workers: int
                 ) -> Iterator[np.ndarray]:
    """Frames made ahead by ``workers`` threads, yielded in order.

    Why: the caller encodes while the threads make the next frames; OpenCV and the encoder
    release the GIL, so together they fill the cores. The pair analysis runs first, with
    OpenCV's own thread pool; the per-frame work then runs with one OpenCV thread per
    worker, as OpenCV's pool would otherwise fight the encoder and the workers for the cores
    (measured at 720p on 2 cores: 4.3 s with the pool, 2.9 s without). Errors come out in
    order; closing the generator cancels what was not started.
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
                if len(pending) > workers:
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


class FlowEngine:
    """The CPU default engine (registry name ``flow``)."""

    name = "flow"
    makes_audio = False
    modes = frozenset({Mode.FIRST_LAST})

    def __init__(self, preset: str = "medium", workers: int = 2) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown flow preset {preset!r}; known: {', '.join(PRESETS)}")
        self.preset, self.workers = preset, max(1, int(workers))

    def render(self, job: RenderJob) -> Iterator[np.ndarray]:
        if job.first is None or job.last is None:
            raise ValueError("the flow engine needs a first and a last frame")
        n = job.frames
        times = [i / (n - 1) for i in range(n)] if n > 1 else [0.0]
        frames = iter_interpolate(job.first, job.last, times, preset=self.preset,
                                  camera_fixed=job.camera_fixed, seed=job.seed,
                                  workers=self.workers)
        for i, frame in enumerate(frames):
            job.progress(i / n)
            yield frame
        job.progress(1.0)
