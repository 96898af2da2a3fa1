"""The ``rife`` engine: learned in-betweening with Practical-RIFE 4.25's network (MIT, hzwer).

- ``network``: Segue's own IFNet module for the 4.25 checkpoint (licence notice there);
- ``weights``: where the checkpoint is, ``fetch`` (what ``segue weights`` runs), its sha256
  and the strict loading of its keys;
- ``runtime``: the loaded network on a device, and ``interpolate(first, last, times)`` with
  the contract of ``segue.engines.flow.interpolate``;
- ``frames``: what runs around the network without torch (checks, the flows between key
  times, warps, frames made in threads); ``camera`` and ``mixed``: the camera path and the
  frames mixed with the flow engine's, which start while the network loads;
- ``engine``: ``RifeEngine`` (registry name ``rife``, model id ``segue-rife``).

torch is imported only by ``network`` and ``runtime``, and those only when a frame is asked
for (a render loads them in a thread): importing this package, or running ``segue weights``,
does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from segue.engines.rife.engine import RifeEngine
from segue.engines.rife.weights import SHA256, WeightsError, default_path, fetch, locate


def interpolate(first: np.ndarray, last: np.ndarray, times: Sequence[float],
                **options: Any) -> list[np.ndarray]:
    """See ``segue.engines.rife.runtime.interpolate`` (imports torch on first use)."""
    from segue.engines.rife.runtime import interpolate as run

    return run(first, last, times, **options)


__all__ = ["SHA256", "RifeEngine", "WeightsError", "default_path", "fetch", "interpolate",
           "locate"]
