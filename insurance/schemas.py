"""Request and response models for payers, coverages, authorizations and billing alerts."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    HttpUrl,
    SecretStr,
    StringConstraints,
    UrlConstraints,
    model_validator,
)

from core.schemas import Input, LocalDate, Output, Text, printable

UnitsType = Literal["visits", "billing_units"]
AuthStatus = Literal[
    "draft",
    "submitted",
    "pending",
    "approved",
    "partially_approved",
    "denied",
    "appealed",
    "expired",
    "exhausted",
    "cancelled",
]
# What an authorization may be entered as (an approval on paper is entered approved).
EntryStatus = Literal["draft", "submitted", "pending", "approved", "partially_approved", "denied"]
AlertKind = Literal[
    "auth_expiring",
    "auth_units_low",
    "session_uncovered",
    "auth_denied_with_bookings",
    "coverage_ended",
    "course_unbookable",
    "drug_shortfall",
    "payer_overdue",
]
AlertStatus = Literal["open", "acknowledged", "resolved"]
# A status filter: one status, or `live` for the alerts still on the queue (open or acknowledged).
AlertStatusFilter = Literal["open", "acknowledged", "resolved", "live"]
Queue = Literal["nursing", "billing", "pharmacy"]  # see Alert.queue
Days = Annotated[int, Field(ge=0, le=365)]
Code = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(printable),
]
Hcpcs = Annotated[str, StringConstraints(pattern=r"^[A-Z][0-9]{4}$")]
Note = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=1000), AfterValidator(printable)
]
# A payer's endpoint: http(s) only, no credentials in it (they go in the fields for them).
PasUrl = Annotated[
    HttpUrl,
    UrlConstraints(max_length=500, allowed_schemes=["http", "https"]),
    AfterValidator(lambda u: _no_userinfo(u)),
]
ClientId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(printable),
]
ClientSecret = Annotated[SecretStr, Field(min_length=1, max_length=500)]
NotificationToken = Annotated[
    SecretStr,
    Field(
        min_length=32,
        max_length=200,
        description="what the payer's rest-hook sends in `Chairside-Notification-Token` "
        "(write-only; at least 32 characters)",
    ),
]
Npi = Annotated[str, StringConstraints(pattern=r"^[0-9]{10}$")]
PersonName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(printable),
]


def _no_userinfo(url: HttpUrl) -> HttpUrl:
    if url.username or url.password:
        raise ValueError("put the client credentials in pas_client_id and pas_client_secret")
    if url.query or url.fragment:
        raise ValueError("a PAS base URL has no query or fragment")
    return url


class PasFields(Input):
    """What a payer's electronic prior authorization needs (Da Vinci PAS)."""

    pas_base_url: PasUrl | None = Field(
        default=None, description="the payer's PAS FHIR base: `{base}/Claim/$submit`"
    )
    pas_token_url: PasUrl | None = Field(
        default=None, description="its OAuth token endpoint; default `{pas_base_url}/token`"
    )
    pas_client_id: ClientId | None = None
    pas_client_secret: ClientSecret | None = Field(
        default=None, description="write-only: replies say `pas_client_secret_set`"
    )
    pas_notification_token: NotificationToken | None = None


class PayerCreate(PasFields):
    name: Text
    turnaround_days: Days = Field(description="calendar days from submission to a decision")
    expedited_turnaround_days: Days
    renewal_margin_days: Days = Field(description="safety margin before renew-by")
    default_units_type: UnitsType = "visits"
    max_auth_days: int | None = Field(default=None, ge=1, le=3650)
    alert_days: Days = Field(default=14, description="how long before renew-by billing is told")


class PayerUpdate(PasFields):
    name: Text | None = None
    turnaround_days: Days | None = None
    expedited_turnaround_days: Days | None = None
    renewal_margin_days: Days | None = None
    default_units_type: UnitsType | None = None
    max_auth_days: int | None = Field(default=None, ge=1, le=3650)
    alert_days: Days | None = None


class PayerOut(Output):
    id: uuid.UUID
    name: str
    turnaround_days: int
    expedited_turnaround_days: int
    renewal_margin_days: int
    default_units_type: UnitsType
    max_auth_days: int | None
    alert_days: int
    pas_base_url: str | None
    pas_token_url: str | None
    pas_client_id: str | None
    pas_client_secret_set: bool = Field(description="a client secret is on file (never shown)")
    pas_notifications: bool = Field(
        description="a notification token is on file: the payer's rest-hook is accepted"
    )
    version: int


def _period(start: date, end: date | None, what: str) -> None:
    if end is not None and end < start:
        raise ValueError(f"{what} ends before it starts")


class CoverageCreate(Input):
    payer_id: uuid.UUID
    member_id: Code
    group_number: Code | None = None
    priority: Literal["primary", "secondary"] = "primary"
    effective_from: LocalDate
    effective_to: LocalDate | None = None

    @model_validator(mode="after")
    def _dates(self) -> CoverageCreate:
        _period(self.effective_from, self.effective_to, "the coverage")
        return self


class CoverageUpdate(Input):
    member_id: Code | None = None
    group_number: Code | None = None
    priority: Literal["primary", "secondary"] | None = None
    effective_from: LocalDate | None = None
    effective_to: LocalDate | None = None


class CoverageOut(Output):
    id: uuid.UUID
    patient_id: uuid.UUID
    payer_id: uuid.UUID
    member_id: str
    group_number: str | None
    priority: str
    effective_from: date
    effective_to: date | None
    eligibility_checked_at: datetime | None = Field(
        default=None, description="the last benefits check with the payer, if any"
    )
    eligibility_in_force: bool | None = None
    eligibility_note: str | None = Field(default=None, description="what the payer said, short")
    version: int


class AuthorizationCreate(Input):
    patient_id: uuid.UUID
    coverage_id: uuid.UUID
    course_id: uuid.UUID | None = None
    service_code: Hcpcs
    auth_number: Code | None = None
    status: EntryStatus = Field(
        default="draft", description="later statuses are reached by changes, kept in history"
    )
    valid_from: LocalDate
    valid_to: LocalDate
    units_type: UnitsType | None = Field(
        default=None, description="defaults to the payer's default_units_type"
    )
    units_approved: int = Field(ge=0, le=1_000_000)
    requested_on: LocalDate | None = None
    decided_on: LocalDate | None = None
    notes: Note | None = None
    prescriber_name: PersonName | None = Field(
        default=None, description="the prescribing clinician, named on an electronic request"
    )
    prescriber_npi: Npi | None = Field(default=None, description="their NPI (10 digits)")
    expedited: bool = Field(
        default=False, description="ask for an expedited decision (the payer's shorter clock)"
    )

    @model_validator(mode="after")
    def _dates(self) -> AuthorizationCreate:
        _period(self.valid_from, self.valid_to, "the authorization")
        return self


class AuthorizationUpdate(Input):
    """Fields sent replace the stored ones. A status change must be allowed from the current
    status (draft -> submitted -> pending/approved/denied ...) and is kept in the history."""

    status: AuthStatus | None = None
    note: Note | None = Field(default=None, description="why the status changed")
    auth_number: Code | None = None
    valid_from: LocalDate | None = None
    valid_to: LocalDate | None = None
    units_approved: int | None = Field(default=None, ge=0, le=1_000_000)
    requested_on: LocalDate | None = None
    decided_on: LocalDate | None = None
    notes: Note | None = None
    prescriber_name: PersonName | None = None
    prescriber_npi: Npi | None = None
    expedited: bool | None = None


class ElectronicRequestOut(Output):
    """Where an authorization's electronic request stands with its payer."""

    claim_identifier: str = Field(description="re-sent on every attempt; the payer drops repeats")
    submitted_at: datetime | None = Field(description="when the payer first had it")
    next_inquiry_at: datetime | None = Field(description="when a pended one is asked about next")
    inquiries: int
    decided_at: datetime | None
    last_error: str | None = Field(description="the last exchange's failure, if it failed")


class EligibilityCheck(Input):
    course_id: uuid.UUID | None = Field(
        default=None,
        description="the course whose drug and diagnosis to ask about; default the patient's "
        "latest live course",
    )
    from_: LocalDate | None = Field(default=None, alias="from", description="default today")
    to: LocalDate | None = Field(default=None, description="default 90 days after `from`")


class EligibilityOut(Output):
    in_force: bool
    note: str | None
    checked_at: datetime
    coverage: CoverageOut


class ExchangeOut(Output):
    """One HTTP exchange with the payer. `request_bundle` and `response_body` carry patient
    data: present for billing and admins only."""

    id: uuid.UUID
    authorization_id: uuid.UUID | None
    coverage_id: uuid.UUID | None
    payer_id: uuid.UUID
    kind: Literal["submit", "inquire", "eligibility", "notification"]
    actor_id: uuid.UUID | None
    claim_identifier: str | None
    operation: str
    attempt: int
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    http_status: int | None
    outcome: str = Field(
        description="A1..A4 (the payer's review action), or refused, garbled, timeout, "
        "network, server_error, unauthorized, notified"
    )
    error: str | None
    request_bundle: dict[str, Any] | None = None
    response_body: str | None = None


class StatusChangeOut(Output):
    at: datetime
    actor_id: uuid.UUID | None
    from_status: str | None
    to_status: str
    note: str | None


class AuthorizationOut(Output):
    id: uuid.UUID
    patient_id: uuid.UUID
    coverage_id: uuid.UUID
    payer_id: uuid.UUID
    course_id: uuid.UUID | None
    service_code: str
    auth_number: str | None
    status: AuthStatus
    valid_from: date
    valid_to: date
    units_type: UnitsType
    units_approved: int
    units_used: int
    requested_on: date | None
    decided_on: date | None
    notes: str | None
    prescriber_name: str | None = None
    prescriber_npi: str | None = None
    expedited: bool = False
    history: list[StatusChangeOut]
    electronic: ElectronicRequestOut | None = Field(
        default=None, description="its electronic request to the payer, once submitted"
    )
    version: int


class UsageSessionOut(Output):
    appointment_id: uuid.UUID
    date: Annotated[date, Field(description="the session's local date at its center")]
    units: int = Field(description="what it draws, as the payer counts units")
    given: bool = Field(description="true: given, its units used; false: booked, units held")


class UsageOut(Output):
    units_approved: int
    units_used: int
    units_scheduled: int
    units_remaining: int
    projected_exhaustion_date: date | None
    renew_by: date | None
    # With `?include=sessions` only (left out otherwise):
    today: date | None = Field(
        default=None, description="the local date at the patient's center the figures are from"
    )
    course_id: uuid.UUID | None = Field(
        default=None,
        description="the course the authorization pays for (its own, else the patient's course "
        "for the service), whose pace the projection follows",
    )
    sessions: list[UsageSessionOut] | None = Field(
        default=None,
        description="the sessions drawing on it, given or booked, by date: its burn-down",
    )


class AlertOut(Output):
    id: uuid.UUID
    kind: AlertKind
    queue: Queue = Field(
        description="whose work it is: nursing (course_unbookable), pharmacy "
        "(drug_shortfall) or billing"
    )
    status: AlertStatus
    severity: Literal["info", "warning", "critical"]
    due_date: date
    patient_id: uuid.UUID
    payer_id: uuid.UUID | None
    authorization_id: uuid.UUID | None
    appointment_id: uuid.UUID | None
    course_id: uuid.UUID | None
    amount_at_risk: float | None
    detail: str
    assigned_to: uuid.UUID | None
    opened_at: datetime
    resolved_at: datetime | None
    resolution: str | None
    note: str | None = Field(default=None, description="what the biller last wrote on it")
    version: int
    # What a biller reads instead of the ids above, read for the whole page at once.
    patient_name: str = Field(description='"Family, Given"')
    mrn: str
    payer_name: str | None
    auth_number: str | None
    assignee_email: str | None


class AssigneeOut(Output):
    """Someone an alert may be assigned to: an active billing or admin user."""

    id: uuid.UUID
    email: str
    role: Literal["billing", "admin"]


class AlertAction(Input):
    assignee_id: uuid.UUID | None = Field(default=None, description="for `assign`: the biller")
    note: Note | None = None


class SweepOut(Output):
    patients: int
    opened: int
    resolved: int
    seconds: float
