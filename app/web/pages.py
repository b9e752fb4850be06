"""The web app's pages. Each is a shell (layout, navigation, where its script is); what it
shows comes from the JSON API, read by the page's script with the session cookie. No page
carries patient data itself, so pages need no sign-in: a script that finds nobody signed in
goes to the sign-in page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
    # frame-ancestors' older twin, for browsers that predate it (clickjacking the consent
    # page's Allow button).
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)


# Each page: its path, its shell and its title. The ids in a path are read by the page's
# script, not here.
PAGES = (
    ("/", "signin.html", "Sign in"),
    ("/board", "board.html", "Day board"),  # ?view=week: the week
    ("/patients", "patients.html", "Patients"),
    ("/patients/{patient_id}", "patient.html", "Patient"),
    ("/courses/new", "course-new.html", "New course"),  # ?patient=<id>: the order form
    ("/courses/{course_id}", "course.html", "Course"),
    ("/billing", "billing.html", "Billing work queue"),
    ("/billing/authorizations/{authorization_id}", "authorization.html", "Authorization"),
    ("/admin", "admin.html", "Admin"),
    ("/pharmacy", "pharmacy.html", "Pharmacy"),  # ?center=&date=; #stock, #demand
    ("/waitlist", "waitlist.html", "Waitlist"),  # ?center=
)


def _shell(template: str, title: str) -> Callable[[Request], Awaitable[Response]]:
    async def page(request: Request) -> Response:
        response = templates.TemplateResponse(request, template, {"title": title})
        response.headers.update(SECURITY_HEADERS)
        return response

    return page


for _path, _template, _title in PAGES:
    router.add_api_route(_path, _shell(_template, _title), methods=["GET"])
