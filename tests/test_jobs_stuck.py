"""The nightly booking run skips a stuck course while nothing it could use has changed, and
tries it again once something has (here: a chair of the kind it needs)."""

from __future__ import annotations

import httpx

from tests.support.factories import make_center, make_chair
from tests.test_jobs import booked, course_starting_soon, run


def test_a_stuck_course_is_skipped_until_room_could_have_been_freed(
    admin: httpx.Client, nurse: httpx.Client
) -> None:
    center = make_center(nurse)
    make_chair(nurse, center["id"])
    course = course_starting_soon(nurse, center["id"], chair_kind="bed")  # no bed here
    first = run(admin, center["id"])["counts"]
    assert first["courses"] == 1 and first["unbookable"] == 1 and first["booked"] == 0

    again = run(admin, center["id"])["counts"]
    assert again["skipped"] == 1 and again["courses"] == 0 and again["booked"] == 0

    make_chair(nurse, center["id"], kind="bed")  # chairs changed: the key no longer holds
    third = run(admin, center["id"])["counts"]
    assert third["skipped"] == 0 and third["courses"] == 1 and third["unbookable"] == 0
    assert third["booked"] == 3 and len(booked(nurse, course["patient_id"])) == 3
    assert run(admin, center["id"])["counts"]["courses"] == 0  # booked: nothing to do
