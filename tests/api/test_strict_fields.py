"""Where the document and the server must agree (issue 23, point 8): booleans are JSON
booleans, JSON null means absent, and what the server refuses for its shape the OpenAPI
document refuses too (the cases schemathesis found: an empty ``after``, an empty multipart
``prompt``, a ``draft_task`` item whose ``draft_task`` is null)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from tests.api.test_errors import ARK, GOOD, PIX, ark_body, pix_body
from tests.conftest import LiveServer, make_settings, png_bytes, scene, start_server

VIDEOS = "/v1/videos"
NOT_BOOLEANS = ["yes", "on", 1, "1", "true"]
OPENAI = {"prompt": "a pan", "input_reference": GOOD}


FRAME = png_bytes(scene(640, 360))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # no worker: accepted tasks stay queued (nothing renders on the shared cores)
    server = start_server(make_settings(tmp_path_factory.mktemp("strict")), workers=0)
    yield server
    server.stop()


def _error(response: httpx.Response) -> tuple[str, str]:
    body = response.json()
    if isinstance(body.get("error"), dict):  # Ark and OpenAI
        return body["error"]["code"], body["error"].get("param", "")
    return body["code"], body["error"]  # Pixazo: the message beside the code


@pytest.mark.parametrize("value", NOT_BOOLEANS)
@pytest.mark.parametrize("path, body, field", [
    (ARK, ark_body, "watermark"), (ARK, ark_body, "camera_fixed"),
    (ARK, ark_body, "return_last_frame"), (PIX, pix_body, "camerafixed"),
    (PIX, pix_body, "watermark"), (VIDEOS, lambda: dict(OPENAI), "watermark"),
])
def test_booleans_are_json_booleans(live: LiveServer, path: str, body: Any, field: str,
                                    value: object) -> None:
    with live.client() as client:
        refused = client.post(path, json={**body(), field: value})
        assert refused.status_code == 400, refused.text
        code, where = _error(refused)
        assert code == "InvalidParameter" and field in where
        accepted = client.post(path, json={**body(), field: True})
        assert accepted.status_code == 200, accepted.text


def test_a_form_says_true_or_false(live: LiveServer) -> None:
    with live.client() as client:
        for value, status in (("true", 200), ("false", 200), ("yes", 400), ("on", 400),
                              ("1", 400)):
            done = client.post(VIDEOS, data={"prompt": "a pan", "watermark": value},
                               files={"input_reference": ("a.png", FRAME, "image/png")})
            assert done.status_code == status, (value, done.text)


@pytest.mark.parametrize("path, body", [(ARK, ark_body), (PIX, pix_body)])
def test_model_null_is_model_absent(live: LiveServer, path: str, body: Any) -> None:
    with live.client() as client:
        absent = client.post(path, json={k: v for k, v in body().items() if k != "model"})
        null = client.post(path, json={**body(), "model": None})
    assert absent.status_code == null.status_code == 400
    assert _error(null)[0] == _error(absent)[0] == "MissingParameter"
    assert "`model`" in str(null.json())


def test_openai_model_null_picks_the_default(live: LiveServer) -> None:
    with live.client() as client:
        done = client.post(VIDEOS, json={**OPENAI, "model": None})
    assert done.status_code == 200, done.text
    assert done.json()["model"]


def _schema(live: LiveServer, path: str, method: str, kind: str) -> dict[str, Any]:
    doc = httpx.get(f"{live.url}/openapi.json").json()
    body = doc["paths"][path][method]["requestBody"]["content"][kind]["schema"]
    return {**body, "components": doc["components"]}


def _document_refuses(schema: dict[str, Any], instance: object) -> bool:
    return not jsonschema.Draft202012Validator(schema).is_valid(instance)


@pytest.mark.parametrize("path", [ARK, "/byteplus/v1/generateImage2VideoTask"])
def test_a_draft_task_item_without_its_draft_is_refused_by_both(live: LiveServer,
                                                                path: str) -> None:
    body = {"model": "0", "content": [{"type": "draft_task", "draft_task": None}]}
    assert _document_refuses(_schema(live, path, "post", "application/json"), body)
    with live.client() as client:
        assert client.post(path, json=body).status_code == 400
    well_formed = {"model": "0", "content": [{"type": "draft_task",
                                              "draft_task": {"id": "cgt-1"}}]}
    assert not _document_refuses(_schema(live, path, "post", "application/json"), well_formed)


def test_an_empty_form_prompt_is_refused_by_both(live: LiveServer) -> None:
    schema = _schema(live, VIDEOS, "post", "multipart/form-data")
    assert _document_refuses(schema, {"prompt": ""})
    assert not _document_refuses(schema, {"prompt": "a pan", "watermark": "true"})
    assert _document_refuses(schema, {"prompt": "a pan", "watermark": "yes"})
    with live.client() as client:
        done = client.post(VIDEOS, data={"prompt": ""},
                           files={"input_reference": ("a.png", FRAME, "image/png")})
    assert done.status_code == 400 and _error(done)[1] == "prompt"


def test_an_empty_after_is_refused_by_both(live: LiveServer) -> None:
    doc = httpx.get(f"{live.url}/openapi.json").json()
    after = next(p for p in doc["paths"][VIDEOS]["get"]["parameters"] if p["name"] == "after")
    assert _document_refuses(after["schema"], "")
    with live.client() as client:
        done = client.get(VIDEOS, params={"after": ""})
    assert done.status_code == 400 and _error(done)[1] == "after"
