"""A JSON body nested deeper than the parser goes is a 400 on every surface, not a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TASKS, LiveServer, make_settings, start_server

DEEP = "[" * 3000 + "]" * 3000  # 6 KB


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(make_settings(Path(tmp_path_factory.mktemp("nesting")) / "data"),
                          workers=0)
    yield server
    server.stop()


@pytest.mark.parametrize("path, pixazo", [
    ("/v1/videos", False), (TASKS, False), ("/byteplus/v1/generateFrame2VideoTask", True),
])
def test_a_deeply_nested_json_body_is_a_400(live: LiveServer, path: str, pixazo: bool) -> None:
    body = '{"model": "segue-flow", "prompt": "x", "extra": ' + DEEP + "}"
    with live.client(pixazo=pixazo) as c:
        r = c.post(path, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        error = r.json() if pixazo else r.json()["error"]
        assert error["code"].startswith("InvalidParameter"), error
        assert c.get("/healthz").status_code == 200  # the connection was kept


def test_a_deeply_nested_form_field_is_a_400(live: LiveServer) -> None:
    with live.client() as c:
        r = c.post("/v1/videos", files={"prompt": (None, "x"), "metadata": (None, DEEP)})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "metadata"
    assert "nested too deeply" in r.json()["error"]["message"]
