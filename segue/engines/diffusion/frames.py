"""The rendered clip, from the device to the encoder in batches: the GPU never waits on the
host's encoder, and the host never waits on the GPU frame by frame.

A pipeline returns the clip as one F×3×H×W float tensor on the device. Frame by frame,
the rounding, a device-to-host copy that blocks until the GPU is done, and a transpose on
the host took 1.09 s of a 5.04 s 720p render of the 2B LTX model
(``benchmarks/results/gpu_speed.md``), with the GPU idle meanwhile. Here a batch of frames
is rounded to uint8 and laid out H×W×3 (the layout the encoder reads) on the device, then
copied into pinned host memory without blocking; the next batch is queued on the GPU before
the frames of this one are handed out, so that the GPU converts and copies while the host
encodes. On the CPU (the tests, a CPU-only run) the same steps run one after the other.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

BATCH = 16  # frames per batch: 16 × 1280×720×3 bytes = 44 MB of uint8 on the device


def host_frames(video: Any, indices: Sequence[int], batch: int = BATCH) -> Iterator[np.ndarray]:
    """Frames ``indices`` of ``video`` (F×3×H×W in [0, 1], on any device) as H×W×3 uint8
    arrays, in that order. ``batch`` 0 converts one frame at a time (the former way, kept
    for the benchmark's comparison); any batch gives the same bytes."""
    import torch

    if batch <= 0:
        for i in indices:
            frame = video[i].mul(255).round_().clamp_(0, 255).to("cpu", torch.uint8).numpy()
            yield np.ascontiguousarray(frame.transpose(1, 2, 0))
        return
    cuda = video.device.type == "cuda"
    pending: tuple[Any, Any] | None = None
    for start in range(0, len(indices), batch):
        chosen = torch.as_tensor(list(indices[start:start + batch]), device=video.device)
        on_device = (video.index_select(0, chosen).mul_(255).round_().clamp_(0, 255)
                     .to(torch.uint8).permute(0, 2, 3, 1).contiguous())
        host = torch.empty(on_device.shape, dtype=torch.uint8, pin_memory=cuda)
        host.copy_(on_device, non_blocking=cuda)
        copied = None
        if cuda:
            copied = torch.cuda.Event()
            copied.record()
        if pending is not None:  # this batch is queued: hand out the one before
            yield from _hand_out(*pending)
        pending = (host, copied)
    if pending is not None:
        yield from _hand_out(*pending)


def _hand_out(host: Any, copied: Any) -> Iterator[np.ndarray]:
    """The frames of one batch once its copy has landed; each is a view into the batch,
    which lives (pinned) as long as any of its frames does."""
    if copied is not None:
        copied.synchronize()
    yield from host.numpy()
