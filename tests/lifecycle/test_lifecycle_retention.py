"""Retention with compressed lifetimes: links lapse (files deleted), cancelled records go
after their short lifetime, finished records after theirs, deliveries with them."""

from __future__ import annotations

import httpx

from segue.worker import Worker
from tests.lifecycle.support import TASKS, create, deliveries, wait_until


def test_links_files_and_records_lapse(launch, receiver) -> None:
    server = launch(workers=0, link_ttl=2, cancelled_ttl=2, record_ttl=8)
    objects = server.settings.data_dir / "objects"
    done = create(server, callback_url=receiver.url, return_last_frame=True)
    assert Worker(server.services).run_once()
    cancelled = create(server)
    with server.client() as c:
        assert c.delete(f"{TASKS}/{cancelled}").json() == {}
        task = c.get(f"{TASKS}/{done}").json()
        assert task["status"] == "succeeded"
        video = task["content"]["video_url"]
        assert httpx.get(video).status_code == 200
        row = server.services.tasks.get(done)  # the files are named per attempt
        video_file, frame_file = objects / row.video_key, objects / row.last_frame_key
        assert video_file.exists() and frame_file.exists()

        # after the link lifetime: the link is refused and the files are gone
        # (the sweeper deletes one file after the other: wait for both)
        wait_until(lambda: not video_file.exists() and not frame_file.exists(), timeout=5,
                   what="the video and last-frame files to be swept")
        assert httpx.get(video).status_code == 403
        task = c.get(f"{TASKS}/{done}").json()
        assert task["status"] == "succeeded" and "video_url" not in task["content"]

        # after the cancelled lifetime: the cancelled record is gone, the finished one kept
        wait_until(lambda: c.get(f"{TASKS}/{cancelled}").status_code == 404, timeout=5,
                   what="the cancelled record to be swept")
        assert c.get(f"{TASKS}/{done}").status_code == 200

        # after the record lifetime: the finished record and its deliveries are gone
        wait_until(lambda: c.get(f"{TASKS}/{done}").status_code == 404, timeout=9,
                   what="the finished record to be swept")
        error = c.get(f"{TASKS}/{done}").json()["error"]
    assert error["code"] == "ResourceNotFound"
    assert f"The specified task {done} is not found." in error["message"]
    assert deliveries(server, done) == []
    assert len(receiver.of(done)) == 3  # queued, running, succeeded were sent before
