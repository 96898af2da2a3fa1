"""Running the network: one loaded model per process, flows for a pair, frames from flows.

A pair is prepared once (both frames padded to the network's grid and their features
encoded); each time t asked of it costs one pass of the five flow stages. The frame at t is
the two end frames warped backwards along the network's flows and blended by time,
``(1 - t)·W0 + t·W1``: on real footage that scores better than the network's own blend
mask (see ``benchmarks/rife.py``). ``keys`` trades exactness for speed on long videos: the
network runs at that many evenly spaced times (the ends included) and the flows of the
times between two keys are interpolated linearly, as the flow engine does with its own.

On a CUDA device the network runs in half precision (``device="cuda"``, or ``"auto"`` with
one present); on the CPU in float32 on all of the process's threads, through torch or
(``backend="opencv"``) OpenCV's DNN module on a graph exported from this network.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from segue.engines.flow.parallel import glibc
from segue.engines.rife.network import PAD, IFNet
from segue.engines.rife.weights import WeightsError, load_state, locate

if TYPE_CHECKING:
    from segue.engines.rife.opencv import OpenCVRunner

BLENDS = ("linear", "mask")
BACKENDS = ("torch", "opencv")


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
        """(flows, mask) at t. OpenCV's arithmetic, not NumPy's: one pass, no temporaries,
        the GIL released (a third of the time per 720p frame)."""
        times = self.times
        if t <= times[0] or t >= times[-1]:
            k = 0 if t <= times[0] else len(times) - 1
            flow, mask = self._key(k)
            scale = (t / times[k],) * 2 + ((1 - t) / (1 - times[k]),) * 2
            return cv2.multiply(flow, scale), mask
        i = next(j for j in range(len(times) - 1) if times[j] <= t <= times[j + 1])
        a, b = self._key(i), self._key(i + 1)
        w = (t - times[i]) / (times[i + 1] - times[i])
        return (cv2.addWeighted(a[0], 1 - w, b[0], w, 0.0),
                cv2.addWeighted(a[1], 1 - w, b[1], w, 0.0))


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
