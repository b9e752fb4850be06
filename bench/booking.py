"""Booking throughput benchmark: POST /api/v1/appointments against a one-INSERT floor.

For each database kind this starts the real Chairside server on a fresh, migrated database,
fills one center through the API, then drives a planned set of valid, non-conflicting bookings
(spread over the center's horizon: --days of it) with N concurrent clients. A "bare" app
(defined below, served by uvicorn in a subprocess of its own, with as many workers) does
exactly one INSERT per request through the same driver, pool and transaction mode; it is the
floor that the booking figures are compared with. The bare app also answers one SELECT by
primary key (GET /bare/{id}), the floor of bench/portal.py.

    .venv/bin/python -m bench.booking [--db sqlite|postgresql|both] [--clients 32]
                                      [--requests 2000] [--workers 1] [--scheduler]
                                      [--port 8700]

--workers runs the API (and the floor) with that many uvicorn worker processes; --scheduler
runs `chairside scheduler` beside them as a process of its own, as a deployment does. Printed
per endpoint: requests/s, p50/p99 latency, the CPU share of this process (the load
generator), the server's CPU milliseconds a request (all its processes, from /proc), then the
goal: booking throughput >= 15 % of the floor's and p99 <= 100 ms, each met or NOT met, and
the memory of every server process at the end. `--requests 30 --clients 4
--patients 40 --days 5` is the smoke run the suite makes. It prints figures; it asserts
nothing about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Column, MetaData, Table, Text, Uuid, insert, select
from sqlalchemy.exc import SQLAlchemyError

from app.auth.service import create_user
from app.migrate import upgrade
from app.settings import Settings
from bench import processes
from core import heap
from core.db import Database
from tests.support.databases import drop_database, fresh_database
from tests.support.servers import free_port, server_command, server_env, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
ADMIN_EMAIL = "admin@bench.local"
WARMUP = 50
TARGET_RATIO = 0.15
TARGET_P99_MS = 100.0
BARE_URL_ENV = "CHAIRSIDE_BENCH_BARE_URL"

# The center: open 07:00-19:00 every day with 40 nurses x 4 patients, so the census rule
# (capacity 160) never binds and the start rule (<= 40 starts per 30 minutes) only limits
# how many chairs may start in the same hour.
TIMEZONE = "America/New_York"
OPENS, CLOSES = 7, 19
NURSES = 40
PATIENTS_PER_NURSE = 4
SLOT_MINUTES = 60
HOURS_PER_DAY = CLOSES - OPENS
FIRST_DAY = date(2027, 1, 4)


# --- the bare baseline -----------------------------------------------------------------------

BENCH_META = MetaData()
BENCH_ROWS = Table(
    "bench_rows",
    BENCH_META,
    Column("id", Uuid, primary_key=True),
    Column("payload", Text, nullable=False),
)


def bare_app(database_url: str) -> FastAPI:
    """One route, one INSERT, through the same Database class (pool, BEGIN IMMEDIATE) as the app.

    FastAPI rather than raw ASGI so the comparison isolates what Chairside does per booking,
    not the framework both share.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The pool sizes the app would use (CHAIRSIDE_DB_POOL_SIZE / _MAX_OVERFLOW or defaults).
        settings = Settings(database_url=database_url, environment="development")
        db = Database(
            database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        async with db.engine.begin() as conn:
            await conn.run_sync(BENCH_META.create_all)
        app.state.db = db
        heap.freeze_loaded()  # as the API does at startup: no pauses the API would not have
        try:
            yield
        finally:
            await db.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/bare/{row_id}")
    async def bare_select(row_id: uuid.UUID, request: Request) -> JSONResponse:
        db: Database = request.app.state.db
        async with db.unit_of_work(write=False) as session:
            payload = await session.scalar(
                select(BENCH_ROWS.c.payload).where(BENCH_ROWS.c.id == row_id)
            )
        if payload is None:
            return JSONResponse({"detail": "no such row"}, status_code=404)
        return JSONResponse({"id": str(row_id), "payload": payload})

    @app.post("/bare", status_code=201)
    async def bare(request: Request) -> JSONResponse:
        db: Database = request.app.state.db
        row_id = uuid.uuid4()
        payload = (await request.body()).decode()
        async with db.unit_of_work() as session:
            await session.execute(insert(BENCH_ROWS).values(id=row_id, payload=payload))
        return JSONResponse({"id": str(row_id)}, status_code=201)

    return app


def bare_from_env() -> FastAPI:
    """The bare app for uvicorn's workers, which build it themselves (factory=True)."""
    return bare_app(os.environ[BARE_URL_ENV])


def serve_bare(port: int, database_url: str, workers: int) -> None:
    os.environ[BARE_URL_ENV] = database_url
    uvicorn.run(
        "bench.booking:bare_from_env",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        log_level="warning",
    )


# --- databases and servers -------------------------------------------------------------------


async def make_admin(url: str, password: str) -> None:
    db = Database(url)
    try:
        async with db.unit_of_work() as session:
            await create_user(session, ADMIN_EMAIL, "admin", password, None)
    finally:
        await db.dispose()


@dataclass(frozen=True)
class Running:
    base: str
    pid: int


@contextmanager
def running(
    command: Sequence[str], env: dict[str, str], port: int | None, what: str
) -> Iterator[Running]:
    """Run a server subprocess until the block ends (without a port: one that serves
    nothing, such as the scheduler)."""
    process = subprocess.Popen(list(command), cwd=ROOT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        if port is not None:
            wait_healthy(process, base, what)
        elif process.poll() is not None:
            raise RuntimeError(f"the {what} did not start")
        yield Running(base, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def bare_command(port: int, database_url: str, workers: int = 1) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.booking",
        "--serve-bare",
        "--port",
        str(port),
        "--db-url",
        database_url,
        "--workers",
        str(workers),
    ]


def scheduler_command() -> list[str]:
    return [sys.executable, "-m", "app.cli", "scheduler"]


# --- driving load ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    path: str
    body: bytes  # JSON encoded once up front, so the clients spend no CPU on it while timed


@dataclass(frozen=True)
class Outcome:
    status: int  # 0 when the request failed below HTTP (timeout, reset)
    seconds: float
    body: bytes


def json_job(path: str, payload: dict[str, Any]) -> Job:
    return Job(path, json.dumps(payload).encode())


class RawConnection:
    """One keep-alive HTTP/1.1 connection that only POSTs JSON.

    httpx costs the client a full core at a few hundred requests per second, which on a
    2-core machine starves the server being measured. Writing pre-encoded requests and reading
    the status line, headers and Content-Length body by hand costs a fraction of that.
    """

    def __init__(self, base: str, token: str | None) -> None:
        url = httpx.URL(base)
        self.host, self.port = url.host, url.port or 80
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.head = f"Host: {self.host}:{self.port}\r\n{auth}Content-Type: application/json\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        request = f"POST {path} HTTP/1.1\r\n{self.head}Content-Length: {len(body)}\r\n\r\n"
        self.writer.write(request.encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def _one(conn: RawConnection, job: Job) -> Outcome:
    started = time.perf_counter()
    try:
        status, body = await asyncio.wait_for(conn.post(job.path, job.body), timeout=60)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
        await conn.close()  # start afresh on the next job
        return Outcome(0, time.perf_counter() - started, b"")
    return Outcome(status, time.perf_counter() - started, body)


async def drive(target: Target, jobs: Sequence[Job], clients: int) -> tuple[list[Outcome], float]:
    """Run `jobs` with `clients` workers, one connection each, sharing one queue; outcomes in
    job order, and the wall time."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(jobs)):
        queue.put_nowait(index)
    outcomes: list[Outcome | None] = [None] * len(jobs)

    async def worker() -> None:
        conn = RawConnection(target.base, target.token)
        try:
            # Bounded: each iteration consumes one queued job and the queue is never refilled.
            while True:
                try:
                    index = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                outcomes[index] = await _one(conn, jobs[index])
        finally:
            await conn.close()

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(min(clients, len(jobs))):
            group.create_task(worker())
    elapsed = time.perf_counter() - started
    return [o for o in outcomes if o is not None], elapsed


@dataclass(frozen=True)
class Target:
    base: str
    token: str | None = None
    pid: int = 0  # the server's process, whose CPU (workers included) is counted


# --- figures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: Counter[int]
    client_cpu: float  # this process's CPU share while timed: near 1.0 means the load
    # generator, not the server, may be what limits the figures
    server_cpu_seconds: float  # the server's processes' CPU while timed (NaN: unknown)

    @property
    def server_ms(self) -> float:
        """Server CPU milliseconds a request: what the app costs, whatever else runs."""
        return 1000 * self.server_cpu_seconds / self.requests if self.requests else math.nan

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 is a latency some request really had)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def figures(
    outcomes: Sequence[Outcome], seconds: float, cpu_seconds: float, server_seconds: float
) -> Figures:
    latencies = sorted(o.seconds * 1000 for o in outcomes)
    return Figures(
        requests=len(outcomes),
        seconds=seconds,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        statuses=Counter(o.status for o in outcomes),
        client_cpu=cpu_seconds / seconds if seconds > 0 else 0.0,
        server_cpu_seconds=server_seconds,
    )


async def measure(target: Target, jobs: Sequence[Job], clients: int) -> Figures:
    """Warm up on the first WARMUP jobs (not counted), then time the rest."""
    await drive(target, jobs[:WARMUP], clients)
    cpu_before, server_before = time.process_time(), processes.cpu_seconds(target.pid)
    outcomes, seconds = await drive(target, jobs[WARMUP:], clients)
    server = processes.cpu_seconds(target.pid) - server_before
    return figures(outcomes, seconds, time.process_time() - cpu_before, server)


# --- filling the center ----------------------------------------------------------------------


def _require_created(outcomes: Sequence[Outcome], what: str) -> list[str]:
    """The ids of created records; setup must fully succeed or the figures mean nothing."""
    failed = [o for o in outcomes if o.status != 201]
    if failed:
        sample = failed[0].body[:300].decode(errors="replace")
        raise RuntimeError(f"{len(failed)} {what} not created, e.g. {failed[0].status}: {sample}")
    return [str(json.loads(o.body)["id"]) for o in outcomes]


def center_job() -> Job:
    opens, closes = f"{OPENS:02d}:00", f"{CLOSES:02d}:00"
    return json_job(
        "/api/v1/centers",
        {
            "name": "Bench Center",
            "timezone": TIMEZONE,
            "patients_per_nurse": PATIENTS_PER_NURSE,
            "opening_hours": [{"weekday": d, "opens": opens, "closes": closes} for d in range(7)],
            "staffing": [
                {"weekday": d, "start": opens, "end": closes, "nurses": NURSES} for d in range(7)
            ],
        },
    )


def patient_job(index: int) -> Job:
    return json_job(
        "/api/v1/patients",
        {
            "mrn": f"BENCH-{index:06d}",
            "given_name": "Bench",
            "family_name": f"Patient{index}",
            "birth_date": "1961-04-12",
            "sex": "female",
            "weight_kg": 70.5,
            "height_cm": 168,
        },
    )


@dataclass(frozen=True)
class Setup:
    center_id: str
    chair_ids: list[str]
    patient_ids: list[str]


async def fill_center(api: Target, chairs: int, patients: int, clients: int) -> Setup:
    (center,), _ = await drive(api, [center_job()], 1)
    center_id = _require_created([center], "center")[0]
    chair_jobs = [
        json_job(f"/api/v1/centers/{center_id}/chairs", {"label": f"C-{i:02d}", "kind": "chair"})
        for i in range(chairs)
    ]
    chair_outcomes, _ = await drive(api, chair_jobs, clients)
    patient_outcomes, _ = await drive(api, [patient_job(i) for i in range(patients)], clients)
    return Setup(
        center_id,
        _require_created(chair_outcomes, "chairs"),
        _require_created(patient_outcomes, "patients"),
    )


# --- planning bookings -----------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    day: int
    hour: int
    chair: int


def plan_slots(count: int, days: int, chairs: int) -> list[Slot]:
    """`count` distinct (day, hour, chair) slots, days varying fastest.

    Consecutive bookings land on different days so concurrent requests mostly take different
    center/day locks, as bookings made by many schedulers over a calendar do. Within a day at
    most NURSES chairs start in one hour (the 30-minute start rule), rotating over all chairs.
    """
    per_hour = min(NURSES, chairs)
    if count > days * HOURS_PER_DAY * per_hour:
        raise SystemExit(f"{count} bookings do not fit in {days} days; raise --days")
    slots = []
    for k in range(count):
        j = k // days
        hour, rank = j % HOURS_PER_DAY, j // HOURS_PER_DAY
        slots.append(Slot(k % days, hour, (rank + hour * per_hour) % chairs))
    return slots


def assign_patients(slots: Sequence[Slot], patients: int) -> list[int]:
    """A patient per slot, never one patient twice in the same day and hour."""
    busy: set[tuple[int, int, int]] = set()
    chosen = []
    for k, slot in enumerate(slots):
        for step in range(patients):
            p = (k + step) % patients
            if (p, slot.day, slot.hour) not in busy:
                break
        else:
            raise SystemExit("not enough patients for the planned bookings")
        busy.add((p, slot.day, slot.hour))
        chosen.append(p)
    return chosen


def booking_jobs(setup: Setup, count: int, days: int) -> list[Job]:
    tz = ZoneInfo(TIMEZONE)
    slots = plan_slots(count, days, len(setup.chair_ids))
    jobs = []
    for slot, p in zip(slots, assign_patients(slots, len(setup.patient_ids)), strict=True):
        day = FIRST_DAY + timedelta(days=slot.day)
        start = datetime.combine(day, wall_time(OPENS + slot.hour), tzinfo=tz)
        body = {
            "patient_id": setup.patient_ids[p],
            "chair_id": setup.chair_ids[slot.chair],
            "start": start.isoformat(),
            "duration_minutes": SLOT_MINUTES,
        }
        jobs.append(json_job("/api/v1/appointments", body))
    return jobs


# --- one database kind -----------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    kind: str
    booking: Figures
    bare: Figures
    memory: list[str]  # each server process's, at the end


async def login(base: str, password: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        r = await c.post("/api/v1/auth/token", data={"username": ADMIN_EMAIL, "password": password})
        r.raise_for_status()
        token: str = r.json()["access_token"]
        return token


async def benchmark(
    kind: str, chairside: Running, bare_server: Running, args: Options, pw: str
) -> tuple[Figures, Figures]:
    app = Target(chairside.base, await login(chairside.base, pw), chairside.pid)
    setup = await fill_center(app, args.chairs, args.patients, args.clients)
    jobs = booking_jobs(setup, args.requests + WARMUP, args.days)
    print(f"[{kind}] center filled; running bookings and the bare baseline", flush=True)
    booking = await measure(app, jobs, args.clients)
    # Same bodies as the bookings, stored as the payload: equal bytes on the wire.
    bare_jobs = [Job("/bare", j.body) for j in jobs]
    bare = await measure(Target(bare_server.base, pid=bare_server.pid), bare_jobs, args.clients)
    return booking, bare


def run_kind(kind: str, url: str, args: Options) -> Result:
    try:
        upgrade(url)
        password = secrets.token_urlsafe(16)
        asyncio.run(make_admin(url, password))
        app_port = args.port or free_port()
        bare_port = args.port + 1 if args.port else free_port()
        serve = [*server_command(app_port), "--workers", str(args.workers)]
        env = server_env(url)
        with contextlib.ExitStack() as stack:
            app = stack.enter_context(running(serve, env, app_port, "Chairside"))
            bare_serve = bare_command(bare_port, url, args.workers)
            bare = stack.enter_context(running(bare_serve, dict(os.environ), bare_port, "bare"))
            scheduler = (
                stack.enter_context(running(scheduler_command(), env, None, "scheduler"))
                if args.scheduler
                else None
            )
            booking, floor = asyncio.run(benchmark(kind, app, bare, args, password))
            memory = processes.memory_lines("the API", app.pid)
            if scheduler is not None:
                memory += processes.memory_lines("the scheduler", scheduler.pid)
            return Result(kind, booking, floor, memory)
    finally:
        drop_database(url, args.pg_url)


# --- report ----------------------------------------------------------------------------------


def _statuses(f: Figures) -> str:
    return ", ".join(f"{code or 'error'} x{n}" for code, n in sorted(f.statuses.items()))


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(result: Result) -> None:
    b, r = result.booking, result.bare
    ratio = b.rate / r.rate if r.rate else 0.0
    print(f"\n== {result.kind} ==")
    head = f"{'endpoint':<10}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}"
    print(f"{head}{'client CPU':>12}{'srv ms':>9}  statuses")
    for name, f in (("booking", b), ("bare", r)):
        row = f"{name:<10}{f.requests:>10}{f.rate:>10.1f}{f.p50_ms:>10.1f}{f.p99_ms:>10.1f}"
        print(f"{row}{f.client_cpu:>11.0%}{f.server_ms:>9.2f}  {_statuses(f)}")
    print("(srv ms: the server's CPU milliseconds a request, all its processes)")
    print(
        f"goal: booking throughput >= {TARGET_RATIO:.0%} of the floor's: {ratio:.1%} "
        f"({b.rate:.0f} vs {r.rate:.0f} req/s), {_met(ratio >= TARGET_RATIO)}"
    )
    print(
        f"goal: booking p99 <= {TARGET_P99_MS:.0f} ms: {b.p99_ms:.1f} ms "
        f"(floor {r.p99_ms:.1f} ms), {_met(b.p99_ms <= TARGET_P99_MS)}"
    )
    for line in result.memory:
        print(line)
    not_created = b.requests - b.statuses[201]
    if not_created:
        print(f"WARNING: {not_created} bookings were not 201: {_statuses(b)}")


# --- command line ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    kinds: list[str]
    clients: int
    requests: int
    port: int
    days: int
    chairs: int
    patients: int
    pg_url: str
    workers: int
    scheduler: bool


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients")
    p.add_argument("--requests", type=int, default=2000, help="timed requests per endpoint")
    p.add_argument("--port", type=int, default=0, help="app port (bare: +1); 0 picks free ports")
    p.add_argument("--days", type=int, default=60, help="days of 2027 the bookings spread over")
    p.add_argument("--chairs", type=int, default=60)
    p.add_argument("--patients", type=int, default=2000)
    p.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL admin URL")
    p.add_argument("--workers", type=int, default=1, help="uvicorn workers of the API and floor")
    p.add_argument(
        "--scheduler", action="store_true", help="run `chairside scheduler` beside the API"
    )
    p.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--db-url", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def options(ns: argparse.Namespace) -> Options:
    kinds = ["postgresql", "sqlite"] if ns.db == "both" else [ns.db]
    sizes = (ns.clients, ns.requests, ns.days, ns.chairs, ns.patients, ns.workers)
    if min(sizes) < 1:
        raise SystemExit(
            "--clients, --requests, --days, --chairs, --patients and --workers must be >= 1"
        )
    return Options(
        kinds,
        ns.clients,
        ns.requests,
        ns.port,
        ns.days,
        ns.chairs,
        ns.patients,
        ns.pg_url,
        ns.workers,
        ns.scheduler,
    )


def main(argv: Sequence[str] | None = None) -> None:
    ns = parse(argv)
    if ns.serve_bare:
        if not ns.db_url or not ns.port:
            raise SystemExit("--serve-bare needs --port and --db-url")
        serve_bare(ns.port, ns.db_url, ns.workers)
        return
    args = options(ns)
    print(
        f"Chairside booking benchmark: {os.cpu_count()} CPU cores, {args.clients} clients, "
        f"{args.requests} timed requests per endpoint (+{WARMUP} warm-up), "
        f"{args.chairs} chairs, {args.patients} patients, bookings over {args.days} days, "
        f"{args.workers} worker(s) a server"
        + (", a separate scheduler process" if args.scheduler else ""),
        flush=True,
    )
    # Other work on this machine shares the cores with server, database and clients alike.
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    with tempfile.TemporaryDirectory(prefix="chairside-bench-") as tmp:
        for kind in args.kinds:
            try:
                url = fresh_database(kind, Path(tmp), args.pg_url, prefix="chairside_bench")
            except (OSError, SQLAlchemyError) as exc:
                print(f"\n== {kind} == skipped: cannot create a database ({exc})", flush=True)
                continue
            report(run_kind(kind, url, args))


if __name__ == "__main__":
    main()
