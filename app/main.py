"""The ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from app.api import (
    appointments,
    audit,
    auth,
    centers,
    courses,
    demand,
    errors,
    fhir,
    insurance,
    inventory,
    jobs,
    oauth,
    ops,
    optimisations,
    orders,
    pas,
    patients,
    policy,
    portal,
    preparation,
    products,
    records,
    regimens,
    shortage,
    smart,
    users,
    waitlist,
    webhooks,
)
from app.api import docs as api_docs
from app.api import openapi as api_document
from app.api.deps import get_db, unit_of_work
from app.api.metrics import Metrics
from app.api.middleware import RequestGuard, TestClock
from app.api.openapi import add_problem_schema, declare_access, document_errors
from app.auth import flood
from app.jobs.scheduler import JobScheduler
from app.settings import Settings, get_settings
from app.web import pages
from core import heap
from core.db import Database
from core.logs import configure_logging

# Requests are matched against routes in this order, one by one: the busiest reads come first
# (a patient portal's list, FHIR reads), or each would first be tried against every staff route.
ROUTERS = (
    ops.router,
    auth.router,
    portal.router,
    smart.router,  # before FHIR's: its /fhir/r4/.well-known documents are no resource type
    fhir.router,
    oauth.router,
    centers.router,
    patients.router,
    appointments.router,
    records.router,
    products.router,
    inventory.router,
    orders.router,
    demand.router,
    preparation.router,
    shortage.router,
    courses.router,
    waitlist.router,
    optimisations.router,
    regimens.router,
    insurance.router,
    pas.router,
    jobs.router,
    webhooks.router,
    audit.router,
    users.router,
    pages.router,
)


def _with_problem_schema(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = declare_access(add_problem_schema(build()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def served(routers: Iterable[APIRouter]) -> list[policy.Served]:
    """Every route the routers serve, and how it reaches the database."""
    out = []
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute):
                calls = _calls(route.dependant)
                for method in route.methods or ():
                    out.append(
                        policy.Served(method, route.path, get_db in calls, unit_of_work in calls)
                    )
    return out


def _calls(dependant: Dependant) -> set[object]:
    found: set[object] = {dependant.call}
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.db = Database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        jobs = JobScheduler(app.state.db, settings.scheduler_tick_seconds)
        if settings.scheduler:
            await jobs.start()
        heap.freeze_loaded()
        try:
            yield
        finally:
            if settings.scheduler:
                await jobs.stop()
            await app.state.db.dispose()

    app = FastAPI(
        title="Chairside",
        version="0.1.0",
        summary="Infusion-center scheduling: chairs, nurses, courses and pre-authorizations.",
        description=api_document.DESCRIPTION,
        contact=api_document.CONTACT,
        license_info=api_document.LICENSE,
        servers=api_document.SERVERS,
        openapi_tags=api_document.TAGS,
        docs_url=None,  # served from the package's assets instead (app.api.docs)
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    # Failed authentications per client address, in this process (see app.auth.flood).
    app.state.unauthenticated_gate = flood.Gate(settings.unauthenticated_per_address_per_minute)
    errors.install(app)
    for router in ROUTERS:
        document_errors(router)
        app.include_router(router)
    policy.check(served(ROUTERS))
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    api_docs.install(app)
    _with_problem_schema(app)
    if settings.test_clock:
        app.add_middleware(TestClock)
    app.add_middleware(
        RequestGuard,
        max_bytes=settings.max_body_bytes,
        metrics=app.state.metrics,
        timeout=settings.request_timeout_seconds,
    )
    return app
