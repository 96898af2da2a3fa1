"""The network's flows on what the camera leaves: camera pre-alignment, then learned residual.

The network alone tears the borders of a camera move (content that enters or leaves the
frame has nowhere to come from in its two-frame warp). The flow engine's camera model
(``segue.engines.flow.camera``: ORB matches, RANSAC homography) is estimated first; the last
frame is brought back into the first's coordinates along it, and the network finds what the
camera did not explain, at the same time t. A pixel of the frame at t is then taken back
along the camera path to the first frame's coordinates, moved by the network's residual
flows there, and sampled from each end frame (the last through the camera); each end counts
only where its sample falls inside its frame, as in the flow engine's blend, so the borders
come from the end that saw them. Without a trusted camera, or where a camera model does not
fit the scene (``MAX_UNEXPLAINED``), the frames are the network's mixed with the flow
engine's (``mixed``; ``mix=False``: the network's own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from functools import partial
from typing import TYPE_CHECKING

import cv2
import numpy as np

from segue.engines.flow.camera import camera_at, find_camera, unexplained
from segue.engines.flow.warp import sample
from segue.engines.rife.frames import (
    _Keys,
    _time,
    check_frames,
    check_options,
    ready,
    run_frames,
)
from segue.engines.rife.mixed import mixed_frames

if TYPE_CHECKING:
    from segue.engines.rife.runtime import Rife

# When the camera path is taken (measured on the development sets, benchmarks/rife.py): when
# the camera explains nearly all of the frame (under this share of pixels unexplained). On
# scenes with depth or with things moving in them the network alone is better: a homography
# taken there cost 0.9 dB on Middlebury, and on real clips 16 of the 18 pairs whose corners
# move far but which the camera explains poorly lost 0.1 to 1.3 dB (so a large move alone
# does not choose it). Where it is taken on real clips it still costs a little (triplets -0.04 dB,
# 8-step windows -0.07 dB against the network alone); on camera moves it gains 15 dB.
MAX_UNEXPLAINED = 0.12


def camera_frames(rife: Rife | Future[Rife], first: np.ndarray, last: np.ndarray,
                  times: Iterable[float], keys: int | None = None, seed: int = 0,
                  camera_fixed: bool = False, workers: int = 1, mix: bool = True,
                  share: float | None = None) -> Iterator[np.ndarray]:
    """One H×W×3 uint8 frame per time (the ends exact); see the module docstring.
    ``rife`` may still be loading (a future: the camera is estimated meanwhile);
    ``workers`` as in ``Rife.frames``; ``share`` as in ``mixed_frames``."""
    check_options("linear", keys)
    check_frames(first, last)
    times = [_time(t) for t in times]
    found = None
    if not camera_fixed and any(0.0 < t < 1.0 for t in times):
        found = _camera(first, last, seed)
    if found is None and mix:
        yield from mixed_frames(rife, first, last, times, keys, seed, camera_fixed, workers,
                                share)
        return
    if found is None:
        yield from ready(rife).frames(first, last, times, keys=keys, workers=workers)
        return
    h, aligned, keep = found
    reach = _reach(keep[..., 0])
    network = ready(rife)
    pair = network.pair(first, aligned)
    if keys is not None:
        # the residual counts only where ``keep`` says: multiplied into the key flows once,
        # not into every frame's (the same flows, up to float rounding)
        known = _Keys(network, pair, keys, weight=keep).warm()
        residual_at = known.sampled
    else:
        def residual_at(t: float, points: np.ndarray) -> np.ndarray:
            return sample(network.flows(pair, t)[0] * keep, points)

    def make(t: float) -> np.ndarray:
        if t in (0.0, 1.0):
            return (first if t == 0.0 else last).copy()
        return _frame(first, last, h, partial(residual_at, t), t, reach)

    yield from run_frames(make, times, workers)


def _camera(first: np.ndarray, last: np.ndarray, seed: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(homography, last frame brought back to the first, where the residual counts), when
    the camera path is to be taken (see ``MAX_UNEXPLAINED``)."""
    hgt, w = first.shape[:2]
    g0, g1 = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (first, last))
    h = find_camera(g0, g1, seed)  # as the flow engine finds it
    if h is None:
        return None
    inv = np.linalg.inv(h)
    aligned = cv2.warpPerspective(last, inv, (w, hgt), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
    # the residual only where the camera alone does not explain the pixel (the flow engine's
    # rule): elsewhere the network would chase the smeared borders of the aligned frame
    keep = unexplained(g0, cv2.cvtColor(aligned, cv2.COLOR_RGB2GRAY), inv)
    if keep.mean() >= MAX_UNEXPLAINED:
        return None
    return h, aligned, keep[..., None]


def _reach(keep: np.ndarray) -> np.ndarray | None:
    """Where in the first frame's coordinates a bilinear sample of a flow that is zero
    wherever ``keep`` is can be other than zero: the kept pixels widened by two (a sample
    reads the pixels on either side of its point; the nearest pixel, which ``_frame``
    reads this mask at, is at most one away from them), uint8; None where nothing is
    kept."""
    kept = (keep > 0).astype(np.uint8)
    if not kept.any():
        return None
    return cv2.dilate(kept, np.ones((5, 5), np.uint8))


ROW = 1024  # the pixels of the residual's sampling, laid out in rows of this many (OpenCV's
# remap takes up to 32767 rows and columns)


def _frame(first: np.ndarray, last: np.ndarray, h: np.ndarray,
           residual: Callable[[np.ndarray], np.ndarray], t: float, reach: np.ndarray | None
           ) -> np.ndarray:
    """The frame at t from the residual flows (``residual(points)``: the network's read at
    those points, already zero wherever they do not count) and ``reach`` (``_reach``: where
    its samples can be other than zero).

    Per output pixel: y, its point in the first frame's coordinates along the camera path;
    r, the residual flow sampled at y; the first frame sampled at y + r[:2], the last at
    H(y + r[2:]). Where r is zero (wherever y falls outside ``reach``) that is y and H(y):
    the camera alone, two homographies, which OpenCV's warpPerspective samples over the
    whole frame, computing each pixel's point itself (no full-frame maps of points made
    and read). The residual's sampling, sums and second projection are done for the other
    pixels only, and their samples taken again over the warp's. The same arithmetic up to
    rounding (the warp computes its points in double precision and rounds them to its
    sub-pixel grid itself): at most one level apart from the whole-frame computation, on a
    few pixels in ten thousand.
    """
    hgt, w = first.shape[:2]
    # output pixel -> the first frame's coordinates along the camera path, and the last's
    back = np.linalg.inv(camera_at(h, t, w, hgt))
    to0, to1 = back, h @ back

    def warp(img: np.ndarray, m: np.ndarray, flags: int, border: int) -> np.ndarray:
        return cv2.warpPerspective(img, m, (w, hgt), flags=flags | cv2.WARP_INVERSE_MAP,
                                   borderMode=border)

    # bicubic: a camera move resamples the whole frame, and bilinear blurs it visibly (and
    # Lanczos scored 1.5 dB lower on the camera set, at 4x the time)
    w0, w1 = (warp(img, m, cv2.INTER_CUBIC, cv2.BORDER_REPLICATE)
              for img, m in ((first, to0), (last, to1)))
    # a pixel saw an end where its point there rounds to one of the end's pixels
    whole = np.full((hgt, w), 255, np.uint8)
    seen0, seen1 = (warp(whole, m, cv2.INTER_NEAREST, cv2.BORDER_CONSTANT) for m in (to0, to1))
    out = _blend(w0, w1, seen0, seen1, t)
    if reach is None:
        return out
    near = warp(reach, to0, cv2.INTER_NEAREST, cv2.BORDER_REPLICATE)
    idx = np.flatnonzero(near)
    if not len(idx):
        return out
    idx = np.pad(idx, (0, -len(idx) % ROW), mode="edge")  # repeats write the same
    pixels = np.stack((idx % w, idx // w), axis=-1).astype(np.float32).reshape(-1, ROW, 2)
    y = cv2.perspectiveTransform(pixels, back)
    r = residual(y)
    at0, at1 = y + r[..., :2], cv2.perspectiveTransform(y + r[..., 2:], h)
    s0, s1 = (cv2.remap(img, at, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
              for img, at in ((first, at0), (last, at1)))
    inside = ((-0.5, -0.5), (w - 0.5, hgt - 0.5))
    out.reshape(-1, 3)[idx] = _blend(s0, s1, *(cv2.inRange(at, *inside) for at in (at0, at1)),
                                     t).reshape(-1, 3)
    return out


def _blend(w0: np.ndarray, w1: np.ndarray, seen0: np.ndarray, seen1: np.ndarray, t: float
           ) -> np.ndarray:
    """By time where both ends (or neither) saw the pixel (``seen*``: 255 or 0), else from
    the one that did."""
    out = cv2.addWeighted(w0, 1.0 - t, w1, t, 0.0)
    cv2.copyTo(w0, cv2.subtract(seen0, seen1), out)
    cv2.copyTo(w1, cv2.subtract(seen1, seen0), out)
    return out
