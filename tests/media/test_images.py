"""Input images: data URLs, every rule, real downloads on loopback, the SSRF guard, cropping."""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image, ImageFile

from segue.errors import InvalidImage, InvalidParameter
from segue.media import addresses, downloads
from segue.media.images import (
    check_image_reference,
    crop_to_aspect,
    fit_to,
    image_aspect,
    load_image,
)
from segue.settings import Settings

P = "content[1].image_url"


def picture(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A smooth two-way gradient (so lossy formats stay close to the original)."""
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1),
                    np.full_like(xx, 90)], -1).astype(np.uint8)
    return Image.fromarray(rgb, "RGB").convert(mode)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def data_url(data: bytes, mime: str = "png") -> str:
    return f"data:image/{mime};base64,{base64.b64encode(data).decode()}"


@pytest.fixture()
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, allow_private_urls=True)


@pytest.fixture()
def strict(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, allow_private_urls=False)


# --- data URLs and the rules -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp"), ("BMP", "bmp"),
     ("TIFF", "tiff"), ("GIF", "gif")],
)
def test_every_supported_format_loads(fmt: str, mime: str, settings: Settings) -> None:
    source = picture(480, 320)
    url = data_url(encode(source, fmt), mime)
    check_image_reference(url, P, settings)
    image = load_image(url, P, settings)
    assert image.mode == "RGB" and image.size == (480, 320)
    error = np.abs(np.asarray(image, np.int16) - np.asarray(source, np.int16)).mean()
    assert error < 12  # GIF palettes and JPEG are lossy, but it is the same picture


def test_gif_gives_its_first_frame(settings: Settings) -> None:
    red, blue = Image.new("RGB", (400, 400), (255, 0, 0)), Image.new("RGB", (400, 400), (0, 0, 255))
    data = encode(red, "GIF", save_all=True, append_images=[blue], duration=100, loop=0)
    image = load_image(data_url(data, "gif"), P, settings)
    assert tuple(image.getpixel((200, 200))) == (255, 0, 0)


def test_exif_orientation_is_applied(settings: Settings) -> None:
    source = picture(640, 400)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    image = load_image(data_url(encode(source, "JPEG", exif=exif), "jpeg"), P, settings)
    assert image.size == (400, 640)


def test_a_png_orientation_before_its_pixels_is_applied(settings: Settings) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    image = load_image(data_url(encode(picture(640, 400), "PNG", exif=exif)), P, settings)
    assert image.size == (400, 640)


def test_an_oversized_png_is_refused_without_decoding_its_pixels(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """200 KB of PNG that would decode to 200 MB: refused from its header alone."""
    url = data_url(encode(Image.new("RGB", (9000, 8000)), "PNG"))
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self))
    with pytest.raises(InvalidParameter) as caught:
        check_image_reference(url, P, settings)
    assert "9000" in caught.value.message and not decoded


def test_transparency_is_flattened_on_white(settings: Settings) -> None:
    clear = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    image = load_image(data_url(encode(clear, "PNG")), P, settings)
    assert tuple(image.getpixel((10, 10))) == (255, 255, 255)


@pytest.mark.parametrize(
    ("width", "height", "ok"),
    [(300, 400, False), (301, 400, True), (400, 300, False), (400, 301, True),
     (5999, 2800, True), (6000, 2800, False), (2800, 5999, True), (2800, 6000, False)],
)
def test_side_boundaries(width: int, height: int, ok: bool, settings: Settings) -> None:
    url = data_url(encode(Image.new("L", (width, height), 128), "PNG"))
    if ok:
        check_image_reference(url, P, settings)
        return
    with pytest.raises(InvalidParameter) as caught:
        check_image_reference(url, P, settings)
    error = caught.value
    assert error.code == "InvalidParameter" and error.param == P
    assert P in error.message and "300" in error.message and "6000" in error.message
    assert str(width if width in (300, 6000) else height) in error.message


@pytest.mark.parametrize(
    ("width", "height", "ok"),
    [(400, 1000, False), (401, 1000, True), (1000, 400, False), (999, 400, True)],
)
def test_aspect_boundaries(width: int, height: int, ok: bool, settings: Settings) -> None:
    url = data_url(encode(Image.new("L", (width, height), 128), "PNG"))
    if ok:
        assert load_image(url, P, settings).size == (width, height)
        return
    with pytest.raises(InvalidParameter, match="aspect ratio") as caught:
        load_image(url, P, settings)
    assert f"{width / height:.3f}" in caught.value.message


@pytest.mark.parametrize(
    ("url", "reason", "words"),
    [
        ("", "EmptyURL", "empty"),
        ("   ", "EmptyURL", "empty"),
        ("ftp://example.com/a.png", "InvalidFormat", "'ftp'"),
        ("file:///etc/passwd", "InvalidFormat", "'file'"),
        ("just-a-name.png", "InvalidFormat", "missing"),
        ("data:text/plain;base64,aGVsbG8=", "InvalidFormat", "data:image/"),
        ("data:image/svg+xml;base64,PHN2Zz4=", "InvalidFormat", "svg+xml"),
        ("data:image/png,rawbytes", "InvalidFormat", "data:image/"),
        ("data:image/png;base64,!!!notbase64!!!", "InvalidFormat", "base64"),
        ("data:image/png;base64,", "EmptyURL", "no data"),
        ("data:image/png;base64," + base64.b64encode(b"not an image").decode(),
         "InvalidFormat", "not a readable image"),
        ("http://", "InvalidFormat", "no host"),
    ],
)
def test_malformed_references(url: str, reason: str, words: str, settings: Settings) -> None:
    with pytest.raises(InvalidImage) as caught:
        check_image_reference(url, P, settings)
    assert caught.value.code == f"InvalidImageURL.{reason}"
    assert caught.value.param == P and P in caught.value.message
    assert words in caught.value.message


def test_unsupported_format_is_named(settings: Settings) -> None:
    url = data_url(encode(picture(400, 400), "PPM"), "png")
    with pytest.raises(InvalidImage, match="PPM is not supported") as caught:
        load_image(url, P, settings)
    assert caught.value.code == "InvalidImageURL.InvalidFormat"


@pytest.mark.parametrize("check", [load_image, check_image_reference])
def test_truncated_image_is_damaged(check, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    """Found at create (``check_image_reference``) as well as by the worker (``load_image``)."""
    data = encode(picture(800, 600), "PNG")
    with pytest.raises(InvalidImage, match="damaged or truncated"):
        check(data_url(data[: len(data) // 2]), P, settings)


def test_oversized_data_url(tmp_path) -> None:
    small = Settings(data_dir=tmp_path, image_max_bytes=10_000)
    data = encode(picture(800, 600), "BMP")
    with pytest.raises(InvalidImage, match="10000 bytes") as caught:
        check_image_reference(data_url(data, "bmp"), P, small)
    assert caught.value.code == "InvalidImageURL.TooLarge"


# --- downloads over loopback -------------------------------------------------------------

PNG = encode(picture(640, 360), "PNG")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        named = {name.replace("_", "-"): value for name, value in headers.items()}
        named.setdefault("Content-Length", str(len(body)))
        for name, value in named.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - the http.server spelling
        self.server.hits.append((self.path, self.headers.get("Host")))  # type: ignore[attr-defined]
        try:
            self._route()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def _route(self) -> None:
        path = self.path
        if path == "/img.png":
            self._send(200, PNG, Content_Type="image/png")
        elif path.startswith("/hops/"):
            left = int(path.rsplit("/", 1)[1])  # redirects still to come
            if left == 0:
                self._send(200, PNG, Content_Type="image/png")
            else:
                self._send(302, Location=f"/hops/{left - 1}")
        elif path == "/to-metadata":
            self._send(302, Location="http://169.254.169.254/latest/meta-data/")
        elif path == "/to-file":
            self._send(302, Location="file:///etc/passwd")
        elif path == "/declared-huge":
            self._send(200, b"x" * 100, Content_Length=str(10**9))
        elif path == "/streamed-huge":
            self._stream_chunks(b"\x89PNG" + b"x" * 65_532, count=200, pause=0)
        elif path == "/drip":
            self._stream_chunks(b"x", count=100, pause=0.1)
        elif path == "/page.html":
            self._send(200, b"<html>hello</html>", Content_Type="text/html")
        else:
            self._send(404, b"nope")

    def _stream_chunks(self, chunk: bytes, count: int, pause: float) -> None:
        """A chunked body with no Content-Length, so only the client's counting can stop it."""
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for _ in range(count):
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
            self.server.sent += len(chunk)  # type: ignore[attr-defined]
            time.sleep(pause)
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.hits, httpd.sent = [], 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def base(server: ThreadingHTTPServer, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{server.server_address[1]}"


def test_download_from_loopback_when_allowed(server, settings: Settings) -> None:
    image = load_image(f"{base(server)}/img.png", P, settings)
    assert image.size == (640, 360) and image.mode == "RGB"
    assert np.array_equal(np.asarray(image), np.asarray(picture(640, 360)))


def test_a_name_is_resolved_and_its_host_header_kept(server, settings: Settings) -> None:
    server.hits.clear()
    load_image(f"{base(server, 'localhost')}/img.png", P, settings)
    assert server.hits[-1] == ("/img.png", f"localhost:{server.server_address[1]}")


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "10.1.2.3", "192.168.0.7", "169.254.169.254", "localhost",
             "[::1]", "0.0.0.0", "[::ffff:127.0.0.1]", "100.64.0.1", "[fd00:ec2::254]"],
)
def test_private_addresses_are_refused_without_traffic(host: str, server, strict) -> None:
    server.hits.clear()
    url = f"http://{host}:{server.server_address[1]}/img.png"
    with pytest.raises(InvalidImage, match="refused") as caught:
        load_image(url, P, strict)
    assert caught.value.code == "InvalidImageURL.Forbidden"
    assert server.hits == []


def test_literal_private_addresses_are_refused_at_create(strict: Settings) -> None:
    with pytest.raises(InvalidImage, match="169.254.169.254"):
        check_image_reference("http://169.254.169.254/latest/", P, strict)
    check_image_reference("https://images.example.com/a.png", P, strict)  # names: worker time


def test_redirect_to_metadata_is_refused(server, strict, monkeypatch) -> None:
    real = addresses.is_forbidden_address
    monkeypatch.setattr(
        addresses, "is_forbidden_address", lambda ip: str(ip) != "127.0.0.1" and real(ip)
    )
    with pytest.raises(InvalidImage, match="169.254.169.254") as caught:
        load_image(f"{base(server)}/to-metadata", P, strict)
    assert caught.value.code == "InvalidImageURL.Forbidden"


def test_redirect_to_another_scheme_is_refused(server, settings: Settings) -> None:
    with pytest.raises(InvalidImage, match="not http or https"):
        load_image(f"{base(server)}/to-file", P, settings)


def test_three_redirects_are_followed_four_are_not(server, settings: Settings) -> None:
    assert load_image(f"{base(server)}/hops/3", P, settings).size == (640, 360)
    server.hits.clear()
    with pytest.raises(InvalidImage, match="more than 3 times") as caught:
        load_image(f"{base(server)}/hops/4", P, settings)
    assert caught.value.code == "InvalidImageURL.Unreachable"
    assert [path for path, _ in server.hits] == ["/hops/4", "/hops/3", "/hops/2", "/hops/1"]


def test_declared_oversize_is_refused_before_reading(server, settings: Settings) -> None:
    with pytest.raises(InvalidImage) as caught:
        load_image(f"{base(server)}/declared-huge", P, settings)
    assert caught.value.code == "InvalidImageURL.TooLarge"


def test_streamed_oversize_stops_at_the_cap(server, tmp_path) -> None:
    capped = Settings(data_dir=tmp_path, allow_private_urls=True, image_max_bytes=300_000)
    server.sent = 0
    with pytest.raises(InvalidImage, match="more than 300000 bytes") as caught:
        load_image(f"{base(server)}/streamed-huge", P, capped)
    assert caught.value.code == "InvalidImageURL.TooLarge"
    time.sleep(0.2)
    assert server.sent < 200 * 65_536  # the client hung up long before the end


def test_slow_server_hits_the_total_timeout(server, tmp_path) -> None:
    hurried = Settings(data_dir=tmp_path, allow_private_urls=True, image_total_timeout=0.6)
    started = time.monotonic()
    with pytest.raises(InvalidImage) as caught:
        load_image(f"{base(server)}/drip", P, hurried)
    assert caught.value.code == "InvalidImageURL.Unreachable"
    assert time.monotonic() - started < 2.0  # the drip would take 10 s


@pytest.mark.parametrize(("path", "reason"), [("/missing", "Unreachable"),
                                              ("/page.html", "InvalidFormat")])
def test_http_errors_and_non_images(path: str, reason: str, server, settings) -> None:
    with pytest.raises(InvalidImage) as caught:
        load_image(f"{base(server)}{path}", P, settings)
    assert caught.value.code == f"InvalidImageURL.{reason}"


def test_connection_refused_is_unreachable(settings: Settings) -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(InvalidImage, match="failed") as caught:
        load_image(f"http://127.0.0.1:{port}/a.png", P, settings)
    assert caught.value.code == "InvalidImageURL.Unreachable"


# --- geometry ----------------------------------------------------------------------------


def framed(width: int, height: int, inner: tuple[int, int]) -> Image.Image:
    """Blue everywhere except a centred red rectangle of size ``inner``."""
    array = np.zeros((height, width, 3), np.uint8)
    array[:] = (0, 0, 255)
    iw, ih = inner
    top, left = (height - ih) // 2, (width - iw) // 2
    array[top : top + ih, left : left + iw] = (255, 0, 0)
    return Image.fromarray(array, "RGB")


def test_crop_to_aspect_takes_the_centred_region() -> None:
    wide = framed(1200, 600, (600, 600))
    square = crop_to_aspect(wide, 1.0)
    assert square.size == (600, 600)
    assert np.all(np.asarray(square) == (255, 0, 0))
    tall = framed(600, 1200, (600, 600))
    assert np.all(np.asarray(crop_to_aspect(tall, 1.0)) == (255, 0, 0))
    assert crop_to_aspect(wide, 2.0).size == (1200, 600)  # already that aspect
    assert image_aspect(crop_to_aspect(wide, 16 / 9)) == pytest.approx(16 / 9, abs=0.01)


def test_fit_to_crops_then_resizes() -> None:
    wide = framed(1600, 600, (800, 600))  # the centred 4:3 region is all red
    out = fit_to(wide, 640, 480)
    assert out.shape == (480, 640, 3) and out.dtype == np.uint8
    assert out.flags["C_CONTIGUOUS"]
    distance = np.abs(out.astype(int) - (255, 0, 0))
    assert np.all(distance[1:-1, 1:-1] <= 2)  # the filter may peek one pixel past the crop
    assert np.all(distance <= 10)


def test_fit_to_keeps_the_centre_in_the_centre() -> None:
    array = np.full((900, 1600, 3), 40, np.uint8)
    array[:, 798:802] = 255  # a vertical line through the centre
    array[448:452, :] = 255  # and a horizontal one
    out = fit_to(Image.fromarray(array), 480, 480)
    column = out[:, :, 0].mean(axis=0)
    row = out[:, :, 0].mean(axis=1)
    assert abs(int(np.argmax(column)) - 239.5) <= 1
    assert abs(int(np.argmax(row)) - 239.5) <= 1
    assert np.allclose(column, column[::-1], atol=3)  # symmetric about the middle


# --- TLS: the connection goes to the checked address, the certificate is checked by name ----


def self_signed(tmp_path) -> tuple[str, str]:
    """A certificate for ``localhost`` made here (no network, no shipped keys)."""
    x509 = pytest.importorskip("cryptography.x509")
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    return str(cert_path), str(key_path)


def test_https_is_pinned_to_the_address_and_verified_by_name(tmp_path, monkeypatch) -> None:
    import ssl

    import httpx

    cert, key = self_signed(tmp_path)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.hits, httpd.sent = [], 0  # type: ignore[attr-defined]
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    httpd.socket = server_context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    trusted = ssl.create_default_context(cafile=cert)
    monkeypatch.setattr(
        downloads, "_client", lambda: httpx.Client(follow_redirects=False, trust_env=False,
                                                   verify=trusted)
    )
    monkeypatch.setattr(downloads, "resolve", lambda host, port: ["127.0.0.1"])
    settings = Settings(data_dir=tmp_path, allow_private_urls=True)
    try:
        port = httpd.server_address[1]
        image = load_image(f"https://localhost:{port}/img.png", P, settings)
        assert image.size == (640, 360)
        assert httpd.hits == [("/img.png", f"localhost:{port}")]
        with pytest.raises(InvalidImage, match="failed"):  # the name the cert lacks
            load_image(f"https://127.0.0.1:{port}/img.png", P, settings)
    finally:
        httpd.shutdown()
        httpd.server_close()
