"""Input images: checked, fetched within limits, decoded, cropped and resized.

Two entry points share one set of rules (formats, sides in (300, 6000), aspect in (0.4, 2.5),
a byte cap):

* ``check_image_reference`` runs at create time and does only what needs no download, so a
  bad data URL is a 400 before a task exists;
* ``load_image`` runs in the worker and also downloads http(s) URLs.

Downloads are guarded against server-side request forgery: every hop of a redirect chain is
resolved here, every address it resolves to is checked, and the connection goes to the
checked address (so a DNS answer cannot change between the check and the connect).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import time
from urllib.parse import urlsplit

import httpx
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from segue.errors import InvalidImage, InvalidParameter
from segue.media.addresses import (
    MalformedHost,
    canonical_url,
    first_refused,
    refusal,
    refused_literal,
    resolve,
)
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
_REDIRECTS = {301, 302, 303, 307, 308}


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


def _to_rgb(image: Image.Image) -> Image.Image:
    """Flatten to RGB: transparency over white, 16-bit greys scaled rather than clipped."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        grey = np.asarray(image).astype(np.int64)
        if grey.max(initial=0) > 255:
            grey >>= 8
        image = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def decode_image(data: bytes, param: str) -> Image.Image:
    """Decode bytes under the format and size rules; returns RGB with EXIF orientation applied.

    The sides are checked from the header before the pixels are decoded, so an oversized
    image costs nothing to refuse.
    """
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidImage(param, "InvalidFormat", "the data is not a readable image.") from exc
    with image:
        kind = FORMATS.get(image.format or "")
        if kind is None:
            raise InvalidImage(
                param,
                "InvalidFormat",
                f"the format {image.format or 'unknown'} is not supported; "
                "use jpeg, png, webp, bmp, tiff or gif.",
            )
        try:
            validate_dimensions(_displayed_size(image), param)  # before decoding the pixels
            image.seek(0)  # the first frame of an animation
            image.load()
            upright = ImageOps.exif_transpose(image)
            return _to_rgb(upright)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise InvalidImage(
                param, "InvalidFormat", f"the {kind} image is damaged or truncated ({exc})."
            ) from exc


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
        raise InvalidImage(param, "TooLarge", _too_large(len(payload) * 3 // 4, max_bytes))
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImage(param, "InvalidFormat", "the data URL is not valid base64.") from exc
    if len(data) > max_bytes:
        raise InvalidImage(param, "TooLarge", _too_large(len(data), max_bytes))
    if not data:
        raise InvalidImage(param, "EmptyURL", "the data URL carries no data.")
    return data


def _too_large(size: int, max_bytes: int) -> str:
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
        decode_image(_decode_data_url(url.strip(), param, settings.image_max_bytes), param)
        return
    host = _host(url.strip(), param)
    try:
        literal = refused_literal(host, settings)  # a name is checked when it is resolved
    except MalformedHost as exc:
        raise InvalidImage(param, "InvalidFormat", f"the URL's host {exc}.") from exc
    if literal is not None:
        raise InvalidImage(param, "Forbidden", refusal(host, literal))


def load_image(url: str, param: str, settings: Settings) -> Image.Image:
    """The image at ``url`` as RGB (first frame, upright), under every rule above."""
    scheme = _scheme(url, param)
    if scheme == "data":
        return decode_image(_decode_data_url(url.strip(), param, settings.image_max_bytes), param)
    return decode_image(fetch(url.strip(), param, settings), param)


# --- downloads ---------------------------------------------------------------------------


def _host(url: str, param: str) -> str:
    try:
        host = urlsplit(url).hostname
    except ValueError as exc:
        raise InvalidImage(param, "InvalidFormat", f"the URL {url!r} is malformed.") from exc
    if not host:
        raise InvalidImage(param, "InvalidFormat", f"the URL {url!r} names no host.")
    return host


def _addresses(url: httpx.URL, param: str, settings: Settings) -> list[str]:
    """Resolve the URL's host and refuse it when any of its addresses is forbidden."""
    try:
        addresses = resolve(url.host, url.port or (443 if url.scheme == "https" else 80))
    except (OSError, UnicodeError) as exc:
        raise InvalidImage(param, "Unreachable", f"the host {url.host} does not resolve.") from exc
    address = first_refused(addresses, settings)
    if address is not None:
        raise InvalidImage(param, "Forbidden", refusal(url.host, address))
    return addresses


def fetch(url: str, param: str, settings: Settings) -> bytes:
    """Download ``url`` with the byte cap, the timeouts and a checked, bounded redirect chain."""
    deadline = time.monotonic() + settings.image_total_timeout
    current = _parse_url(url, param)
    for _hop in range(settings.image_max_redirects + 1):
        location = _fetch_hop(current, param, settings, deadline)
        if isinstance(location, bytes):
            return location
        current = _parse_url(str(current.join(location)), param)
    raise InvalidImage(
        param,
        "Unreachable",
        f"the URL redirects more than {settings.image_max_redirects} times.",
    )


def _parse_url(url: str, param: str) -> httpx.URL:
    try:
        parsed = httpx.URL(canonical_url(url))  # 0177.0.0.1 is sent as 127.0.0.1
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidImage(param, "InvalidFormat", f"the URL {url!r} is malformed.") from exc
    if parsed.scheme not in ("http", "https"):
        raise InvalidImage(
            param, "InvalidFormat", f"the URL {url!r} is not http or https (after a redirect?)."
        )
    _host(str(parsed), param)
    return parsed


def _remaining(deadline: float, param: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise InvalidImage(param, "Unreachable", "the download took longer than allowed.")
    return left


def _client() -> httpx.Client:
    return httpx.Client(follow_redirects=False, trust_env=False)


def _fetch_hop(url: httpx.URL, param: str, settings: Settings, deadline: float) -> bytes | str:
    """One request pinned to a checked address: the body, or the Location of a redirect.

    Each attempt gets its own client, so no pooled connection (or TLS session made for
    another name) is ever reused. Proxies from the environment are ignored on purpose:
    through a proxy the address check would mean nothing.
    """
    addresses = _addresses(url, param, settings)
    failure: Exception | None = None
    for address in addresses:
        left = _remaining(deadline, param)
        timeout = httpx.Timeout(left, connect=min(settings.image_connect_timeout, left))
        with _client() as client:
            result = _attempt(client, url, address, timeout, param, settings, deadline)
        if not isinstance(result, Exception):
            return result
        failure = result  # could not connect: try the host's next address
    raise InvalidImage(param, "Unreachable", _failed(url, failure)) from failure


def _attempt(
    client: httpx.Client,
    url: httpx.URL,
    address: str,
    timeout: httpx.Timeout,
    param: str,
    settings: Settings,
    deadline: float,
) -> bytes | str | httpx.ConnectError:
    request = client.build_request(
        "GET",
        url.copy_with(host=address),
        headers={"Host": url.netloc.decode("ascii"), "Accept": "image/*"},
        timeout=timeout,
        extensions={"sni_hostname": url.host},  # TLS checks the name, not the address
    )
    try:
        response = client.send(request, stream=True)
    except httpx.ConnectError as exc:
        return exc
    except httpx.HTTPError as exc:
        raise InvalidImage(param, "Unreachable", _failed(url, exc)) from exc
    try:
        return _read(response, url, param, settings, deadline)
    finally:
        response.close()


def _failed(url: httpx.URL, exc: Exception | None) -> str:
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    return f"the download of {url.host} {kind} ({type(exc).__name__}: {exc})."


def _read(
    response: httpx.Response, url: httpx.URL, param: str, settings: Settings, deadline: float
) -> bytes | str:
    if response.status_code in _REDIRECTS:
        location = response.headers.get("location")
        if not location:
            raise InvalidImage(param, "Unreachable", "a redirect came without a Location.")
        return location
    if response.status_code != 200:
        raise InvalidImage(
            param, "Unreachable", f"{url.host} answered HTTP {response.status_code}."
        )
    cap = settings.image_max_bytes
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise InvalidImage(param, "TooLarge", _too_large(int(declared), cap))
    body = bytearray()
    try:
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > cap:
                raise InvalidImage(param, "TooLarge", f"the image is more than {cap} bytes.")
            _remaining(deadline, param)
    except httpx.HTTPError as exc:
        raise InvalidImage(param, "Unreachable", _failed(url, exc)) from exc
    if not body:
        raise InvalidImage(param, "InvalidFormat", f"{url.host} answered an empty body.")
    return bytes(body)


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
