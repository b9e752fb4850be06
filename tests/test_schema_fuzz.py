"""The API against its own OpenAPI document, with generated requests for every operation, as
each role: no server error, and every answer (status, content type, body) as documented.

Examples are kept few per operation so the whole suite stays fast; what runs is still every
operation, for every role, on both databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.factories import patient_user
from tests.support.servers import Server, start_server, stop_server

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 4
# Signing out would end the session the other examples use; job runs are exercised elsewhere
# and a generated one could start a whole booking run.
# Signing out ends the very token the fuzzer calls with: every operation after it would be
# tried only as a 401 (see the check at the end of the test).
SKIP = {
    ("POST", "/api/v1/auth/logout"),
    ("DELETE", "/api/v1/auth/session"),
    ("POST", "/api/v1/jobs/{name}/run"),
}


@pytest.fixture
def fuzzed(server: Server, tmp_path: Path) -> Iterator[Server]:
    """A server of its own: generated sign-ins with wrong passwords lock its client address
    out of signing in for a while (the sign-in throttle), which no other test must inherit."""
    srv = start_server(server.kind, tmp_path)
    try:
        yield srv
    finally:
        stop_server(srv)


def tokens(server: Server, nurse: httpx.Client) -> dict[str, str]:
    made = {role: server.login(f"{role}@test.local") for role in ("admin", "nurse", "billing")}
    _, patient = patient_user(server, nurse)
    made["patient"] = patient.headers["Authorization"].split()[1]
    patient.close()
    return made


def checker(operation: Any, headers: dict[str, str]) -> Any:
    """A few generated requests to the operation, each answer checked."""

    @settings(
        max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    return check


def test_every_operation_answers_as_documented(fuzzed: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed.base_url}/openapi.json")
    with fuzzed.client("nurse") as nurse:
        by_role = tokens(fuzzed, nurse)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        operations += 1
        for role, token in by_role.items():
            check = checker(operation, {"Authorization": f"Bearer {token}"})
            try:
                check()
            except (Exception, BaseExceptionGroup) as exc:  # every one tried, all reported
                failures.append(f"{role} {operation.method.upper()} {operation.path}: {exc}")
    assert operations > 60
    assert failures == [], "\n\n".join(failures)
    # Every role's token still works: the operations were tried as that role, not as a 401.
    for role, token in by_role.items():
        me = httpx.get(
            f"{fuzzed.base_url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert me.status_code == 200, f"{role}'s token stopped working during the run"
