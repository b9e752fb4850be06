"""The drug catalog and the infusion-time calculator through the API."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.factories import make_center


def seeded(api: httpx.Client, name: str) -> dict[str, Any]:
    items = api.get("/api/v1/products", params={"limit": 500}).json()["items"]
    return next(p for p in items if p["name"] == name)


def product_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": f"Test IG {uuid.uuid4().hex[:6]}",
        "hcpcs_code": "J1599",
        "billing_unit_mg": 500,
        "concentration_pct": 10,
        "titration": {
            "initial_rate_mg_per_kg_min": 1,
            "step_mg_per_kg_min": 1,
            "step_interval_minutes": 30,
        },
        "max_rate_mg_per_kg_min": 6,
        "premed_minutes": 30,
        "observation_minutes": 30,
        "vial_sizes_g": [5, 10, 20],
        **overrides,
    }


def test_the_catalog_is_seeded_and_not_ivig_only(nurse: httpx.Client) -> None:
    items = nurse.get("/api/v1/products", params={"limit": 500}).json()["items"]
    codes = {p["hcpcs_code"] for p in items}
    assert {"J1561", "J1459", "J1569", "J1568", "J1576"} <= codes  # the five 10 % IVIGs
    assert "J1745" in codes  # infliximab: not everything is IVIG
    gamunex = seeded(nurse, "Gamunex-C 10%")
    assert gamunex["titration"]["initial_rate_mg_per_kg_min"] == 2
    assert gamunex["max_rate_mg_per_kg_min"] == 8 and gamunex["billing_unit_mg"] == 500


def test_infusion_time_shows_why_a_session_is_long(nurse: httpx.Client) -> None:
    gamunex = seeded(nurse, "Gamunex-C 10%")
    center = make_center(nurse)  # turnover 15 by default
    body = {"product_id": gamunex["id"], "weight_kg": 70, "dose_g_per_kg": 1}
    r = nurse.post("/api/v1/infusion-time", json={**body, "center_id": center["id"]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["dose_g"] == 70 and out["infusion_minutes"] == 170
    assert out["breakdown"] == {"premed": 30, "infusion": 170, "observation": 30, "turnover": 15}
    assert out["chair_minutes"] == 255  # 245 rounded up to the 15-minute grid
    assert [s["rate_mg_per_kg_min"] for s in out["steps"]] == [2, 4, 6, 8]

    first = nurse.post("/api/v1/infusion-time", json={**body, "first_dose": True}).json()
    assert first["breakdown"]["observation"] == 60 and first["breakdown"]["turnover"] == 0
    capped = nurse.post("/api/v1/infusion-time", json={**body, "max_rate_mg_per_kg_min": 4}).json()
    assert (
        capped["infusion_minutes"] == 265
        and max(s["rate_mg_per_kg_min"] for s in capped["steps"]) == 4
    )
    risky = nurse.post("/api/v1/infusion-time", json={**body, "risk_flags": ["renal"]}).json()
    assert risky["infusion_minutes"] == 500 and risky["steps"] == [
        {"minute": 0, "rate_mg_per_kg_min": 2}
    ]
    grams = nurse.post(
        "/api/v1/infusion-time", json={"product_id": gamunex["id"], "weight_kg": 70, "dose_g": 70}
    ).json()
    assert grams["infusion_minutes"] == 170


def test_infusion_time_refuses_bad_requests(nurse: httpx.Client) -> None:
    gamunex = seeded(nurse, "Gamunex-C 10%")
    base = {"product_id": gamunex["id"], "weight_kg": 70}
    for body in (
        base,
        {**base, "dose_g": 70, "dose_g_per_kg": 1},
        {**base, "dose_g_per_kg": 3.5},
        {**base, "dose_g_per_kg": 1, "risk_flags": ["vibes"]},
        {**base, "dose_g_per_kg": 1, "weight_kg": 0},
    ):
        r = nurse.post("/api/v1/infusion-time", json=body)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    r = nurse.post(
        "/api/v1/infusion-time", json={**base, "product_id": str(uuid.uuid4()), "dose_g": 5}
    )
    assert r.status_code == 404


def test_only_admins_edit_the_catalog(admin: httpx.Client, nurse: httpx.Client) -> None:
    assert nurse.post("/api/v1/products", json=product_body()).status_code == 403
    created = admin.post("/api/v1/products", json=product_body())
    assert created.status_code == 201, created.text
    product = created.json()
    assert admin.get(created.headers["Location"]).json() == product
    url = f"/api/v1/products/{product['id']}"
    assert (
        nurse.patch(
            url, json={"max_rate_mg_per_kg_min": 4}, headers={"If-Match": '"1"'}
        ).status_code
        == 403
    )

    body = {"product_id": product["id"], "weight_kg": 50, "dose_g_per_kg": 1}
    before = nurse.post("/api/v1/infusion-time", json=body).json()["infusion_minutes"]
    r = admin.patch(url, json={"max_rate_mg_per_kg_min": 3}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["version"] == 2 and r.headers["ETag"] == '"2"'
    after = nurse.post("/api/v1/infusion-time", json=body).json()["infusion_minutes"]
    assert after > before
    bad = admin.patch(url, json={"max_rate_mg_per_kg_min": 0.5}, headers={"If-Match": '"2"'})
    assert bad.status_code == 422  # below the initial rate
    assert admin.get(url).json()["max_rate_mg_per_kg_min"] == 3


def test_bad_products_are_refused_and_not_stored(admin: httpx.Client) -> None:
    def count() -> int:
        return len(admin.get("/api/v1/products", params={"limit": 500}).json()["items"])

    before = count()
    no_titration = product_body()
    del no_titration["titration"]
    for body in (
        no_titration,
        product_body(max_rate_mg_per_kg_min=0.5),  # below the initial rate
        product_body(hcpcs_code="IVIG"),
        product_body(vial_sizes_g=[]),
        product_body(billing_unit_mg=0),
    ):
        r = admin.post("/api/v1/products", json=body)
        assert r.status_code == 422, body
    name = f"Dup {uuid.uuid4().hex[:6]}"
    assert admin.post("/api/v1/products", json=product_body(name=name)).status_code == 201
    assert admin.post("/api/v1/products", json=product_body(name=name)).status_code == 409
    assert count() == before + 1
