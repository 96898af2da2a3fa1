"""``/v1/videos/{id}/content`` when the videos live in S3 (a moto server on loopback)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from segue.media.video import probe
from tests.api.test_openai_videos import client, wait_done
from tests.conftest import LiveServer, make_settings, png_bytes, scene, start_server

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")


@pytest.fixture
def s3_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    s3 = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3.start()
    host, port = s3.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="segue-videos")
    live = start_server(make_settings(tmp_path / "data", storage_url="s3://segue-videos/out",
                                      s3_endpoint_url=endpoint))
    yield live
    live.stop()
    s3.stop()


def test_content_redirects_to_the_bucket_and_previews_are_made_from_it(
        s3_server: LiveServer, tmp_path: Path) -> None:
    c = client(s3_server)
    video = c.videos.create(prompt="s3", model="segue-blend", seconds="2", size="256x144",
                            input_reference=("f.png", png_bytes(scene(640, 360)), "image/png"))
    assert wait_done(c, video.id).status == "completed"

    raw = c.videos.with_raw_response.download_content(video.id)
    assert raw.http_response.history[0].status_code == 302  # followed to a presigned link
    path = tmp_path / "out.mp4"
    path.write_bytes(raw.http_response.content)
    assert (probe(path).width, probe(path).height, probe(path).frames) == (256, 144, 49)

    thumb = c.videos.download_content(video.id, variant="thumbnail").content
    with Image.open(io.BytesIO(thumb)) as image:
        assert image.size == (256, 144)
