"""The encoder writes what players expect: H.264, BT.709, faststart, exact frames, sharp ends."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from segue.media.video import (
    VideoEncoder,
    probe,
    psnr,
    read_frames,
    watermark,
    write_png,
)

H, W, N = 192, 320, 25


def natural_frame(i: int, height: int = H, width: int = W) -> np.ndarray:
    """Smooth, moving colour waves: like footage, not like a test card of hard edges."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 128 + 100 * np.sin(xx / 40 + i / 5)
    g = 128 + 100 * np.cos(yy / 30 - i / 7)
    b = 128 + 80 * np.sin((xx + yy) / 50 + i / 9)
    return np.stack([r, g, b], -1).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    frames = [natural_frame(i) for i in range(N)]
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    with VideoEncoder(path, W, H, N) as encoder:
        for frame in frames:
            encoder.write(frame)
    return path, frames


def top_level_boxes(path: Path) -> list[str]:
    data, boxes, offset = path.read_bytes(), [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size == 0:
            break
        offset += size
    return boxes


def test_probe_reports_h264_yuv420p_size_frames_and_fps(encoded) -> None:
    path, _ = encoded
    info = probe(path)
    assert (info.width, info.height, info.frames) == (W, H, N)
    assert info.fps == 24.0
    assert info.codec == "h264"
    assert info.pix_fmt == "yuv420p"
    assert info.duration == pytest.approx(N / 24, abs=0.05)


def test_stream_is_tagged_bt709_limited_range(encoded) -> None:
    path, _ = encoded
    with av.open(str(path)) as container:
        context = container.streams.video[0].codec_context
        assert (context.color_primaries, context.color_trc, context.colorspace) == (1, 1, 1)
        assert context.color_range == 1  # MPEG / tv / limited


def test_moov_atom_precedes_mdat_for_streaming(encoded) -> None:
    boxes = top_level_boxes(encoded[0])
    assert "moov" in boxes and "mdat" in boxes
    assert boxes.index("moov") < boxes.index("mdat")


def test_first_and_last_frames_survive_encoding(encoded) -> None:
    path, frames = encoded
    decoded = read_frames(path)
    assert len(decoded) == N
    assert decoded[0].shape == (H, W, 3) and decoded[0].dtype == np.uint8
    assert psnr(decoded[0], frames[0]) >= 40.0
    assert psnr(decoded[-1], frames[-1]) >= 40.0


def test_last_frame_is_a_keyframe(encoded) -> None:
    with av.open(str(encoded[0])) as container:
        decoded = list(container.decode(video=0))
    assert decoded[-1].key_frame
    assert decoded[-1].pict_type == av.video.frame.PictureType.I
    assert not decoded[N // 2].key_frame  # only the ends are forced, not every frame


def test_conversion_uses_the_bt709_matrix(tmp_path: Path) -> None:
    colour = (200, 40, 60)
    frame = np.empty((H, W, 3), np.uint8)
    frame[:] = colour
    path = tmp_path / "solid.mp4"
    with VideoEncoder(path, W, H, 2) as encoder:
        encoder.write(frame)
        encoder.write(frame)
    with av.open(str(path)) as container:
        luma = next(container.decode(video=0)).to_ndarray(format="yuv420p")[:H]
    r, g, b = colour
    bt709 = 16 + 219 * (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255  # 80.8
    bt601 = 16 + 219 * (0.299 * r + 0.587 * g + 0.114 * b) / 255  # 93.4
    assert abs(float(luma.mean()) - bt709) < 1.5
    assert abs(float(luma.mean()) - bt601) > 10
    assert np.abs(read_frames(path)[0].astype(int) - colour).max() <= 3


def test_too_many_frames_raise(tmp_path: Path) -> None:
    with VideoEncoder(tmp_path / "a.mp4", W, H, 2) as encoder:
        encoder.write(natural_frame(0))
        encoder.write(natural_frame(1))
        with pytest.raises(ValueError, match="more than the 2 frames"):
            encoder.write(natural_frame(2))
    assert probe(tmp_path / "a.mp4").frames == 2


def test_too_few_frames_raise_and_leave_no_file(tmp_path: Path) -> None:
    path = tmp_path / "short.mp4"
    with pytest.raises(ValueError, match="only 1 of the 3"):
        with VideoEncoder(path, W, H, 3) as encoder:
            encoder.write(natural_frame(0))
    assert not path.exists()


def test_an_error_inside_the_block_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError, match="engine failed"):
        with VideoEncoder(path, W, H, 3) as encoder:
            encoder.write(natural_frame(0))
            raise RuntimeError("engine failed")
    assert not path.exists()


def test_wrong_frame_shape_and_odd_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        VideoEncoder(tmp_path / "odd.mp4", 321, 192, 2)
    encoder = VideoEncoder(tmp_path / "shape.mp4", W, H, 1)
    with pytest.raises(ValueError, match="uint8"):
        encoder.write(np.zeros((H, W, 3), np.float32))
    encoder.write(natural_frame(0))
    encoder.close()
    assert probe(tmp_path / "shape.mp4").frames == 1


def test_watermark_changes_only_the_bottom_right_corner() -> None:
    frame = natural_frame(3, 704, 1248)
    marked = watermark(frame)
    assert marked.shape == frame.shape and marked.dtype == np.uint8
    changed = np.argwhere(np.any(marked != frame, axis=2))
    assert len(changed) > 500  # visibly there
    top, left = changed.min(axis=0)
    assert top > 704 * 0.85 and left > 1248 * 0.6
    assert np.array_equal(marked[: int(704 * 0.85)], frame[: int(704 * 0.85)])
    # white text pixels exist inside the box (legible, not just a shadow)
    box = marked[top:, left:]
    assert (box.min(axis=2) > 230).sum() > 50
    assert np.array_equal(frame, natural_frame(3, 704, 1248))  # input not modified


def test_watermark_scales_with_frame_height() -> None:
    small, large = natural_frame(0, 480, 864), natural_frame(0, 1088, 1920)
    rows_small = np.any(watermark(small) != small, axis=(1, 2)).sum()
    rows_large = np.any(watermark(large) != large, axis=(1, 2)).sum()
    assert rows_large > rows_small * 1.7


def test_write_png_is_lossless(tmp_path: Path) -> None:
    frame = natural_frame(5)
    write_png(frame, tmp_path / "last.png")
    with Image.open(tmp_path / "last.png") as image:
        assert image.format == "PNG"
        assert np.array_equal(np.asarray(image.convert("RGB")), frame)


def test_psnr_values() -> None:
    a = natural_frame(0)
    assert psnr(a, a) == float("inf")
    b = a.copy()
    b[0, 0, 0] ^= 1
    assert psnr(a, b) > 60
    assert psnr(a, 255 - a) < 10
