"""The API reference page, ``/docs`` (Swagger UI), with its script, style and icon served by
Segue, so that it works without internet as the rest does.

Why not FastAPI's own page: it loads Swagger UI from a CDN, and offline ``/docs`` was a blank
page. The assets are the copies packaged by ``fastapi-offline`` (Swagger UI 5, Apache-2.0;
the package MIT): Swagger UI 4, the one in ``swagger-ui-bundle``, cannot read the OpenAPI
3.1 document that FastAPI writes. There is no ``/redoc``: ReDoc's bundle fetches its logo
from its vendor's CDN whatever it is told.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs/assets"


def assets_folder() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def install(app: FastAPI) -> None:
    """``/docs`` and ``/docs/assets``; build the app with ``docs_url=None, redoc_url=None``
    so that FastAPI's CDN pages are not added as well."""

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} API",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=None)

    app.mount(ASSETS_URL, StaticFiles(directory=assets_folder()), name="docs-assets")
