"""Input images: checked, fetched within limits, decoded, cropped and resized.

Two entry points share one set of rules (formats, sides in (300, 6000), aspect in (0.4, 2.5),
a byte cap):

* ``check_image_reference`` runs at create time and does only what needs no download, so a
  bad data URL is a 400 before a task exists;
* ``load_image`` runs in the worker and also downloads http(s) URLs (``downloads``, guarded
  against server-side request forgery).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from urllib.parse import urlsplit

import numpy as np
from PIL import Image, UnidentifiedImageError

from segue.errors import InvalidImage, InvalidParameter
from segue.media.addresses import MalformedHost, refusal, refused_literal
from segue.media.pixels import check_float_range, to_rgb, upright
from segue.settings import Settings

# Pillow's format name -> the name the API uses. MPO is what many phone cameras write as JPEG.
FORMATS = {
    "JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp",
    "BMP": "bmp", "TIFF": "tiff", "GIF": "gif",
}
DATA_MIME = {"jpeg", "jpg", "png", "webp", "bmp", "x-ms-bmp", "tiff", "tif", "gif"}
SIDE_RANGE = (300, 6000)  # exclusive bounds, pixels
ASPECT_RANGE = (0.4, 2.5)  # exclusive bounds, width / height
_DATA_URL = re.compile(r"^data:image/([a-z0-9.+-]+)((?:;[^,;]*)*?);base64,(.*)$", re.S | re.I)
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


# --- rules -------------------------------------------------------------------------------


def validate_dimensions(image: Image.Image | tuple[int, int], param: str) -> None:
    """Apply the side and aspect rules to an image (or a displayed (width, height))."""
    width, height = image if isinstance(image, tuple) else image.size
    low, high = SIDE_RANGE
    for name, side in (("width", width), ("height", height)):
        if not low < side < high:
            raise InvalidParameter(
                param,
                f"the image {name} must be more than {low} and less than {high} pixels, "
                f"but it is {side} ({width}x{height}).",
            )
    aspect = width / height
    if not ASPECT_RANGE[0] < aspect < ASPECT_RANGE[1]:
        raise InvalidParameter(
            param,
            f"the image aspect ratio (width/height) must be between {ASPECT_RANGE[0]} and "
            f"{ASPECT_RANGE[1]} (exclusive), but it is {aspect:.3f} ({width}x{height}).",
        )


def image_aspect(image: Image.Image) -> float:
    return image.width / image.height


def _displayed_size(image: Image.Image) -> tuple[int, int]:
    """Size after EXIF rotation (orientations 5-8 swap the sides), read without decoding.

    Pillow's ``getexif`` decodes a PNG's pixels to look for an eXIf chunk after them, so a
    PNG's orientation is read from a chunk before the pixels only. The size rules hold the
    same for both orientations (one range for both sides, an aspect range that is its own
    reciprocal), so this only decides how a refusal names the sides.
    """
    if image.format == "PNG":
        exif = Image.Exif()
        if "exif" in image.info:
            exif.load(image.info["exif"])
    else:
        exif = image.getexif()
    orientation = exif.get(0x0112, 1)
    width, height = image.size
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


_DAMAGED = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _open(data: bytes, param: str) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        # Pillow refuses a header past its own pixel limit before Segue sees the sides; the
        # size rules, which are stricter, say what is wrong
        validate_dimensions(_header_size(data) or (0, 0), param)
        raise InvalidImage(param, "InvalidFormat", "the data is not a readable image.") from None
    except (UnidentifiedImageError, *_DAMAGED) as exc:
        raise InvalidImage(param, "InvalidFormat", "the data is not a readable image.") from exc


def _header_size(data: bytes) -> tuple[int, int] | None:
    """The size a header declares, read as ``Image.open`` reads it but without its pixel
    limit (the plugins only parse the header here; nothing is decoded)."""
    for format_id in Image.ID:
        factory, accept = Image.OPEN[format_id]
        if accept is not None and not accept(data[:16]):
            continue
        try:
            return factory(io.BytesIO(data), None).size  # type: ignore[arg-type]
        except Exception:  # not this format: try the next, as Image.open does
            continue
    return None


def _load(image: Image.Image, param: str) -> None:
    """Check the format and the sides from the header, then decode the first frame.

    The sides are checked before the pixels are decoded, so an oversized image costs nothing
    to refuse.
    """
    kind = FORMATS.get(image.format or "")
    if kind is None:
        raise InvalidImage(
            param,
            "InvalidFormat",
            f"the format {image.format or 'unknown'} is not supported; "
            "use jpeg, png, webp, bmp, tiff or gif.",
        )
    try:
        validate_dimensions(_displayed_size(image), param)  # the header's EXIF may be damaged
        image.seek(0)  # the first frame of an animation
        image.load()
    except _DAMAGED as exc:
        raise InvalidImage(
            param, "InvalidFormat", f"the {kind} image is damaged or truncated ({exc})."
        ) from exc


def check_image_data(data: bytes, param: str) -> None:
    """What a create checks in a data URL: a supported format, the size rules, and pixels
    that decode (not turned upright or into RGB: the worker does that)."""
    with _open(data, param) as image:
        _load(image, param)
        check_float_range(image, param)


def decode_image(data: bytes, param: str) -> Image.Image:
    """Decode bytes under the format and size rules; returns RGB with EXIF orientation applied.

    The decoded picture is let go before it is turned upright, so that no more than two
    pictures' worth of pixels are held at any time (``pixels``).
    """
    image = _open(data, param)
    try:
        _load(image, param)
        orientation = image.getexif().get(0x0112, 1)
        rgb = to_rgb(image, param)
    except _DAMAGED as exc:
        image.close()
        raise InvalidImage(
            param, "InvalidFormat", f"the image is damaged or truncated ({exc})."
        ) from exc
    except BaseException:
        image.close()
        raise
    if rgb is not image:
        image.close()  # releases the decoded pixels before the turn
    return upright(rgb, orientation if isinstance(orientation, int) else 1)


# --- data URLs ---------------------------------------------------------------------------


def _decode_data_url(url: str, param: str, max_bytes: int) -> bytes:
    match = _DATA_URL.match(url)
    if match is None:
        raise InvalidImage(
            param,
            "InvalidFormat",
            "a data URL must look like data:image/<format>;base64,<data> "
            "with format jpeg, png, webp, bmp, tiff or gif.",
        )
    # str.split drops the same whitespace as re.sub(r"\s+") at a tenth of its cost on the
    # megabytes a data URL may hold.
    mime, payload = match.group(1).lower(), "".join(match.group(3).split())
    if mime not in DATA_MIME:
        raise InvalidImage(
            param, "InvalidFormat", f"the data URL type image/{mime} is not a supported format."
        )
    if len(payload) * 3 // 4 > max_bytes + 2:  # refuse before spending memory on decoding
        raise InvalidImage(param, "TooLarge", too_large(len(payload) * 3 // 4, max_bytes))
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImage(param, "InvalidFormat", "the data URL is not valid base64.") from exc
    if len(data) > max_bytes:
        raise InvalidImage(param, "TooLarge", too_large(len(data), max_bytes))
    if not data:
        raise InvalidImage(param, "EmptyURL", "the data URL carries no data.")
    return data


def too_large(size: int, max_bytes: int) -> str:
    return f"the image is {size} bytes, more than the limit of {max_bytes} bytes."


def _scheme(url: str, param: str) -> str:
    if not url or not url.strip():
        raise InvalidImage(param, "EmptyURL", "the image URL is empty.")
    match = _SCHEME.match(url.strip())
    scheme = match.group(1).lower() if match else ""
    if scheme not in ("http", "https", "data"):
        raise InvalidImage(
            param,
            "InvalidFormat",
            f"the URL scheme must be http, https or data, not {scheme or 'missing'!r}.",
        )
    return scheme


def check_image_reference(url: str, param: str, settings: Settings) -> None:
    """Create-time checks that need no download: scheme, host, and a data URL in full."""
    scheme = _scheme(url, param)
    if scheme == "data":
        check_image_data(_decode_data_url(url.strip(), param, settings.image_max_bytes), param)
        return
    host = url_host(url.strip(), param)
    try:
        literal = refused_literal(host, settings)  # a name is checked when it is resolved
    except MalformedHost as exc:
        raise InvalidImage(param, "InvalidFormat", f"the URL's host {exc}.") from exc
    if literal is not None:
        raise InvalidImage(param, "Forbidden", refusal(host, literal))


def load_image(url: str, param: str, settings: Settings, deadline: float | None = None
               ) -> Image.Image:
    """The image at ``url`` as RGB (first frame, upright), under every rule above; a download
    ends by ``deadline`` (``time.monotonic()``) too, when one is given."""
    scheme = _scheme(url, param)
    if scheme == "data":
        return decode_image(_decode_data_url(url.strip(), param, settings.image_max_bytes), param)
    from segue.media.downloads import fetch  # httpx only where something is downloaded

    return decode_image(fetch(url.strip(), param, settings, deadline), param)


def url_host(url: str, param: str) -> str:
    """The host an http(s) URL names (InvalidImage when it names none)."""
    try:
        host = urlsplit(url).hostname
    except ValueError as exc:
        raise InvalidImage(param, "InvalidFormat", f"the URL {url!r} is malformed.") from exc
    if not host:
        raise InvalidImage(param, "InvalidFormat", f"the URL {url!r} names no host.")
    return host


# --- geometry ----------------------------------------------------------------------------


def _centred_box(width: int, height: int, aspect: float) -> tuple[float, float, float, float]:
    """The largest centred box of ``aspect`` (w/h) inside width x height, in float pixels."""
    if width / height > aspect:
        new_width = height * aspect
        left = (width - new_width) / 2
        return (left, 0.0, left + new_width, float(height))
    new_height = width / aspect
    top = (height - new_height) / 2
    return (0.0, top, float(width), top + new_height)


def crop_to_aspect(image: Image.Image, aspect: float) -> Image.Image:
    """The largest centred region of ``aspect`` (w/h), in whole pixels."""
    left, top, right, bottom = _centred_box(image.width, image.height, aspect)
    return image.crop((round(left), round(top), round(right), round(bottom)))


def fit_to(image: Image.Image, width: int, height: int) -> np.ndarray:
    """Centre-crop to width/height's aspect and resize (Lanczos): an HxWx3 uint8 RGB array.

    The crop box is passed to ``resize`` in float pixels, so the aspect is exact rather than
    rounded to whole source pixels first.
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    box = _centred_box(rgb.width, rgb.height, width / height)
    resized = rgb.resize((width, height), Image.Resampling.LANCZOS, box=box)
    return np.ascontiguousarray(np.asarray(resized, dtype=np.uint8))
