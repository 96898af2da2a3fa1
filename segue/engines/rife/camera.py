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

from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from segue.engines.flow.camera import camera_at, find_camera, unexplained
from segue.engines.flow.warp import grid
from segue.engines.rife.mixed import mixed_frames
from segue.engines.rife.runtime import (
    Rife,
    _Keys,
    _time,
    check_frames,
    check_options,
    run_frames,
)

# When the camera path is taken (measured on the development sets, benchmarks/rife.py): when
# the camera explains nearly all of the frame (under this share of pixels unexplained). On
# scenes with depth or with things moving in them the network alone is better: a homography
# taken there cost 0.9 dB on Middlebury, and on real clips 16 of the 18 pairs whose corners
# move far but which the camera explains poorly lost 0.1 to 1.3 dB (so a large move alone
# does not choose it). Where it is taken on real clips it still costs a little (triplets -0.04 dB,
# 8-step windows -0.07 dB against the network alone); on camera moves it gains 15 dB.
MAX_UNEXPLAINED = 0.12


def camera_frames(rife: Rife, first: np.ndarray, last: np.ndarray, times: Iterable[float],
                  keys: int | None = None, seed: int = 0, camera_fixed: bool = False,
                  workers: int = 1, mix: bool = True, share: float | None = None
                  ) -> Iterator[np.ndarray]:
    """One H×W×3 uint8 frame per time (the ends exact); see the module docstring.
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
        yield from rife.frames(first, last, times, keys=keys, workers=workers)
        return
    h, aligned, keep = found
    hgt, w = first.shape[:2]
    pair = rife.pair(first, aligned)
    if keys is not None:
        # the residual counts only where ``keep`` says: multiplied into the key flows once,
        # not into every frame's (the same flows, up to float rounding)
        known = _Keys(rife, pair, keys, weight=keep).warm()

        def residual_at(t: float) -> np.ndarray:
            return known.at(t)[0]
    else:
        def residual_at(t: float) -> np.ndarray:
            return rife.flows(pair, t)[0] * keep

    xy = grid(w, hgt)
    reach = _reach(keep[..., 0])

    def make(t: float) -> np.ndarray:
        if t in (0.0, 1.0):
            return (first if t == 0.0 else last).copy()
        return _frame(first, last, h, residual_at(t), xy, t, reach)

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


def _frame(first: np.ndarray, last: np.ndarray, h: np.ndarray, flow: np.ndarray,
           xy: np.ndarray, t: float, reach: np.ndarray | None) -> np.ndarray:
    """The frame at t from the residual ``flow`` (the network's, already zero wherever it
    does not count) and ``reach`` (``_reach``: where its samples can be other than zero).

    Per output pixel: y, its point in the first frame's coordinates along the camera path;
    r, the residual flow sampled at y; the first frame sampled at y + r[:2], the last at
    H(y + r[2:]). Where r is zero (wherever y falls outside ``reach``) that is y and H(y), so
    the residual's sampling, sums and second projection are done for the other pixels only,
    with the same arithmetic as over the whole frame: the same frames.
    """
    hgt, w = first.shape[:2]
    # each output pixel in the first frame's coordinates, along the camera path
    back = np.linalg.inv(camera_at(h, t, w, hgt))
    at0 = cv2.perspectiveTransform(xy.reshape(-1, 1, 2), back).reshape(hgt, w, 2)
    at1 = cv2.perspectiveTransform(at0.reshape(-1, 1, 2), h).reshape(hgt, w, 2)
    if reach is not None:
        near = cv2.remap(reach, at0, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        idx = np.flatnonzero(near)
        if len(idx):
            idx = np.pad(idx, (0, -len(idx) % ROW), mode="edge")  # repeats write the same
            flat0, flat1 = at0.reshape(-1, 2), at1.reshape(-1, 2)
            y = flat0[idx].reshape(-1, ROW, 2)
            residual = cv2.remap(flow, y, None, cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
            flat1[idx] = cv2.perspectiveTransform((y + residual[..., 2:]).reshape(-1, 1, 2),
                                                  h).reshape(-1, 2)
            flat0[idx] = (y + residual[..., :2]).reshape(-1, 2)
    # bicubic: a camera move resamples the whole frame, and bilinear blurs it visibly (and
    # Lanczos scored 1.5 dB lower on the camera set, at 4x the time)
    w0 = cv2.remap(first, at0, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    w1 = cv2.remap(last, at1, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    # by time where both ends (or neither) saw the pixel, else from the one that did
    inside = ((-0.5, -0.5), (w - 0.5, hgt - 0.5))
    seen0, seen1 = (cv2.inRange(at, *inside) for at in (at0, at1))
    weight = np.where(seen0 == seen1, np.float32(1.0 - t), seen0.astype(np.float32) / 255)
    return cv2.blendLinear(w0, w1, weight, 1.0 - weight)
