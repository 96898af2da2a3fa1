"""Videos made on ``/v1/videos`` call back with OpenAI-style events, signed as other callbacks."""

from __future__ import annotations

import base64
import secrets

import openai
from standardwebhooks import Webhook

from tests.conftest import data_url, png_bytes, scene
from tests.lifecycle.support import create, wait_until


def test_video_completed_and_failed_events_are_signed(launch, receiver) -> None:
    server = launch()
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    key, _row = server.services.keys.create("signed", webhook_secret=secret)
    c = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)
    hook = {"callback_url": receiver.url}
    good = c.videos.create(prompt="ok", model="segue-blend", seconds="2", size="256x144",
                           input_reference=("f.png", png_bytes(scene(640, 360)), "image/png"),
                           extra_body=hook)
    bad = c.videos.create(prompt="unreachable last frame", model="segue-blend", seconds="2",
                          extra_body={**hook, "frame_images": [
                              {"image_url": data_url(scene(640, 360)), "frame_type": "first_frame"},
                              {"image_url": "http://127.0.0.1:9/gone.png",
                               "frame_type": "last_frame"}]})
    ark_made = create(server, key=key, callback_url=receiver.url)  # Ark dialect stays Ark

    def events() -> list:
        return [r for r in receiver.received if r.json.get("object") == "event"]

    wait_until(lambda: len(events()) == 2, timeout=60, what="two video events")
    wait_until(lambda: receiver.of(ark_made, "succeeded"), timeout=60, what="the Ark callback")
    by_video = {r.json["data"]["id"]: r for r in events()}
    assert by_video[good.id].json["type"] == "video.completed"
    assert by_video[good.id].json["data"]["status"] == "completed"
    assert by_video[good.id].json["data"]["size"] == "256x144"
    assert by_video[bad.id].json["type"] == "video.failed"
    assert by_video[bad.id].json["data"]["error"]["code"].startswith("InvalidImageURL")
    for request in by_video.values():
        assert Webhook(secret).verify(request.raw, request.headers)["object"] == "event"
    # no event for queued or running, and the Ark task got its usual task objects
    assert {r.json.get("id") for r in receiver.received} - {good.id, bad.id} >= {ark_made}
    assert all(r.json["type"].startswith("video.") for r in events())
