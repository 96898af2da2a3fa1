"""Worker start-up: every served model's engine is built (and loaded) before the first task."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from segue.services import Services
from segue.worker import Worker
from tests.conftest import make_settings


def test_a_model_that_cannot_load_is_a_clear_error_and_left_queued(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    models = tmp_path / "models.json"
    models.write_text(json.dumps({"models": [
        {"id": "segue-blend", "engine": "blend", "modes": ["first_last_frame"]},
        {"id": "big-gpu-model", "engine": "diffusion", "modes": ["first_last_frame"],
         "options": {"family": "ltx", "model": str(tmp_path / "missing-weights"),
                     "local_only": True}},
    ]}))
    services = Services.build(make_settings(tmp_path / "data", models_file=models))
    worker = Worker(services)
    with caplog.at_level(logging.ERROR, logger="segue.worker"):
        ready = worker.prepare()
    assert ready == ["segue-blend"]
    failure = next(r for r in caplog.records if getattr(r, "model", "") == "big-gpu-model")
    assert "missing-weights" in failure.reason or "torch" in failure.reason
    assert worker._claimable == ["segue-blend", "doubao-segue-blend"]


def test_only_the_named_models_are_served(tmp_path: Path) -> None:
    services = Services.build(make_settings(tmp_path / "data"))
    assert Worker(services, models=["segue-flow"]).prepare() == ["segue-flow"]
