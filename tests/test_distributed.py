"""Many machines: an API-only server and two `segue worker` processes share one PostgreSQL
store and one S3 bucket (moto on loopback). Every task runs exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

from segue.media.video import probe  # noqa: E402
from tests.conftest import KEY, data_url, make_settings, scene, start_server  # noqa: E402

pytestmark = pytest.mark.postgres


@pytest.fixture
def cluster_env(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    s3 = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3.start()
    host, port = s3.get_host_and_port()
    env = {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "SEGUE_DATABASE_URL": pg_url,
        "SEGUE_STORAGE_URL": "s3://segue-cluster/out", "SEGUE_S3_ENDPOINT_URL":
        f"http://{host}:{port}", "SEGUE_API_KEYS": KEY, "SEGUE_ALLOW_PRIVATE_URLS": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import boto3

    boto3.client("s3", endpoint_url=env["SEGUE_S3_ENDPOINT_URL"]).create_bucket(
        Bucket="segue-cluster")
    yield env
    s3.stop()


def test_api_replica_and_two_worker_processes(cluster_env: dict[str, str], tmp_path: Path
                                              ) -> None:
    # each "machine" has its own data dir: nothing is shared but PostgreSQL and the bucket
    api = start_server(make_settings(tmp_path / "api", api_keys=[KEY]), workers=0)
    try:
        ids = []
        with api.client() as c:
            for shift in range(4):
                r = c.post("/byteplus/v1/generateFrame2VideoTask", json={
                    "model": "segue-blend", "text": "x --rs 480p --dur 3",
                    "first_frame": data_url(scene(640, 360)),
                    "last_frame": data_url(scene(640, 360, shift * 10 + 5))})
                assert r.status_code == 200, r.text
                ids.append(r.json()["id"])
        workers = [
            subprocess.Popen([sys.executable, "-m", "segue", "worker", "--burst"],
                             env=dict(os.environ, SEGUE_DATA_DIR=str(tmp_path / f"w{i}")),
                             stderr=subprocess.PIPE)
            for i in range(2)
        ]
        for proc in workers:
            _, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err.decode()[-2000:]
        for task_id in ids:
            body = api.wait(task_id, timeout=10)
            assert body["status"] == "succeeded", body
            row = api.services.tasks.get(task_id)
            assert row.attempts == 1  # claimed by exactly one worker
            video = tmp_path / f"{task_id}.mp4"
            response = httpx.get(body["content"]["video_url"])  # a presigned S3 link
            assert response.status_code == 200
            video.write_bytes(response.content)
            assert probe(video).frames == 73
    finally:
        api.stop()
