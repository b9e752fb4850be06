"""The API's documentation pages, Swagger UI (/docs) and ReDoc (/redoc), public like
/openapi.json. Clinics run on intranets: the pages' scripts, styles and icon come from the
installed fastapi_offline package, served here, and nothing loads from another host."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

ASSETS = Path(str(files("fastapi_offline") / "static"))
ASSETS_URL = "/docs/assets"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"

# The browser holds the pages to our own host too. Their start-up scripts and ReDoc's styles
# are inline, and ReDoc searches in a worker it makes from a blob.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"}

# ReDoc's sidebar shows Redocly's logo from their CDN, with no option to leave it out: its
# bundle is served with that one address turned to the package's own icon.
REDOC_JS = "redoc.standalone.js"
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"

SWAGGER_UI_PARAMETERS = {
    # Swagger UI would otherwise send the document to an outside validator for its badge.
    "validatorUrl": None,
}


def _secured(page: HTMLResponse) -> HTMLResponse:
    page.headers.update(HEADERS)
    return page


@cache
def _redoc_bundle() -> bytes:
    bundle = (ASSETS / REDOC_JS).read_text(encoding="utf-8")
    return bundle.replace(REDOC_LOGO, f"{ASSETS_URL}/favicon.png").encode()


def install(app: FastAPI) -> None:
    """Serve the pages and their assets (the app is made with docs_url=redoc_url=None)."""
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(f"{ASSETS_URL}/{REDOC_JS}", include_in_schema=False)
    async def redoc_bundle() -> Response:  # before the mount, which would serve the original
        return Response(_redoc_bundle(), media_type="text/javascript")

    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _secured(
            get_swagger_ui_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} API",
                swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
                swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
            )
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return _secured(get_swagger_ui_oauth2_redirect_html())

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _secured(
            get_redoc_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} API",
                redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )
