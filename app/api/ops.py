"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text

from app.api.deps import get_db
from app.api.errors import problem_response
from app.migrate import head_revision

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. Nothing else is checked; for load balancers."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness",
    responses={503: {"description": "Database unreachable or not migrated"}},
)
async def readyz(request: Request) -> Response:
    """Readiness: the database answers and is migrated to the latest revision. 503 when
    it is unreachable (with Retry-After) or behind."""
    try:
        async with get_db(request).unit_of_work(write=False) as session:
            current = await session.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception:
        response = problem_response(503, "the database is unreachable or has no schema")
        response.headers["Retry-After"] = "2"
        return response
    if current != head_revision():
        return problem_response(503, "the database is not migrated to the latest revision")
    return JSONResponse({"status": "ready", "revision": current})


@router.get("/metrics", summary="Metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> str:
    """This process's metrics in the Prometheus text format: requests by method, route template
    and status, and their durations."""
    return str(request.app.state.metrics.render())
