"""The pair analysis, the frame maker and ``FlowEngine`` (see the package docstring)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np

from segue.domain import Mode
from segue.engines.base import RenderJob
from segue.engines.flow.camera import (
    camera_at,
    find_camera,
    unexplained,
)
from segue.engines.flow.layers import Layers, background_flows
from segue.engines.flow.motion import recover_large_moves
from segue.engines.flow.parallel import both, in_parallel, one_malloc_arena
from segue.engines.flow.subjects import find_subjects
from segue.engines.flow.warp import (
    Timeline,
    Warper,
    enlarge,
    grid,
    map_levels,
    resample_flow,
    sample,
)


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

_MIN_CONSISTENT = 0.45  # share of pixels whose forward/backward flows agree, else the
# flows are not trusted: a dissolve where the pair moves little (``_moves_little``)
_GATE_SHARE = 0.95  # share of pixels the camera must explain to gate residual flow


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


def _flows(preset: Preset, ga: np.ndarray, gb: np.ndarray) -> np.ndarray:
    """Dense flow ga -> gb, large moves of objects recovered, cleaned."""
    return _clean(recover_large_moves(ga, gb, _dis(preset).calc(ga, gb, None)))


def _total_flows(
    g0: np.ndarray, g1: np.ndarray, h: np.ndarray | None, preset: Preset
) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward flows, the homography (if any) composed with the residual flow."""
    hgt, w = g0.shape
    if h is None:
        return both(_flows, (preset, g0, g1), (preset, g1, g0))
    inv = np.linalg.inv(h)
    aligned1 = cv2.warpPerspective(g1, inv, (w, hgt), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
    # frame 0 -> aligned frame 1, and back
    r01, r10 = both(_flows, (preset, g0, aligned1), (preset, aligned1, g0))
    # Residual flow only where the camera does not explain the pixel, and only when the
    # camera explains nearly the whole pair: then the residual is mostly noise (wobble, torn
    # textures). Where more moves on its own, zeroing it would lose the sub-pixel motion of
    # smooth surfaces (-0.4 dB on Middlebury); a partial gate (scaled flow) is worse than
    # either, so it is on or off.
    miss = unexplained(g0, aligned1, inv)
    if float(np.mean(miss < 0.5)) >= _GATE_SHARE:
        r01, r10 = r01 * miss[..., None], r10 * miss[..., None]
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
    err = _squared_length(f01 + back)
    bound = 0.01 * (_squared_length(f01) + _squared_length(back)) + 0.5
    return float(np.mean(err < bound))


def _squared_length(v: np.ndarray) -> np.ndarray:
    """``np.sum(v**2, axis=2)`` of an H×W×2 field, the same values at a third of the time:
    NumPy's reduction over an axis of two is slow (20 ms of the 720p pair analysis)."""
    return v[..., 0] ** 2 + v[..., 1] ** 2


# --------------------------------------------------------------------------- the pair model


@dataclass
class _Motion:
    """Everything learned from the pair, at the working size (``scale`` = work / output)."""

    f01: np.ndarray | None  # None when the flow is not trusted (fallback)
    f10: np.ndarray | None
    camera: np.ndarray | None  # output-size homography, used by the fallback path
    scale: float
    layers: Layers | None = None  # subjects that travel, drawn over the background


def _gray(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return g if g.shape[::-1] == size else cv2.resize(g, size, interpolation=cv2.INTER_AREA)


def analyse(
    first: np.ndarray, last: np.ndarray, preset: Preset, camera_fixed: bool, seed: int,
    subjects: bool = True,
) -> _Motion:
    """Estimate camera, subjects, flows and visibility once for the pair; decide whether flow
    is trusted. With subjects, the flows are those of the plates (``Layers.plates``)."""
    hgt, w = first.shape[:2]
    scale = min(1.0, preset.work_side / max(w, hgt))
    size = (max(16, round(w * scale)), max(16, round(hgt * scale)))
    scale = size[0] / w
    g0, g1 = _gray(first, size), _gray(last, size)
    # refined by ECC inside: +0.6 dB Middlebury, +0.5 dB long windows
    h = None if camera_fixed else find_camera(g0, g1, seed)
    camera = None
    if h is not None:
        to_work = np.diag([scale, size[1] / hgt, 1.0])
        camera = np.linalg.inv(to_work) @ h @ to_work
    f01, f10 = _total_flows(g0, g1, h, preset)
    layers = None
    if subjects:
        # found on the colour frames: a subject and a flat background may differ in hue alone
        c0, c1 = (cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in (first, last))
        found = find_subjects(c0, c1, h, f01, f10)
        if found:  # from here on, the background alone: the plates and their flows
            layers = Layers(first, last, found, camera, (size[0] / w, size[1] / hgt))
            f01, f10 = background_flows(f01, f10, found, h)
            g0, g1 = (_gray(plate, size) for plate in layers.plates)
    xy = grid(*size)
    ok0, ok1 = _consistent_share(f01, f10, xy), _consistent_share(f10, f01, xy)
    if not _flow_explains(g0, g1, f01, xy) or (
            min(ok0, ok1) < _MIN_CONSISTENT and _moves_little(f01, preset)):
        return _Motion(None, None, camera, scale, layers)
    return _Motion(f01, f10, camera, scale, layers)


def _moves_little(f01: np.ndarray, preset: Preset) -> bool:
    """Whether the pair moves less than a flow patch (median vector at the working size):
    the test that decides, once too few forward/backward flows agree, between a dissolve
    and warping with flows that are partly wrong.

    A dissolve shows whatever moved twice, the two copies as far apart as it moved. Under a
    patch's width they overlap into a blur that costs less than warping with vectors that
    fail the round trip (a rippling water surface, where the flows fit the ripples and the
    frame between is neither end's). Farther apart, the double image costs more than the
    failing vectors do: large moves, wide occlusions, or flat sky where any vector fits and
    none comes back. (On the development sets: of the five pairs this warps, three gain
    0.6 to 1.3 dB, two lose 0.15 and 0.01; the two water windows keep their dissolve;
    ``benchmarks/README.md``.)
    """
    return float(np.median(_squared_length(f01))) < preset.patch_size ** 2


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
        ht = camera_at(camera, t, w, hgt)
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
                 seed: int, subjects: bool) -> None:
        self.first, self.last = np.ascontiguousarray(first), np.ascontiguousarray(last)
        self.params, self.camera_fixed, self.seed = params, camera_fixed, seed
        self.subjects = subjects
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
        return make_frames(self.first, self.last, self.params, self.camera_fixed, self.seed,
                           self.subjects)[0]


@dataclass(frozen=True)
class Warped:
    """The frames of a pair the flow engine warps (not a dissolve), with what a caller that
    judges its warps needs (``segue.engines.rife.mixed``)."""

    frame: Callable[[float], np.ndarray]  # the frame at t, subjects drawn
    line: Timeline  # the flows at t, on the map grid
    levels: int  # map pixel i sits on output pixel 2**levels · i
    plates: tuple[np.ndarray, np.ndarray]  # the frames warped (the ends without subjects)


def make_frames(first: np.ndarray, last: np.ndarray, params: Preset, camera_fixed: bool,
                seed: int, subjects: bool = True
                ) -> tuple[Callable[[float], np.ndarray], Warped | None]:
    """The frame maker of a pair, for t inside (0, 1), and its warps (None on a dissolve)."""
    with ThreadPoolExecutor(1, thread_name_prefix="flow-enlarge") as pool:
        # The end frames are enlarged for the warps meanwhile: the camera estimate at the
        # start of the analysis keeps one core busy, not two. (Wasted on a dissolve; with
        # subjects, patched where the plates differ from the frames.)
        big = pool.submit(enlarge, first, last, params.upsample)
        m = analyse(first, last, params, camera_fixed, seed, subjects)
        if m.layers is not None:
            first, last = m.layers.plates
        if m.f01 is None or m.f10 is None:
            return _with_layers(partial(_dissolve, first, last, m.camera), m.layers), None
        hgt, w = first.shape[:2]
        levels = map_levels(w, hgt, params.work_side)
        f01, f10 = (resample_flow(f, (w, hgt), levels) for f in (m.f01, m.f10))
        line = Timeline(f01, f10, params.key_times, params.occlusion)
        ends = big.result()
        if m.layers is not None:
            ends = m.layers.enlarged(ends, params.upsample)
        warper = Warper(first, last, levels, params.upsample, ends)
    frame = _with_layers(partial(warper.frame, line), m.layers)
    return frame, Warped(frame, line, levels, (first, last))


def _with_layers(background: Callable[[float], np.ndarray], layers: Layers | None
                 ) -> Callable[[float], np.ndarray]:
    """The frame maker: the background at t, with the subjects drawn over it."""
    if layers is None:
        return background
    return lambda t: layers.draw(background(t), t)


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
    subjects: bool = True,
) -> Iterator[np.ndarray]:
    """Yield one H×W×3 uint8 RGB frame per time in ``times`` (t=0 is ``first``, t=1 ``last``).

    A generator so that frames go to the encoder one by one; the pair is analysed lazily,
    on the first time strictly between 0 and 1. ``workers`` > 1 makes frames ahead in that
    many threads (see ``in_parallel``); the output is the same. ``subjects=False`` leaves
    subjects that travel to the dense flow (no layers; for comparisons).
    """
    _check(first, last)
    one_malloc_arena()  # before the analysis and worker threads allocate
    make = _FrameMaker(first, last, PRESETS[preset], camera_fixed, seed, subjects)
    if workers <= 1:
        for t in times:
            yield make(_time(t))
        return
    yield from in_parallel(make, (_time(t) for t in times), workers)


def interpolate(
    first: np.ndarray, last: np.ndarray, times: Sequence[float], **options: object
) -> list[np.ndarray]:
    """All frames at once; see ``iter_interpolate`` for the options."""
    return list(iter_interpolate(first, last, times, **options))  # type: ignore[arg-type]


class FlowEngine:
    """The CPU default engine (registry name ``flow``)."""

    name = "flow"
    modes = frozenset({Mode.FIRST_LAST})
    makes_audio = False
    # keyframes between the ends (a storyboard): each span costs one more pair analysis
    max_keyframes = 16

    def __init__(self, preset: str = "medium", workers: int = 2) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown flow preset {preset!r}; known: {', '.join(PRESETS)}")
        self.preset, self.workers = preset, max(1, int(workers))
        one_malloc_arena()  # before the encoder's threads allocate (see there)

    def render(self, job: RenderJob) -> Iterator[np.ndarray]:
        if job.first is None or job.last is None:
            raise ValueError("the flow engine needs a first and a last frame")
        n = job.frames
        for i, frame in enumerate(self._spans(job)):
            job.progress(i / n)
            yield frame
        job.progress(1.0)

    def _spans(self, job: RenderJob) -> Iterator[np.ndarray]:
        """The frames of each span between consecutive keyframes (the ends included), each
        span in-betweened on its own pair: every keyframe is exact on its frame, and a
        span's first frame (the previous span's last) is not made twice."""
        assert job.first is not None and job.last is not None
        stops = [(0, job.first), *job.keyframes, (job.frames - 1, job.last)]
        # a draft is the cheap look before the final: the fastest preset
        preset = "fast" if job.draft else self.preset
        if job.frames <= 1:
            yield job.first.copy()
            return
        for span, ((start, a), (end, b)) in enumerate(itertools.pairwise(stops)):
            steps = end - start
            times = [i / steps for i in range(0 if span == 0 else 1, steps + 1)]
            yield from iter_interpolate(a, b, times, preset=preset,
                                        camera_fixed=job.camera_fixed, seed=job.seed,
                                        workers=self.workers)
