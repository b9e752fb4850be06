"""Portal read benchmark: a patient's upcoming appointments next to a single-SELECT endpoint.

A fresh migrated PostgreSQL database is filled by bulk SQL (INSERT ... SELECT over
generate_series; never through the API, which would take hours at this size):

* centers of 50 chairs (as many as the patients need: 12 for 50,000), in four US time zones,
* patients (default 50,000) and appointments (default 1,000,000, so about 20 a patient),
  each patient's 28 days apart, half in the past and half ahead. Each patient keeps one
  (chair, start time) of three a day (07:30, 11:00, 14:30 local, 2 to 3 hours long) and
  patients who share a chair never share a day, so no chair and no patient is ever
  double-booked. Past visits are mostly completed (5 % cancelled, 3 % no-shows), upcoming
  ones mostly booked (5 % cancelled, which the portal lists too),
* patient users (default 200), each linked to a patient spread over the whole range, sharing
  one password hash.

PostgreSQL statistics are refreshed (ANALYZE) after the load, as autovacuum would have done in
a running service. Then the real server starts (uvicorn, one process, test settings) and every
patient user signs in through POST /api/v1/auth/token.

Three phases follow, each a fixed time (--seconds, after a warm-up that is not counted) with
--clients concurrent clients, one keep-alive connection each, every request signed with a
random patient user's token:

* floor:  GET /bare/{id} on bench.booking's bare app (its own process, the same database,
          Database class, pool and driver): one SELECT by primary key and nothing else, the
          floor the goal is measured against;
* bare:   GET /api/v1/auth/me, which resolves the bearer token with one SELECT and returns it:
          the floor every signed-in read stands on;
* portal: GET /api/v1/portal/appointments, the patient's upcoming visits, soonest first (one
          page: the token, the visits with their center and chair, one audit event).

Printed per phase: requests, requests/s (200s only), p50/p95/p99 latency (200s only), the CPU
share of this process (near 100 % means the load generator may be what limits the figures) and
of the server process (read from /proc; near 100 % means the one uvicorn process is saturated),
the server's CPU milliseconds a request, and every status that was not 200; then the goals:
portal throughput ≥ 20 % of the floor's and portal p99 ≤ 60 ms, each met or NOT met, and the
server's memory at the end.
Client, server and PostgreSQL share the machine (2 cores where the targets were set), so the
figures are the whole system's, not the server's alone. The clients write pre-encoded requests
on raw connections (see RawConnection), as bench/booking.py does; --http httpx uses
httpx.AsyncClient instead, which costs the client far more CPU.

    .venv/bin/python -m bench.portal [--appointments 1000000] [--patients 50000] [--users 200]
                                     [--clients 32] [--seconds 15] [--warmup 3]
                                     [--http raw|httpx] [--pg-url postgresql://...]

`--appointments 20000 --patients 2000 --seconds 3` is a quick check. It prints figures; it
asserts nothing about timing. The server is stopped and the database dropped at the end, also
after an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as wall_time
from pathlib import Path
from typing import Protocol

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from app.auth.service import hash_password
from app.migrate import upgrade
from bench import processes
from bench.booking import bare_command
from tests.support.databases import drop_database, fresh_database
from tests.support.servers import PASSWORD, free_port, server_command, server_env, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
TIMEZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")
CHAIRS_PER_CENTER = 50
INTERVAL = 28  # days between a patient's visits
SLOTS = (wall_time(7, 30), wall_time(11, 0), wall_time(14, 30))  # 3 hours at most, never touching
CHUNK = 100_000  # appointments per INSERT statement (and transaction)
BARE_PATH = "/api/v1/auth/me"
PORTAL_PATH = "/api/v1/portal/appointments"
TARGET_RATIO = 0.20  # of the one-SELECT floor's throughput
TARGET_P99_MS = 60.0


def say(line: str = "") -> None:
    print(line, flush=True)


# --- the data --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    appointments: int
    patients: int
    users: int
    today: date
    now: datetime

    @property
    def per_patient(self) -> int:
        return math.ceil(self.appointments / self.patients)

    @property
    def chairs(self) -> int:
        # Patients p with the same p // INTERVAL share a start time; SLOTS of those a chair.
        return (self.patients - 1) // INTERVAL // len(SLOTS) + 1

    @property
    def centers(self) -> int:
        return (self.chairs - 1) // CHAIRS_PER_CENTER + 1


# Ids follow from each row's index (md5 of a label, read as a uuid), so rows that refer to
# others need no lookups: patient p is md5('patient-p'), chair c md5('chair-c').
CENTERS_SQL = """
INSERT INTO centers (id, name, address, timezone, patients_per_nurse, turnover_minutes,
                     coverage_policy, booking_horizon_days, auto_book_at, version,
                     created_at, updated_at)
SELECT md5('center-' || n)::uuid, 'Bench center ' || (n + 1), (n + 1) || ' Infusion Way',
       ($2::text[])[n % cardinality($2::text[]) + 1], 4, 15, 'warn', 56, TIME '02:00', 1,
       $3, $3
FROM generate_series(0, $1::int - 1) AS n
"""

CHAIRS_SQL = """
INSERT INTO chairs (id, center_id, label, kind, active, version, created_at, updated_at)
SELECT md5('chair-' || c)::uuid, md5('center-' || (c / $2::int))::uuid,
       'C' || lpad((c % $2::int)::text, 2, '0'),
       CASE WHEN c % 10 = 9 THEN 'bed' ELSE 'chair' END, true, 1, $3, $3
FROM generate_series(0, $1::int - 1) AS c
"""

PATIENTS_SQL = """
INSERT INTO patients (id, mrn, given_name, family_name, birth_date, sex, weight_kg, height_cm,
                      version, created_at, updated_at)
SELECT md5('patient-' || p)::uuid, 'PORTAL' || lpad(p::text, 7, '0'), 'Bench', 'Patient' || p,
       DATE '1950-01-01' + p % 15000, (ARRAY['female', 'male'])[p % 2 + 1], 70.0, 170.0, 1,
       $2, $2
FROM generate_series(0, $1::int - 1) AS p
"""

# Appointment i is visit k = i / patients of patient p = i % patients, on the day
# today + 1 + p % INTERVAL + INTERVAL * (k - half), so about half lie in the past; at the start
# time p // INTERVAL picks among SLOTS, on chair p // INTERVAL // len(SLOTS).
# $1, $2: the rows [lo, hi); $3 patients; $4 half; $5 INTERVAL; $6 today; $7 now;
# $8 chairs per center; $9 the time zones; $10 the slots (local start times).
APPOINTMENTS_SQL = """
INSERT INTO appointments (id, center_id, chair_id, patient_id, start_at, end_at, status,
                          version, booked_by, status_changed_at, created_at, updated_at,
                          course_id, phase, sequence, dose_g)
SELECT gen_random_uuid(), md5('center-' || center)::uuid, md5('chair-' || chair)::uuid,
       md5('patient-' || p)::uuid, start_at, end_at, status, 1, NULL,
       changed_at, created_at, changed_at, NULL, NULL, NULL, NULL
FROM generate_series($1::int, $2::int - 1) AS i
CROSS JOIN LATERAL (
    SELECT i % $3::int AS p, i / $3::int AS k, (hashint4(i) & 65535) % 100 AS h
) AS a
CROSS JOIN LATERAL (
    SELECT a.p / $5::int % cardinality($10::time[]) AS slot,
           a.p / $5::int / cardinality($10::time[]) AS chair
) AS b
CROSS JOIN LATERAL (SELECT b.chair / $8::int AS center) AS c
CROSS JOIN LATERAL (
    SELECT (($6::date + 1 + a.p % $5::int + $5::int * (a.k - $4::int)) + ($10::time[])[b.slot + 1])
           AT TIME ZONE ($9::text[])[c.center % cardinality($9::text[]) + 1] AS start_at
) AS d
CROSS JOIN LATERAL (
    SELECT d.start_at + make_interval(mins => 120 + 30 * (a.p % 3)) AS end_at,
           least(d.start_at - INTERVAL '28 days', $7) AS created_at
) AS e
CROSS JOIN LATERAL (
    SELECT CASE
               WHEN e.end_at > $7 THEN CASE WHEN a.h < 5 THEN 'cancelled' ELSE 'booked' END
               WHEN a.h < 5 THEN 'cancelled'
               WHEN a.h < 8 THEN 'no_show'
               ELSE 'completed'
           END AS status,
           CASE WHEN e.end_at <= $7 THEN e.end_at ELSE e.created_at END AS changed_at
) AS f
"""

USERS_SQL = """
INSERT INTO users (id, email, password_hash, role, patient_id, active, created_at, updated_at)
SELECT md5('user-' || u)::uuid, 'patient' || u || '@bench.local', $3, 'patient',
       md5('patient-' || (u::bigint * $2::int / $1::int))::uuid, true, $4, $4
FROM generate_series(0, $1::int - 1) AS u
"""


def dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def user_email(u: int) -> str:
    return f"patient{u}@bench.local"


async def build(url: str, plan: Plan) -> dict[str, int]:
    """Fill the database; the statuses of the appointments written, counted."""
    conn = await asyncpg.connect(dsn(url))
    try:
        async with conn.transaction():
            await conn.execute(CENTERS_SQL, plan.centers, list(TIMEZONES), plan.now)
            await conn.execute(CHAIRS_SQL, plan.chairs, CHAIRS_PER_CENTER, plan.now)
            await conn.execute(PATIENTS_SQL, plan.patients, plan.now)
        started = time.perf_counter()
        for lo in range(0, plan.appointments, CHUNK):
            hi = min(lo + CHUNK, plan.appointments)
            async with conn.transaction():
                await conn.execute(
                    APPOINTMENTS_SQL,
                    lo,
                    hi,
                    plan.patients,
                    plan.per_patient // 2,
                    INTERVAL,
                    plan.today,
                    plan.now,
                    CHAIRS_PER_CENTER,
                    list(TIMEZONES),
                    list(SLOTS),
                )
            elapsed = time.perf_counter() - started
            print(
                f"  [load] {hi:,}/{plan.appointments:,} appointments, {elapsed:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        # One hash for every user: argon2 takes ~0.1 s a hash, on purpose.
        await conn.execute(USERS_SQL, plan.users, plan.patients, hash_password(PASSWORD), plan.now)
        await conn.execute("ANALYZE")
        rows = await conn.fetch(
            "SELECT status, end_at <= $1 AS past, count(*) AS n FROM appointments "
            "GROUP BY status, past",
            plan.now,
        )
        return {f"{'past' if r['past'] else 'upcoming'} {r['status']}": r["n"] for r in rows}
    finally:
        await conn.close()


async def audit_events(url: str) -> int:
    conn = await asyncpg.connect(dsn(url))
    try:
        n: int = await conn.fetchval("SELECT count(*) FROM audit_events")
        return n
    finally:
        await conn.close()


# --- the server ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    base: str
    process: subprocess.Popen[bytes]

    def gone(self) -> bool:
        return self.process.poll() is not None


@contextmanager
def running(url: str) -> Iterator[Server]:
    """The Chairside server, as the tests run it, until the block ends."""
    port = free_port()
    with serving(server_command(port), server_env(url), port, "Chairside") as server:
        yield server


@contextmanager
def floor(url: str) -> Iterator[Server]:
    """bench.booking's bare app on the same database: GET /bare/{id} is one SELECT by primary
    key through the same Database class, pool and driver, and nothing else."""
    port = free_port()
    with serving(bare_command(port, url), dict(os.environ), port, "bare") as server:
        yield server


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int, what: str) -> Iterator[Server]:
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(process, base, what)
        yield Server(base, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


async def floor_row(base: str) -> str:
    """The row the floor reads back: one, stored through the floor app itself."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        r = await client.post("/bare", content=b"portal floor row")
        r.raise_for_status()
        return f"/bare/{r.json()['id']}"


async def sign_in(base: str, users: int) -> list[str]:
    """Every patient user's token, through POST /api/v1/auth/token (a few at a time: each
    sign-in costs the server an argon2 verification)."""
    gate = asyncio.Semaphore(4)

    async def one(client: httpx.AsyncClient, u: int) -> str:
        async with gate:
            r = await client.post(
                "/api/v1/auth/token", data={"username": user_email(u), "password": PASSWORD}
            )
        r.raise_for_status()
        token: str = r.json()["access_token"]
        return token

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        return list(await asyncio.gather(*(one(client, u) for u in range(users))))


async def sample_portal(base: str, tokens: Sequence[str]) -> str:
    """A look at what the portal answers (outside the timed phases): items per page, and
    whether every item is upcoming and in order."""
    counts, wrong = [], 0
    now = datetime.now(UTC)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for token in tokens[:20]:
            r = await client.get(PORTAL_PATH, headers={"Authorization": f"Bearer {token}"})
            if r.status_code != 200:
                raise RuntimeError(f"the portal answered {r.status_code}: {r.text[:300]}")
            items = r.json()["items"]
            counts.append(len(items))
            ends = [datetime.fromisoformat(v["end"]) for v in items]
            starts = [datetime.fromisoformat(v["start"]) for v in items]
            wrong += sum(1 for e in ends if e <= now) + (starts != sorted(starts))
    mean = sum(counts) / len(counts) if counts else math.nan
    return (
        f"{mean:.1f} visits a page on average (min {min(counts, default=0)}, "
        f"max {max(counts, default=0)}; {len(counts)} patients), {wrong} out of place"
    )


# --- driving load ----------------------------------------------------------------------------


class Getter(Protocol):
    async def get(self, path: str, token: str) -> int: ...

    async def close(self) -> None: ...


class RawConnection:
    """One keep-alive HTTP/1.1 connection that only GETs, with pre-encoded requests.

    httpx costs the client about a core at a few hundred requests per second, which on a
    2-core machine starves the server being measured; writing the request bytes and reading
    the status line, headers and Content-Length body by hand costs a fraction of that.
    """

    def __init__(self, base: str) -> None:
        url = httpx.URL(base)
        self.host, self.port = url.host, url.port or 80
        self.requests: dict[tuple[str, str], bytes] = {}
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def _request(self, path: str, token: str) -> bytes:
        key = (path, token)
        request = self.requests.get(key)
        if request is None:
            request = self.requests[key] = (
                f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Authorization: Bearer {token}\r\nAccept: application/json\r\n\r\n"
            ).encode()
        return request

    async def get(self, path: str, token: str) -> int:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(self._request(path, token))
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


class HttpxConnection:
    """The same through httpx.AsyncClient, one keep-alive connection."""

    def __init__(self, base: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=base, timeout=60, limits=httpx.Limits(max_connections=1)
        )

    async def get(self, path: str, token: str) -> int:
        r = await self.client.get(path, headers={"Authorization": f"Bearer {token}"})
        return r.status_code

    async def close(self) -> None:
        await self.client.aclose()


@dataclass(frozen=True)
class Figures:
    requests: int
    seconds: float
    latencies_ms: list[float]  # sorted
    statuses: Counter[int]  # 0: failed below HTTP (timeout, reset)
    client_cpu: float  # this process's CPU share while timed
    server_cpu: float  # the server process's CPU share (of one core) while timed; NaN unknown

    @property
    def server_ms(self) -> float:
        """Server CPU milliseconds a request."""
        return 1000 * self.server_cpu * self.seconds / self.requests if self.requests else math.nan

    @property
    def rate(self) -> float:
        return self.statuses[200] / self.seconds if self.seconds > 0 else 0.0

    def pct(self, q: float) -> float:
        """Nearest-rank percentile (no interpolation: a latency some request really had)."""
        if not self.latencies_ms:
            return math.nan
        return self.latencies_ms[max(1, math.ceil(q * len(self.latencies_ms))) - 1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads) so far; NaN without /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)"; utime, stime: 14th, 15th
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(
    conns: Sequence[Getter],
    path: str,
    tokens: Sequence[str],
    seconds: float,
    seed: int,
    server: Server,
) -> Figures:
    """Every connection sends GET `path` as a random user, back to back, for `seconds`."""
    rng = random.Random(seed)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.perf_counter() + seconds

    async def worker(conn: Getter) -> None:
        # Bounded: stops at the deadline.
        while time.perf_counter() < deadline:
            token = rng.choice(tokens)
            started = time.perf_counter()
            try:
                status = await asyncio.wait_for(conn.get(path, token), timeout=60)
            except (
                OSError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                TimeoutError,
                httpx.HTTPError,
            ):
                await conn.close()  # start afresh
                status = 0
                if server.gone():
                    return
            statuses[status] += 1
            if status == 200:
                latencies.append((time.perf_counter() - started) * 1000)

    cpu_before, server_before = time.process_time(), cpu_seconds(server.process.pid)
    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for conn in conns:
            group.create_task(worker(conn))
    elapsed = time.perf_counter() - started
    if server.gone():
        raise RuntimeError(f"the server stopped during the run (exit code {server.process.poll()})")
    cpu = (time.process_time() - cpu_before) / elapsed if elapsed > 0 else 0.0
    own = (cpu_seconds(server.process.pid) - server_before) / elapsed if elapsed > 0 else math.nan
    return Figures(sum(statuses.values()), elapsed, sorted(latencies), statuses, cpu, own)


async def phase(
    server: Server, path: str, tokens: Sequence[str], args: argparse.Namespace, seed: int
) -> Figures:
    conns: list[Getter] = [
        RawConnection(server.base) if args.http == "raw" else HttpxConnection(server.base)
        for _ in range(args.clients)
    ]
    try:
        if args.warmup > 0:
            await drive(conns, path, tokens, args.warmup, seed, server)  # not counted
        return await drive(conns, path, tokens, args.seconds, seed + 1, server)
    finally:
        for conn in conns:
            await conn.close()


# --- report ----------------------------------------------------------------------------------


def row(name: str, f: Figures) -> str:
    others = ", ".join(
        f"{code or 'failed'} x{n}" for code, n in sorted(f.statuses.items()) if code != 200
    )
    return (
        f"{name:<8}{f.requests:>9,}{f.rate:>9.1f}{f.pct(0.50):>8.1f}{f.pct(0.95):>8.1f}"
        f"{f.pct(0.99):>8.1f}{f.client_cpu:>8.0%}{f.server_cpu:>8.0%}{f.server_ms:>9.2f}"
        f"  {others or 'none'}"
    )


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


async def bench(url: str, plan: Plan, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    counts = await build(url, plan)
    built = time.perf_counter() - started
    say(f"centers / chairs               : {plan.centers} / {plan.chairs:,}")
    say(f"patients                       : {plan.patients:,}")
    say(
        f"appointments                   : {sum(counts.values()):,} ({plan.per_patient} a "
        f"patient at most, {INTERVAL} days apart)"
    )
    for what, n in sorted(counts.items()):
        say(f"  {what:<29}: {n:,}")
    say(f"patient users                  : {plan.users:,}")
    say(f"seconds to build               : {built:.1f} (informative)")

    with running(url) as server:
        started = time.perf_counter()
        tokens = await sign_in(server.base, plan.users)
        say(
            f"seconds to sign in             : {time.perf_counter() - started:.1f} "
            f"({len(tokens)} users, POST /api/v1/auth/token)"
        )
        say(f"portal answers                 : {await sample_portal(server.base, tokens)}")
        say("load average before the phases : {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        say(
            f"running {args.clients} clients for {args.seconds:g} s a phase "
            f"(+{args.warmup:g} s warm-up), {args.http} connections"
        )
        with floor(url) as bare_app:
            select_path = await floor_row(bare_app.base)
            one_select = await phase(bare_app, select_path, tokens, args, seed=0)
        bare = await phase(server, BARE_PATH, tokens, args, seed=1)
        portal = await phase(server, PORTAL_PATH, tokens, args, seed=3)
        memory = processes.memory_lines("the API", server.process.pid)
    events = await audit_events(url)

    say()
    say(
        f"floor = one SELECT by primary key (bench.booking's bare app), bare = GET {BARE_PATH}"
        f" (the token's SELECT: every signed-in read's floor), portal = GET {PORTAL_PATH};"
    )
    say("req/s counts 200s only;")
    say("client / server: CPU share (of one core) of this process / of the server process;")
    say("srv ms: server CPU milliseconds a request")
    say(
        f"{'phase':<8}{'requests':>9}{'req/s':>9}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}"
        f"{'client':>8}{'server':>8}{'srv ms':>9}  not 200"
    )
    say(row("floor", one_select))
    say(row("bare", bare))
    say(row("portal", portal))
    ratio = portal.rate / one_select.rate if one_select.rate else math.nan
    say(
        f"goal: portal throughput ≥ {TARGET_RATIO:.0%} of the one-SELECT floor's: {ratio:.1%} "
        f"({portal.rate:.0f} vs {one_select.rate:.0f} req/s), {met(ratio >= TARGET_RATIO)}"
    )
    signed_in = portal.rate / bare.rate if bare.rate else math.nan
    say(f"portal / bare (GET {BARE_PATH}) : {signed_in:.1%} (informative)")
    p99 = portal.pct(0.99)
    say(
        f"goal: portal p99 ≤ {TARGET_P99_MS:g} ms: {p99:.1f} ms "
        f"(floor {one_select.pct(0.99):.1f} ms), {met(p99 <= TARGET_P99_MS)}"
    )
    for line in memory:
        say(line)
    say(f"audit events written           : {events:,} (one a portal request, warm-up included)")
    failed = sum(f.requests - f.statuses[200] for f in (one_select, bare, portal))
    if failed:
        say(f"WARNING: {failed} requests were not 200; their latencies are left out")


def run(plan: Plan, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = fresh_database("postgresql", Path(tmp), args.pg_url, prefix="chairside_bench")
        try:
            upgrade(url)
            asyncio.run(bench(url, plan, args))
        finally:
            drop_database(url, args.pg_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--appointments", type=int, default=1_000_000)
    parser.add_argument("--patients", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=200, help="patient users signed in")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0, help="timed seconds a phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="untimed seconds a phase")
    parser.add_argument("--http", choices=["raw", "httpx"], default="raw")
    parser.add_argument(
        "--pg-url", default=os.environ.get("CHAIRSIDE_TEST_POSTGRES_URL") or DEFAULT_PG_URL
    )
    args = parser.parse_args()
    if args.patients < 1 or args.appointments < args.patients:
        parser.error("give at least 1 patient and at least one appointment a patient")
    if not 1 <= args.users <= args.patients:
        parser.error("--users is between 1 and --patients")
    if args.clients < 1 or args.seconds <= 0 or args.warmup < 0:
        parser.error("give at least 1 client, some seconds and a warm-up of 0 or more")
    now = datetime.now(UTC)
    plan = Plan(args.appointments, args.patients, args.users, now.date(), now)
    say(
        f"Chairside portal benchmark: {os.cpu_count()} CPU cores shared by clients, server and "
        f"PostgreSQL; {args.appointments:,} appointments, {args.patients:,} patients, "
        f"{args.users} patient users, {args.clients} clients"
    )
    run(plan, args)


if __name__ == "__main__":
    main()
