"""When a patient's alerts must be looked at again although nothing about them changed."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

from insurance import alert_rules, rules

TODAY = date(2027, 3, 1)
COURSE = uuid.uuid4()


def session(days_ahead: int, covered_by: uuid.UUID | None = None) -> alert_rules.Session:
    need = rules.Need(
        uuid.uuid4(), TODAY + timedelta(days=days_ahead), "J1561", COURSE, Decimal(70), 500
    )
    reason = None if covered_by else "no_authorization"
    return alert_rules.Session(
        need, rules.Allocation(need.appointment_id, covered_by, 1, reason), None
    )


def auth(valid_to_days: int, approved: int = 10, alert_days: int = 14) -> alert_rules.Auth:
    grant = rules.Grant(
        uuid.uuid4(),
        "approved",
        "J1561",
        None,
        TODAY - timedelta(days=30),
        TODAY + timedelta(days=valid_to_days),
        "visits",
        approved,
    )
    return alert_rules.Auth(grant, approved, 0, uuid.uuid4(), 14, 7, alert_days)


PLAN = [alert_rules.CoursePace(COURSE, "J1561", 21, 12)]


def test_nothing_ahead_needs_no_review() -> None:
    assert alert_rules.next_review(TODAY, [], [], [], []) is None


def test_a_session_is_reviewed_when_its_due_date_nears_and_when_it_passes() -> None:
    far = session(30)
    assert alert_rules.next_review(TODAY, [far], [], [], PLAN) == TODAY + timedelta(days=23)
    soon = session(3)
    assert alert_rules.next_review(TODAY, [soon], [], [], PLAN) == TODAY + timedelta(days=3)
    today = session(0)
    assert alert_rules.next_review(TODAY, [today], [], [], PLAN) == TODAY + timedelta(days=1)


def test_an_authorization_is_reviewed_when_its_renewal_window_opens() -> None:
    a = auth(valid_to_days=60)  # renew by valid_to - 14 - 7 = day 39; window opens on day 25
    review = alert_rules.next_review(TODAY, [], [a], [], PLAN)
    assert review == TODAY + timedelta(days=25)
    # The alert rules agree: nothing on the day before, an auth_expiring alert on the day.
    covered = session(40, a.grant.authorization_id)
    day_before = TODAY + timedelta(days=24)
    assert not [
        x
        for x in alert_rules.patient_alerts(day_before, [covered], [a], [], PLAN)
        if "auth" in x.kind
    ]
    assert [x.kind for x in alert_rules.patient_alerts(review, [covered], [a], [], PLAN)] == [
        "auth_expiring"
    ]


def test_review_is_never_today_or_earlier() -> None:
    past = session(-3)
    a = auth(valid_to_days=-1)
    review = alert_rules.next_review(TODAY, [past], [a], [], PLAN)
    assert review is None or review > TODAY
