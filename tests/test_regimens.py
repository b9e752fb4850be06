"""Usual regimens and usual dose ranges are data: admins edit them, orders follow them."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.factories import make_patient, order, weekday_center


def regimen(api: httpx.Client, code: str) -> dict[str, Any]:
    items = api.get("/api/v1/regimens", params={"limit": 500}).json()["items"]
    return next(r for r in items if r["diagnosis_code"] == code)


def product(api: httpx.Client, hcpcs: str) -> dict[str, Any]:
    items = api.get("/api/v1/products", params={"limit": 500}).json()["items"]
    return next(p for p in items if p["hcpcs_code"] == hcpcs)


MAINTENANCE = {
    "dose_g_per_kg": 1,
    "interval_days": 28,
    "window_min_days": 21,
    "window_max_days": 35,
    "cycles": 6,
}


def test_the_seeded_regimens_are_readable_and_only_admins_change_them(
    nurse: httpx.Client, admin: httpx.Client
) -> None:
    cidp = regimen(nurse, "G61.81")
    assert cidp["induction"]["days"] == 5 and cidp["maintenance"]["interval_days"] == 21
    assert regimen(nurse, "G61.0")["maintenance"] is None
    url = f"/api/v1/regimens/{cidp['id']}"
    assert nurse.patch(url, json={"name": "x"}, headers={"If-Match": '"1"'}).status_code == 403
    assert nurse.post("/api/v1/regimens", json={}).status_code in (403, 422)


def test_an_edited_regimen_shapes_new_orders_only(nurse: httpx.Client, admin: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    code = "G70.00"  # myasthenia gravis: no regimen yet, so an order must state its phases
    assert order(nurse, center["id"], diagnosis_code=code).status_code == 422
    created = admin.post(
        "/api/v1/regimens",
        json={"diagnosis_code": code, "name": "MG maintenance", "maintenance": MAINTENANCE},
    )
    assert created.status_code == 201, created.text
    first = order(nurse, center["id"], diagnosis_code=code).json()
    assert first["induction"] is None and first["maintenance"]["window_max_days"] == 35

    changed = admin.patch(
        created.headers["Location"],
        json={"maintenance": {**MAINTENANCE, "interval_days": 35}},
        headers={"If-Match": created.headers["ETag"]},
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    second = order(nurse, center["id"], diagnosis_code=code).json()
    assert second["maintenance"]["interval_days"] == 35
    assert nurse.get(f"/api/v1/courses/{first['id']}").json()["maintenance"]["interval_days"] == 28
    stale = admin.patch(
        created.headers["Location"], json={"name": "old"}, headers={"If-Match": '"1"'}
    )
    assert stale.status_code == 412


def test_bad_regimens_are_refused_and_nothing_changes(admin: httpx.Client) -> None:
    bad: list[dict[str, Any]] = [
        {"diagnosis_code": "G61.81", "name": "again", "maintenance": MAINTENANCE},  # 409
        {"diagnosis_code": "G62.0", "name": "no phases"},
        {
            "diagnosis_code": "G62.1",
            "name": "an end date",
            "maintenance": {**MAINTENANCE, "cycles": None, "end_date": "2027-06-01"},
        },
        {"diagnosis_code": "neuropathy", "name": "not ICD-10", "maintenance": MAINTENANCE},
        {
            "diagnosis_code": "G62.2",
            "name": "six days",
            "induction": {"total_dose_g_per_kg": 2, "days": 6},
        },
    ]
    codes = [r["diagnosis_code"] for r in admin.get("/api/v1/regimens").json()["items"]]
    for body in bad:
        r = admin.post("/api/v1/regimens", json=body)
        assert r.status_code == (409 if body["diagnosis_code"] == "G61.81" else 422), body
        assert r.headers["content-type"] == "application/problem+json"
    cidp = regimen(admin, "G61.81")
    emptied = admin.patch(
        f"/api/v1/regimens/{cidp['id']}",
        json={"induction": None, "maintenance": None},
        headers={"If-Match": f'"{cidp["version"]}"'},
    )
    assert emptied.status_code == 422
    assert regimen(admin, "G61.81") == cidp
    assert [r["diagnosis_code"] for r in admin.get("/api/v1/regimens").json()["items"]] == codes


def test_the_usual_dose_range_comes_from_the_product(
    nurse: httpx.Client, admin: httpx.Client
) -> None:
    center, _ = weekday_center(nurse)
    infliximab = product(nurse, "J1745")
    assert infliximab["usual_dose_max_g_per_kg"] == 0.01
    maintenance = {**MAINTENANCE, "dose_g_per_kg": 0.005}  # 5 mg/kg
    ok = order(
        nurse, center["id"], product_id=infliximab["id"], induction=None, maintenance=maintenance
    )
    assert ok.status_code == 201, ok.text
    # The IVIG dose on an infliximab order is refused unless the reason is given.
    ivig_dose = {**MAINTENANCE, "dose_g_per_kg": 1}
    r = order(
        nurse, center["id"], product_id=infliximab["id"], induction=None, maintenance=ivig_dose
    )
    assert r.status_code == 422 and "Infliximab" in r.json()["detail"]

    # A product retired from the catalog takes no new orders.
    gamunex = product(admin, "J1561")
    url = f"/api/v1/products/{gamunex['id']}"
    retired = admin.patch(
        url, json={"active": False}, headers={"If-Match": f'"{gamunex["version"]}"'}
    )
    assert retired.status_code == 200
    try:
        patient = make_patient(nurse, weight_kg=70)["id"]
        r = order(nurse, center["id"], patient_id=patient, product_id=gamunex["id"])
        assert r.status_code == 422 and "no longer in use" in r.json()["detail"]
    finally:
        back = admin.patch(
            url, json={"active": True}, headers={"If-Match": retired.headers["ETag"]}
        )
        assert back.status_code == 200
    inverted = admin.patch(
        url,
        json={"usual_dose_min_g_per_kg": 4},
        headers={"If-Match": back.headers["ETag"]},
    )
    assert inverted.status_code == 422
    assert product(admin, "J1561")["usual_dose_min_g_per_kg"] == 0.1
