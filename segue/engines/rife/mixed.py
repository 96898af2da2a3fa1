"""The network's frames and the flow engine's, mixed, where the camera path is not taken.

Neither candidate is best everywhere: the flow engine (DIS with variational refinement, a
visibility-aware blend, Lanczos-doubled ends) wins on clean scenes with small, smooth motion
(Middlebury +1.1 dB over the network), the network on real footage (+0.4 dB on the
interp-dev2 triplets). Their errors are partly independent, so a weighted mean of the two
frames beats both; the weight is chosen once per pair, without ground truth, from how well
each candidate's two warped ends agree with each other at t = 0.5 (mean absolute
difference, at the flow engine's map size): DIS's variational refinement makes its warps
agree better than the network's everywhere, but by far more on the scenes where its frames
are the better ones. ``flow_weight`` maps the ratio of the two disagreements to the flow
engine's share (a logistic in its log, fitted on the development sets, flat near its best:
``benchmarks/rife.py`` scores it, ``docs/learned.md`` has the numbers). A per-pixel choice
or weighting by the same agreement scored lower on real footage, where blur and noise make
agreement a poor guide pixel by pixel.

The flow engine's frames come from its own frame maker (``flow.engine.make_frames``), whose
warps the weight reads, so its pair analysis runs once; where it falls back to a dissolve
(flows not trusted) the frames are the network's alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from functools import partial
from typing import TYPE_CHECKING

import cv2
import numpy as np

from segue.engines.flow.engine import PRESETS, Warped, make_frames
from segue.engines.rife.frames import _Keys, _time, ready, run_frames, warp_blend

if TYPE_CHECKING:
    from segue.engines.rife.runtime import Rife

PRESET = "medium"  # the flow engine's default, as ``segue`` renders
# flow engine's share = 1 / (1 + exp(-(BIAS + SLOPE * ln(network / engine disagreement))))
BIAS, SLOPE = -0.75, 2.0


def flow_weight(network: float, engine: float) -> float:
    """The flow engine's share of the frame from the two disagreements (see the docstring):
    about a third where they are alike, half at a ratio of 1.5, three quarters at 2.5."""
    ratio = max(network, 1e-3) / max(engine, 1e-3)
    return 1.0 / (1.0 + math.exp(-(BIAS + SLOPE * math.log(ratio))))


def flow_part(first: np.ndarray, last: np.ndarray, seed: int, camera_fixed: bool
              ) -> Warped | None:
    """The flow engine's frames as ``segue`` renders them (its default preset), with its
    warps; None where it would fall back to a dissolve."""
    return make_frames(first, last, PRESETS[PRESET], camera_fixed, seed)[1]


def _disagreement(a: np.ndarray, b: np.ndarray, sigma: float) -> float:
    d = cv2.absdiff(a, b).astype(np.float32).mean(axis=2)
    return float(cv2.GaussianBlur(d, (0, 0), sigma).mean())


def disagreements(part: Warped, first: np.ndarray, last: np.ndarray,
                  network_flow: np.ndarray) -> tuple[float, float]:
    """(network, flow engine): mean |W0 - W1| of each one's warped ends at t = 0.5, on the
    flow engine's map grid (pixel i at output pixel ``2**levels * i``)."""
    step = 2 ** part.levels
    to0, to1, _, _ = part.line.at(0.5)
    mh, mw = to0.shape[:2]
    xy = np.dstack(np.meshgrid(np.arange(mw, dtype=np.float32),
                               np.arange(mh, dtype=np.float32)))
    small = [cv2.resize(x, (mw, mh), interpolation=cv2.INTER_AREA) for x in part.plates]
    sigma = 2.0 / step  # two output pixels

    def warp(img: np.ndarray, pos: np.ndarray) -> np.ndarray:
        return cv2.remap(img, pos, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    engine = _disagreement(warp(small[0], xy + 0.5 * to0), warp(small[1], xy + 0.5 * to1),
                           sigma)
    net = network_flow[::step, ::step][:mh, :mw] / step
    smallnet = [cv2.resize(x, (mw, mh), interpolation=cv2.INTER_AREA) for x in (first, last)]
    network = _disagreement(warp(smallnet[0], xy + net[..., :2]),
                            warp(smallnet[1], xy + net[..., 2:]), sigma)
    return network, engine


def mixed_frames(rife: Rife | Future[Rife], first: np.ndarray, last: np.ndarray,
                 times: Iterable[float], keys: int | None = None, seed: int = 0,
                 camera_fixed: bool = False, workers: int = 1, share: float | None = None
                 ) -> Iterator[np.ndarray]:
    """One H×W×3 uint8 frame per time (the ends exact): the flow engine's frame and the
    network's (both ends along its flows, blended by time) in ``flow_weight``'s shares, or
    the flow engine's fixed ``share`` (for comparisons). ``rife`` may still be loading (a
    future)."""
    times = [_time(t) for t in times]
    if not any(0.0 < t < 1.0 for t in times):
        yield from ((first if t == 0.0 else last).copy() for t in times)
        return
    network = ready(rife)
    pair = network.pair(first, last)
    flows_at = (_Keys(network, pair, keys).warm().at if keys is not None
                else partial(network.flows, pair))
    # after the key passes, not while the network loads: held through them, the flow
    # engine's analysis raised the peak RSS by about 100 MB (to 1.45 GB) for no time saved
    part = flow_part(first, last, seed, camera_fixed)
    if part is None:
        share = 0.0
    elif share is None:
        share = flow_weight(*disagreements(part, first, last, flows_at(0.5)[0]))

    def make(t: float) -> np.ndarray:
        if t in (0.0, 1.0):
            return (first if t == 0.0 else last).copy()
        net = warp_blend(first, last, flows_at(t)[0], t)
        if part is None or share == 0.0:
            return net
        return cv2.addWeighted(part.frame(t), share, net, 1.0 - share, 0.0)

    yield from run_frames(make, times, workers)
