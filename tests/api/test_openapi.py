"""The OpenAPI document tells the truth: every status, envelope, content type and bound."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import KEY, LiveServer

CONFIG = Path(__file__).with_name("schemathesis.toml")
CREATES = ("/api/v3/contents/generations/tasks", "/byteplus/v1/generateFrame2VideoTask",
           "/byteplus/v1/generateImage2VideoTask", "/byteplus/v1/generateVideoTask")
# A bounded run: CI runs on two shared cores.
MAX_EXAMPLES, MAX_TIME = 15, 60


def _document(server: LiveServer) -> dict:
    return httpx.get(server.url + "/openapi.json", timeout=30).json()


def _envelope(operation: dict, status: str) -> str:
    return operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]


def test_errors_are_declared_with_their_envelope(server: LiveServer) -> None:
    doc = _document(server)
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert "422" not in operation["responses"], (method, path)  # never sent
    for path in CREATES:
        operation = doc["paths"][path]["post"]
        assert {"200", "400", "401", "404", "413", "429", "500"} <= set(operation["responses"])
        expected = "ArkError" if path.startswith("/api/v3") else "PixazoError"
        assert _envelope(operation, "400").endswith("/" + expected)
        assert operation["responses"]["429"]["headers"]["Retry-After"]["required"] is True
    polling = doc["paths"]["/bytedance-polling/getVideoResult"]["post"]
    assert _envelope(polling, "404").endswith("/PixazoError")
    schemes = doc["components"]["securitySchemes"]
    assert {s.get("scheme") or s.get("name") for s in schemes.values()} == {
        "bearer", "Ocp-Apim-Subscription-Key"}


def test_bounds_and_content_types_are_declared(server: LiveServer) -> None:
    doc = _document(server)
    listing = {p["name"]: p["schema"] for p in
               doc["paths"]["/api/v3/contents/generations/tasks"]["get"]["parameters"]}
    for name in ("page_num", "page_size"):
        assert (listing[name]["minimum"], listing[name]["maximum"]) == (1, 500)
    create = doc["components"]["schemas"]["CreateTaskRequest"]["properties"]
    assert (create["seed"]["minimum"], create["seed"]["maximum"]) == (-1, 2**32 - 1)
    assert create["execution_expires_after"]["minimum"] == 3600
    metrics = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    assert httpx.get(server.url + "/metrics").headers["content-type"].startswith("text/plain")
    files = doc["paths"]["/files/{key}"]["get"]["responses"]
    assert "video/mp4" in files["200"]["content"] and "403" in files


@pytest.mark.slow
def test_schemathesis_finds_no_mismatch(server: LiveServer, tmp_path: Path) -> None:
    """Schemathesis' checks against the live server, bounded in examples and time.

    Its default checks run (status codes, content types, headers and bodies against the
    document, no 5xx, schema-violating data refused, auth not ignored), less the ones
    ``schemathesis.toml`` turns off with the reason.
    """
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
        server.url + "/openapi.json",
        "-H", f"Authorization: Bearer {KEY}",
        "--max-examples", str(MAX_EXAMPLES), "--max-time", str(MAX_TIME), "--workers", "1",
        "--request-timeout", "30", "--no-color",
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path,
                          timeout=MAX_TIME + 120, check=False)
    if done.returncode != 0:
        sys.stdout.write(done.stdout[-20000:])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
