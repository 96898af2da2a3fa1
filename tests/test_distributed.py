"""Many machines: two API processes and three `segue worker` processes share one PostgreSQL
store and one S3 bucket (moto on loopback). One worker is SIGKILLed in the middle of a
render; its task is taken over, and every task runs to `succeeded` with a video that
downloads and decodes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

from sqlalchemy import select  # noqa: E402

from segue.media.video import probe  # noqa: E402
from segue.tasks.db import make_engine  # noqa: E402
from segue.tasks.schema import TaskRow  # noqa: E402
from segue.tasks.store import TaskStore  # noqa: E402
from tests.conftest import KEY, TASKS, ark_task, free_port  # noqa: E402

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
TASK_COUNT = 6


@pytest.fixture
def cluster_env(pg_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    s3 = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3.start()
    host, port = s3.get_host_and_port()
    env = dict(
        os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1", SEGUE_DATABASE_URL=pg_url,
        SEGUE_STORAGE_URL="s3://segue-cluster/out", SEGUE_S3_ENDPOINT_URL=f"http://{host}:{port}",
        SEGUE_API_KEYS=KEY, SEGUE_ALLOW_PRIVATE_URLS="true", SEGUE_LEASE_TTL="2",
        SEGUE_POLL_INTERVAL="0.2", SEGUE_LOG_LEVEL="warning",
    )
    import boto3

    boto3.client("s3", endpoint_url=env["SEGUE_S3_ENDPOINT_URL"], region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing",
                 ).create_bucket(Bucket="segue-cluster")
    yield env
    s3.stop()


def _start(env: dict[str, str], data: Path, *args: str) -> subprocess.Popen[bytes]:
    # each "machine" has its own data dir: nothing is shared but PostgreSQL and the bucket
    return subprocess.Popen([sys.executable, "-m", "segue", *args],
                            env=dict(env, SEGUE_DATA_DIR=str(data)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"the API process at {url} did not start")


def _kill_one_mid_render(store: TaskStore, workers: dict[int, subprocess.Popen[bytes]]) -> str:
    """SIGKILL the worker of the first task seen running; return that task's id."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with store.engine.connect() as conn:
            running = conn.execute(select(TaskRow.id, TaskRow.worker_id)
                                   .where(TaskRow.status == "running")).all()
        for row in running:
            pid = int(row.worker_id.split("-")[-2])  # <host>-<pid>-w<n>
            if pid in workers:
                os.kill(pid, signal.SIGKILL)
                workers.pop(pid).wait(10)
                return row.id
        time.sleep(0.02)
    raise AssertionError("no worker was seen rendering")


def test_two_api_processes_three_workers_one_killed(cluster_env: dict[str, str],
                                                     tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    procs = [_start(dict(cluster_env, SEGUE_PUBLIC_URL=f"http://127.0.0.1:{port}"),
                    tmp_path / f"api{i}", "serve", "--workers", "0", "--port", str(port))
             for i, port in enumerate(ports)]
    workers = {p.pid: p for p in (_start(cluster_env, tmp_path / f"w{i}", "worker")
                                  for i in range(3))}
    procs += workers.values()
    store = TaskStore(make_engine(cluster_env["SEGUE_DATABASE_URL"]))
    try:
        apis = [f"http://127.0.0.1:{port}" for port in ports]
        for url, proc in zip(apis, procs, strict=False):
            _ready(url, proc)
        headers = {"Authorization": f"Bearer {KEY}"}
        ids = []
        for i in range(TASK_COUNT):  # alternate between the API processes
            r = httpx.post(apis[i % 2] + TASKS, headers=headers, timeout=30,
                           json=ark_task("segue-blend", f"x{i} --rs 480p --dur 3", 5 + i))
            assert r.status_code == 200, r.text
            ids.append(r.json()["id"])
        killed_task = _kill_one_mid_render(store, workers)

        deadline = time.monotonic() + 240
        for i, task_id in enumerate(ids):  # read through the other API process
            while (body := httpx.get(f"{apis[(i + 1) % 2]}{TASKS}/{task_id}",
                                     headers=headers).json())["status"] in ("queued", "running"):
                assert time.monotonic() < deadline, body
                time.sleep(0.2)
            assert body["status"] == "succeeded", body
            assert store.get(task_id).attempts == (2 if task_id == killed_task else 1)
            video = tmp_path / f"{task_id}.mp4"
            video.write_bytes(httpx.get(body["content"]["video_url"]).content)  # presigned S3
            assert probe(video).frames == 73
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            proc.wait(60)
        store.engine.dispose()
