"""The web app's pages. Each is a shell (layout, navigation, where its script is); what it
shows comes from the JSON API, read by the page's script with the session cookie. No page
carries patient data itself, so pages need no sign-in: a script that finds nobody signed in
goes to the sign-in page."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

# Everything from this host only; no inline script, no framing, forms post only here.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)


def _page(request: Request, template: str, title: str) -> Response:
    response = templates.TemplateResponse(request, template, {"title": title})
    response.headers.update(SECURITY_HEADERS)
    return response


@router.get("/")
async def sign_in_page(request: Request) -> Response:
    return _page(request, "signin.html", "Sign in")


@router.get("/board")
async def board_page(request: Request) -> Response:
    """The day board (and, with ?view=week, the week)."""
    return _page(request, "board.html", "Day board")
