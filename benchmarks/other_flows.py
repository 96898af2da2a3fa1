"""Would another classical dense flow beat DIS on real footage? OpenCV contrib's flows in the
plain baseline's place.

Each flow replaces DIS in ``interp_sets.plain_dis`` (flow both ways, the linear flow
approximation to time t, bilinear backward warps, blended by time) and is scored on every
``--step``-th sample of the real subsets, beside DIS in the same run: mean PSNR over the
in-between frames and seconds per pair. The contrib flows need ``opencv-contrib-python``,
which is not one of Segue's dependencies (it would replace OpenCV's ``cv2``); install it
apart and put it first on the path::

    pip install --target /tmp/cv-contrib opencv-contrib-python-headless
    PYTHONPATH=/tmp/cv-contrib python benchmarks/other_flows.py --step 6 --sets triplets
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import interp_sets as sets  # noqa: E402

Flow = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (first, last) RGB -> flow first->last


def _gray(calc: Callable[..., np.ndarray]) -> Flow:
    def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ga, gb = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (a, b))
        return calc(ga, gb, None)
    return flow


def flows() -> dict[str, Flow]:
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    out = {"dis_medium": _gray(dis.calc)}
    optflow = getattr(cv2, "optflow", None)
    if optflow is None:
        sys.exit("cv2.optflow is missing: put opencv-contrib-python first on the path "
                 "(see the docstring)")
    out["deepflow"] = _gray(optflow.createOptFlow_DeepFlow().calc)
    out["dual_tvl1"] = _gray(optflow.DualTVL1OpticalFlow_create().calc)
    out["pcaflow"] = _gray(optflow.createOptFlow_PCAFlow().calc)
    out["dense_rlof"] = lambda a, b: optflow.calcOpticalFlowDenseRLOF(
        cv2.cvtColor(a, cv2.COLOR_RGB2BGR), cv2.cvtColor(b, cv2.COLOR_RGB2BGR), None)
    return out


def render(flow: Flow, first: np.ndarray, last: np.ndarray, times: list[float]
           ) -> list[np.ndarray]:
    """``interp_sets.plain_dis`` with ``flow`` for DIS."""
    return sets.plain_warps(first, last, times, flow(first, last), flow(last, first))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 10 * np.log10(255**2 / max(mse, 1e-10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", type=Path, default=ROOT / "../shared/data/interp-dev")
    parser.add_argument("--dev2", type=Path, default=ROOT / "../shared/data/interp-dev2")
    parser.add_argument("--sets", default="triplets,long_x8,long_x24")
    parser.add_argument("--step", type=int, default=3, help="every n-th sample of each set")
    parser.add_argument("--flows", default="", help="a subset of the flows, comma-separated")
    args = parser.parse_args()
    methods = flows()
    if args.flows:
        methods = {k: v for k, v in methods.items() if k in args.flows.split(",")}
    folders = sets.real_sets(args.dev, args.dev2)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; mean PSNR dB over the "
          f"in-between frames / seconds per pair, one sample in {args.step}")
    for name in args.sets.split(","):
        picked = folders[name][::args.step]
        scores: dict[str, list[float]] = {k: [] for k in methods}
        seconds = dict.fromkeys(methods, 0.0)
        for folder in picked:
            _, first, last, truth = sets.load_dir(folder)
            times = sorted(truth)
            for key, flow in methods.items():
                began = time.perf_counter()
                frames = render(flow, first, last, times)
                seconds[key] += time.perf_counter() - began
                scores[key] += [psnr(f, truth[t]) for f, t in zip(frames, times, strict=True)]
        cells = ", ".join(f"{k} {np.mean(v):.2f} / {seconds[k] / len(picked):.2f} s"
                          for k, v in scores.items())
        print(f"{name} ({len(picked)} samples): {cells}", flush=True)


if __name__ == "__main__":
    main()
