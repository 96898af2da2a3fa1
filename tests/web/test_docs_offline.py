"""/docs renders the whole reference with no network but Segue's (issue 23, point 10):
Debian's Chromium, every request to another host refused and recorded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import LiveServer, make_settings, start_server
from tests.web.test_playground import ARGS, CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin"),
]
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(make_settings(tmp_path_factory.mktemp("docs")), workers=0)
    yield server
    server.stop()


@pytest.fixture
def offline_page(live: LiveServer) -> Iterator[tuple[Any, list[str]]]:
    """A page whose requests to any host but the server's are aborted (and listed)."""
    elsewhere: list[str] = []
    ours = urlsplit(live.url).netloc

    def only_segue(route: Any) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).netloc == ours:
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort("internetdisconnected")

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.route("**/*", only_segue)
        yield context.new_page(), elsewhere
        browser.close()


def _operations(live: LiveServer) -> list[str]:
    paths = httpx.get(f"{live.url}/openapi.json").json()["paths"]
    return [f"{method.upper()} {path}" for path, item in paths.items() for method in item]


def test_swagger_ui_lists_every_operation_offline(
        live: LiveServer, offline_page: tuple[Any, list[str]]) -> None:
    page, elsewhere = offline_page
    page.goto(f"{live.url}/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    shown = page.eval_on_selector_all(
        ".opblock-summary", """els => els.map(e =>
            e.querySelector('.opblock-summary-method').textContent.trim() + ' ' +
            e.querySelector('.opblock-summary-path').getAttribute('data-path'))""")
    assert sorted(shown) == sorted(_operations(live))
    assert "/api/v3/contents/generations/tasks" in page.inner_text(".swagger-ui")
    assert elsewhere == []


def test_redoc_is_not_offered(live: LiveServer) -> None:
    # ReDoc's bundle would fetch its logo from its vendor: the one reference is /docs
    assert "redoc" not in httpx.get(f"{live.url}/redoc").text.lower()


def test_the_playground_asks_no_other_host(
        live: LiveServer, offline_page: tuple[Any, list[str]]) -> None:
    page, elsewhere = offline_page
    page.goto(f"{live.url}/")
    page.wait_for_selector("#model option", state="attached", timeout=20_000)
    page.wait_for_load_state("networkidle")
    assert elsewhere == []
