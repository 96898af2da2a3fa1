"""Segue's IFNet: the network of Practical-RIFE 4.25, written for its released checkpoint.

The architecture and the checkpoint it loads are Practical-RIFE's (hzwer), under the MIT
licence:

    MIT License

    Copyright (c) 2021 hzwer

    Permission is hereby granted, free of charge, to any person obtaining a copy of this
    software and associated documentation files (the "Software"), to deal in the Software
    without restriction, including without limitation the rights to use, copy, modify,
    merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
    permit persons to whom the Software is furnished to do so, subject to the following
    conditions:

    The above copyright notice and this permission notice shall be included in all copies
    or substantial portions of the Software.

    THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
    INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A
    PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT
    HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
    CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE
    OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.

What it computes: five ``IFBlock`` stages, coarse to fine (the frames seen at 1/16, 1/8,
1/4, 1/2 and full size), each refining two flows *from time t back to each end frame* (4
channels: x, y towards the first frame, then x, y towards the last), a blend mask and 8
channels of features handed to the next stage. Each stage after the first sees both end
frames and their ``encode`` features warped by the flows so far. The time t is an input
channel, so any t in [0, 1] can be asked for. Module names match the checkpoint's keys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

SCALES = (16, 8, 4, 2, 1)  # input reduction of each stage
PAD = 64  # frame sides are padded to a multiple of this (the coarsest stage's grid)
FEATURES = 4  # channels of ``Head`` per frame


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.2, True))


class Head(nn.Module):
    """Per-frame features at full size (the checkpoint's ``encode``)."""

    def __init__(self) -> None:
        super().__init__()
        self.cnn0 = nn.Conv2d(3, 16, 3, 2, 1)
        self.cnn1 = nn.Conv2d(16, 16, 3, 1, 1)
        self.cnn2 = nn.Conv2d(16, 16, 3, 1, 1)
        self.cnn3 = nn.ConvTranspose2d(16, FEATURES, 4, 2, 1)
        self.relu = nn.LeakyReLU(0.2, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.cnn0(x))
        x = self.relu(self.cnn1(x))
        x = self.relu(self.cnn2(x))
        return self.cnn3(x)


class ResConv(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1)
        self.beta = nn.Parameter(torch.ones((1, c, 1, 1)))
        self.relu = nn.LeakyReLU(0.2, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x) * self.beta + x)


class IFBlock(nn.Module):
    """One stage: its inputs at 1/``scale`` size in, (flow, mask, features) at full size out."""

    def __init__(self, cin: int, c: int) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(_conv(cin, c // 2, 2), _conv(c // 2, c, 2))
        self.convblock = nn.Sequential(*[ResConv(c) for _ in range(8)])
        # 4 flow + 1 mask + 8 feature channels, at 4x the conv0 grid (transpose, then shuffle)
        self.lastconv = nn.Sequential(nn.ConvTranspose2d(c, 4 * 13, 4, 2, 1), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor, flow: torch.Tensor | None, scale: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.interpolate(x, scale_factor=1.0 / scale, mode="bilinear", align_corners=False)
        if flow is not None:
            flow = F.interpolate(flow, scale_factor=1.0 / scale, mode="bilinear",
                                 align_corners=False) / scale
            x = torch.cat((x, flow), 1)
        out = self.lastconv(self.convblock(self.conv0(x)))
        out = F.interpolate(out, scale_factor=scale, mode="bilinear", align_corners=False)
        return out[:, :4] * scale, out[:, 4:5], out[:, 5:]


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``image`` sampled at each pixel plus ``flow`` (pixels), bilinear, edges repeated."""
    n, _, hgt, w = flow.shape
    ys = torch.linspace(-1.0, 1.0, hgt, device=flow.device, dtype=flow.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=flow.device, dtype=flow.dtype)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), 0).unsqueeze(0)
    norm = torch.tensor([(w - 1.0) / 2.0, (hgt - 1.0) / 2.0], device=flow.device,
                        dtype=flow.dtype).view(1, 2, 1, 1)
    g = (grid + flow / norm).permute(0, 2, 3, 1)
    return F.grid_sample(image, g, mode="bilinear", padding_mode="border", align_corners=True)


class IFNet(nn.Module):
    """The 4.25 flow network (5.66 M parameters); see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        first_in = 3 + 3 + 2 * FEATURES + 1  # both frames, their features, t
        later_in = 3 + 3 + 2 * FEATURES + 1 + 1 + 8 + 4  # warped ones, t, mask, features, flow
        self.block0 = IFBlock(first_in, 192)
        self.block1 = IFBlock(later_in, 128)
        self.block2 = IFBlock(later_in, 96)
        self.block3 = IFBlock(later_in, 64)
        self.block4 = IFBlock(later_in, 32)
        self.encode = Head()

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """A frame's features, which every time asked of one pair shares."""
        out: torch.Tensor = self.encode(image)
        return out

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, f0: torch.Tensor,
                f1: torch.Tensor, t: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(flows from t to both ends: N×4×H×W, the blend mask logit: N×1×H×W).

        ``img0``/``img1`` are N×3×H×W in [0, 1] with H and W multiples of ``PAD``; ``f0``,
        ``f1`` their ``features``; ``t`` a number or an N×1×1×1 tensor (an exported graph's
        input).
        """
        shape = (img0.shape[0], 1, img0.shape[2], img0.shape[3])
        time = t.expand(shape) if isinstance(t, torch.Tensor) else img0.new_full(shape, float(t))
        blocks = (self.block0, self.block1, self.block2, self.block3, self.block4)
        flow, mask, feat = blocks[0](torch.cat((img0, img1, f0, f1, time), 1), None, SCALES[0])
        for block, scale in zip(blocks[1:], SCALES[1:], strict=True):
            w0, w1 = backward_warp(img0, flow[:, :2]), backward_warp(img1, flow[:, 2:4])
            wf0, wf1 = backward_warp(f0, flow[:, :2]), backward_warp(f1, flow[:, 2:4])
            delta, mask, feat = block(torch.cat((w0, w1, wf0, wf1, time, mask, feat), 1),
                                      flow, scale)
            flow = flow + delta
        return flow, mask
