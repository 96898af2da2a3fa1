"""The simplest real engine: a linear cross-dissolve from the first frame to the last."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from segue.domain import Mode
from segue.engines.base import RenderJob


class BlendEngine:
    name = "blend"
    makes_audio = False
    modes = frozenset({Mode.FIRST_LAST, Mode.FIRST_FRAME})

    def render(self, job: RenderJob) -> Iterator[np.ndarray]:
        assert job.first is not None
        first = job.first
        last = job.last if job.last is not None else job.first
        a, b = first.astype(np.float32), last.astype(np.float32)
        n = job.frames
        for i in range(n):
            job.progress(i / n)
            if i == 0:
                yield first
            elif i == n - 1:
                yield last
            else:
                t = i / (n - 1)
                yield np.rint(a + (b - a) * t).astype(np.uint8)
        job.progress(1.0)
