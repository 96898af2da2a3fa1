"""Running the network: one loaded model per process, flows for a pair, frames from flows.

A pair is prepared once (both frames padded to the network's grid and their features
encoded); each time t asked of it costs one pass of the five flow stages. The frame at t is
the two end frames warped backwards along the network's flows and blended by time,
``(1 - t)·W0 + t·W1``: on real footage that scores better than the network's own blend
mask (see ``benchmarks/rife.py``). ``keys`` trades exactness for speed on long videos: the
network runs at that many evenly spaced times (the ends included) and the flows of the
times between two keys are interpolated linearly, as the flow engine does with its own.

What does not need torch (the checks, the key flows' interpolation, the warps, frames made
in threads) is in ``frames``.

On a CUDA device the network runs in half precision (``device="cuda"``, or ``"auto"`` with
one present); on the CPU in float32 on all of the process's threads, through torch or
(``backend="opencv"``) OpenCV's DNN module on a graph exported from this network.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from segue.engines.rife.frames import (
    _Keys,
    _time,
    check_frames,
    check_options,
    run_frames,
    warp_blend,
)
from segue.engines.rife.network import PAD, IFNet
from segue.engines.rife.weights import WeightsError, load_state, locate

if TYPE_CHECKING:
    from segue.engines.rife.opencv import OpenCVRunner

BACKENDS = ("torch", "opencv")


@dataclass
class Pair:
    """One pair made ready for the network (padded tensors and their features)."""

    first: np.ndarray
    last: np.ndarray
    img0: torch.Tensor
    img1: torch.Tensor
    f0: torch.Tensor | None  # None with the OpenCV backend (its graph encodes them)
    f1: torch.Tensor | None


class Rife:
    """The loaded network on one device; thread-safe (one pass at a time)."""

    def __init__(self, weights: str | Path | None = None, device: str = "auto",
                 backend: str = "torch", ensemble: bool = False) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown RIFE backend {backend!r}; known: {', '.join(BACKENDS)}")
        if ensemble and backend != "torch":
            raise ValueError("the RIFE ensemble runs on the torch backend only")
        path, expected = locate(weights)
        net = IFNet()
        try:
            net.load_state_dict(load_state(path, expected), strict=True)
        except RuntimeError as exc:  # missing, unexpected or misshapen keys
            first_line = str(exc).strip().splitlines()
            raise WeightsError(f"RIFE weights at {path} do not fit the 4.25 network: "
                               f"{' '.join(first_line[:2])}") from None
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise WeightsError("RIFE was asked to run on CUDA, but torch sees no CUDA device")
        self.device = torch.device(device)
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.net = net.eval().to(self.device, self.dtype)
        self.path = path
        # each time also asked with the ends swapped (t -> 1 - t), the two answers averaged
        self.ensemble = ensemble
        self._lock = threading.Lock()
        self.opencv: OpenCVRunner | None = None
        if backend == "opencv":
            if self.device.type != "cpu":
                raise ValueError("the opencv RIFE backend runs on the CPU only")
            from segue.engines.rife.opencv import OpenCVRunner

            self.opencv = OpenCVRunner(self.net, path)

    def _tensor(self, img: np.ndarray) -> torch.Tensor:
        hgt, w = img.shape[:2]
        x = torch.from_numpy(np.array(img)).to(self.device)  # a writable copy
        x = x.permute(2, 0, 1).unsqueeze(0).to(self.dtype) / 255.0
        return F.pad(x, (0, -w % PAD, 0, -hgt % PAD))

    @torch.inference_mode()
    def pair(self, first: np.ndarray, last: np.ndarray) -> Pair:
        check_frames(first, last)
        img0, img1 = self._tensor(first), self._tensor(last)
        if self.opencv is not None:
            return Pair(first, last, img0, img1, None, None)
        with self._lock:
            f0, f1 = self.net.features(img0), self.net.features(img1)
        return Pair(first, last, img0, img1, f0, f1)

    @torch.inference_mode()
    def flows(self, pair: Pair, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(flows from t to both ends, H×W×4 float32 in pixels; blend mask in [0, 1], H×W)."""
        hgt, w = pair.first.shape[:2]
        if self.opencv is not None:
            out = self.opencv(pair.img0.numpy(), pair.img1.numpy(), _time(t))
            flow, mask = (torch.from_numpy(x) for x in out)
        else:
            with self._lock:
                flow, mask = self.net(pair.img0, pair.img1, pair.f0, pair.f1, _time(t))
                if self.ensemble:
                    back, other = self.net(pair.img1, pair.img0, pair.f1, pair.f0, 1.0 - t)
                    flow = (flow + torch.cat((back[:, 2:4], back[:, :2]), 1)) / 2
                    mask = (mask - other) / 2
        flow_np = flow[0, :, :hgt, :w].float().permute(1, 2, 0).cpu().numpy()
        mask_np = torch.sigmoid(mask[0, 0, :hgt, :w].float()).cpu().numpy()
        return np.ascontiguousarray(flow_np), mask_np

    def frames(self, first: np.ndarray, last: np.ndarray, times: Iterable[float],
               blend: str = "linear", keys: int | None = None, workers: int = 1
               ) -> Iterator[np.ndarray]:
        """One H×W×3 uint8 frame per time; t = 0 and 1 give the ends exactly. ``workers``
        > 1 makes frames ahead in that many threads (with ``keys``: the network's passes
        all come first), the same frames."""
        check_options(blend, keys)
        check_frames(first, last)
        times = [_time(t) for t in times]
        lock = threading.Lock()
        made: list[Callable[[float], tuple[np.ndarray, np.ndarray]]] = []

        def flows_at() -> Callable[[float], tuple[np.ndarray, np.ndarray]]:
            with lock:
                if not made:
                    pair = self.pair(first, last)
                    made.append(partial(self.flows, pair) if keys is None
                                else _Keys(self, pair, keys).warm().at)
            return made[0]

        def make(t: float) -> np.ndarray:
            if t in (0.0, 1.0):
                return (first if t == 0.0 else last).copy()
            flow, mask = flows_at()(t)
            return warp_blend(first, last, flow, t, mask if blend == "mask" else None)

        yield from run_frames(make, times, workers)


@lru_cache(maxsize=4)
def shared(weights: str | None = None, device: str = "auto", backend: str = "torch") -> Rife:
    """One loaded model per (weights, device, backend) in the process."""
    return Rife(weights, device, backend)


def interpolate(first: np.ndarray, last: np.ndarray, times: Sequence[float], *,
                camera: bool = True, blend: str = "linear", keys: int | None = None,
                seed: int = 0, weights: str | None = None, device: str = "auto",
                backend: str = "torch", mix: bool = True) -> list[np.ndarray]:
    """The contract of ``segue.engines.flow.interpolate``: uint8 RGB in and out, one frame
    per time, the ends exact. The network runs at every time (or at ``keys`` key times);
    ``camera`` (what ``segue-rife`` renders) on what a camera model leaves (``camera.py``),
    elsewhere mixed with the flow engine's frames (``mixed.py``; ``mix=False``: not), else
    alone, its frames blended by ``blend``."""
    check_options(blend, keys)
    check_frames(first, last)
    times = [_time(t) for t in times]
    rife = shared(weights, device, backend)
    if camera:
        from segue.engines.rife.camera import camera_frames

        return list(camera_frames(rife, first, last, times, keys, seed, mix=mix))
    return list(rife.frames(first, last, times, blend, keys))
