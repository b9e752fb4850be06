"""Who may call what, and what the audit trail keeps of it: one table for every route.

Each row is (method, path template) -> Rule. `roles` may call the route; anyone else signed in
gets 403, anyone not signed in 401. `audit` names what a call does to patient data, or to
who may use Chairside and what it runs (users, jobs, webhooks), as (action, resource type):
every such call, allowed, refused or failed, leaves one audit event.
`transaction` says how the request's unit of work runs: `read` (no write lock), `write`,
`statements` — a read whose statements run each on its own on PostgreSQL, with no BEGIN or
COMMIT around them (under READ COMMITTED each statement sees its own snapshot anyway; the
audit event is one more statement, or rides the read's, before the answer leaves), for the
hottest reads, which take no locks and no savepoints — or `own` — the request only reads,
and the route commits its work in transactions of its own (a sweep, a job run), which a
write transaction around it would wait on forever on SQLite. By default GETs read and
everything else writes. `timeout=False` exempts a route from the request time limit (runs
that take minutes on purpose).

A route missing from the table refuses everyone, and the app refuses to start with one, or
with a route that opens transactions of its own under a row that does not say `own` (see
`check`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Transaction = Literal["read", "statements", "write", "own"]
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

PATIENT = frozenset({"patient"})
ADMIN = frozenset({"admin"})
CLINICAL = frozenset({"admin", "nurse"})
BILLING = frozenset({"admin", "billing"})
STAFF = frozenset({"admin", "nurse", "billing"})
# The pharmacy keeps the drug stock: inventory and the catalog, no billing, no patient search.
PHARMACY = frozenset({"admin", "pharmacy"})
INVENTORY = PHARMACY | {"nurse"}  # nurses read lots and record the vials they used
CATALOG = STAFF | PHARMACY  # who reads products and centers
SIGNED_IN = STAFF | PHARMACY | PATIENT
ROLES = ("patient", "nurse", "billing", "pharmacy", "admin")


@dataclass(frozen=True)
class Audit:
    action: str  # read, search, create, update, export, run, unlock
    resource: str  # patient, appointment, course, ..., and what admins change: user, job, webhook


@dataclass(frozen=True)
class Rule:
    roles: frozenset[str]
    audit: Audit | None = None
    public: bool = False  # no bearer token: ops probes, sign-in, the calendar feed's secret
    transaction: Transaction | None = None  # None: read for GETs, write for the rest
    timeout: bool = True

    def writes(self, method: str) -> bool:
        """Whether the request's own transaction writes (takes SQLite's write lock)."""
        mode = self.transaction or ("read" if method in READ_METHODS else "write")
        return mode == "write"


def _r(
    roles: frozenset[str],
    action: str | None = None,
    resource: str | None = None,
    *,
    transaction: Transaction | None = None,
    timeout: bool = True,
) -> Rule:
    audit = Audit(action, resource) if action is not None and resource is not None else None
    return Rule(roles, audit, transaction=transaction, timeout=timeout)


OPEN = Rule(frozenset(), public=True)

POLICY: dict[tuple[str, str], Rule] = {
    # the web app's pages: shells whose scripts read everything through the API
    ("GET", "/"): OPEN,
    ("GET", "/board"): OPEN,
    ("GET", "/patients"): OPEN,
    ("GET", "/patients/{patient_id}"): OPEN,
    ("GET", "/courses/new"): OPEN,
    ("GET", "/courses/{course_id}"): OPEN,
    ("GET", "/billing"): OPEN,
    ("GET", "/billing/authorizations/{authorization_id}"): OPEN,
    ("GET", "/admin"): OPEN,
    ("GET", "/pharmacy"): OPEN,
    ("GET", "/waitlist"): OPEN,
    # operations and sign-in
    ("GET", "/healthz"): OPEN,
    ("GET", "/readyz"): OPEN,
    ("GET", "/metrics"): OPEN,
    ("POST", "/api/v1/auth/token"): OPEN,
    ("POST", "/api/v1/auth/logout"): _r(SIGNED_IN),
    ("POST", "/api/v1/auth/session"): OPEN,
    ("DELETE", "/api/v1/auth/session"): _r(SIGNED_IN),
    ("GET", "/api/v1/auth/me"): _r(SIGNED_IN, transaction="statements"),
    # centers, chairs, closures, blocks
    ("POST", "/api/v1/centers"): _r(CLINICAL),
    ("GET", "/api/v1/centers"): _r(CATALOG),
    ("GET", "/api/v1/centers/{center_id}"): _r(CATALOG),
    ("PATCH", "/api/v1/centers/{center_id}"): _r(CLINICAL),
    ("POST", "/api/v1/centers/{center_id}/closures"): _r(CLINICAL),
    ("GET", "/api/v1/centers/{center_id}/closures"): _r(STAFF),
    ("GET", "/api/v1/centers/{center_id}/closures/{closure_id}"): _r(STAFF),
    ("POST", "/api/v1/centers/{center_id}/chairs"): _r(CLINICAL),
    ("GET", "/api/v1/centers/{center_id}/chairs"): _r(STAFF),
    ("GET", "/api/v1/chairs/{chair_id}"): _r(STAFF),
    ("PATCH", "/api/v1/chairs/{chair_id}"): _r(CLINICAL),
    ("POST", "/api/v1/chairs/{chair_id}/blocks"): _r(CLINICAL),
    ("GET", "/api/v1/chairs/{chair_id}/blocks"): _r(STAFF),
    ("GET", "/api/v1/chairs/{chair_id}/blocks/{block_id}"): _r(STAFF),
    ("GET", "/api/v1/centers/{center_id}/availability"): _r(STAFF),
    # names and MRNs of the day's patients: a search of patient records
    ("GET", "/api/v1/centers/{center_id}/day"): _r(STAFF, "search", "patient"),
    ("GET", "/api/v1/centers/{center_id}/week"): _r(STAFF, "search", "patient"),
    # patients
    ("POST", "/api/v1/patients"): _r(CLINICAL, "create", "patient"),
    ("GET", "/api/v1/patients"): _r(STAFF, "search", "patient"),
    # a search with its terms in the body (names never in URLs): it only reads
    ("POST", "/api/v1/patients/search"): _r(STAFF, "search", "patient", transaction="read"),
    ("GET", "/api/v1/patients/{patient_id}"): _r(STAFF, "read", "patient"),
    ("PATCH", "/api/v1/patients/{patient_id}"): _r(CLINICAL, "update", "patient"),
    # appointments
    ("POST", "/api/v1/appointments"): _r(CLINICAL, "create", "appointment"),
    ("POST", "/api/v1/appointments/check"): _r(CLINICAL, "search", "appointment"),
    ("GET", "/api/v1/appointments"): _r(STAFF, "search", "appointment"),
    ("GET", "/api/v1/appointments/{appointment_id}"): _r(STAFF, "read", "appointment"),
    ("GET", "/api/v1/appointments/{appointment_id}/history"): _r(STAFF, "read", "appointment"),
    ("PATCH", "/api/v1/appointments/{appointment_id}"): _r(CLINICAL, "update", "appointment"),
    ("POST", "/api/v1/appointments/{appointment_id}/{action}"): _r(
        CLINICAL, "update", "appointment"
    ),
    # what happened at the session: staff, as the course outcomes (billing claims the dose
    # given and the infusion time)
    ("GET", "/api/v1/appointments/{appointment_id}/record"): _r(STAFF, "read", "session_record"),
    # products, regimens, infusion time
    ("GET", "/api/v1/products"): _r(CATALOG),
    ("POST", "/api/v1/products"): _r(ADMIN),
    ("GET", "/api/v1/products/{product_id}"): _r(CATALOG),
    ("PATCH", "/api/v1/products/{product_id}"): _r(ADMIN),
    ("POST", "/api/v1/infusion-time"): _r(STAFF, transaction="read"),  # a calculator
    ("GET", "/api/v1/regimens"): _r(STAFF),
    ("POST", "/api/v1/regimens"): _r(ADMIN),
    ("GET", "/api/v1/regimens/{regimen_id}"): _r(STAFF),
    ("PATCH", "/api/v1/regimens/{regimen_id}"): _r(ADMIN),
    # drug logistics: stock by lot per center, and who received each lot (a recall)
    ("GET", "/api/v1/inventory/lots"): _r(INVENTORY),
    ("POST", "/api/v1/inventory/lots"): _r(PHARMACY),
    ("GET", "/api/v1/inventory/lots/{lot_id}"): _r(INVENTORY),
    ("PATCH", "/api/v1/inventory/lots/{lot_id}"): _r(PHARMACY),
    ("GET", "/api/v1/inventory/lots/{lot_id}/administrations"): _r(
        INVENTORY, "search", "administration"
    ),
    # the waitlist (waitlist.py): entries name patients, so every call is audited
    ("GET", "/api/v1/waitlist"): _r(CLINICAL, "search", "waitlist_entry"),
    ("POST", "/api/v1/waitlist"): _r(CLINICAL, "create", "waitlist_entry"),
    ("GET", "/api/v1/waitlist/fits"): _r(CLINICAL, "search", "waitlist_entry"),
    ("GET", "/api/v1/waitlist/figures"): _r(CLINICAL),
    ("GET", "/api/v1/waitlist/offers"): _r(CLINICAL, "search", "waitlist_offer"),
    ("GET", "/api/v1/waitlist/offers/{offer_id}"): _r(CLINICAL, "read", "waitlist_offer"),
    ("POST", "/api/v1/waitlist/offers/{offer_id}/accept"): _r(CLINICAL, "update", "waitlist_offer"),
    ("POST", "/api/v1/waitlist/offers/{offer_id}/decline"): _r(
        CLINICAL, "update", "waitlist_offer"
    ),
    ("GET", "/api/v1/waitlist/{entry_id}"): _r(CLINICAL, "read", "waitlist_entry"),
    ("PATCH", "/api/v1/waitlist/{entry_id}"): _r(CLINICAL, "update", "waitlist_entry"),
    # evening out a center's days (optimisations.py): proposals move patients' visits; the
    # solver runs outside any write transaction (transaction="own") for up to a minute
    ("POST", "/api/v1/centers/{center_id}/optimise"): _r(
        CLINICAL, "search", "appointment", transaction="own", timeout=False
    ),
    ("GET", "/api/v1/optimisations"): _r(CLINICAL, "search", "appointment"),
    ("GET", "/api/v1/optimisations/{optimisation_id}"): _r(CLINICAL, "search", "appointment"),
    ("POST", "/api/v1/optimisations/{optimisation_id}/apply"): _r(
        CLINICAL, "update", "appointment"
    ),
    # stock on order (orders.py): nurses read it, the pharmacy orders, receives and cancels
    ("GET", "/api/v1/inventory/orders"): _r(INVENTORY),
    ("POST", "/api/v1/inventory/orders"): _r(PHARMACY),
    ("GET", "/api/v1/inventory/orders/{order_id}"): _r(INVENTORY),
    ("POST", "/api/v1/inventory/orders/{order_id}/receive"): _r(PHARMACY),
    ("POST", "/api/v1/inventory/orders/{order_id}/cancel"): _r(PHARMACY),
    ("GET", "/api/v1/centers/{center_id}/drug-demand"): _r(INVENTORY),  # demand.py
    ("GET", "/api/v1/centers/{center_id}/reorder.csv"): _r(INVENTORY),
    ("POST", "/api/v1/vial-plan"): _r(INVENTORY, transaction="read"),  # a calculator
    # shortages: the pharmacy's queue of doses the stock will not cover (staff read it as
    # `/alerts?queue=pharmacy`), and a plan that proposes and applies nothing; both name the
    # patients' sessions
    ("GET", "/api/v1/pharmacy/alerts"): _r(PHARMACY, "search", "alert"),
    ("POST", "/api/v1/centers/{center_id}/shortage-plan"): _r(
        INVENTORY, "search", "appointment", transaction="read"
    ),
    # the pharmacy's day: the queue of doses, and the steps each takes (a nurse clears the
    # patient and records the dose given; the pharmacy prepares and dispenses)
    ("GET", "/api/v1/centers/{center_id}/preparation"): _r(INVENTORY, "search", "preparation"),
    ("POST", "/api/v1/appointments/{appointment_id}/preparation/clear"): _r(
        CLINICAL, "update", "preparation"
    ),
    ("POST", "/api/v1/appointments/{appointment_id}/preparation/prepare"): _r(
        PHARMACY, "update", "preparation"
    ),
    ("POST", "/api/v1/appointments/{appointment_id}/preparation/dispense"): _r(
        PHARMACY, "update", "preparation"
    ),
    ("POST", "/api/v1/appointments/{appointment_id}/preparation/administer"): _r(
        CLINICAL, "update", "preparation"
    ),
    # courses
    ("POST", "/api/v1/courses"): _r(CLINICAL, "create", "course"),
    ("GET", "/api/v1/courses"): _r(STAFF, "search", "course"),
    ("GET", "/api/v1/courses/{course_id}"): _r(STAFF, "read", "course"),
    ("POST", "/api/v1/courses/{course_id}/book"): _r(CLINICAL, "update", "course"),
    ("GET", "/api/v1/courses/{course_id}/plan"): _r(STAFF, "read", "course"),
    ("GET", "/api/v1/courses/{course_id}/outcomes"): _r(STAFF, "read", "course"),
    ("POST", "/api/v1/courses/{course_id}/{action}"): _r(CLINICAL, "update", "course"),
    # insurance
    ("GET", "/api/v1/payers"): _r(STAFF),
    ("POST", "/api/v1/payers"): _r(BILLING),
    ("GET", "/api/v1/payers/{payer_id}"): _r(STAFF),
    ("PATCH", "/api/v1/payers/{payer_id}"): _r(BILLING),
    ("GET", "/api/v1/patients/{patient_id}/coverages"): _r(STAFF, "search", "coverage"),
    ("POST", "/api/v1/patients/{patient_id}/coverages"): _r(BILLING, "create", "coverage"),
    ("GET", "/api/v1/coverages/{coverage_id}"): _r(STAFF, "read", "coverage"),
    ("PATCH", "/api/v1/coverages/{coverage_id}"): _r(BILLING, "update", "coverage"),
    ("POST", "/api/v1/authorizations"): _r(BILLING, "create", "authorization"),
    ("GET", "/api/v1/authorizations"): _r(STAFF, "search", "authorization"),
    ("GET", "/api/v1/authorizations/{authorization_id}"): _r(STAFF, "read", "authorization"),
    ("PATCH", "/api/v1/authorizations/{authorization_id}"): _r(BILLING, "update", "authorization"),
    ("GET", "/api/v1/authorizations/{authorization_id}/usage"): _r(STAFF, "read", "authorization"),
    # electronic prior authorization: the payer's call runs outside any transaction
    ("POST", "/api/v1/authorizations/{authorization_id}/submit"): _r(
        BILLING, "update", "authorization", transaction="own", timeout=False
    ),
    ("GET", "/api/v1/authorizations/{authorization_id}/exchanges"): _r(
        STAFF, "read", "authorization"
    ),
    # a benefits check sends the patient's details to the payer: an export
    ("POST", "/api/v1/coverages/{coverage_id}/eligibility-check"): _r(
        BILLING, "export", "coverage", transaction="own", timeout=False
    ),
    # a payer's rest-hook: its own token (checked by the route), no user; it only nudges
    ("POST", "/api/v1/payers/{payer_id}/pas-notifications"): Rule(
        frozenset(), public=True, transaction="own", timeout=False
    ),
    ("GET", "/api/v1/alerts"): _r(STAFF, "search", "alert"),
    # whom an alert may be assigned to: user ids and emails, no patient data
    ("GET", "/api/v1/alerts/assignees"): _r(BILLING),
    ("GET", "/api/v1/alerts/{alert_id}"): _r(STAFF, "read", "alert"),
    ("POST", "/api/v1/alerts/{alert_id}/{action}"): _r(BILLING, "update", "alert"),
    ("POST", "/api/v1/billing/sweep"): _r(BILLING, transaction="own", timeout=False),
    ("GET", "/api/v1/billing/worklist.csv"): _r(BILLING, "export", "alert"),
    # background jobs and webhooks
    ("GET", "/api/v1/jobs"): _r(STAFF),
    ("GET", "/api/v1/jobs/runs"): _r(STAFF),
    ("POST", "/api/v1/jobs/{name}/run"): _r(ADMIN, "run", "job", transaction="own", timeout=False),
    ("POST", "/api/v1/webhooks"): _r(ADMIN, "create", "webhook"),
    ("GET", "/api/v1/webhooks"): _r(ADMIN),
    ("GET", "/api/v1/webhooks/{webhook_id}"): _r(ADMIN),
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): _r(ADMIN, "update", "webhook"),
    ("POST", "/api/v1/webhooks/{webhook_id}/rotate-secret"): _r(ADMIN, "update", "webhook"),
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): _r(ADMIN),
    # users (not patient data: who may sign in, in what role)
    ("GET", "/api/v1/users"): _r(ADMIN),
    ("POST", "/api/v1/users"): _r(ADMIN, "create", "user"),
    ("GET", "/api/v1/users/{user_id}"): _r(ADMIN),
    ("PATCH", "/api/v1/users/{user_id}"): _r(ADMIN, "update", "user"),
    ("POST", "/api/v1/users/{user_id}/unlock"): _r(ADMIN, "unlock", "user"),
    # the audit trail itself: who looked at which patient is itself worth a record
    ("GET", "/api/v1/audit-events"): _r(ADMIN, "search", "audit_event"),
    ("GET", "/api/v1/audit/refusals"): _r(ADMIN, "search", "audit_event"),
    # the patient portal
    # A patient portal's hottest reads: statement by statement (see the module's docstring).
    ("GET", "/api/v1/portal/appointments"): _r(
        PATIENT, "search", "appointment", transaction="statements"
    ),
    ("GET", "/api/v1/portal/appointments/{appointment_id}"): _r(
        PATIENT, "read", "appointment", transaction="statements"
    ),
    # the link is made on first asking
    ("GET", "/api/v1/portal/calendar-token"): _r(
        PATIENT, "create", "calendar_feed", transaction="write"
    ),
    ("DELETE", "/api/v1/portal/calendar-token"): _r(PATIENT, "update", "calendar_feed"),
    ("GET", "/calendar/{secret}.ics"): Rule(frozenset(), Audit("export", "appointment"), True),
    # FHIR R4
    ("GET", "/fhir/r4/metadata"): OPEN,
    ("GET", "/fhir/r4/Appointment"): _r(STAFF | PATIENT, "search", "appointment"),
    ("GET", "/fhir/r4/Appointment/{appointment_id}"): _r(STAFF | PATIENT, "read", "appointment"),
    # a patient reads only themselves (see app.api.fhir); a center is no patient's data
    ("GET", "/fhir/r4/Patient/{patient_id}"): _r(STAFF | PATIENT, "read", "patient"),
    ("GET", "/fhir/r4/Location/{center_id}"): _r(SIGNED_IN),
    # SMART App Launch: admins register patient apps; discovery and OAuth are public (the
    # consent page goes by the web session's cookie itself and audits a granted
    # authorization as ("create", "smart_authorization"); the token endpoints by client_id)
    ("POST", "/api/v1/smart-apps"): _r(ADMIN, "create", "smart_app"),
    ("GET", "/api/v1/smart-apps"): _r(ADMIN),
    ("GET", "/api/v1/smart-apps/{smart_app_id}"): _r(ADMIN),
    ("PATCH", "/api/v1/smart-apps/{smart_app_id}"): _r(ADMIN, "update", "smart_app"),
    ("GET", "/fhir/r4/.well-known/smart-configuration"): OPEN,
    ("GET", "/fhir/r4/.well-known/jwks.json"): OPEN,
    ("GET", "/oauth/authorize"): OPEN,
    ("POST", "/oauth/authorize"): OPEN,
    ("POST", "/oauth/token"): OPEN,
    ("POST", "/oauth/revoke"): OPEN,
}


def rule(method: str, path: str) -> Rule | None:
    return POLICY.get((method, path))


@dataclass(frozen=True)
class Served:
    """A route as the app serves it: what `check` holds against the table."""

    method: str
    path: str
    opens_transactions: bool  # takes the database to commit in transactions of its own
    in_a_transaction: bool  # takes the request's unit of work


def check(routes: Iterable[Served]) -> None:
    """Refuse to build an app with a route the table does not cover, a row no route has, or
    a route whose way of running the table misstates."""
    served = {(r.method, r.path): r for r in routes}
    missing = sorted(set(served) - set(POLICY))
    stale = sorted(set(POLICY) - set(served))
    if missing or stale:
        raise RuntimeError(f"access policy out of date: missing {missing}, no such route {stale}")
    wrong = sorted(
        key
        for key, r in served.items()
        if r.in_a_transaction and r.opens_transactions != (POLICY[key].transaction == "own")
    )
    if wrong:
        raise RuntimeError(
            f"routes that open transactions of their own, and only those, say transaction='own' "
            f"in the access policy: {wrong}"
        )
    # Statement by statement, a lock or a savepoint would hold nothing: reads only.
    writers = sorted(
        key for key, rule in POLICY.items() if rule.transaction == "statements" and key[0] != "GET"
    )
    if writers:
        raise RuntimeError(f"transaction='statements' is for GET routes only: {writers}")
