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


@router.get("/patients")
async def patients_page(request: Request) -> Response:
    """Find a patient by name, MRN or date of birth."""
    return _page(request, "patients.html", "Patients")


@router.get("/patients/{patient_id}")
async def patient_page(request: Request, patient_id: str) -> Response:
    """One patient: demographics, courses, visits, authorizations with their usage."""
    return _page(request, "patient.html", "Patient")


@router.get("/courses/new")
async def new_course_page(request: Request) -> Response:
    """The order form for a new course (?patient=<id>)."""
    return _page(request, "course-new.html", "New course")


@router.get("/courses/{course_id}")
async def course_page(request: Request, course_id: str) -> Response:
    """A course's plan: windows, targets, visits, dose, chair time and cover per session."""
    return _page(request, "course.html", "Course")


@router.get("/billing")
async def billing_page(request: Request) -> Response:
    """The billing work queue."""
    return _page(request, "billing.html", "Billing work queue")


@router.get("/billing/authorizations/{authorization_id}")
async def authorization_page(request: Request, authorization_id: str) -> Response:
    """One authorization: its units burned down over time, and when to renew it."""
    return _page(request, "authorization.html", "Authorization")


@router.get("/admin")
async def admin_page(request: Request) -> Response:
    """Users, job runs and the audit trail."""
    return _page(request, "admin.html", "Admin")
