"""The clip from the device to the encoder in batches (``segue.engines.diffusion.frames``):
the same bytes as frame by frame, whatever the batch, and the next batch queued before the
frames of one are handed out."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from segue.engines.diffusion.frames import host_frames  # noqa: E402


def _clip(frames: int = 13) -> Any:
    """Floats around [0, 1] with values outside it and exactly on rounding halves."""
    gen = torch.Generator().manual_seed(7)
    video = torch.rand((frames, 3, 10, 14), generator=gen) * 1.2 - 0.1
    video[0, 0, 0, :4] = torch.tensor([0.5 / 255, 1.5 / 255, 2.5 / 255, 254.5 / 255])
    return video


def _reference(video: Any, i: int) -> np.ndarray:
    scaled = np.clip(np.rint(video[i].numpy() * np.float32(255)), 0, 255).astype(np.uint8)
    return scaled.transpose(1, 2, 0)


@pytest.mark.parametrize("batch", [0, 1, 5, 16])
def test_every_batch_gives_the_same_frames(batch: int) -> None:
    video = _clip()
    indices = [0, 1, 2, 4, 6, 8, 9, 10, 12, 12]  # a model's frames picked, one twice
    frames = list(host_frames(video, indices, batch))  # all held: no buffer is reused
    assert len(frames) == len(indices)
    for frame, i in zip(frames, indices, strict=True):
        assert frame.shape == (10, 14, 3) and frame.dtype == np.uint8
        assert frame.flags.c_contiguous
        np.testing.assert_array_equal(frame, _reference(video, i))


class _Recorded:
    """A clip tensor that records which frames were asked of it (a test double around a
    real tensor)."""

    def __init__(self, video: Any) -> None:
        self.video, self.device, self.asked = video, video.device, []

    def index_select(self, dim: int, chosen: Any) -> Any:
        self.asked.append(chosen.tolist())
        return self.video.index_select(dim, chosen)


def test_the_next_batch_is_queued_before_this_one_is_handed_out() -> None:
    clip = _Recorded(_clip(12))
    frames = host_frames(clip, list(range(12)), batch=4)
    next(frames)
    assert clip.asked == [[0, 1, 2, 3], [4, 5, 6, 7]]
    rest = list(frames)
    assert len(rest) == 11 and clip.asked[-1] == [8, 9, 10, 11]
