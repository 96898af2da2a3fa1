"""Every bad input gets the documented status, envelope and code, never a 500.

Each case here is a row of the table in docs/errors.md.
"""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from segue.keys import hash_key
from tests.conftest import KEY, LiveServer, data_url, scene

ARK = "/api/v3/contents/generations/tasks"
PIX = "/byteplus/v1/generateFrame2VideoTask"
GOOD = data_url(scene(640, 360))
GOOD2 = data_url(scene(640, 360, shift=8))
LITE = "seedance-1-0-lite-i2v-250428"
V15, V20, V25 = ("seedance-1-5-pro-251215", "dreamina-seedance-2-0-260128",
                 "dreamina-seedance-2-5-260628")


def ark_body(text: str = "a pan", **extra: object) -> dict:
    body: dict = {"model": LITE, "content": [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": GOOD}, "role": "first_frame"},
        {"type": "image_url", "image_url": {"url": GOOD2}, "role": "last_frame"},
    ]}
    body.update(extra)
    return body


def pix_body(**extra: object) -> dict:
    body: dict = {"model": LITE, "text": "a pan", "first_frame": GOOD, "last_frame": GOOD2}
    body.update(extra)
    return body


def image_url(width: int, height: int, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 200)).save(buf, fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


CASES = [
    # (case, path, body, status, code, words the message must contain)
    ("no model", ARK, {"content": ark_body()["content"]}, 400, "MissingParameter", "model"),
    ("unknown model", ARK, ark_body(model="nope"), 404, "InvalidEndpointOrModel.NotFound",
     "nope"),
    ("empty content", ARK, ark_body() | {"content": []}, 400, "InvalidParameter", "content"),
    ("bad content type", ARK, ark_body() | {"content": [{"type": "video"}]}, 400,
     "InvalidParameter", "content"),
    ("last frame without roles", ARK, ark_body() | {"content": [
        {"type": "image_url", "image_url": {"url": GOOD}},
        {"type": "image_url", "image_url": {"url": GOOD2}}]}, 400, "InvalidParameter", "roles"),
    ("five reference images", ARK, ark_body() | {"content": [
        {"type": "image_url", "image_url": {"url": GOOD}, "role": "reference_image"}] * 5},
     400, "InvalidParameter", "content"),
    ("empty image url", ARK, ark_body() | {"content": [
        {"type": "image_url", "image_url": {"url": ""}, "role": "first_frame"}]}, 400,
     "InvalidImageURL.EmptyURL", "empty"),
    ("bad resolution command", ARK, ark_body("x --rs 4k"), 400, "InvalidParameter", "--rs"),
    ("bad resolution field", ARK, ark_body(resolution="2160p"), 400, "InvalidParameter",
     "resolution"),
    ("bad ratio command", ARK, ark_body("x --rt 5:4"), 400, "InvalidParameter", "--rt"),
    ("duration too long", ARK, ark_body("x --dur 13"), 400, "InvalidParameter", "--dur"),
    ("duration too short (ark)", ARK, ark_body(duration=1), 400, "InvalidParameter", "2 and 12"),
    ("duration 2 on pixazo", PIX, pix_body(duration=2), 400, "InvalidParameter", "3 and 12"),
    ("duration not a number", ARK, ark_body("x --dur five"), 400, "InvalidParameter", "--dur"),
    ("frames off the grid", ARK, ark_body(frames=30), 400, "InvalidParameter", "25 + 4n"),
    ("frames out of range", ARK, ark_body(frames=293), 400, "InvalidParameter", "frames"),
    ("fps not 24", ARK, ark_body("x --fps 30"), 400, "InvalidParameter", "--fps"),
    ("fps not 24 (pixazo)", PIX, pix_body(framepersecond=25), 400, "InvalidParameter",
     "`framepersecond`"),
    ("seed too large", ARK, ark_body(seed=2**32), 400, "InvalidParameter", "seed"),
    ("seed below -1", ARK, ark_body("x --seed -2"), 400, "InvalidParameter", "--seed"),
    ("camerafixed not boolean", ARK, ark_body("x --cf maybe"), 400, "InvalidParameter", "--cf"),
    ("watermark not boolean", ARK, ark_body("x --wm 2"), 400, "InvalidParameter", "--wm"),
    ("bad service tier", ARK, ark_body(service_tier="fast"), 400, "InvalidParameter",
     "service_tier"),
    ("expiry too short", ARK, ark_body(execution_expires_after=60), 400, "InvalidParameter",
     "execution_expires_after"),
    ("callback not http", ARK, ark_body(callback_url="ftp://x/y"), 400, "InvalidParameter",
     "callback_url"),
    ("callback URL malformed", ARK, ark_body(callback_url="http://[::1"), 400,
     "InvalidParameter", "malformed"),
    ("image scheme", PIX, pix_body(first_frame="ftp://example.com/a.png"), 400,
     "InvalidImageURL.InvalidFormat", "first_frame"),
    ("data url not base64", PIX, pix_body(last_frame="data:image/png;base64,@@@"), 400,
     "InvalidImageURL.InvalidFormat", "last_frame"),
    ("data url not an image", PIX, pix_body(
        first_frame="data:image/png;base64," + base64.b64encode(b"hello").decode()), 400,
     "InvalidImageURL.InvalidFormat", "first_frame"),
    ("image too small", PIX, pix_body(first_frame=image_url(300, 400)), 400, "InvalidParameter",
     "300"),
    ("image too narrow", PIX, pix_body(first_frame=image_url(320, 1000)), 400,
     "InvalidParameter", "aspect"),
    ("private image address", PIX, pix_body(first_frame="http://169.254.169.254/a.png"), 400,
     "InvalidImageURL.Forbidden", "first_frame"),
    ("pixazo missing last_frame", PIX, {k: v for k, v in pix_body().items() if k != "last_frame"},
     400, "MissingParameter", "last_frame"),
    ("pixazo wrong type", PIX, pix_body(duration=[5]), 400, "InvalidParameter", "duration"),
    ("mode the engine lacks", PIX, pix_body() | {"model": "seedance-1-0-pro-fast-251015"}, 400,
     "InvalidParameter", "first-and-last-frame"),
    ("text-only without engine", "/byteplus/v1/generateVideoTask",
     {"model": "seedance-1-0-lite-t2v-250428", "text": "a cat"}, 400, "InvalidParameter",
     "text-to-video"),
    ("sound from an engine without it", ARK, ark_body(model=V20, generate_audio=True), 400,
     "InvalidParameter", "flow engine"),
    ("sound from a model without it", ARK, ark_body(generate_audio=True), 400,
     "InvalidParameter", "generate_audio"),
    ("draft on a model without drafts", ARK, ark_body(model=V20, draft=True), 400,
     "InvalidParameter", "drafts"),
    ("draft not at 480p", ARK, ark_body(model=V15, draft=True, resolution="720p"), 400,
     "InvalidResolutionParameter", "480p"),
    ("fixed ratio on 2.5 image modes", ARK, ark_body(model=V25, ratio="16:9"), 400,
     "InvalidParameter", "adaptive"),
    ("resolution the model lacks", ARK, ark_body(model="dreamina-seedance-2-0-fast-260128",
                                             resolution="1080p"),
     400, "InvalidParameter", "480p, 720p"),
    ("duration -1 where not offered", ARK,
     ark_body(model="dreamina-seedance-2-5-flash-261115", duration=-1, ratio="adaptive"), 400,
     "InvalidParameter", "4 and 30"),
    ("output format the model lacks", ARK, ark_body(output_format="mov"), 400,
     "InvalidParameter", "output_format"),
    ("priority out of range", ARK, ark_body(priority=-101), 400, "InvalidParameter",
     "priority"),
    ("safety_identifier too long", ARK, ark_body(safety_identifier="u" * 129), 400,
     "InvalidParameter", "safety_identifier"),
    ("reference video the engine lacks", ARK, ark_body(model=V20) | {"content": [
        {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}}]}, 400,
     "InvalidParameter", "reference videos"),
    ("audio reference the engine lacks", ARK, ark_body(model=V20) | {"content": [
        {"type": "audio_url", "audio_url": {"url": "https://example.com/a.mp3"}}]}, 400,
     "InvalidParameter", "audio references"),
    ("reference video on a 1.x model", ARK, ark_body() | {"content": [
        {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}}]}, 400,
     "InvalidParameter", "no reference videos"),
    ("bad omni_reference_task_type", ARK, ark_body(model=V20, omni_reference_task_type="x"),
     400, "InvalidParameter", "omni_reference_task_type"),
    ("unknown draft task", ARK, {"model": V15, "content": [
        {"type": "draft_task", "draft_task": {"id": "cgt-20260101000000-nope0"}}]}, 404,
     "ResourceNotFound", "not found"),
    ("draft task with other content", ARK, ark_body(model=V15) | {"content": [
        {"type": "draft_task", "draft_task": {"id": "cgt-x"}}, {"type": "text", "text": "a"}]},
     400, "InvalidParameter", "only content item"),
    ("new fields on pixazo", PIX, pix_body(generate_audio=True), 400, "InvalidParameter",
     "generate_audio"),
]


@pytest.mark.parametrize("case,path,body,status,code,words", CASES, ids=[c[0] for c in CASES])
def test_create_errors(server: LiveServer, case, path, body, status, code, words) -> None:  # type: ignore[no-untyped-def]
    with server.client(pixazo=path.startswith("/byteplus")) as c:
        r = c.post(path, json=body)
    assert r.status_code == status, r.text
    rid = r.headers["X-Request-Id"]
    payload = r.json()
    if path.startswith("/byteplus"):
        assert payload["code"] == code
        message = payload["error"]
    else:
        err = payload["error"]
        assert err["code"] == code and err["type"] in ("BadRequest", "NotFound")
        message = err["message"]
    assert words in message
    assert message.endswith(f"Request id: {rid}")
    assert server.services.tasks.list_page("env-" + hash_key(KEY)[:12])[0] == 0  # none stored


def test_not_json_and_wrong_shapes(server: LiveServer) -> None:
    with server.client() as c:
        for content in (b"{not json", b"[1,2]", b"null", b"\xff\xfe"):
            r = c.post(ARK, content=content, headers={"Content-Type": "application/json"})
            assert r.status_code == 400, (content, r.text)
            assert r.json()["error"]["code"] in ("InvalidParameter", "MissingParameter")
            assert "`1`" not in r.json()["error"]["message"]  # an offset is no parameter
        r = c.post(ARK, content=b"{not json", headers={"Content-Type": "application/json"})
        assert "not valid JSON" in r.json()["error"]["message"]


def test_auth_errors(server: LiveServer) -> None:
    with server.client(key=None) as c:
        r = c.get(ARK)
        assert r.status_code == 401 and r.json()["error"]["code"] == "AuthenticationError"
        r = c.post("/bytedance-polling/getVideoResult", json={"task_id": "x"})
        assert r.status_code == 401 and r.json()["code"] == "AuthenticationError"
    with server.client(key="wrong") as c:
        assert c.get(ARK).status_code == 401


def test_unknown_task_and_route(server: LiveServer) -> None:
    with server.client() as c:
        r = c.get(ARK + "/cgt-20250101000000-abcde")
        assert r.status_code == 404 and r.json()["error"]["code"] == "ResourceNotFound"
        assert "cgt-20250101000000-abcde is not found" in r.json()["error"]["message"]
        r = c.delete(ARK + "/cgt-nope")
        assert r.status_code == 404
        r = c.get("/api/v3/nothing-here")
        assert r.status_code == 404 and r.json()["error"]["code"] == "NotFound"
        r = c.post("/api/v3/nothing-here", json={})
        assert r.status_code == 404 and r.json()["error"]["code"] == "NotFound"
        r = c.put(ARK, json={})
        assert r.status_code == 405 and r.json()["error"]["code"] == "MethodNotAllowed"
        assert r.headers["Allow"] == "GET, POST" and "PUT" in r.json()["error"]["message"]
        r = c.post(ARK + "/cgt-20250101000000-abcde", json={})
        assert r.status_code == 405 and r.headers["Allow"] == "DELETE, GET"
        # a literal path beside a templated one lists only its own methods, as the document does
        r = c.request("OPTIONS", "/v1/videos/models")
        assert r.status_code == 405 and r.headers["Allow"] == "GET"
        assert r.json()["error"]["code"] == "MethodNotAllowed"
    with server.client(pixazo=True) as c:
        r = c.post("/bytedance-polling/getVideoResult", json={"task_id": "cgt-x"})
        assert r.status_code == 404 and r.json()["code"] == "ResourceNotFound"
        r = c.post("/bytedance-polling/getVideoResult", json={})
        assert r.status_code == 400 and r.json()["code"] == "MissingParameter"
        r = c.get("/bytedance-polling/getVideoResult")
        assert r.status_code == 405 and r.json()["code"] == "MethodNotAllowed"
        assert r.headers["Allow"] == "POST"
        r = c.post("/byteplus/v1/nothing-here", json={})
        assert r.status_code == 404 and r.json()["code"] == "NotFound"


@pytest.mark.parametrize("query,param", [
    ("page_num=0", "page_num"), ("page_size=501", "page_size"), ("page_size=x", "page_size"),
    ("filter.status=done", "filter.status"),
])
def test_list_errors(server: LiveServer, query: str, param: str) -> None:
    with server.client() as c:
        r = c.get(f"{ARK}?{query}")
    assert r.status_code == 400 and r.json()["error"]["param"] == param


def test_body_too_large(server: LiveServer) -> None:
    server.settings.max_body_bytes = 1000
    with server.client() as c:
        r = c.post(ARK, content=b"x" * 2000, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "InvalidParameter.RequestTooLarge"


def test_download_failures_fail_the_task(server: LiveServer) -> None:
    with server.client(pixazo=True) as c:
        r = c.post(PIX, json=pix_body(first_frame=f"{server.url}/no-such-image.png"))
        assert r.status_code == 200
    body = server.wait(r.json()["id"])
    assert body["status"] == "failed"
    assert body["error"]["code"].startswith("InvalidImageURL.")
    assert "first_frame" in body["error"]["message"]
