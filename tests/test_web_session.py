"""The web app's session: a cookie holding a session token (same limits as bearer tokens),
and a CSRF token every change made with it must carry."""

from __future__ import annotations

import httpx

from tests.support.servers import PASSWORD, Server

# Sign-ins from an address of their own: other tests' failed sign-ins from 127.0.0.1 count
# toward the per-address throttle.
ADDRESS = "127.0.0.6"


def sign_in(server: Server, email: str = "nurse@test.local") -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=ADDRESS)
    with httpx.Client(base_url=server.base_url, timeout=60, transport=transport) as c:
        return c.post("/api/v1/auth/session", data={"username": email, "password": PASSWORD})


def cookie_client(server: Server, response: httpx.Response) -> httpx.Client:
    """A client that sends the session cookie as a browser would (httpx keeps `Secure`
    cookies off plain http, so the header is set by hand)."""
    token = response.cookies["chairside_session"]
    return httpx.Client(
        base_url=server.base_url, timeout=60, headers={"Cookie": f"chairside_session={token}"}
    )


def test_signing_in_sets_a_strict_http_only_cookie(server: Server) -> None:
    r = sign_in(server)
    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"]
    assert "chairside_session=" in cookie
    for attribute in ("HttpOnly", "SameSite=strict", "Secure", "Max-Age=43200", "Path=/"):
        assert attribute.lower() in cookie.lower(), (attribute, cookie)
    assert len(r.json()["csrf_token"]) == 64
    with httpx.Client(
        base_url=server.base_url, transport=httpx.HTTPTransport(local_address=ADDRESS)
    ) as c:
        wrong = c.post(
            "/api/v1/auth/session",
            # An unknown account: a real one's failures would count toward its lockout.
            data={"username": "nobody@test.local", "password": "not-the-password"},
        )
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers


def test_changes_made_with_the_cookie_need_the_csrf_token(server: Server) -> None:
    opened = sign_in(server)
    csrf = opened.json()["csrf_token"]
    with cookie_client(server, opened) as browser:
        me = browser.get("/api/v1/auth/me").json()
        assert me["role"] == "nurse" and me["email"] == "nurse@test.local"
        assert me["csrf_token"] == csrf
        patient = {
            "mrn": "WEB-1001",
            "given_name": "Ada",
            "family_name": "Okafor",
            "birth_date": "1961-04-02",
            "sex": "female",
        }
        forged = browser.post("/api/v1/patients", json=patient)
        assert forged.status_code == 403 and "CSRF" in forged.json()["detail"]
        wrong = browser.post("/api/v1/patients", json=patient, headers={"X-CSRF-Token": "0" * 64})
        assert wrong.status_code == 403
        made = browser.post("/api/v1/patients", json=patient, headers={"X-CSRF-Token": csrf})
        assert made.status_code == 201, made.text
        # Reads need no CSRF token.
        assert browser.get(f"/api/v1/patients/{made.json()['id']}").status_code == 200


def test_signing_out_ends_the_session_for_good(server: Server) -> None:
    opened = sign_in(server)
    csrf = opened.json()["csrf_token"]
    with cookie_client(server, opened) as browser:
        assert browser.delete("/api/v1/auth/session").status_code == 403  # no CSRF token
        out = browser.delete("/api/v1/auth/session", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 204
        assert (
            'chairside_session=""' in out.headers["set-cookie"]
            or "Max-Age=0" in out.headers["set-cookie"]
        )
        assert browser.get("/api/v1/auth/me").status_code == 401


def test_a_bearer_token_needs_no_csrf_token(server: Server, nurse: httpx.Client) -> None:
    """API clients are not browsers: a token they send themselves cannot be forged."""
    r = nurse.post(
        "/api/v1/patients",
        json={
            "mrn": "WEB-1002",
            "given_name": "Bo",
            "family_name": "Lind",
            "birth_date": "1970-01-01",
            "sex": "male",
        },
    )
    assert r.status_code == 201, r.text


def test_another_sites_page_can_neither_sign_in_nor_change_anything(server: Server) -> None:
    """Found in review: a cross-site form could sign a browser in as someone else (login
    CSRF), and a CSRF header outside ASCII answered 500."""
    transport = httpx.HTTPTransport(local_address=ADDRESS)
    with httpx.Client(base_url=server.base_url, timeout=60, transport=transport) as c:
        forged = c.post(
            "/api/v1/auth/session",
            data={"username": "nurse@test.local", "password": PASSWORD},
            headers={"Origin": "https://elsewhere.example"},
        )
        assert forged.status_code == 403 and "set-cookie" not in forged.headers
        ours = c.post(
            "/api/v1/auth/session",
            data={"username": "nurse@test.local", "password": PASSWORD},
            headers={"Origin": server.base_url, "Sec-Fetch-Site": "same-origin"},
        )
        assert ours.status_code == 200, ours.text
    csrf = ours.json()["csrf_token"]
    patient = {
        "mrn": "WEB-1003",
        "given_name": "Lea",
        "family_name": "Moreau",
        "birth_date": "1980-05-05",
        "sex": "female",
    }
    with cookie_client(server, ours) as browser:
        for foreign in (
            {"Origin": "https://elsewhere.example"},
            {"Sec-Fetch-Site": "cross-site"},
        ):
            r = browser.post(
                "/api/v1/patients", json=patient, headers={"X-CSRF-Token": csrf, **foreign}
            )
            assert r.status_code == 403, (foreign, r.text)
        odd = browser.post(
            "/api/v1/patients", json=patient, headers={b"X-CSRF-Token": "été".encode("latin-1")}
        )
        assert odd.status_code == 403, odd.text
        made = browser.post(
            "/api/v1/patients",
            json=patient,
            headers={"X-CSRF-Token": csrf, "Origin": server.base_url},
        )
        assert made.status_code == 201, made.text
