"""The OpenAPI document: what it says of the API as a whole (its description, tags and
servers), every error a route can answer (as problem+json), and each operation's security and
who may call it, from the policy table."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from pydantic import BaseModel

from app import fhir
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


# What FHIR clients read instead of a problem (app.api.errors turns each one under /fhir/r4
# into one): its shape only, FHIR's own definitions say the rest.
OPERATION_OUTCOME: dict[str, Any] = {
    "title": "OperationOutcome",
    "description": "A FHIR R4 OperationOutcome: the error's severity, code and text.",
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {"type": "array", "items": {"type": "object"}, "minItems": 1},
    },
}


def _doc(description: str, path: str = "") -> dict[str, Any]:
    if path.startswith(fhir.BASE_PATH + "/"):
        outcome = {"$ref": "#/components/schemas/OperationOutcome"}
        return {"description": description, "content": {fhir.FHIR_JSON: {"schema": outcome}}}
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
            route.responses[code] = {**_doc(description, route.path), **existing}


def add_problem_schema(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ProblemDetail"] = ProblemDetail.model_json_schema()
    components["OperationOutcome"] = OPERATION_OUTCOME
    return schema


DESCRIPTION = """\
Chairside schedules infusion centers: chairs, nurses, treatment courses, drug stock and
pre-authorizations.

- **Signing in**: POST /api/v1/auth/token with the form fields `username` (the email) and
  `password` (OAuth2's password flow) answers an access token; send it as
  `Authorization: Bearer <token>`. Each signed-in operation lists its schemes under
  `security` (any one of them will do) and, in its description, the roles that may call it.
  The web app signs in with a cookie session instead (POST /api/v1/auth/session), whose
  changes carry its CSRF token in `X-CSRF-Token`.
- **Errors** are `application/problem+json` (RFC 9457): `type`, `title`, `status`, `detail`,
  and the fields at fault in `errors`.
- **Lists** come a page at a time: `limit`, then `cursor` set to the answer's `next_cursor`.
- **Changes** (PATCH) send `If-Match` with the `ETag` read; some creations take an
  `Idempotency-Key`, so a retry does not book twice.
"""

# The project's licence: it is not open source.
LICENSE: dict[str, str] = {
    "name": "Proprietary: for the clinics that run Chairside",
    "identifier": "LicenseRef-Chairside-Proprietary",
}
CONTACT: dict[str, str] = {"name": "The Chairside team"}
# Relative: the document describes the host it is served from.
SERVERS: list[dict[str, str]] = [{"url": "/", "description": "This server"}]

# The domains operations are tagged with (each router's `tags`), in the order the docs show
# them. `fhir`, `smart` and `webhooks` are for the routers of those standards.
TAGS: list[dict[str, Any]] = [
    {
        "name": "auth",
        "description": "Signing in and out: an access token (OAuth2 password flow) for API "
        "clients, a cookie session with a CSRF token for the web app.",
    },
    {
        "name": "centers",
        "description": "Infusion centers: their chairs, closures and chair blocks, open slots, "
        "and the day and week boards.",
    },
    {"name": "patients", "description": "Patient records, and finding them."},
    {
        "name": "appointments",
        "description": "Booking and rescheduling chair time, the visit's steps (check-in to "
        "complete, cancel, no-show), its history and what was given at the session.",
    },
    {
        "name": "courses",
        "description": "Treatment courses: ordering one, booking its sessions, its plan and "
        "outcomes; hold, resume, discontinue.",
    },
    {
        "name": "catalog",
        "description": "The drug catalog, the usual regimens per diagnosis, and the "
        "infusion-time calculator.",
    },
    {
        "name": "inventory",
        "description": "Drug stock by lot at each center, orders from suppliers, the drug "
        "demand ahead and the reorder list, vial plans.",
    },
    {
        "name": "pharmacy",
        "description": "Each dose's way to the chair (clear, prepare, dispense, administer), "
        "the pharmacy's alerts and shortage plans.",
    },
    {
        "name": "waitlist",
        "description": "Patients waiting for an earlier chair: entries, openings offered with "
        "a hold, accepting and declining them, and the fill figures.",
    },
    {
        "name": "optimiser",
        "description": "Proposals that even out a center's days, applied by a person.",
    },
    {
        "name": "insurance",
        "description": "Payers, coverages, pre-authorizations and the units used, and billing's "
        "work queue (alerts, the sweep, the worklist).",
    },
    {
        "name": "portal",
        "description": "For patients: their own appointments, and a calendar feed of them.",
    },
    {
        "name": "fhir",
        "description": "FHIR R4 for electronic health records and patient apps: the "
        "CapabilityStatement, Appointment and the resources it refers to.",
    },
    {
        "name": "smart",
        "description": "SMART App Launch for patient apps: the authorization code flow with "
        "PKCE, tokens and their revocation, and registering apps.",
    },
    {
        "name": "webhooks",
        "description": "Subscriptions to events and their deliveries, signed as Standard Webhooks.",
    },
    {
        "name": "jobs",
        "description": "Background jobs: their schedules and runs, and running one now.",
    },
    {
        "name": "users",
        "description": "Who may use Chairside: users, their roles, unlocking an account.",
    },
    {
        "name": "audit",
        "description": "The audit trail of patient data and of admins' changes, and the "
        "requests refused before anyone was signed in.",
    },
    {
        "name": "operations",
        "description": "For load balancers and monitoring: liveness, readiness, metrics.",
    },
]

METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def declare_access(schema: dict[str, Any]) -> dict[str, Any]:
    """Each operation's access, from the policy table: a public one carries an empty
    `security` (OpenAPI's way to say it needs no sign-in); a described one ends with who may
    call it. The signed-in operations' schemes come from `authenticate`'s dependencies. An
    operation without a description is left without one, for the linters to name."""
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            rule = policy.rule(method.upper(), path)
            if rule is None:
                continue
            if rule.public:
                operation.setdefault("security", [])
                who = "Public: needs no sign-in."
            else:
                roles = ", ".join(role for role in policy.ROLES if role in rule.roles)
                who = f"Who may call: {roles}."
            if operation.get("description"):
                operation["description"] = f"{operation['description'].rstrip()}\n\n{who}"
    return schema
