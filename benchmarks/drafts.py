"""How much quicker a draft is: draft -> final with the flow engine, through ``render_video``.

The same pair as ``engine_speed.py`` (1280×720, a camera pan and zoom and an object moving on
its own) is rendered, in process and in turn, as:

- ``draft``: ``draft: true`` at 480p (the engine's fastest settings);
- ``480p``: the same request without ``draft`` (the engine's configured preset): the baseline;
- ``final``: the final at 720p made from the draft (same seed and length).

Each configuration runs ``--repeat`` times, interleaved so that load drifts hit all alike;
the median wall time is recorded, with the ratio of each to the 480p baseline of the same run.

Usage (from the repository root)::

    python benchmarks/drafts.py [--repeat 5] [--frames 121] [--out benchmarks/results/drafts.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from engine_speed import make_pair  # noqa: E402

from segue.domain import GenerationRequest, ImageInput, Mode  # noqa: E402
from segue.engines.flow import FlowEngine  # noqa: E402
from segue.render import render_video  # noqa: E402


def _requests(frames: int) -> dict[str, GenerationRequest]:
    base = GenerationRequest(
        model="seedance-1-5-pro-251215", prompt="", mode=Mode.FIRST_LAST, seed=7,
        images=(ImageInput("first", "first_frame"), ImageInput("last", "last_frame")),
        resolution="480p", duration=None, frames=frames,
    )
    return {"draft": replace(base, draft=True), "480p": base,
            "final": replace(base, resolution="720p", draft_task_id="cgt-draft")}


def run(repeat: int, frames: int) -> dict[str, object]:
    first, last = (Image.fromarray(a) for a in make_pair())
    images = [("first_frame", first), ("last_frame", last)]
    engine = FlowEngine()  # the registry default: preset medium
    times: dict[str, list[float]] = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            for name, request in _requests(frames).items():
                out = render_video(request, engine, images, Path(tmp))
                assert out.frames == frames
                times.setdefault(name, []).append(round(out.seconds, 3))
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "frames": frames,
        "repeat": repeat, "cpus": os.cpu_count(), "engine_preset": engine.preset,
        "load_before": load_before, "load_after": os.getloadavg()[0],
        "seconds": medians, "all_seconds": times,
        "ratio_to_480p": {name: round(m / medians["480p"], 3) for name, m in medians.items()},
    }


def report(results: dict[str, object]) -> str:
    seconds, ratios = results["seconds"], results["ratio_to_480p"]
    assert isinstance(seconds, dict) and isinstance(ratios, dict)
    lines = [f"{results['date']}, {results['cpus']} CPUs, flow preset "
             f"`{results['engine_preset']}`, {results['frames']} frames, median of "
             f"{results['repeat']}, load {results['load_before']:.2f} → "
             f"{results['load_after']:.2f}", "",
             "| render | seconds | × 480p |", "|---|---|---|"]
    lines += [f"| {name} | {seconds[name]:.2f} | {ratios[name]:.2f} |" for name in seconds]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--frames", type=int, default=121)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = run(args.repeat, args.frames)
    text = report(results)
    print(text)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
        args.out.with_suffix(".md").write_text("# Draft → final (flow engine)\n\n" + text)


if __name__ == "__main__":
    main()
