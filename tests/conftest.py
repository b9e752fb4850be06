from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.databases import backends
from tests.support.servers import Server, start_server, stop_server
from tests.support.transactions import migrated_database


@pytest.fixture(scope="session", params=backends())
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One real server per database kind for the whole run; tests make their own centers."""
    srv = start_server(request.param, tmp_path_factory.mktemp(request.param))
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="module", params=backends())
def migrated_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The in-process tier's database: one per kind and test module, at the latest revision."""
    yield from migrated_database(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client("admin") as c:
        yield c


@pytest.fixture
def nurse(server: Server) -> Iterator[httpx.Client]:
    with server.client("nurse") as c:
        yield c


@pytest.fixture
def billing(server: Server) -> Iterator[httpx.Client]:
    with server.client("billing") as c:
        yield c


@pytest.fixture
def anonymous(server: Server) -> Iterator[httpx.Client]:
    with server.client(None) as c:
        yield c


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "concurrency: real concurrent requests against a server")
