"""SEGUE_VIDEO_ENCODER: libx264 (the default), h264_nvenc, or auto (NVENC where it opens).

These run where NVENC does not open (no NVIDIA GPU): ``auto`` falls back to libx264 and
makes a real video; ``h264_nvenc`` named there stops a rendering command in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from segue.media.video import (
    HARDWARE_ENCODER,
    VideoEncoder,
    encoder_unavailable,
    pick_encoder,
    probe,
)
from tests.conftest import png_bytes, scene

pytestmark = pytest.mark.skipif(encoder_unavailable(HARDWARE_ENCODER) is None,
                                reason="NVENC opens on this machine")


def test_auto_is_libx264_where_nvenc_does_not_open(tmp_path: Path) -> None:
    assert "h264_nvenc" in (encoder_unavailable(HARDWARE_ENCODER) or "")
    assert encoder_unavailable("libx264") is None
    assert pick_encoder("auto") == pick_encoder("libx264") == "libx264"
    out = tmp_path / "auto.mp4"
    with VideoEncoder(out, 64, 48, 3, codec=pick_encoder("auto")) as video:
        for k in range(3):
            video.write(np.full((48, 64, 3), 40 * k, np.uint8))
    assert probe(out).frames == 3
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "h264"


def _segue(tmp_path: Path, *args: str, encoder: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SEGUE_DATA_DIR=str(tmp_path), SEGUE_VIDEO_ENCODER=encoder)
    return subprocess.run([sys.executable, "-m", "segue", *args], env=env, text=True,
                          capture_output=True, timeout=120)


def test_nvenc_named_where_it_does_not_open_stops_rendering_commands(tmp_path: Path) -> None:
    first, last = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(png_bytes(scene(640, 360)))
    last.write_bytes(png_bytes(scene(640, 360, 6)))
    for args in (("worker",), ("generate", "-f", str(first), "-l", str(last),
                               "-o", str(tmp_path / "x.mp4"))):
        done = _segue(tmp_path, *args, encoder="h264_nvenc")
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "SEGUE_VIDEO_ENCODER=h264_nvenc" in lines[0], done.stderr
        assert "libx264" in lines[0]
    assert not (tmp_path / "x.mp4").exists()
    done = _segue(tmp_path, "generate", "-f", str(first), "-l", str(last), "-o",
                  str(tmp_path / "y.mp4"), "--json", "-p", "x --rs 480p --dur 2", encoder="auto")
    assert done.returncode == 0, done.stderr
    assert probe(tmp_path / "y.mp4").frames == 49
