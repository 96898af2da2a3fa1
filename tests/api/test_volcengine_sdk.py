"""The official Volcengine SDK (``volcengine-python-sdk[ark]``), unmodified, on a real server.

Volcengine spells the Seedance ids its own way: ``doubao-`` before a 1.x id, ``doubao-`` in
place of the 2.x ``dreamina-``. A task keeps the spelling it was sent, everywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from volcenginesdkarkruntime import Ark
from volcenginesdkarkruntime._exceptions import ArkAPIStatusError

from segue.media.video import probe
from tests.conftest import (
    KEY,
    LiveServer,
    data_url,
    make_settings,
    scene,
    sdk_wait,
    start_server,
)

# Volcengine id -> the BytePlus id of the same model
VOLCENGINE_2X = {
    "doubao-seedance-2-0-260128": "dreamina-seedance-2-0-260128",
    "doubao-seedance-2-0-fast-260128": "dreamina-seedance-2-0-fast-260128",
    "doubao-seedance-2-0-mini-260615": "dreamina-seedance-2-0-mini-260615",
    "doubao-seedance-2-5-260628": "dreamina-seedance-2-5-260628",
}
V20, V20_FAST, V20_MINI, V25 = VOLCENGINE_2X
V15 = "doubao-seedance-1-5-pro-251215"


def _client(server: LiveServer) -> Ark:
    return Ark(base_url=server.url + "/api/v3", api_key=KEY, max_retries=0)


@functools.cache
def _content() -> list[dict]:
    return [
        {"type": "text", "text": "a slow pan across the hills"},
        {"type": "image_url", "image_url": {"url": data_url(scene(640, 360))},
         "role": "first_frame"},
        {"type": "image_url", "image_url": {"url": data_url(scene(640, 360, shift=12))},
         "role": "last_frame"},
    ]


def _refused(call, status: int, code: str) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ArkAPIStatusError) as err:
        call()
    assert (err.value.status_code, err.value.code) == (status, code), err.value
    return str(err.value)


@pytest.fixture
def queue_only(tmp_path: Path) -> Iterator[LiveServer]:
    """A server without workers: tasks stay queued, as they were created."""
    live = start_server(make_settings(tmp_path / "data"), workers=0)
    yield live
    live.stop()


def test_2x_volcengine_ids_are_accepted_listed_and_kept(queue_only: LiveServer) -> None:
    client = _client(queue_only)
    created = {}
    for model in VOLCENGINE_2X:
        created[model] = client.content_generation.tasks.create(
            model=model, content=_content(), resolution="480p").id
        assert client.content_generation.tasks.get(task_id=created[model]).model == model
    byteplus = client.content_generation.tasks.create(
        model=VOLCENGINE_2X[V20], content=_content(), resolution="480p").id

    # the list filter takes the id as the task was sent, as for 1.x
    listed = client.content_generation.tasks.list(model=V20)
    assert [t.id for t in listed.items] == [created[V20]] and listed.items[0].model == V20
    other = client.content_generation.tasks.list(model=VOLCENGINE_2X[V20])
    assert [t.id for t in other.items] == [byteplus]
    assert client.content_generation.tasks.list(model=V25).items[0].id == created[V25]

    with queue_only.client() as c:
        models = {m["id"]: m for m in c.get("/api/v3/models").json()["data"]}
    for model, same in VOLCENGINE_2X.items():
        assert models[model]["byteplus_id"] == same
        assert {**models[model], "id": same, "byteplus_id": None} == {
            **models[same], "byteplus_id": None}  # the same capabilities
    assert models[V15]["byteplus_id"] == "seedance-1-5-pro-251215"
    assert not any(m.startswith("doubao-dreamina-") for m in models)
    assert "doubao-segue-flow" not in models  # Volcengine names no Segue model


def test_invented_spelling_is_refused_and_errors_name_the_id_sent(queue_only: LiveServer
                                                                   ) -> None:
    client = _client(queue_only)
    invented = "doubao-dreamina-seedance-2-0-260128"
    message = _refused(lambda: client.content_generation.tasks.create(
        model=invented, content=_content()), 404, "InvalidEndpointOrModel.NotFound")
    assert invented in message and f"spells dreamina-seedance-2-0-260128 as {V20}" in message

    message = _refused(lambda: client.content_generation.tasks.create(
        model=V20_FAST, content=_content(), output_format="mov"), 400, "InvalidParameter")
    assert f"model {V20_FAST} writes" in message and "dreamina" not in message
    message = _refused(lambda: client.content_generation.tasks.create(
        model=V20, content=_content(), duration=16), 400, "InvalidParameter")
    assert f"model {V20}." in message and "or -1 to let the model choose" in message
    message = _refused(lambda: client.content_generation.tasks.create(
        model=V20_MINI, content=_content(), draft=True), 400, "InvalidParameter")
    assert f"model {V20_MINI} does not offer drafts" in message


@pytest.mark.parametrize("model", [V20, V20_FAST, V20_MINI, VOLCENGINE_2X[V20_MINI]])
def test_duration_minus_one_on_2_0_is_decided_at_create(queue_only: LiveServer,
                                                        model: str) -> None:
    client = _client(queue_only)
    task_id = client.content_generation.tasks.create(
        model=model, content=_content(), resolution="480p", duration=-1).id
    task = client.content_generation.tasks.get(task_id=task_id)
    # the CPU engines' choice, as for 1.5 and 2.5: fixed when the task is created
    assert (task.model, task.duration, task.frames) == (model, 5, 121)


def test_volcengine_2x_id_renders_and_its_draft_becomes_a_final(server: LiveServer,
                                                                tmp_path: Path) -> None:
    client = _client(server)
    task = sdk_wait(client, client.content_generation.tasks.create(
        model=V20_MINI, content=_content(), resolution="480p", duration=-1).id)
    assert task.status == "succeeded", task
    assert (task.model, task.duration, task.frames) == (V20_MINI, 5, 121)
    video = tmp_path / "mini.mp4"
    video.write_bytes(httpx.get(task.content.video_url, timeout=30).content)
    assert (probe(video).frames, probe(video).height) == (121, 480)

    # a draft made under the BytePlus id is finished under the Volcengine one
    draft = sdk_wait(client, client.content_generation.tasks.create(
        model=VOLCENGINE_2X[V25], content=_content(), draft=True, frames=29).id)
    assert draft.status == "succeeded", draft
    final = sdk_wait(client, client.content_generation.tasks.create(
        model=V25, content=[{"type": "draft_task", "draft_task": {"id": draft.id}}],
        resolution="480p").id)
    assert final.status == "succeeded", final
    assert (final.model, final.draft_task_id, final.frames) == (V25, draft.id, 29)
