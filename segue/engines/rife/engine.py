"""``RifeEngine``: the registry's ``rife`` engine (model id ``segue-rife``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from segue.domain import Mode
from segue.engines.base import RenderJob
from segue.engines.rife.weights import WeightsError, locate, verify

if TYPE_CHECKING:
    from segue.engines.rife.runtime import Rife

# Network passes per video, at evenly spaced times inside (0, 1); the flows of the other
# frames are interpolated from them (frames._Keys). About 0.55 s each at 720p on 2 CPU
# cores in a render (0.75 s without frames.freed_memory_kept): three are about a fifth of
# a 5 s 720p video's time (benchmarks/rife_speed.py).
DEFAULT_KEYS = 3
DRAFT_KEYS = 1


class RifeEngine:
    """The camera first, then learned flows for what it leaves, at a few key times; both
    ends warped along them and blended by time and visibility (``camera``). Where the
    camera path is not taken, the network's frames mixed with the flow engine's (``mixed``).

    ``weights`` names a checkpoint (default: ``SEGUE_RIFE_WEIGHTS``, else the one that
    ``segue weights`` installs); ``device`` is ``auto``, ``cpu`` or ``cuda[:n]``; ``keys``
    the network passes per video (0: one per frame, exact but slow on a CPU); ``camera``
    False: the network alone (``blend`` applies there: ``linear`` or its own ``mask``);
    ``backend`` ``torch``, or ``opencv`` (OpenCV's DNN module on an exported graph, CPU);
    ``workers`` threads make frames ahead while the encoder writes (the flow engine's way);
    ``ensemble`` asks each key time again with the ends swapped and averages (twice the
    network's time, a little better everywhere: ``benchmarks/results/rife.ensemble.md``);
    ``mix`` False: where the camera path is not taken, the network's frames alone, not mixed
    with the flow engine's (``mixed``).
    """

    name = "rife"
    modes = frozenset({Mode.FIRST_LAST})
    makes_audio = False

    def __init__(self, weights: str | None = None, device: str = "auto",
                 keys: int = DEFAULT_KEYS, blend: str = "linear", camera: bool = True,
                 backend: str = "torch", workers: int = 2, ensemble: bool = False,
                 mix: bool = True) -> None:
        if keys < 0:
            raise ValueError(f"rife keys must be 0 (every frame) or more, got {keys}")
        self.weights, self.device, self.keys, self.blend = weights, device, keys, blend
        self.camera, self.backend, self.workers = camera, backend, max(1, int(workers))
        self.ensemble, self.mix = ensemble, mix
        self._rife: Future[Rife] | None = None
        self._checked = False  # the shipped file's sha256, once per process
        self._lock = threading.Lock()

    def load(self) -> None:
        """What a worker runs at start: raises ``WeightsError`` (one line: how to get them)
        when torch or the checkpoint is missing, or the shipped file is altered. The network
        itself is loaded by the first render (about 1 GB and a second or two), so that a
        server whose registry lists ``segue-rife`` does not hold it unless it is used."""
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            raise WeightsError("segue-rife needs torch: pip install 'segue[learned]', then "
                               "segue weights")
        path, expected = locate(self.weights)
        if expected and not self._checked:
            verify(path, expected)
            self._checked = True

    def _network(self) -> Future[Rife]:
        """The network, loading in a thread on the first render (again after a failed
        load): importing torch and reading the checkpoint take about a second on one core,
        while the camera estimate, which does not need it, runs in the caller on the other
        (``camera_frames``). Its errors are raised where the render waits for it."""
        with self._lock:
            if self._rife is None or (self._rife.done() and self._rife.exception()):
                pool = ThreadPoolExecutor(1, thread_name_prefix="rife-load")
                self._rife = pool.submit(self._load)
                pool.shutdown(wait=False)
            return self._rife

    def _load(self) -> Rife:
        from segue.engines.rife.runtime import Rife  # torch, imported in the loading thread

        return Rife(self.weights, self.device, self.backend, self.ensemble)

    def render(self, job: RenderJob) -> Iterator[np.ndarray]:
        if job.first is None or job.last is None:
            raise ValueError("the rife engine needs a first and a last frame")
        self.load()
        rife = self._network()
        n = job.frames
        times = [i / (n - 1) for i in range(n)] if n > 1 else [0.0]
        keys = (DRAFT_KEYS if job.draft else self.keys) or None
        if self.camera:
            from segue.engines.rife.camera import camera_frames

            frames = camera_frames(rife, job.first, job.last, times, keys, job.seed,
                                   job.camera_fixed, self.workers, self.mix)
        else:
            frames = rife.result().frames(job.first, job.last, times, self.blend, keys,
                                          self.workers)
        for i, frame in enumerate(frames):
            job.progress(i / n)
            yield frame
        job.progress(1.0)
