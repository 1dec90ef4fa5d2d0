"""Swagger UI 5 served from the ``fastapi-offline`` package, so ``/docs`` works offline.

FastAPI's default ``/docs`` loads its script and style from a CDN (blank without Internet);
this follows FastAPI's self-hosting recipe with the assets of a PyPI package. The package must
ship Swagger UI 5 or later: FastAPI writes OpenAPI 3.1, which Swagger UI 4 refuses ("does not
specify a valid version field") and shows an empty page for. ReDoc stays off.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
# The package's own folder of Swagger UI files (swagger-ui-bundle.js, swagger-ui.css,
# favicon.png); tests/api/test_docs_browser.py renders the page with them.
ASSETS_DIR = str(files("fastapi_offline") / "static")
# The validator badge would send the API description to validator.swagger.io.
SWAGGER_PARAMETERS = {"validatorUrl": None}


def install_docs(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
