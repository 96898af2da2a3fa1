"""The S3 store against a real (moto) S3 server on loopback, links fetched over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

from segue.settings import Settings  # noqa: E402
from segue.storage import ObjectStore, open_store  # noqa: E402
from segue.storage.s3 import S3Store  # noqa: E402

BODY = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture()
def store(endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Store:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings = Settings(
        data_dir=tmp_path, storage_url="s3://segue-test/outputs/", s3_endpoint_url=endpoint
    )
    store = open_store(settings)
    assert isinstance(store, S3Store)
    existing = [b["Name"] for b in store.client.list_buckets().get("Buckets", [])]
    if "segue-test" not in existing:
        store.client.create_bucket(Bucket="segue-test")
    return store


def test_put_exists_url_delete(store: S3Store, tmp_path: Path) -> None:
    source = tmp_path / "video.mp4"
    source.write_bytes(BODY)
    assert isinstance(store, ObjectStore)
    assert not store.exists("videos/cgt-1.mp4")
    store.put("videos/cgt-1.mp4", source, "video/mp4")
    assert store.exists("videos/cgt-1.mp4")
    head = store.client.head_object(Bucket="segue-test", Key="outputs/videos/cgt-1.mp4")
    assert head["ContentType"] == "video/mp4"

    expires_at = int(time.time()) + 3600
    url = store.url("videos/cgt-1.mp4", expires_at)
    query = parse_qs(urlsplit(url).query)
    assert 3595 <= int(query["X-Amz-Expires"][0]) <= 3600
    response = httpx.get(url, trust_env=False)
    assert response.status_code == 200
    assert response.content == BODY
    assert response.headers["content-type"] == "video/mp4"

    store.delete("videos/cgt-1.mp4")
    assert not store.exists("videos/cgt-1.mp4")
    store.delete("videos/cgt-1.mp4")  # missing is fine
    assert httpx.get(url, trust_env=False).status_code == 404


def test_presigned_link_is_sigv4_path_style_and_serves_png(store: S3Store, tmp_path: Path) -> None:
    # moto does not check signatures, so this checks the link's shape and that it serves.
    source = tmp_path / "frame.png"
    source.write_bytes(BODY)
    store.put("frames/cgt-2.png", source, "image/png")
    url = store.url("frames/cgt-2.png", int(time.time()) + 60)
    parts = urlsplit(url)
    assert parts.path == "/segue-test/outputs/frames/cgt-2.png"
    assert parse_qs(parts.query)["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    response = httpx.get(url, trust_env=False)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"


def test_expiry_is_capped_to_the_sigv4_maximum(store: S3Store) -> None:
    url = store.url("videos/x.mp4", int(time.time()) + 30 * 86_400)
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == [str(7 * 86_400)]


def test_bad_keys_are_refused(store: S3Store) -> None:
    with pytest.raises(ValueError):
        store.url("../x", int(time.time()) + 60)


def test_links_are_signed_for_the_public_endpoint(
        store: S3Store, endpoint: str, tmp_path: Path) -> None:
    """Segue reaches the store at one address (127.0.0.1 here, ``minio:9000`` in a container
    network); clients at another (``localhost``): links name the clients' one and work."""
    public = endpoint.replace("127.0.0.1", "localhost")
    settings = Settings(data_dir=tmp_path, storage_url="s3://segue-test/outputs/",
                        s3_endpoint_url=endpoint, s3_public_endpoint_url=public)
    shown = open_store(settings)
    source = tmp_path / "v.mp4"
    source.write_bytes(BODY)
    shown.put("videos/public.mp4", source, "video/mp4")
    link = shown.url("videos/public.mp4", int(time.time()) + 600)
    assert link.startswith(public + "/segue-test/outputs/videos/public.mp4?")
    assert httpx.get(link).content == BODY
