"""Seedance 1.5, 2.0 and 2.5 requests through the official SDK, unmodified, on a real server."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from byteplussdkarkruntime import Ark
from byteplussdkarkruntime._exceptions import ArkAPIStatusError
from PIL import Image
from sqlalchemy import update

from segue.media.images import fit_to
from segue.media.video import probe, read_frames
from segue.tasks.schema import TaskRow
from tests.conftest import (
    KEY,
    OTHER_KEY,
    LiveServer,
    data_url,
    make_settings,
    scene,
    sdk_wait,
    start_server,
)

V20, V25, V15 = ("dreamina-seedance-2-0-260128", "dreamina-seedance-2-5-260628",
                 "seedance-1-5-pro-251215")
FIRST, LAST = scene(640, 360), scene(640, 360, shift=12)
PROMPT = "a slow pan across the hills"


def _client(server: LiveServer, key: str = KEY) -> Ark:
    return Ark(base_url=server.url + "/api/v3", api_key=key, max_retries=0)


@functools.cache
def _urls() -> tuple[str, str]:
    return data_url(FIRST), data_url(LAST)  # PNG-encoded once: it is slow on a busy machine


def _content(text: str = PROMPT) -> list[dict]:
    first, last = _urls()
    return [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": first}, "role": "first_frame"},
        {"type": "image_url", "image_url": {"url": last}, "role": "last_frame"},
    ]


def _download(url: str, path: Path) -> Path:
    path.write_bytes(httpx.get(url, timeout=30).content)
    return path


def _refused(call, status: int, code: str, *words: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ArkAPIStatusError) as err:
        call()
    assert err.value.status_code == status, err.value
    assert err.value.code == code, err.value
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255**2 / max(mse, 1e-9))


def test_first_last_on_2_0_four_seconds(server: LiveServer, tmp_path: Path) -> None:
    client = _client(server)
    created = client.content_generation.tasks.create(
        model=V20, content=_content(PROMPT + " --rs 480p"), duration=4, seed=11,
        safety_identifier="user-42", priority=3, generate_audio=False,
    )
    task = sdk_wait(client, created.id)
    assert task.status == "succeeded", task
    assert (task.duration, task.frames, task.resolution, task.seed) == (4, 97, "480p", 11)
    assert task.revised_prompt == PROMPT  # the command was removed before the engine saw it
    assert task.safety_identifier == "user-42" and task.priority == 3
    assert task.generate_audio is False and task.draft is False
    assert task.output_format == "mp4" and task.content.file_url == task.content.video_url
    info = probe(_download(task.content.video_url, tmp_path / "v20.mp4"))
    assert (info.frames, info.width, info.height) == (97, 864, 480)
    listing = client.content_generation.tasks.list(task_ids=[created.id])
    assert listing.items[0].frames == 97 and listing.items[0].revised_prompt == PROMPT


def test_draft_then_final_keeps_seed_and_length(server: LiveServer, tmp_path: Path) -> None:
    client = _client(server)
    draft_id = client.content_generation.tasks.create(
        model=V15, content=_content(), draft=True, frames=29, seed=5).id
    draft = sdk_wait(client, draft_id)
    assert draft.status == "succeeded" and draft.draft is True and draft.resolution == "480p"

    final_id = client.content_generation.tasks.create(
        model="doubao-" + V15, content=[{"type": "draft_task", "draft_task": {"id": draft_id}}],
        resolution="720p", seed=5).id  # repeating the draft's seed is no contradiction
    final = sdk_wait(client, final_id)
    assert final.status == "succeeded", final
    assert final.draft_task_id == draft_id and final.draft is False
    assert (final.seed, final.frames, final.resolution) == (5, 29, "720p")
    assert final.revised_prompt == PROMPT
    frames = read_frames(_download(final.content.video_url, tmp_path / "final.mp4"))
    assert len(frames) == 29 and frames[-1].shape == (704, 1248, 3)
    want = fit_to(Image.fromarray(LAST), 1248, 704)
    assert _psnr(frames[-1], want) > 30  # the final ends on the draft's last frame


def test_auto_duration_on_2_5_reports_what_was_rendered(server: LiveServer,
                                                        tmp_path: Path) -> None:
    client = _client(server)
    # 2.5's default duration is -1, and first+last needs ratio adaptive (its default)
    created = client.content_generation.tasks.create(model=V25, content=_content(),
                                                     resolution="480p", output_format="mov")
    task = sdk_wait(client, created.id)
    assert task.status == "succeeded", task
    assert (task.duration, task.frames, task.output_format) == (5, 121, "mov")
    video = _download(task.content.video_url, tmp_path / "auto.mov")
    assert task.content.video_url.split("?")[0].endswith(".mov")
    assert probe(video).frames == 121


def test_models_listing_shows_capabilities(server: LiveServer) -> None:
    with server.client() as c:
        models = {m["id"]: m for m in c.get("/api/v3/models").json()["data"]}
    v25 = models[V25]
    assert v25["auto_duration"] and v25["draft"] and v25["adaptive_ratio_required"]
    assert (v25["min_duration"], v25["max_duration"], v25["default_duration"]) == (4, 30, -1)
    assert v25["output_formats"] == ["mp4", "mov"] and v25["audio"]
    assert models["dreamina-seedance-2-0-fast-260128"]["resolutions"] == ["480p", "720p"]
    assert not models[V20]["draft"] and models[V20]["max_reference_videos"] == 3
    assert not models["seedance-1-0-lite-i2v-250428"]["audio"]
    assert models["segue-flow"]["modes"] == ["first_last_frame"]


def _create(client: Ark, model: str = V20, **fields: object):  # type: ignore[no-untyped-def]
    content = fields.pop("content", None) or _content()
    return lambda: client.content_generation.tasks.create(model=model, content=content,
                                                          **fields)


def test_model_rules_are_refused_by_name(server: LiveServer) -> None:
    client = _client(server)
    bad = "InvalidParameter"
    _refused(_create(client, generate_audio=True), 400, bad, "flow engine", "makes no sound")
    _refused(_create(client, "seedance-1-0-pro-250528", generate_audio=True), 400, bad,
             "generate_audio", "makes no sound")
    _refused(_create(client, draft=True), 400, bad, "does not offer drafts")
    _refused(_create(client, V25, draft=True, resolution="720p"), 400,
             "InvalidResolutionParameter", "480p")
    _refused(_create(client, V25, ratio="16:9"), 400, bad, "ratio", "adaptive")
    _refused(_create(client, "dreamina-seedance-2-0-fast-260128", resolution="1080p"), 400,
             bad, "480p, 720p")
    _refused(_create(client, duration=20), 400, bad, "4 and 15, or -1")
    _refused(_create(client, "dreamina-seedance-2-5-flash-261115", duration=-1), 400, bad,
             "4 and 30")  # the one 2.x model without -1
    _refused(_create(client, V15, duration=3), 400, bad, "or -1")
    _refused(_create(client, output_format="mov"), 400, bad, "output_format", "mp4")
    _refused(_create(client, priority=101), 400, bad, "priority")
    _refused(_create(client, safety_identifier="x" * 129), 400, bad, "safety_identifier")
    _refused(_create(client, "seedance-1-0-lite-i2v-250428", content=_content()[:2],
                     duration=-1), 400, bad, "2 and 12")


def test_reference_media_are_parsed_and_refused_with_what_is_lacking(
        server: LiveServer) -> None:
    client = _client(server)
    video = {"type": "video_url", "video_url": {"url": "https://example.com/a.mp4"},
             "role": "reference_video"}
    audio = {"type": "audio_url", "audio_url": {"url": "https://example.com/a.mp3"}}
    text = {"type": "text", "text": PROMPT}
    bad = "InvalidParameter"
    _refused(_create(client, content=[text, video]), 400, bad, "reference videos",
             "flow engine")
    _refused(_create(client, content=[text, audio]), 400, bad, "audio references")
    _refused(_create(client, "seedance-1-0-pro-250528", content=[text, video]), 400, bad,
             "no reference videos")
    _refused(_create(client, content=[text, video] * 4), 400, bad, "at most 3")
    _refused(_create(client, content=[text, audio], omni_reference_task_type="edit"), 400, bad,
             "needs a reference video")
    _refused(_create(client, content=[text, video], omni_reference_task_type="remix"), 400,
             bad, "omni_reference_task_type")
    _refused(_create(client, content=[*_content(), video]), 400, bad, "first or last frame")
    wrong_role = {**video, "role": "first_frame"}
    _refused(_create(client, content=[text, wrong_role]), 400, bad, "reference_video")
    ftp = {"type": "video_url", "video_url": {"url": "ftp://example.com/a.mp4"}}
    _refused(_create(client, content=[text, ftp]), 400, bad, "http")


@pytest.fixture
def idle_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server without workers: what is created stays queued."""
    live = start_server(make_settings(tmp_path / "idle"), workers=0)
    yield live
    live.stop()


def _final(client: Ark, draft_id: str, model: str = V15, **fields: object):  # type: ignore[no-untyped-def]
    return _create(client, model, content=[{"type": "draft_task", "draft_task": {"id": draft_id}}],
                   **fields)


def test_unusable_drafts_are_refused(idle_server: LiveServer) -> None:
    client = _client(idle_server)
    queued = client.content_generation.tasks.create(model=V15, content=_content(), draft=True).id
    plain = client.content_generation.tasks.create(model=V15, content=_content()).id
    _refused(_final(client, "cgt-20260101000000-nope0"), 404, "ResourceNotFound")
    _refused(_final(_client(idle_server, OTHER_KEY), queued), 404, "ResourceNotFound")
    _refused(_final(client, queued), 400, "OperationDenied.DraftTaskStatus", "queued")
    _refused(_final(client, plain), 400, "InvalidParameter", "not a draft")
    _refused(_final(client, queued, V25), 400, "InvalidParameter", "same model")
    together = [{"type": "draft_task", "draft_task": {"id": queued}}, *_content()]
    _refused(_create(client, V15, content=together), 400, "InvalidParameter",
             "only content item")


def test_expired_and_contradicted_drafts_are_refused(server: LiveServer) -> None:
    client = _client(server)
    draft_id = client.content_generation.tasks.create(
        model=V15, content=_content(), draft=True, frames=29, seed=3).id
    assert sdk_wait(client, draft_id).status == "succeeded"
    _refused(_final(client, draft_id, seed=4), 400, "InvalidParameter", "seed", "keeps")
    _refused(_final(client, draft_id, frames=33), 400, "InvalidParameter", "frames")
    _refused(_final(client, draft_id, draft=True), 400, "InvalidParameter", "draft")
    # eight days on, the draft can no longer be turned into a final
    with server.services.db.begin() as conn:
        conn.execute(update(TaskRow).where(TaskRow.id == draft_id)
                     .values(created_at=time.time() - 8 * 86_400))
    _refused(_final(client, draft_id), 400, "OperationDenied.DraftTaskExpired", "7 days")


def test_pixazo_routes_take_the_new_fields(idle_server: LiveServer) -> None:
    body = {"model": V15, "text": PROMPT, "first_frame": _urls()[0],
            "last_frame": _urls()[1], "draft": True, "duration": 4,
            "safety_identifier": "user-7", "priority": 2, "generate_audio": False}
    with idle_server.client(pixazo=True) as c:
        task_id = c.post("/byteplus/v1/generateFrame2VideoTask", json=body).json()["id"]
        task = c.post("/bytedance-polling/getVideoResult", json={"task_id": task_id}).json()
        assert task["draft"] is True and task["resolution"] == "480p"
        assert task["safety_identifier"] == "user-7" and task["priority"] == 2
        refused = c.post("/byteplus/v1/generateFrame2VideoTask",
                         json={**body, "draft": None, "generate_audio": True})
        assert refused.status_code == 400
        assert refused.json()["code"] == "InvalidParameter"
        assert "flow engine" in refused.json()["error"]
        images = c.post("/byteplus/v1/generateImage2VideoTask", json={
            "model": V15, "content": [{"type": "draft_task", "draft_task": {"id": task_id}}]})
        assert images.status_code == 400  # the draft is still queued (no workers here)
        assert images.json()["code"] == "OperationDenied.DraftTaskStatus"
