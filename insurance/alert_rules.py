"""What billing must hear about one patient: pure rules over plain values, shared by the
recompute after every change and by the sweep over everything.

Given the patient's sessions (with the cover `rules.allocate` gave them), authorizations and
coverages, `patient_alerts` returns the alerts that should be live now. The caller reconciles
them with the stored ones: new ones open, changed ones update, missing ones resolve.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property

from insurance import priority, rules

REASON_TEXT = {
    "no_authorization": "no authorization on file for this service",
    "outside_period": "no authorization valid on that date",
    "units_exhausted": "the authorized units are used up",  # see `why_uncovered`
    "authorization_denied": "the authorization was denied",
    "authorization_pending": "the authorization is still awaiting a decision",
}


@dataclass(frozen=True)
class Session:
    need: rules.Need
    allocation: rules.Allocation
    price_per_unit: Decimal | None  # of the drug's billing unit, when the catalog knows it

    @cached_property  # asked for again by every alert and review rule that prices a session
    def money(self) -> Decimal | None:
        if self.price_per_unit is None or self.need.dose_g is None:
            return None
        units = rules.session_units("billing_units", self.need.dose_g, self.need.billing_unit_mg)
        return self.price_per_unit * units


@dataclass(frozen=True)
class Auth:
    grant: rules.Grant
    units_approved: int
    units_used: int
    payer_id: uuid.UUID
    turnaround_days: int
    margin_days: int
    alert_days: int

    def drew(self, units: int) -> Auth:
        """This authorization after a session drew `units` from it. Used and left change
        together: the usage an alert states is computed from `units_used`, the allocation from
        `units_left`, and an alert written between a draw and the next load must agree with
        both."""
        left = self.grant.units_left - units
        return replace(
            self, units_used=self.units_used + units, grant=replace(self.grant, units_left=left)
        )


@dataclass(frozen=True)
class CoursePace:
    """An active course: what it needs and at what pace (for exhaustion at the planned pace)."""

    course_id: uuid.UUID
    service_code: str
    interval_days: int | None
    sessions_left: int | None = None  # not yet booked; None when the course runs to a date
    ends_on: date | None = None  # the date a course without a number of cycles runs to


@dataclass(frozen=True)
class CoverageTerm:
    coverage_id: uuid.UUID
    payer_id: uuid.UUID
    effective_from: date
    effective_to: date | None
    turnaround_days: int | None = None  # the payer's: how long a request made today takes


@dataclass(frozen=True)
class AlertSpec:
    kind: str
    subject_id: uuid.UUID
    severity: str
    due_date: date
    payer_id: uuid.UUID | None
    authorization_id: uuid.UUID | None
    appointment_id: uuid.UUID | None
    course_id: uuid.UUID | None
    amount_at_risk: Decimal | None
    detail: str


def _applies(grant: rules.Grant, need: rules.Need) -> bool:
    return grant.service_code == need.service_code and grant.course_id in (None, need.course_id)


def _sum(values: Sequence[Decimal | None]) -> Decimal | None:
    known = [v for v in values if v is not None]
    return sum(known, Decimal(0)) if known else None


def _severity(due: date, today: date, soon: int) -> str:
    """For a deadline (a renew-by date, a coverage's end): passed, close, or still far."""
    if due <= today:
        return "critical"
    return "warning" if (due - today).days <= soon else "info"


def _starts(c: CoverageTerm) -> date:
    return c.effective_from


def coverage_on(coverages: Sequence[CoverageTerm], day: date) -> CoverageTerm | None:
    """The coverage in force on a day, the earliest-starting first."""
    # Asked for every session of every patient: most patients have a single coverage.
    ordered = coverages if len(coverages) < 2 else sorted(coverages, key=_starts)
    for c in ordered:
        if c.effective_from <= day and (c.effective_to is None or day <= c.effective_to):
            return c
    return None


def _turnaround_on(coverages: Sequence[CoverageTerm], day: date) -> int | None:
    """The turnaround of the payer covering a day: how late a request for it may be sent."""
    c = coverage_on(coverages, day)
    return c.turnaround_days if c is not None else None


def _units_of(g: rules.Grant, sessions: Sequence[Session]) -> str:
    """An authorization's units in words, the billing unit's size taken from the drug of the
    sessions it applies to."""
    unit_mg = next((s.need.billing_unit_mg for s in sessions if _applies(g, s.need)), None)
    return rules.units_label(g.units_type, unit_mg)


def why_uncovered(s: Session, auths: Sequence[Auth]) -> str:
    """Why nobody pays for a session, in the payer's units: when the approved units are used
    up, the clerk asking for more needs to know which units and how many this session takes."""
    reason = s.allocation.reason or "no_authorization"
    if reason != "units_exhausted":
        return REASON_TEXT.get(reason, "no cover")
    on_day = [
        a.grant
        for a in auths
        if _applies(a.grant, s.need) and a.grant.valid_from <= s.need.day <= a.grant.valid_to
    ]
    # Counted as the payer counts them; billing units when approvals of both kinds ran out,
    # since those are what a dose change alters.
    kind: rules.UnitsType = (
        "visits" if on_day and all(g.units_type == "visits" for g in on_day) else "billing_units"
    )
    label = rules.units_label(kind, s.need.billing_unit_mg)
    if kind == "billing_units" and s.need.dose_g is None:
        return f"the authorized {label} are used up"
    needs = rules.session_units(kind, s.need.dose_g, s.need.billing_unit_mg)
    return f"the authorized {label} are used up; it needs {needs}"


def _still_to_book(
    plan: CoursePace, sessions: Sequence[Session]
) -> list[tuple[date, Decimal | None]]:
    """The sessions a course will still need after its last booked one, at its interval, each
    priced like that last one (the best estimate of a dose not planned yet)."""
    ours = [s for s in sessions if s.need.course_id == plan.course_id]
    if not ours or not plan.interval_days:
        return []
    last = max(ours, key=lambda s: (s.need.day, s.need.appointment_id))
    if plan.sessions_left is not None:
        count = plan.sessions_left
    elif plan.ends_on is not None:
        count = max(0, (plan.ends_on - last.need.day).days // plan.interval_days)
    else:
        count = 0
    step = timedelta(days=plan.interval_days)
    return [(last.need.day + step * k, last.money) for k in range(1, count + 1)]


def _at_stake_after(
    g: rules.Grant,
    stops: date,
    sessions: Sequence[Session],
    upcoming: Sequence[Session],
    plans: Sequence[CoursePace],
) -> Decimal | None:
    """What an authorization that stops paying after `stops` leaves unpaid unless it is
    renewed: its booked sessions later than that, and those its courses have still to book."""
    values = [s.money for s in upcoming if _applies(g, s.need) and s.need.day > stops]
    for plan in plans:
        if plan.service_code == g.service_code and g.course_id in (None, plan.course_id):
            values += [money for day, money in _still_to_book(plan, sessions) if day > stops]
    return _sum(values)


def auth_usage(auth: Auth, sessions: Sequence[Session], plans: Sequence[CoursePace]) -> rules.Usage:
    """Units used, scheduled and left, and when to renew, at the pace of its course."""
    g = auth.grant
    mine = [s for s in sessions if s.allocation.authorization_id == g.authorization_id]
    scheduled = sum(s.allocation.units for s in mine)
    last = max((s.need.day for s in mine), default=None)
    plan = next(
        (
            p
            for p in plans
            if p.service_code == g.service_code and g.course_id in (None, p.course_id)
        ),
        None,
    )
    pace = plan.interval_days if plan is not None else None
    per_session = max((s.allocation.units for s in mine), default=None)
    if per_session is None:  # nothing booked on it yet: the next session's size, if known
        upcoming = [s for s in sessions if _applies(g, s.need)]
        per_session = (
            rules.session_units(
                g.units_type, upcoming[0].need.dose_g, upcoming[0].need.billing_unit_mg
            )
            if upcoming
            else None
        )
    usage = rules.usage(
        auth.units_approved,
        auth.units_used,
        scheduled,
        last,
        per_session,
        pace,
        g.valid_from,
        g.valid_to,
        auth.turnaround_days,
        auth.margin_days,
    )
    if usage.projected_exhaustion is None or plan is None or plan.sessions_left is None:
        return usage
    # Units that outlast the course do not run out: nothing left to pay for.
    short = any(
        s.allocation.reason is not None
        and _applies(g, s.need)
        and g.valid_from <= s.need.day <= g.valid_to
        for s in sessions
    )
    if short or usage.units_remaining < plan.sessions_left * (per_session or 0):
        return usage
    stops = rules.renew_by(g.valid_to, None, auth.turnaround_days, auth.margin_days)
    return replace(usage, projected_exhaustion=None, renew_by=stops)


# A renewal counts once it is with the payer: a draft nobody sent renews nothing.
RENEWING = (*rules.APPROVED, "submitted", "pending", "appealed")


def _has_successor(auth: Auth, auths: Sequence[Auth]) -> bool:
    """A renewal approved or with the payer: the same service, starting no later than the day
    after this one ends and lasting beyond it."""
    g = auth.grant
    return any(
        o.grant.authorization_id != g.authorization_id
        and o.grant.service_code == g.service_code
        and o.grant.course_id in (None, g.course_id)
        and o.grant.status in RENEWING
        and o.grant.valid_from <= g.valid_to + timedelta(days=1)
        and o.grant.valid_to > g.valid_to
        for o in auths
    )


def patient_alerts(
    today: date,
    sessions: Sequence[Session],
    auths: Sequence[Auth],
    coverages: Sequence[CoverageTerm],
    plans: Sequence[CoursePace],
    unpaid: Sequence[Session] = (),
    usages: Mapping[uuid.UUID, rules.Usage] | None = None,
) -> list[AlertSpec]:
    """The alerts that should be live for one patient today. `unpaid` are sessions already
    given that no authorization paid for: they stay on the queue until billing settles them
    (a retroactive authorization, or resolved by hand)."""
    alerts: list[AlertSpec] = []
    upcoming = [s for s in sessions if s.need.day >= today]

    def payer_on(day: date) -> uuid.UUID | None:
        c = coverage_on(coverages, day)
        return c.payer_id if c is not None else None

    def uncovered(s: Session, severity: str, detail: str) -> AlertSpec:
        return AlertSpec(
            kind="session_uncovered",
            subject_id=s.need.appointment_id,
            severity=severity,
            due_date=s.need.day,
            payer_id=payer_on(s.need.day),
            authorization_id=None,
            appointment_id=s.need.appointment_id,
            course_id=s.need.course_id,
            amount_at_risk=s.money,
            detail=detail,
        )

    for s in unpaid:
        why = why_uncovered(s, auths)
        alerts.append(uncovered(s, "critical", f"given on {s.need.day} without cover: {why}"))
    for s in upcoming:
        if s.allocation.reason is not None:
            severity = priority.uncovered_session_severity(
                (s.need.day - today).days, _turnaround_on(coverages, s.need.day)
            )
            why = why_uncovered(s, auths)
            alerts.append(uncovered(s, severity, f"session on {s.need.day} is not covered: {why}"))

    needed = {p.service_code for p in plans}
    for auth in auths:
        g = auth.grant
        if g.status == "denied":
            hit = [
                s
                for s in upcoming
                if _applies(g, s.need) and g.valid_from <= s.need.day <= g.valid_to
            ]
            if hit:
                first = min(s.need.day for s in hit)
                alerts.append(
                    AlertSpec(
                        kind="auth_denied_with_bookings",
                        subject_id=g.authorization_id,
                        severity="critical",
                        due_date=first,
                        payer_id=auth.payer_id,
                        authorization_id=g.authorization_id,
                        appointment_id=None,
                        course_id=g.course_id,
                        amount_at_risk=_sum([s.money for s in hit]),
                        detail=f"denied, with {len(hit)} booked session(s) from {first}",
                    )
                )
            continue
        if g.status not in rules.APPROVED or g.valid_to < today or g.service_code not in needed:
            continue
        if _has_successor(auth, auths):
            continue
        usage = (usages or {}).get(g.authorization_id) or auth_usage(auth, sessions, plans)
        assert usage.renew_by is not None
        runs_out = usage.projected_exhaustion
        after = runs_out if runs_out is not None else g.valid_to
        at_risk = _at_stake_after(g, after, sessions, upcoming, plans)
        if runs_out is not None and runs_out <= g.valid_to:
            kind = "auth_units_low"
            detail = (
                f"{usage.units_remaining} of {usage.units_approved} {_units_of(g, sessions)} "
                f"left; runs out {runs_out}; renew by {usage.renew_by}"
            )
        elif (usage.renew_by - today).days <= auth.alert_days:
            kind, detail = "auth_expiring", f"ends {g.valid_to}; renew by {usage.renew_by}"
        else:
            continue
        alerts.append(
            AlertSpec(
                kind=kind,
                subject_id=g.authorization_id,
                severity=_severity(usage.renew_by, today, auth.alert_days),
                due_date=usage.renew_by,
                payer_id=auth.payer_id,
                authorization_id=g.authorization_id,
                appointment_id=None,
                course_id=g.course_id,
                amount_at_risk=at_risk,
                detail=detail,
            )
        )

    for c in coverages:
        if c.effective_to is None:
            continue
        end = c.effective_to
        later = [s for s in upcoming if s.need.day > end and payer_on(s.need.day) is None]
        if later:
            alerts.append(
                AlertSpec(
                    kind="coverage_ended",
                    subject_id=c.coverage_id,
                    severity=_severity(end, today, 14),
                    due_date=end,
                    payer_id=c.payer_id,
                    authorization_id=None,
                    appointment_id=None,
                    course_id=None,
                    amount_at_risk=_sum([s.money for s in later]),
                    detail=f"coverage ends {end}; {len(later)} session(s) booked after it",
                )
            )
    return alerts


_ONE_DAY = timedelta(days=1)


def next_review(
    today: date,
    sessions: Sequence[Session],
    auths: Sequence[Auth],
    coverages: Sequence[CoverageTerm],
    plans: Sequence[CoursePace],
    usages: Mapping[uuid.UUID, rules.Usage] | None = None,
) -> date | None:
    """The first day after today on which time alone could change this patient's alerts:
    a session passes or its due date nears, a renew-by window opens or closes in, an
    authorization or a coverage ends. None when nothing ahead depends on the date. Early is
    harmless (a recompute that changes nothing); late would leave billing uninformed."""
    days: list[date] = []
    for s in sessions:
        day = s.need.day
        window = priority.critical_window(_turnaround_on(coverages, day))
        days += [day - timedelta(days=window), day, day + _ONE_DAY]
    for auth in auths:
        g = auth.grant
        days.append(g.valid_to + timedelta(days=1))
        if g.status in rules.APPROVED:
            known = (usages or {}).get(g.authorization_id)
            renew = (known or auth_usage(auth, sessions, plans)).renew_by
            if renew is not None:
                days += [renew - timedelta(days=auth.alert_days), renew]
    for c in coverages:
        if c.effective_to is not None:
            end = c.effective_to
            days += [end - timedelta(days=14), end, end + timedelta(days=1)]
    ahead = [d for d in days if d > today]
    return min(ahead, default=None)
