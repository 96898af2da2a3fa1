"""The local store and the signed /files route: atomic puts, HMAC links, expiry, Range."""

from __future__ import annotations

import os
import stat
import time
import types
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from segue.api.files import router
from segue.settings import Settings
from segue.storage import LocalStore, ObjectStore, open_store
from segue.storage.local import load_secret

SECRET = b"s" * 32
BODY = bytes(range(256)) * 40  # 10240 bytes, every byte value


@pytest.fixture()
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "objects", SECRET, "http://testserver/")


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.mp4"
    path.write_bytes(BODY)
    return path


@pytest.fixture()
def client(store: LocalStore) -> TestClient:
    app = FastAPI()
    app.include_router(router)
    app.state.services = types.SimpleNamespace(objects=store)
    return TestClient(app)


def split(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


def test_put_exists_delete(store: LocalStore, source: Path) -> None:
    store.put("videos/cgt-1/video.mp4", source, "video/mp4")
    assert store.exists("videos/cgt-1/video.mp4")
    assert store.path("videos/cgt-1/video.mp4").read_bytes() == BODY
    assert not [p for p in store.path("videos/cgt-1").iterdir() if p.name.startswith(".")]
    store.put("videos/cgt-1/video.mp4", source, "video/mp4")  # replacing is fine
    store.delete("videos/cgt-1/video.mp4")
    assert not store.exists("videos/cgt-1/video.mp4")
    assert not (store.root / "videos").exists()  # empty folders tidied
    store.delete("videos/cgt-1/video.mp4")  # missing is fine
    assert isinstance(store, ObjectStore)


def test_url_signs_key_and_expiry(store: LocalStore) -> None:
    expires = int(time.time()) + 3600
    url = store.url("videos/a b.mp4", expires)
    path, query = split(url)
    assert url.startswith("http://testserver/files/videos/a%20b.mp4?")
    assert path == "/files/videos/a%20b.mp4"
    assert query["expires"] == str(expires)
    assert len(query["signature"]) == 64
    assert store.verify("videos/a b.mp4", expires, query["signature"])


def test_verify_refuses_tampering_expiry_and_other_secrets(store: LocalStore) -> None:
    expires = int(time.time()) + 60
    signature = split(store.url("k.mp4", expires))[1]["signature"]
    assert not store.verify("k2.mp4", expires, signature)
    assert not store.verify("k.mp4", expires + 1, signature)
    flipped = signature[:-1] + ("1" if signature[-1] == "0" else "0")
    assert not store.verify("k.mp4", expires, flipped)
    assert not store.verify("k.mp4", expires, signature.upper())
    assert not store.verify("k.mp4", expires, "")
    assert not store.verify("k.mp4", expires, "é" * 64)
    assert not store.verify("k.mp4", expires, signature, now=expires + 1)
    assert store.verify("k.mp4", expires, signature, now=expires)
    other = LocalStore(store.root, b"t" * 32, "http://testserver")
    assert not other.verify("k.mp4", expires, signature)


@pytest.mark.parametrize(
    "key", ["../x", "a/../../x", "/etc/passwd", "a\\b", "", "a//b", "./a", "a/", "a\x00b"]
)
def test_path_traversal_refused(store: LocalStore, source: Path, key: str) -> None:
    with pytest.raises(ValueError):
        store.path(key)
    with pytest.raises(ValueError):
        store.put(key, source, "video/mp4")
    with pytest.raises(ValueError):
        store.url(key, 1)


def test_symlink_escaping_the_root_is_refused(store: LocalStore, tmp_path: Path) -> None:
    (store.root).mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, store.root / "link")
    with pytest.raises(ValueError, match="outside"):
        store.path("link/secret.txt")


def test_secret_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret.key"
    first = load_secret(path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(path) == first
    assert not [p for p in path.parent.iterdir() if p.name != "secret.key"]


def test_open_store_builds_local_and_rejects_unknown(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, public_url="https://videos.example")
    store = open_store(settings)
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / "objects"
    assert store.url("a.mp4", 5).startswith("https://videos.example/files/a.mp4?expires=5&")
    again = open_store(settings)  # the same secret: links survive a restart
    assert again.url("a.mp4", 5) == store.url("a.mp4", 5)
    custom = open_store(Settings(data_dir=tmp_path, storage_url=f"file://{tmp_path / 'elsewhere'}"))
    assert isinstance(custom, LocalStore) and custom.root == tmp_path / "elsewhere"
    with pytest.raises(ValueError, match="neither"):
        open_store(Settings(data_dir=tmp_path, storage_url="ftp://x/y"))


def test_storage_url_may_be_a_bare_absolute_folder(tmp_path: Path) -> None:
    folder = tmp_path / "my videos"  # a space, which the file:// form would percent-encode
    settings = Settings(data_dir=tmp_path, storage_url=str(folder))
    assert settings.storage_url == folder.as_uri()
    store = open_store(settings)
    assert isinstance(store, LocalStore) and store.root == folder
    with pytest.raises(ValueError, match="relative path"):
        Settings(data_dir=tmp_path, storage_url="objects")


# --- the route ---------------------------------------------------------------------------


def test_route_serves_the_file_with_its_content_type(
    client: TestClient, store: LocalStore, source: Path
) -> None:
    store.put("videos/v.mp4", source, "video/mp4")
    store.put("frames/f.png", source, "image/png")
    response = client.get(store.url("videos/v.mp4", int(time.time()) + 60))
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.content == BODY
    assert response.headers["accept-ranges"] == "bytes"
    png = client.get(store.url("frames/f.png", int(time.time()) + 60))
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"


def test_route_supports_range_and_head(
    client: TestClient, store: LocalStore, source: Path
) -> None:
    store.put("videos/v.mp4", source, "video/mp4")
    url = store.url("videos/v.mp4", int(time.time()) + 60)
    part = client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == BODY[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(BODY)}"
    tail = client.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == BODY[-10:]
    head = client.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(BODY))
    assert head.content == b""


def assert_denied(response, words: str) -> None:
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "AccessDenied" and error["type"] == "Forbidden"
    assert error["param"] == ""
    assert words in error["message"]


def test_route_refuses_bad_tampered_and_expired_links(
    client: TestClient, store: LocalStore, source: Path
) -> None:
    store.put("videos/v.mp4", source, "video/mp4")
    expires = int(time.time()) + 60
    path, query = split(store.url("videos/v.mp4", expires))
    assert_denied(client.get(path), "not signed")
    assert_denied(client.get(path, params={**query, "expires": "soon"}), "not signed")
    assert_denied(client.get(path, params={**query, "expires": "²"}), "not signed")
    assert_denied(client.get(path, params={**query, "expires": expires + 1}), "not valid")
    assert_denied(client.get(path, params={**query, "signature": "0" * 64}), "not valid")
    other = split(store.url("videos/other.mp4", expires))[1]
    assert_denied(client.get(path, params=other), "not valid")
    past = int(time.time()) - 1
    assert_denied(client.get(store.url("videos/v.mp4", past)), "expired")
    assert client.head(path).status_code == 403


def test_route_missing_file_is_404_envelope(client: TestClient, store: LocalStore) -> None:
    response = client.get(store.url("videos/gone.mp4", int(time.time()) + 60))
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "ResourceNotFound" and error["type"] == "NotFound"
    assert "videos/gone.mp4" in error["message"]


def test_route_traversal_is_refused(client: TestClient, store: LocalStore) -> None:
    expires = int(time.time()) + 60
    signature = store.sign("../secret.key", expires)  # even a validly signed bad key
    response = client.get(f"/files/..%2Fsecret.key?expires={expires}&signature={signature}")
    assert response.status_code in (403, 404)
    assert "error" in response.json()
