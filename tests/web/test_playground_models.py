"""The playground's model menu shows a model no running worker serves as not available,
with the workers' reason, and never picks it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import make_settings, start_server
from tests.tasks.test_fleet import RIFE_MISSING, _registry
from tests.web.test_playground import CHROMIUM, own_playground

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin"),
]
sync_api = pytest.importorskip("playwright.sync_api")


def test_a_model_not_served_is_shown_disabled_with_why(tmp_path: Path) -> None:
    live = start_server(make_settings(tmp_path / "data", models_file=_registry(tmp_path)))
    try:
        deadline = time.monotonic() + 20
        while live.services.fleet.view().serves(RIFE_MISSING) is not False:
            assert time.monotonic() < deadline, "the worker did not say what it serves"
            time.sleep(0.05)
        with own_playground(live.url) as page:
            option = page.query_selector(f"#model option[value='{RIFE_MISSING}']")
            assert option is not None and option.get_property("disabled").json_value()
            assert option.text_content() == f"{RIFE_MISSING} (not available here)"
            assert "segue weights" in (option.get_attribute("title") or "")
            assert page.input_value("#model") != RIFE_MISSING
            flow = page.query_selector("#model option[value='segue-flow']")
            assert flow is not None and not flow.get_property("disabled").json_value()
    finally:
        live.stop()
