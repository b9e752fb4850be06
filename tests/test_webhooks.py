"""Events to other systems through a real local HTTP receiver, checked as a receiver would:
with the `standardwebhooks` library (Standard Webhooks), never with our own signing code."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert, select, update
from standardwebhooks import Webhook, WebhookVerificationError

from app.migrate import downgrade, upgrade
from core.db import Database
from core.outbox import signing
from core.outbox.delivery import deliver as deliver_now
from core.outbox.events import emit
from core.outbox.models import WebhookSubscription
from tests.support.databases import backends, drop_database, fresh_database
from tests.support.factories import make_center, make_chair, make_patient
from tests.support.servers import Server, free_port

Attempt = tuple[dict[str, str], bytes, int]


class Receiver:
    """Answers 503 to the first `failures` deliveries of each event, then 204; keeps what it
    was sent. Per event: events other tests left undelivered may reach the same subscriber,
    and must not use up the failures this test counts on."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.seen: dict[str, int] = {}
        self.received: list[Attempt] = []
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    event = self.headers.get("webhook-id", "")
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
                for _, body, code in self.received
                if code == 204 and json.loads(body)["type"] == event_type
            ]

    def attempts(self, appointment_id: str) -> list[Attempt]:
        """Every attempt at delivering this appointment's booking, in the order they came."""
        with self.lock:
            return [
                (h, b, c)
                for h, b, c in self.received
                if json.loads(b)["data"].get("appointment_id") == appointment_id
            ]


@contextmanager
def listening(receiver: Receiver) -> Iterator[str]:
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), receiver.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/hooks"
    finally:
        server.shutdown()


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    r = Receiver(failures=2)
    with listening(r) as url:
        yield r, url


@pytest.fixture
def prompt_receiver() -> Iterator[tuple[Receiver, str]]:
    """One that takes every delivery at the first attempt."""
    r = Receiver(failures=0)
    with listening(r) as url:
        yield r, url


@pytest.fixture
def subscribe(admin: httpx.Client) -> Iterator[Callable[..., dict[str, Any]]]:
    """Subscribes; each subscription is paused afterwards, so later tests' delivery runs do
    not keep knocking at a receiver that has gone."""
    made: list[dict[str, Any]] = []

    def make(url: str, **body: Any) -> dict[str, Any]:
        r = admin.post("/api/v1/webhooks", json={"url": url, **body})
        assert r.status_code == 201, r.text
        hook: dict[str, Any] = r.json()
        made.append(hook)
        return hook

    yield make
    for hook in made:
        etag = admin.get(f"/api/v1/webhooks/{hook['id']}").headers["ETag"]
        admin.patch(
            f"/api/v1/webhooks/{hook['id']}", json={"active": False}, headers={"If-Match": etag}
        )


def deliver(admin: httpx.Client) -> dict[str, Any]:
    r = admin.post("/api/v1/jobs/webhook_delivery/run")
    assert r.status_code == 200, r.text
    run: dict[str, Any] = r.json()
    return run


def verifies(secret: str | bytes, attempt: Attempt) -> bool:
    """What a receiver holding `secret` makes of an attempt: the library's verdict."""
    headers, body, _ = attempt
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


def standard_secret(size: int) -> str:
    return "whsec_" + base64.b64encode(bytes(range(7, 7 + size))).decode()


class Bookings:
    """Appointments booked one after another on one chair, each an `appointment.booked`."""

    def __init__(self, nurse: httpx.Client) -> None:
        self.nurse = nurse
        center = make_center(nurse)
        self.chair = make_chair(nurse, center["id"])["id"]
        self.patient = make_patient(nurse)["id"]
        self.days = 0

    def book(self) -> str:
        self.days += 1
        r = self.nurse.post(
            "/api/v1/appointments",
            json={
                "patient_id": self.patient,
                "chair_id": self.chair,
                "local_date": (date.today() + timedelta(days=self.days)).isoformat(),
                "local_time": "10:00",
                "duration_minutes": 60,
            },
        )
        assert r.status_code == 201, r.text
        appointment_id: str = r.json()["id"]
        return appointment_id


def delivered(admin: httpx.Client, received: Receiver, appointment_id: str) -> list[Attempt]:
    """Runs the delivery job until the booking is acknowledged; every attempt at it."""
    for _ in range(6):
        deliver(admin)
        attempts = received.attempts(appointment_id)
        if any(code == 204 for _, _, code in attempts):
            return attempts
    raise AssertionError("the booking was never delivered")


# --- through a running server ----------------------------------------------------------------


def test_events_reach_a_subscriber_signed_retried_and_only_once(
    admin: httpx.Client,
    nurse: httpx.Client,
    receiver: tuple[Receiver, str],
    subscribe: Callable[..., dict[str, Any]],
) -> None:
    received, url = receiver
    hook = subscribe(
        url, event_types=["appointment.booked", "appointment.cancelled", "appointment.reminder"]
    )
    secret = hook["secret"]
    assert secret.startswith("whsec_") and len(signing.key_of(secret)) == 32
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
    attempts = delivered(admin, received, appt["id"])
    assert [code for _, _, code in attempts] == [503, 503, 204]
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

    # Every attempt is signed; all carry the event's id, so the receiver can drop repeats.
    assert {h["webhook-id"] for h, _, _ in attempts} == {event["id"]}
    for attempt in attempts:
        headers, body, _ = attempt
        assert verifies(secret, attempt)
        assert Webhook(secret).verify(body, headers) == event
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
        assert headers["webhook-signature"].startswith("v1,")
        assert " " not in headers["webhook-signature"]  # one secret, one signature
        assert not any(name.lower().startswith("chairside-") for name in headers)
    headers, body, code = attempts[-1]
    assert not verifies(secret, (headers, body.replace(b'"booked"', b'"cancelled"'), code))
    assert not verifies(signing.new_secret(), attempts[-1])
    other_event = {**headers, "webhook-id": str(uuid.uuid4())}
    assert not verifies(secret, (other_event, body, code))
    an_hour_ago = {**headers, "webhook-timestamp": str(int(time.time()) - 3600)}
    assert not verifies(secret, (an_hour_ago, body, code))  # replays are refused

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


def test_a_secret_given_must_be_whsec_base64_of_24_to_64_bytes(
    admin: httpx.Client,
    nurse: httpx.Client,
    prompt_receiver: tuple[Receiver, str],
    subscribe: Callable[..., dict[str, Any]],
) -> None:
    received, url = prompt_receiver
    refused = [
        "a-free-form-secret-of-old-1234567890",  # what was accepted before
        "whsec_" + base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),  # URL-safe alphabet
        standard_secret(23),
        standard_secret(65),
        "whsec_" + "A" * 41,  # not base64 at all: 41 characters cannot be
        "whsec_" + base64.b64encode(bytes(32)).decode() + "=",
        standard_secret(32).removeprefix("whsec_"),
    ]
    for secret in refused:
        r = admin.post(
            "/api/v1/webhooks",
            json={"url": url, "event_types": ["appointment.booked"], "secret": secret},
        )
        assert r.status_code == 422, secret
        assert ["body", "secret"] in [e["loc"] for e in r.json()["errors"]], r.text
        assert secret not in r.text  # a secret is never repeated back

    for size in (24, 64):  # taken, and given back as they came (these hear of no booking)
        given = standard_secret(size)
        assert subscribe(url, event_types=["waitlist.offer"], secret=given)["secret"] == given
    unpadded = standard_secret(40).rstrip("=")  # how some libraries print them
    assert subscribe(url, event_types=["appointment.booked"], secret=unpadded)["secret"] == unpadded

    bookings = Bookings(nurse)
    attempts = delivered(admin, received, bookings.book())
    assert verifies(unpadded, attempts[-1])
    assert verifies(signing.key_of(unpadded), attempts[-1])  # the raw key, as bytes, too


def test_a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends(
    admin: httpx.Client,
    nurse: httpx.Client,
    server: Server,
    prompt_receiver: tuple[Receiver, str],
    subscribe: Callable[..., dict[str, Any]],
) -> None:
    received, url = prompt_receiver
    first = standard_secret(32)
    hook = subscribe(url, event_types=["appointment.booked"], secret=first)
    path = f"/api/v1/webhooks/{hook['id']}/rotate-secret"
    bookings = Bookings(nurse)

    # Refusals first: none of them changes anything.
    assert admin.post(path, json={}).status_code == 428
    assert admin.post(path, json={}, headers={"If-Match": '"7"'}).status_code == 412
    assert nurse.post(path, json={}, headers={"If-Match": '"1"'}).status_code == 403
    nowhere = f"/api/v1/webhooks/{uuid.uuid4()}/rotate-secret"
    assert admin.post(nowhere, json={}, headers={"If-Match": '"1"'}).status_code == 404
    for body in (
        {"secret": first},  # the current one again
        {"secret": "not-a-standard-secret-at-all-0000"},
        {"overlap_minutes": 10081},
        {"overlap_minutes": -1},
        {"overlap": 5},
    ):
        r = admin.post(path, json=body, headers={"If-Match": '"1"'})
        assert r.status_code == 422, (body, r.text)
    (attempt,) = delivered(admin, received, bookings.book())
    assert verifies(first, attempt)

    # A rotation: the new secret, once, and the old one honoured for a day.
    before = datetime.now(UTC)
    r = admin.post(path, json={}, headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"2"'
    rotated = r.json()
    second = rotated["secret"]
    assert second.startswith("whsec_") and len(signing.key_of(second)) == 32 and second != first
    until = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert before + timedelta(minutes=1440) <= until <= datetime.now(UTC) + timedelta(minutes=1440)
    shown = admin.get(f"/api/v1/webhooks/{hook['id']}").json()
    assert "secret" not in shown and shown["previous_secret_expires_at"] is not None
    assert admin.post(path, json={}, headers={"If-Match": '"1"'}).status_code == 412  # stale

    (attempt,) = delivered(admin, received, bookings.book())
    assert verifies(second, attempt) and verifies(first, attempt)  # either receiver accepts it
    new_signature, old_signature = attempt[0]["webhook-signature"].split(" ")
    assert verifies(second, ({**attempt[0], "webhook-signature": new_signature}, *attempt[1:]))
    assert verifies(first, ({**attempt[0], "webhook-signature": old_signature}, *attempt[1:]))
    tampered = (attempt[0], attempt[1] + b" ", attempt[2])
    assert not verifies(second, tampered) and not verifies(first, tampered)
    assert not verifies(signing.new_secret(), attempt)

    # Once the overlap is over (moved into the past here, rather than waited for a day), the
    # old secret signs nothing more.
    asyncio.run(_end_overlap(server, hook["id"]))
    assert admin.get(f"/api/v1/webhooks/{hook['id']}").json()["previous_secret_expires_at"] is None
    (attempt,) = delivered(admin, received, bookings.book())
    assert verifies(second, attempt) and not verifies(first, attempt)
    assert " " not in attempt[0]["webhook-signature"]

    # A rotation during an overlap ends the older secret's at once: two secrets at most.
    third = standard_secret(48)
    r = admin.post(path, json={"secret": third, "overlap_minutes": 60}, headers={"If-Match": '"2"'})
    assert r.status_code == 200 and r.json()["secret"] == third, r.text
    r = admin.post(path, json={"overlap_minutes": 60}, headers={"If-Match": '"3"'})
    assert r.status_code == 200, r.text
    fourth = r.json()["secret"]
    (attempt,) = delivered(admin, received, bookings.book())
    assert verifies(fourth, attempt) and verifies(third, attempt)
    assert not verifies(second, attempt)
    assert len(attempt[0]["webhook-signature"].split(" ")) == 2

    # No overlap: the new secret alone, from the next delivery on.
    r = admin.post(path, json={"overlap_minutes": 0}, headers={"If-Match": '"4"'})
    assert r.status_code == 200 and r.json()["previous_secret_expires_at"] is None, r.text
    fifth = r.json()["secret"]
    (attempt,) = delivered(admin, received, bookings.book())
    assert verifies(fifth, attempt)
    assert not verifies(fourth, attempt) and not verifies(third, attempt)

    trail = admin.get(
        "/api/v1/audit-events",
        params={"resource_type": "webhook", "action": "update", "limit": 500},
    ).json()["items"]
    mine = [e for e in trail if e["resource_id"] == hook["id"] and e["outcome"] == "success"]
    assert len(mine) == 4  # the four rotations that went through


async def _end_overlap(server: Server, webhook_id: str) -> None:
    db = Database(server.database_url)
    try:
        async with db.unit_of_work() as session:
            await session.execute(
                update(WebhookSubscription)
                .where(WebhookSubscription.id == uuid.UUID(webhook_id))
                .values(previous_secret_expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
    finally:
        await db.dispose()


# --- secrets from before the standard (migration 0032) ---------------------------------------


@pytest.fixture(params=backends())
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = fresh_database(request.param, tmp_path)
    try:
        yield url
    finally:
        drop_database(url)


def test_an_old_secret_becomes_a_standard_one_for_the_same_key_and_back(empty_db: str) -> None:
    raw = "an-old-free-form-secret-given-in-2026"
    upgrade(empty_db, "0031")
    old_hook, new_hook = uuid.uuid4(), uuid.uuid4()
    received = Receiver(failures=0)

    async def subscribe_before(url: str) -> None:
        db = Database(empty_db, pool_size=1, max_overflow=0)
        try:
            async with db.unit_of_work() as session:
                # The table as revision 0031 has it: no rotation columns yet.
                await session.execute(
                    insert(WebhookSubscription).values(
                        id=old_hook,
                        url=url,
                        secret=raw,
                        event_types=["alert.opened"],
                        active=True,
                        created_at=datetime.now(UTC) - timedelta(minutes=1),
                        version=1,
                    )
                )
        finally:
            await db.dispose()

    async def an_event_delivered() -> dict[str, str]:
        db = Database(empty_db, pool_size=1, max_overflow=0)
        try:
            async with db.unit_of_work() as session:
                session.add(
                    WebhookSubscription(
                        id=new_hook,
                        url="http://127.0.0.1:9/unused",
                        secret=signing.new_secret(),
                        event_types=["waitlist.offer"],
                    )
                )
                await emit(session, "alert.opened", alert_id=uuid.uuid4())
            counts = await deliver_now(db, retry_seconds=0)
            assert counts["delivered"] == 1, counts
            async with db.unit_of_work(write=False) as session:
                rows = await session.execute(
                    select(WebhookSubscription.id, WebhookSubscription.secret)
                )
                return {str(i): s for i, s in rows}
        finally:
            await db.dispose()

    with listening(received) as url:
        asyncio.run(subscribe_before(url))
        upgrade(empty_db)
        secrets = asyncio.run(an_event_delivered())
    converted = secrets[str(old_hook)]
    assert converted == "whsec_" + base64.b64encode(raw.encode()).decode()
    (attempt,) = received.received
    assert verifies(converted, attempt)  # told the new form,
    assert verifies(raw.encode(), attempt)  # or still holding the old key: both verify

    downgrade(empty_db, "0031")

    async def stored() -> dict[str, str]:
        db = Database(empty_db, pool_size=1, max_overflow=0)
        try:
            async with db.unit_of_work(write=False) as session:
                rows = await session.execute(
                    select(WebhookSubscription.id, WebhookSubscription.secret)
                )
                return {str(i): s for i, s in rows}
        finally:
            await db.dispose()

    back = asyncio.run(stored())
    assert back[str(old_hook)] == raw
    # One made since cannot be said in the old form: it stays as it was (see the migration).
    assert back[str(new_hook)] == secrets[str(new_hook)]
    upgrade(empty_db)
    assert asyncio.run(stored())[str(old_hook)] == converted


# --- the rules themselves --------------------------------------------------------------------

OLD_SECRETS = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=16, max_size=200
)


@given(OLD_SECRETS)
def test_converting_an_old_secret_keeps_its_key_and_goes_back(raw: str) -> None:
    converted = signing.from_legacy(raw)
    assert converted.startswith("whsec_") and len(converted) <= 300
    assert signing.key_of(converted) == raw.encode()
    assert signing.to_legacy(converted) == raw
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert Webhook(converted).sign("msg_1", now, "{}") == signing.signature(
        converted, "msg_1", int(now.timestamp()), b"{}"
    )


@given(st.binary(min_size=24, max_size=64), st.binary(max_size=300))
def test_a_signature_is_what_the_library_expects(key: bytes, body: bytes) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    assert signing.check_secret(secret) == secret
    text = body.decode("latin-1")  # the library signs text; ours are ASCII JSON anyway
    at = datetime(2026, 12, 1, 20, 30, tzinfo=UTC)
    assert signing.signature(secret, "evt", int(at.timestamp()), text.encode()) == Webhook(
        secret
    ).sign("evt", at, text)


def test_new_secrets_are_32_random_bytes_and_never_repeat() -> None:
    made = {signing.new_secret() for _ in range(200)}
    assert len(made) == 200
    assert all(len(signing.check_secret(s)) == 50 and len(signing.key_of(s)) == 32 for s in made)


def test_the_old_secret_signs_until_its_overlap_ends_exclusive() -> None:
    until = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert signing.signing_secrets("new", "old", until, until - timedelta(seconds=1)) == [
        "new",
        "old",
    ]
    assert signing.signing_secrets("new", "old", until, until) == ["new"]
    assert signing.signing_secrets("new", None, None, until) == ["new"]
