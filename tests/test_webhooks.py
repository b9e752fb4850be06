"""Events to other systems through a real local HTTP receiver that fails at first."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.support.factories import make_center, make_chair, make_patient
from tests.support.servers import free_port


class Receiver:
    """Answers 503 to the first `failures` deliveries of each event, then 204; keeps what it
    was sent. Per event: events other tests left undelivered may reach the same subscriber,
    and must not use up the failures this test counts on."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.seen: dict[str, int] = {}
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    event = self.headers.get("Chairside-Event-Id", "")
                    tries = receiver.seen[event] = receiver.seen.get(event, 0) + 1
                    code = 503 if tries <= receiver.failures else 204
                    receiver.received.append((dict(self.headers), body, code))
                self.send_response(code)
                self.end_headers()

            def log_message(self, *_: Any) -> None:  # quiet
                pass

        return Handler

    def acknowledged(self, event_type: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                json.loads(body)
                for headers, body, code in self.received
                if code == 204 and headers.get("Chairside-Event-Type") == event_type
            ]


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    r = Receiver(failures=2)
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), r.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield r, f"http://127.0.0.1:{port}/hooks"
    finally:
        server.shutdown()


def deliver(admin: httpx.Client) -> dict[str, Any]:
    r = admin.post("/api/v1/jobs/webhook_delivery/run")
    assert r.status_code == 200, r.text
    run: dict[str, Any] = r.json()
    return run


def test_events_reach_a_subscriber_signed_retried_and_only_once(
    admin: httpx.Client, nurse: httpx.Client, receiver: tuple[Receiver, str]
) -> None:
    received, url = receiver
    created = admin.post(
        "/api/v1/webhooks",
        json={
            "url": url,
            "event_types": ["appointment.booked", "appointment.cancelled", "appointment.reminder"],
        },
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    secret = hook["secret"]
    assert "secret" not in admin.get(f"/api/v1/webhooks/{hook['id']}").json()

    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])["id"]
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    appt = nurse.post(
        "/api/v1/appointments",
        json={
            "patient_id": make_patient(nurse)["id"],
            "chair_id": chair,
            "local_date": tomorrow,
            "local_time": "10:00",
            "duration_minutes": 120,
        },
    ).json()

    # The receiver is down twice: the third attempt gets through.
    for _ in range(6):
        deliver(admin)
        if any(
            e["data"]["appointment_id"] == appt["id"]
            for e in received.acknowledged("appointment.booked")
        ):
            break
    booked = [
        e
        for e in received.acknowledged("appointment.booked")
        if e["data"]["appointment_id"] == appt["id"]
    ]
    assert len(booked) == 1
    event = booked[0]
    assert set(event["data"]) == {
        "appointment_id",
        "patient_id",
        "center_id",
        "chair_id",
        "start",
        "end",
        "status",
    }  # ids and times only
    headers, body, _ = next(
        (h, b, c)
        for h, b, c in received.received
        if c == 204 and json.loads(b)["id"] == event["id"]
    )
    t = headers["Chairside-Timestamp"]
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["Chairside-Signature"] == f"t={t},v1={expected}"

    history = admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries", params={"limit": 500}).json()
    mine = [d for d in history["items"] if d["event_id"] == event["id"]]
    assert len(mine) == 1 and mine[0]["status"] == "delivered"
    assert mine[0]["attempts"] == 3 and mine[0]["last_status_code"] == 204

    # A reminder, once, however often the job runs; and nothing acknowledged is sent again.
    for _ in range(2):
        assert admin.post("/api/v1/jobs/reminders/run").json()["outcome"] == "succeeded"
    for _ in range(6):  # it too is refused twice before it gets through
        deliver(admin)
    reminders = [
        e
        for e in received.acknowledged("appointment.reminder")
        if e["data"]["appointment_id"] == appt["id"]
    ]
    assert len(reminders) == 1
    again = [
        e
        for e in received.acknowledged("appointment.booked")
        if e["data"]["appointment_id"] == appt["id"]
    ]
    assert len(again) == 1

    assert (
        nurse.post(
            "/api/v1/webhooks", json={"url": url, "event_types": ["alert.opened"]}
        ).status_code
        == 403
    )
    bad = admin.post(
        "/api/v1/webhooks", json={"url": "ftp://example.org/x", "event_types": ["alert.opened"]}
    )
    assert bad.status_code == 422
    off = admin.patch(
        f"/api/v1/webhooks/{hook['id']}", json={"active": False}, headers={"If-Match": '"1"'}
    )
    assert off.status_code == 200 and off.json()["active"] is False
