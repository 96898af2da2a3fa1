"""The official BytePlus SDK, unmodified, against a local server."""

from __future__ import annotations

import time

import httpx
import pytest
from byteplussdkarkruntime import Ark
from byteplussdkarkruntime._exceptions import (
    ArkAuthenticationError,
    ArkBadRequestError,
    ArkNotFoundError,
)

from segue.media.video import probe
from tests.conftest import KEY, OTHER_KEY, LiveServer, data_url, scene


def _client(server: LiveServer, key: str = KEY) -> Ark:
    return Ark(base_url=server.url + "/api/v3", api_key=key, max_retries=0)


def _content(text: str = "a slow pan --rs 480p --dur 2") -> list[dict]:
    return [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": data_url(scene(640, 360))},
         "role": "first_frame"},
        {"type": "image_url", "image_url": {"url": data_url(scene(640, 360, shift=12))},
         "role": "last_frame"},
    ]


def _wait(client: Ark, task_id: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        task = client.content_generation.tasks.get(task_id=task_id)
        if task.status not in ("queued", "running"):
            return task
        time.sleep(0.1)
    raise AssertionError("task did not finish")


def test_create_get_list_delete(server: LiveServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    client = _client(server)
    created = client.content_generation.tasks.create(
        model="seedance-1-0-lite-i2v-250428", content=_content(), return_last_frame=True,
    )
    task = _wait(client, created.id)
    assert task.status == "succeeded", task
    assert task.usage.completion_tokens == task.usage.total_tokens == 864 * 480 * 49 // 1024
    assert task.resolution == "480p" and task.duration == 2 and task.framespersecond == 24
    assert task.content.last_frame_url.split("?")[0].endswith(".png")
    video = tmp_path / "sdk.mp4"
    video.write_bytes(httpx.get(task.content.video_url).content)
    assert probe(video).frames == 49

    listing = client.content_generation.tasks.list(page_num=1, page_size=10, status="succeeded",
                                                   task_ids=[created.id])
    assert listing.total == 1 and listing.items[0].id == created.id

    client.content_generation.tasks.delete(task_id=created.id)
    with pytest.raises(ArkNotFoundError):
        client.content_generation.tasks.get(task_id=created.id)
    assert httpx.get(task.content.video_url).status_code in (403, 404)  # files went too


def test_errors_arrive_as_sdk_exceptions(server: LiveServer) -> None:
    client = _client(server)
    with pytest.raises(ArkBadRequestError) as bad:
        client.content_generation.tasks.create(model="seedance-1-0-lite-i2v-250428",
                                               content=_content("x --rs 4k"))
    assert bad.value.code == "InvalidParameter" and "--rs" in str(bad.value)
    with pytest.raises(ArkNotFoundError):
        client.content_generation.tasks.create(model="no-such-model", content=_content())
    with pytest.raises(ArkAuthenticationError):
        _client(server, "wrong-key").content_generation.tasks.list()


def test_one_key_never_sees_another_keys_tasks(server: LiveServer) -> None:
    mine, theirs = _client(server), _client(server, OTHER_KEY)
    created = mine.content_generation.tasks.create(model="segue-blend", content=_content())
    with pytest.raises(ArkNotFoundError):
        theirs.content_generation.tasks.get(task_id=created.id)
    with pytest.raises(ArkNotFoundError):
        theirs.content_generation.tasks.delete(task_id=created.id)
    assert theirs.content_generation.tasks.list().total == 0
    assert mine.content_generation.tasks.list().total == 1
    _wait(mine, created.id)
