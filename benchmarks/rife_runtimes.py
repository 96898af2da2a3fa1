"""Lighter CPU runtimes for the learned engine's network: the same graph, exported from
Segue's own IFNet, run by torch, by onnxruntime and by OpenCV's DNN module.

The network (both frames' features and the five flow stages, the time as an input) is
exported to ONNX at one padded size; each runtime then runs it on the synthetic pair of
``engine_speed.py`` at that size. Per runtime: ms per pass (median of ``--repeat`` after a
warm-up, all the process's threads), the largest difference of its flows from torch's
(pixels), and the installed size of the runtime's package. A runtime counts as matching when
its flows are within 0.01 px of torch's.

Usage (from the repository root, with the ``learned`` extra, ``onnx``, ``onnxruntime`` and
``segue weights`` run)::

    python benchmarks/rife_runtimes.py [--size 720p] [--repeat 5]
        [--out benchmarks/results/rife_runtimes.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from engine_speed import SIZES, _cpus, make_pair  # noqa: E402

from segue.engines.rife.network import PAD  # noqa: E402
from segue.engines.rife.opencv import Whole  # noqa: E402
from segue.engines.rife.runtime import shared  # noqa: E402


def _inputs(size: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    width, height = SIZES[size]
    first, last = (cv2.resize(x, (width, height)) for x in make_pair())
    pw, ph = -(-width // PAD) * PAD, -(-height // PAD) * PAD

    def tensor(img: np.ndarray) -> np.ndarray:
        x = img.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        return np.pad(x, ((0, 0), (0, 0), (0, ph - height), (0, pw - width)))

    return tensor(first), tensor(last), np.full((1, 1, 1, 1), 0.5, np.float32)


def _timed(fn: Callable[[], np.ndarray], repeat: int) -> tuple[float, np.ndarray]:
    out = fn()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs) * 1000, out


def _package_mb(module: str) -> float | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0])
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def run(size: str, repeat: int) -> dict[str, object]:
    whole = Whole(shared(None, "cpu").net).eval()
    a, b, t = _inputs(size)
    rows: dict[str, dict[str, object]] = {}
    with torch.inference_mode():
        ms, ref = _timed(lambda: whole(*map(torch.from_numpy, (a, b, t)))[0].numpy(), repeat)
    rows["torch"] = {"ms": ms, "max_flow_diff_px": 0.0, "package_mb": _package_mb("torch")}
    with tempfile.TemporaryDirectory() as tmp:
        path, path20 = str(Path(tmp) / "ifnet.onnx"), str(Path(tmp) / "ifnet20.onnx")
        # opset 17 for OpenCV; onnxruntime implements GridSample only as opset 20's
        for file, opset in ((path, 17), (path20, 20)):
            with torch.inference_mode():
                torch.onnx.export(whole, tuple(map(torch.from_numpy, (a, b, t))), file,
                                  input_names=["img0", "img1", "t"],
                                  output_names=["flow", "mask"], opset_version=opset,
                                  dynamo=False)
        rows["export"] = {"onnx_mb": os.path.getsize(path) / 1e6}
        try:
            import onnxruntime as ort

            session = ort.InferenceSession(path20, providers=["CPUExecutionProvider"])
            ms, out = _timed(lambda: session.run(["flow"], {"img0": a, "img1": b, "t": t})[0],
                             repeat)
            rows["onnxruntime"] = {"ms": ms, "max_flow_diff_px": float(np.abs(out - ref).max()),
                                   "package_mb": _package_mb("onnxruntime"),
                                   "version": ort.__version__}
        except Exception as exc:  # a runtime that cannot run the graph is a result too
            rows["onnxruntime"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        try:
            dnn = cv2.dnn.readNetFromONNX(path)

            def opencv() -> np.ndarray:
                for name, value in (("img0", a), ("img1", b), ("t", t)):
                    dnn.setInput(value, name)
                return np.asarray(dnn.forward("flow"))

            ms, out = _timed(opencv, repeat)
            rows["opencv_dnn"] = {"ms": ms, "max_flow_diff_px": float(np.abs(out - ref).max()),
                                  "version": cv2.__version__}
        except Exception as exc:
            rows["opencv_dnn"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "size": size,
            "padded": list(a.shape[2:]), "cpus": _cpus(), "repeat": repeat,
            "torch_threads": torch.get_num_threads(), "load_average": os.getloadavg()[0],
            "runtimes": rows}


def report(result: dict[str, object]) -> str:
    rows = result["runtimes"]
    assert isinstance(rows, dict)
    lines = [f"{result['date']}, {result['cpus']} CPUs, load average "
             f"{result['load_average']:.2f}; one network pass at {result['size']} (padded to "
             f"{result['padded'][1]}×{result['padded'][0]}), fp32, median of "
             f"{result['repeat']}. ONNX file {rows['export']['onnx_mb']:.1f} MB.", "",
             "| runtime | ms per pass | max flow difference from torch (px) | matches | "
             "package MB |", "|---|---|---|---|---|"]
    for name in ("torch", "onnxruntime", "opencv_dnn"):
        r = rows.get(name, {})
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | | | |")
            continue
        size = r.get("package_mb")
        lines.append(f"| {name} | {r['ms']:.0f} | {r['max_flow_diff_px']:.4f} | "
                     f"{'yes' if r['max_flow_diff_px'] <= 0.01 else 'no'} | "
                     f"{f'{size:.0f}' if size else 'in opencv'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="720p")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = run(args.size, args.repeat)
    print(report(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(report(result) + "\n")


if __name__ == "__main__":
    main()
