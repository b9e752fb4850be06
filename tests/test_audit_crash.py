"""The audit trail across a crash (issue 19): a portal read commits its audit event before its
answer leaves, so a server killed (SIGKILL) in the middle of a stream of patients' reads may
leave events for answers nobody received, but never an answer without its event."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.databases import backends, drop_database
from tests.support.factories import book, make_center, make_chair, patient_user
from tests.support.servers import Server, start_server
from tests.support.stored import audit_request_ids

READERS = 8
ANSWERS_BEFORE_THE_KILL = 150


@pytest.fixture(params=backends())
def doomed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A server of its own, since the test kills it."""
    srv = start_server(request.param, tmp_path)
    try:
        yield srv
    finally:
        if srv.process.poll() is None:
            srv.process.kill()
        srv.process.wait(10)
        drop_database(srv.database_url)


def test_no_portal_answer_outlives_its_audit_event_when_the_server_is_killed(
    doomed: Server,
) -> None:
    with doomed.client("nurse") as nurse:
        center = make_center(nurse)
        chair = make_chair(nurse, center["id"])["id"]
        patient, portal = patient_user(doomed, nurse)
        start = datetime.combine(
            date.today() + timedelta(days=7), datetime.min.time(), ZoneInfo(center["timezone"])
        ).replace(hour=9)
        booked = book(nurse, patient["id"], chair, start.isoformat(), minutes=150)
        assert booked.status_code == 201, booked.text
    portal.close()
    token = portal.headers["Authorization"]
    paths = ["/api/v1/portal/appointments", f"/api/v1/portal/appointments/{booked.json()['id']}"]

    answered: list[str] = []  # request ids of the 200s a reader received
    cut = 0  # requests the kill cut off
    lock = threading.Lock()
    stop = threading.Event()

    def reader(n: int) -> None:
        nonlocal cut
        with httpx.Client(
            base_url=doomed.base_url, headers={"Authorization": token}, timeout=30
        ) as c:
            i = n
            while not stop.is_set():
                try:
                    r = c.get(paths[i % 2])
                except httpx.HTTPError:
                    with lock:
                        cut += 1
                    return
                i += 1
                assert r.status_code == 200, r.text
                with lock:
                    answered.append(r.headers["x-request-id"])

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(READERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while len(answered) < ANSWERS_BEFORE_THE_KILL and time.monotonic() < deadline:
        time.sleep(0.01)
    # The readers are mid-request, each sending its next read as soon as one is answered.
    doomed.process.send_signal(signal.SIGKILL)
    doomed.process.wait(10)
    stop.set()
    for t in threads:
        t.join(60)

    assert len(answered) >= ANSWERS_BEFORE_THE_KILL, "the readers were too slow to start"
    assert cut >= 1, "the kill cut no request off: it did not land mid-stream"
    recorded = audit_request_ids(doomed, role="patient", outcome="success")
    unrecorded = set(answered) - recorded
    assert not unrecorded, f"{len(unrecorded)} of {len(answered)} answers have no audit event"
