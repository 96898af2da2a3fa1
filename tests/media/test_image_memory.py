"""Input pictures of every mode become 8-bit RGB correctly, in bounded memory: no 16-bit
or RGBA picture is widened (to int64, or three RGBA copies) on its way, and a float TIFF
is read as 0 to 1 or refused."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.image_memory import peak_rise, write
from segue.errors import InvalidImage, InvalidParameter
from segue.media.images import check_image_data, decode_image

SIDE = 3000  # 9 Mpx: 26 MiB as 8-bit RGB
RGB_BYTES = SIDE * SIDE * 3


@pytest.mark.parametrize("kind", ["grey16_png", "rgba8_png", "rgba16_png", "palette_trns_png",
                                  "float_tiff", "rotated_jpeg"])
def test_one_picture_costs_a_small_multiple_of_its_rgb_size(kind: str, tmp_path: Path) -> None:
    """Measured in a fresh process: before, these cost 4 to 8 times the RGB size (a 16-bit
    grey 7x, through int64 arrays; RGBA 8x); now at most the decoded picture (up to 4
    bytes a pixel) and its RGB copy."""
    rise = peak_rise("decode", write(kind, SIDE, tmp_path))
    assert rise < 3.5 * RGB_BYTES, f"{kind}: {rise / RGB_BYTES:.2f}x the RGB size"


def _encode(image: Image.Image, kind: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind)
    return buffer.getvalue()


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    values = np.tile(np.linspace(0, 65535, 400).astype(np.uint16), (320, 1))
    rgb = np.asarray(decode_image(_encode(Image.fromarray(values), "PNG"), "first_frame"))
    assert rgb.dtype == np.uint8 and rgb.shape == (320, 400, 3)
    assert rgb[0, 0].tolist() == [0, 0, 0] and rgb[0, -1].tolist() == [255, 255, 255]
    assert rgb[0, 200, 0] == values[0, 200] >> 8
    low = np.full((320, 400), 200, np.uint16)  # 8-bit values in a 16-bit file stay as they are
    assert np.asarray(decode_image(_encode(Image.fromarray(low), "PNG"), "p"))[0, 0, 0] == 200


def test_rgba_is_flattened_on_white_across_bands() -> None:
    """Taller than one band of rows: each band is composited the same."""
    rgba = np.zeros((700, 400, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :200, 3] = 255  # left half opaque red, right half clear
    rgb = np.asarray(decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"), "p"))
    assert (rgb[:, :200] == [255, 0, 0]).all() and (rgb[:, 200:] == [255, 255, 255]).all()


def test_a_float_tiff_is_read_from_0_to_1() -> None:
    """Before, its values (0 to 1) were clipped to 8-bit: an all-black picture."""
    unit = np.tile(np.linspace(0, 1, 400, dtype=np.float32), (320, 1))
    data = _encode(Image.fromarray(unit, "F"), "TIFF")
    check_image_data(data, "first_frame")
    rgb = np.asarray(decode_image(data, "first_frame"))
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255
    assert abs(int(rgb[0, 200, 0]) - round(200 / 399 * 255)) <= 1


def test_a_float_tiff_outside_0_to_1_is_refused_at_create() -> None:
    wide = np.tile(np.linspace(0, 1000, 400, dtype=np.float32), (320, 1))
    with pytest.raises(InvalidImage, match="from 0 to 1000") as caught:
        check_image_data(_encode(Image.fromarray(wide, "F"), "TIFF"), "first_frame")
    assert caught.value.code == "InvalidImageURL.InvalidFormat"


def test_a_header_past_pillows_pixel_limit_gets_the_size_error() -> None:
    """A 100000x100000 PNG header: Pillow refuses it as a decompression bomb before Segue
    reads the sides, which made it "not a readable image"; the size rules say what is wrong."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    for call in (check_image_data, decode_image):
        with pytest.raises(InvalidParameter, match=r"less than 6000 pixels.*100000x100000"):
            call(png, "first_frame")
