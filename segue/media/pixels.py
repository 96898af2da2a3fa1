"""Decoded pictures of any mode made 8-bit RGB and upright, in bounded memory.

The largest picture allowed (5999 x 5999) is 108 MB as 8-bit RGB. Converting it whole, as
one array or one ``Image`` per step, cost many times that: 16-bit greys went through an
``int64`` array (8 bytes a pixel, twice), and flattening transparency held three RGBA copies
at once (a 70 KB 16-bit PNG cost a server 870 MB). Here a picture in a mode that needs
arithmetic is converted a band of rows at a time into one RGB image, so the most held at
once is the decoded picture (at most 4 bytes a pixel: RGBA, CMYK, 32-bit grey or float),
the RGB result (3 bytes a pixel) and one band. ``benchmarks/image_memory.py`` measures it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from segue.errors import InvalidImage

BAND_ROWS = 64
GREY_16 = ("I;16", "I;16B", "I;16L", "I")
# EXIF orientation -> the transpose that makes the picture upright (as ImageOps.exif_transpose)
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def to_rgb(image: Image.Image, param: str) -> Image.Image:
    """``image`` as 8-bit RGB: transparency over white, 16- and 32-bit greys scaled rather
    than clipped, a float picture read as 0 to 1 (refused outside that range)."""
    if image.mode == "RGB" and "transparency" not in image.info:
        return image
    band = _band_converter(image, param)
    if band is None:
        return image.convert("RGB")
    out = Image.new("RGB", image.size)
    for top in range(0, image.height, BAND_ROWS):
        box = (0, top, image.width, min(top + BAND_ROWS, image.height))
        out.paste(band(image.crop(box)), box[:2])
    return out


def upright(image: Image.Image, orientation: int) -> Image.Image:
    method = UPRIGHT.get(orientation)
    return image if method is None else image.transpose(method)


def _band_converter(image: Image.Image,
                    param: str) -> Callable[[Image.Image], Image.Image] | None:
    """How one band of ``image`` becomes RGB, where ``convert("RGB")`` would be wrong."""
    if image.mode in GREY_16:
        shift = 8 if _extrema(image)[1] > 255 else 0  # 8-bit values in a 16-bit file stay

        def grey(band: Image.Image) -> Image.Image:
            values = np.asarray(band) >> shift
            return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L").convert("RGB")

        return grey
    if image.mode == "F":
        check_float_range(image, param)

        def unit(band: Image.Image) -> Image.Image:
            values = np.asarray(band, dtype=np.float32) * 255.0 + 0.5
            return Image.fromarray(values.astype(np.uint8), "L").convert("RGB")

        return unit
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        return _over_white
    return None


def check_float_range(image: Image.Image, param: str) -> None:
    """A float picture (a TIFF's 32-bit samples) is read as 0 to 1; one outside that range
    has no agreed meaning, and clipped it was all black: it is refused (at create, too)."""
    if image.mode != "F":
        return
    low, high = _extrema(image)
    if not (0.0 <= low and high <= 1.0):  # NaN fails both
        raise InvalidImage(
            param, "InvalidFormat",
            f"a floating-point image must hold values from 0 to 1, but this one's run "
            f"from {low:g} to {high:g}; save it as an 8- or 16-bit image.")


def _over_white(band: Image.Image) -> Image.Image:
    rgba = band.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _extrema(image: Image.Image) -> tuple[float, float]:
    low, high = image.getextrema()  # one channel: (min, max)
    return float(low), float(high)  # type: ignore[arg-type]
