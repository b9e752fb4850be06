"""Every 4xx and 5xx leaves as RFC 9457 application/problem+json."""

from __future__ import annotations

import inspect
import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app import fhir
from core.outages import Outage, ServiceUnavailable, classify
from core.problems import PROBLEM_BASE, Conflict, PreconditionFailed, Problem, TooManyRequests

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    411: "Length required",
    412: "Stale version",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    428: "If-Match required",
    429: "Too many requests",
    500: "Internal error",
    503: "Busy, try again",
}
OUTAGE_DETAIL = {
    Outage.BUSY: "the database was busy with a conflicting change; nothing was saved",
    Outage.UNAVAILABLE: "the database could not be reached; nothing was saved",
}
OUTAGE_RETRY_SECONDS = {Outage.BUSY: 1, Outage.UNAVAILABLE: 2}


def problem_response(
    status: int, detail: str, *, slug: str | None = None, title: str | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": PROBLEM_BASE + (slug or f"http-{status}"),
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def outage_response(outage: Outage) -> JSONResponse:
    """503 with Retry-After: the database was busy or out of reach, and nothing was saved."""
    response = problem_response(503, OUTAGE_DETAIL[outage], slug=f"database-{outage.value}")
    response.headers["Retry-After"] = str(OUTAGE_RETRY_SECONDS[outage])
    return response


def fhir_aware(path: str, response: Response) -> Response:
    """Under /fhir/r4 a problem leaves as FHIR's OperationOutcome (FHIR clients read nothing
    else): the same status, headers and safe text."""
    if not fhir.under_fhir(path) or response.media_type != PROBLEM_JSON:
        return response
    problem = json.loads(bytes(response.body))
    fields = [f"{'.'.join(e['loc'])}: {e['msg']}" for e in problem.get("errors", [])]
    outcome = fhir.operation_outcome(
        response.status_code,
        str(problem.get("detail", "")),
        slug=str(problem.get("type", "")).removeprefix(PROBLEM_BASE) or None,
        title=problem.get("title"),
        fields=fields,
    )
    answer = JSONResponse(outcome, status_code=response.status_code, media_type=fhir.FHIR_JSON)
    for name, value in response.headers.items():
        if name not in ("content-type", "content-length"):
            answer.headers.append(name, value)
    return answer


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only where and what: never echo the submitted value (it may be patient data).
    return [
        {
            "loc": [str(p) for p in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": err.get("type"),
        }
        for err in exc.errors()
    ]


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        response = problem_response(
            exc.status, exc.detail, slug=exc.slug, title=exc.title, **exc.extra
        )
        if isinstance(exc, TooManyRequests | ServiceUnavailable):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, __: StaleDataError) -> JSONResponse:
        # Someone else changed the row between our read and our write.
        detail = "the record changed while you were changing it; reload and retry"
        p = PreconditionFailed(detail) if request.method == "PATCH" else Conflict(detail)
        return problem_response(p.status, p.detail, slug=p.slug, title=p.title)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(OSError)
    async def _database(_: Request, exc: Exception) -> JSONResponse:
        # What is not an outage is a bug: RequestGuard answers 500 and logs where it was.
        outage = classify(exc)
        if outage is None:
            raise exc
        return outage_response(outage)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            422, "the request is not valid", slug="validation", errors=_field_errors(exc)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        status = exc.status_code
        if status == 400:
            # FastAPI's answer to a body it cannot decode: for our clients that is invalid input.
            status, detail = 422, "the request body could not be read as JSON or form data"
        response = problem_response(status, detail)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    # Last, so that it covers every handler above: FHIR clients get an OperationOutcome.
    for key, handler in list(app.exception_handlers.items()):
        app.exception_handlers[key] = _fhir_aware_handler(handler)


def _fhir_aware_handler(handler: Any) -> Any:
    async def handle(request: Request, exc: Exception) -> Any:
        answer = handler(request, exc)
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, Response):
            return fhir_aware(request.url.path, answer)
        return answer

    return handle
