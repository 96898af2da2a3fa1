"""The network run by OpenCV's DNN module on a graph exported from Segue's own IFNet.

On a CPU this ran a pass in about a third of torch's time with the same flows (within 0.001
px; ``benchmarks/rife_runtimes.py``). The graph is exported by torch once per padded frame
size and weights file, and kept under the data directory (``weights/onnx/``); exporting
needs torch and the ONNX exporter's ``onnx`` package (both in the ``learned`` extra).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from segue.engines.rife.network import IFNet
from segue.engines.rife.weights import WeightsError, data_dir


class Whole(nn.Module):
    """Features and flows in one graph: (img0, img1, t) -> (flows, mask logit)."""

    def __init__(self, net: IFNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, t: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        out: tuple[torch.Tensor, torch.Tensor] = self.net(
            img0, img1, self.net.features(img0), self.net.features(img1), t)
        return out


def export(net: IFNet, width: int, height: int, path: Path) -> None:
    """Write the float32 graph for N=1 inputs of ``height``×``width`` (multiples of PAD)."""
    whole = Whole(net).eval().float()
    inputs = (torch.zeros(1, 3, height, width), torch.zeros(1, 3, height, width),
              torch.full((1, 1, 1, 1), 0.5))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # tracer notes on shapes baked into the graph
            torch.onnx.export(whole, inputs, tmp, input_names=["img0", "img1", "t"],
                              output_names=["flow", "mask"], opset_version=17, dynamo=False)
        Path(tmp).replace(path)
    except Exception as exc:  # the exporter raises many kinds (missing onnx among them)
        Path(tmp).unlink(missing_ok=True)
        raise WeightsError(f"the RIFE graph for OpenCV could not be exported ({exc}); "
                           "pip install 'segue[learned]', or use the torch backend") from None


class OpenCVRunner:
    """One OpenCV DNN network per padded frame size, exported when first needed."""

    def __init__(self, net: IFNet, weights: Path) -> None:
        self.net = net
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
        self.folder = data_dir() / "weights" / "onnx"
        self.stem = f"ifnet-{digest}"
        self._graphs: dict[tuple[int, int], cv2.dnn.Net] = {}
        self._lock = threading.Lock()

    def _graph(self, width: int, height: int) -> cv2.dnn.Net:
        key = (width, height)
        if key not in self._graphs:
            path = self.folder / f"{self.stem}-{width}x{height}.onnx"
            if not path.is_file():
                export(self.net, width, height, path)
            self._graphs[key] = cv2.dnn.readNetFromONNX(str(path))
        return self._graphs[key]

    def __call__(self, img0: np.ndarray, img1: np.ndarray, t: float
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(flow N×4×H×W, mask logit N×1×H×W) for padded float32 N×3×H×W inputs."""
        with self._lock:
            graph = self._graph(img0.shape[3], img0.shape[2])
            graph.setInput(np.ascontiguousarray(img0), "img0")
            graph.setInput(np.ascontiguousarray(img1), "img1")
            graph.setInput(np.full((1, 1, 1, 1), t, np.float32), "t")
            flow, mask = graph.forward(["flow", "mask"])
        return np.asarray(flow), np.asarray(mask)
