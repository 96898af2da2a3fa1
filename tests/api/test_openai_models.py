"""``client.models.list()`` and ``retrieve()`` of the official ``openai`` client, for real."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import KEY, LiveServer, make_settings, start_server


def _client(server: LiveServer, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture
def idle(tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(make_settings(tmp_path / "data"), workers=0)
    yield live
    live.stop()


def test_models_list_is_what_v1_videos_serves(idle: LiveServer) -> None:
    models = list(_client(idle).models.list())
    with idle.client() as c:
        served = [m["id"] for m in c.get("/v1/videos/models").json()["data"]]
        raw = c.get("/v1/models").json()
    assert [m.id for m in models] == served and "dreamina-seedance-2-0-260128" in served
    assert raw["object"] == "list"
    assert set(raw["data"][0]) == {"id", "object", "created", "owned_by"}
    by_id = {m.id: m for m in models}
    assert all(m.object == "model" and m.owned_by == "segue" for m in models)
    # created: the date in the id (YYMMDD); Segue's own ids carry none
    assert by_id["dreamina-seedance-2-0-260128"].created == calendar.timegm((2026, 1, 28, 0, 0, 0))
    assert by_id["seedance-1-0-pro-250528"].created == calendar.timegm((2025, 5, 28, 0, 0, 0))
    assert by_id["segue-flow"].created == 0


def test_models_retrieve_takes_either_spelling(idle: LiveServer) -> None:
    client = _client(idle)
    model = client.models.retrieve("dreamina-seedance-2-5-260628")
    assert (model.id, model.object, model.owned_by) == (
        "dreamina-seedance-2-5-260628", "model", "segue")
    assert client.models.retrieve("doubao-seedance-2-5-260628").id == "doubao-seedance-2-5-260628"
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("doubao-dreamina-seedance-2-5-260628")
    assert err.value.code == "InvalidEndpointOrModel.NotFound"
    assert "doubao-dreamina-seedance-2-5-260628" in err.value.message
    assert err.value.body["param"] == "model"  # type: ignore[index]


def test_models_follow_the_key_rules_of_v1_videos(idle: LiveServer) -> None:
    for key in ("wrong-key", ""):
        client = openai.OpenAI(base_url=idle.url + "/v1", api_key=key or "x", max_retries=0,
                               default_headers={} if key else {"Authorization": ""})
        with pytest.raises(openai.AuthenticationError) as err:
            client.models.list()
        assert err.value.status_code == 401 and err.value.code == "AuthenticationError"
        with pytest.raises(openai.AuthenticationError):
            client.models.retrieve("segue-flow")
    for path in ("/v1/models", "/v1/models/segue-flow"):
        answer = httpx.get(idle.url + path, timeout=30)  # no key at all
        assert answer.status_code == 401 and answer.json()["error"]["type"] == (
            "authentication_error")
