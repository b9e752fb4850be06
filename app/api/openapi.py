"""Every error a route can answer, documented in the OpenAPI schema as problem+json."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from pydantic import BaseModel

from app.api import policy
from app.api.errors import PROBLEM_JSON


class ProblemDetail(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None
    conflicts: list[str] | None = None


def _doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}},
    }


def document_errors(router: APIRouter) -> None:
    for route in router.routes:
        if not isinstance(route, APIRoute) or not route.methods:
            continue
        codes: dict[int, str] = {
            500: "Internal error",
            422: "Invalid input",
            503: "Busy or too slow: nothing was changed, try again",
        }
        rules = [policy.rule(m, route.path) for m in route.methods]
        if any(r is not None and not r.public for r in rules):
            codes |= {
                401: "Not signed in or token expired",
                403: "Your role may not do this",
                429: "Too many requests that failed authentication from this address",
            }
        # Ids in paths, bodies and queries can name what does not exist (or is not yours).
        codes[404] = "No such resource (or not yours to see)"
        if route.methods & {"POST", "PATCH", "PUT"}:
            codes |= {409: "Conflicts with stored data", 413: "Request body too large"}
        if "PATCH" in route.methods:
            codes |= {412: "Stale If-Match", 428: "If-Match required"}
        for code, description in codes.items():
            existing = route.responses.get(code, {})
            route.responses[code] = {**_doc(description), **existing}


def add_problem_schema(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ProblemDetail"] = ProblemDetail.model_json_schema()
    return schema
