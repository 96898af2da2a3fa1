"""Creates are admitted ``SEGUE_CREATE_CONCURRENCY`` at a time (``api/deps.run_create``), on
every surface; the others wait their turn and all are answered."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import KEY, ark_task, data_url, make_settings, scene, start_server

LITE = "seedance-1-0-lite-i2v-250428"
FIRST, LAST = data_url(scene(640, 360)), data_url(scene(640, 360, shift=9))
BODIES = [  # (path, json) of a create on each surface
    ("/api/v3/contents/generations/tasks", ark_task(LITE, "a pan")),
    ("/byteplus/v1/generateFrame2VideoTask",
     {"model": LITE, "text": "a pan", "first_frame": FIRST, "last_frame": LAST}),
    ("/v1/videos", {"model": LITE, "prompt": "a pan", "input_reference": FIRST,
                    "frame_images": [{"type": "image_url", "image_url": {"url": LAST},
                                      "frame_type": "last_frame"}]}),
]


def test_creates_run_at_most_the_configured_number_at_once(tmp_path: Path) -> None:
    live = start_server(make_settings(tmp_path / "data", create_concurrency=2), workers=0)
    services = live.app.state.services
    prepare = services.prepare
    lock, running, peak = threading.Lock(), [0], [0]

    def counted(*args: Any, **kwargs: Any) -> Any:  # the create's blocking work, made slow
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            time.sleep(0.15)
            return prepare(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    services.prepare = counted
    try:
        def create(i: int) -> int:
            path, body = BODIES[i % len(BODIES)]
            with httpx.Client(base_url=live.url, timeout=60,
                              headers={"Authorization": f"Bearer {KEY}"}) as http:
                return http.post(path, json=body).status_code

        with ThreadPoolExecutor(9) as pool:
            statuses = list(pool.map(create, range(9)))
    finally:
        services.prepare = prepare
        live.stop()
    assert statuses == [200] * 9
    assert peak[0] == 2  # in parallel up to the limit, never past it
