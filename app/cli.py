"""The `chairside` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import sys
import uuid

from app.settings import get_settings


def _migrate() -> None:
    from app.migrate import upgrade

    upgrade(get_settings().database_url)


def _behind() -> str | None:
    """A server or scheduler does not migrate: `chairside migrate` is a release step, so that
    replicas starting together never race to change the schema."""
    from app.migrate import behind

    return behind(get_settings().database_url)


def cmd_migrate(_: argparse.Namespace) -> int:
    _migrate()
    print("database migrated to the latest revision")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    # Every process may run a scheduler: only the one holding the leader lock runs jobs. Set
    # before the settings are first read, so this process and its workers all see it.
    if args.no_scheduler:
        os.environ["CHAIRSIDE_SCHEDULER"] = "false"
    else:
        os.environ.setdefault("CHAIRSIDE_SCHEDULER", "true")
    get_settings.cache_clear()
    if args.migrate:
        _migrate()
    if (refusal := _behind()) is not None:
        print(refusal, file=sys.stderr)
        return 1
    from app.http_limits import LimitedHttpToolsProtocol

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        http=LimitedHttpToolsProtocol,  # header size, count and time limits (app.http_limits)
        access_log=False,
        log_level="warning",
        log_config=None,  # the service's JSON lines (core.logs), not uvicorn's plain ones
    )
    return 0


def cmd_users_deactivate(args: argparse.Namespace) -> int:
    from app.auth.service import deactivate_user
    from core.db import Database
    from core.problems import Problem

    async def run() -> None:
        db = Database(get_settings().database_url)
        try:
            async with db.unit_of_work() as session:
                await deactivate_user(session, args.email)
        finally:
            await db.dispose()

    try:
        asyncio.run(run())
    except Problem as exc:
        print(exc.detail, file=sys.stderr)
        return 1
    print("deactivated; their tokens are revoked")
    return 0


def cmd_users_create(args: argparse.Namespace) -> int:
    from app.auth.service import create_user
    from core.db import Database
    from core.problems import Problem

    password = args.password or os.environ.get("CHAIRSIDE_NEW_USER_PASSWORD")
    if not password:
        if not sys.stdin.isatty():
            print("give --password or set CHAIRSIDE_NEW_USER_PASSWORD", file=sys.stderr)
            return 2
        password = getpass.getpass("Password: ")
    patient_id = uuid.UUID(args.patient_id) if args.patient_id else None

    async def run() -> uuid.UUID:
        db = Database(get_settings().database_url)
        try:
            async with db.unit_of_work() as session:
                user = await create_user(session, args.email, args.role, password, patient_id)
                return user.id
        finally:
            await db.dispose()

    try:
        user_id = asyncio.run(run())
    except Problem as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    print(f"created {args.role} user {args.email.strip().lower()} ({user_id})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo import load_demo

    _migrate()
    summary = asyncio.run(load_demo(get_settings().database_url, only_if_empty=args.if_empty))
    print(summary)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from core.db import Database
    from insurance.worklist import sweep

    async def run() -> str:
        db = Database(get_settings().database_url)
        try:
            outcome, seconds = await sweep(db, everyone=args.everyone)
        finally:
            await db.dispose()
        return (
            f"swept {outcome.patients} patients in {seconds:.2f} s: "
            f"{outcome.opened} alerts opened, {outcome.updated} updated, "
            f"{outcome.resolved} resolved"
        )

    print(asyncio.run(run()))
    return 0


def cmd_scheduler(_: argparse.Namespace) -> int:
    from app.jobs.scheduler import run_forever
    from core.db import Database
    from core.logs import configure_logging

    if (refusal := _behind()) is not None:
        print(refusal, file=sys.stderr)
        return 1
    settings = get_settings()
    configure_logging(settings.log_level)
    db = Database(settings.database_url)
    print(
        "scheduler running; only the leader among running schedulers runs jobs "
        "(on PostgreSQL, all of them share the night's bookings, a center each at a time)",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_forever(db, settings.scheduler_tick_seconds))
    return 0


# As in app.jobs.registry.JOBS (not imported here: the command line starts light).
JOB_NAMES = (
    "auto_book",
    "lapse_sweep",
    "no_show_sweep",
    "reminders",
    "webhook_delivery",
    "housekeeping",
    "drug_check",
    "waitlist_offers",
    "pas_inquiry",
)


def cmd_jobs_run(args: argparse.Namespace) -> int:
    from app.jobs.cli import run_now

    return run_now(args.name)


def cmd_openapi(args: argparse.Namespace) -> int:
    """The OpenAPI document, as /openapi.json serves it: built from the routes, with no server
    or database (for the linters, and generating clients)."""
    import json
    from pathlib import Path

    from app.main import create_app

    text = json.dumps(create_app(get_settings()).openapi(), indent=2, ensure_ascii=False) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chairside", description="Infusion-center scheduling")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the API (and the scheduler)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--no-scheduler", action="store_true")
    serve.add_argument(
        "--migrate",
        action="store_true",
        help="migrate first: for a single instance (the embedded SQLite database); replicas "
        "rely on `chairside migrate` as a release step",
    )
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply migrations")
    migrate.set_defaults(func=cmd_migrate)

    users = sub.add_parser("users", help="manage users")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    create = users_sub.add_parser("create", help="create a user")
    create.add_argument("--email", required=True)
    create.add_argument(
        "--role", required=True, choices=["admin", "nurse", "billing", "pharmacy", "patient"]
    )
    create.add_argument("--patient-id")
    create.add_argument("--password")
    create.set_defaults(func=cmd_users_create)
    deactivate = users_sub.add_parser(
        "deactivate", help="stop a user signing in; their tokens stop working at once"
    )
    deactivate.add_argument("--email", required=True)
    deactivate.set_defaults(func=cmd_users_deactivate)

    demo = sub.add_parser("demo", help="load a realistic demo center into an empty database")
    demo.add_argument("--if-empty", action="store_true", help="do nothing when data exists")
    demo.set_defaults(func=cmd_demo)

    scheduler = sub.add_parser("scheduler", help="run the job scheduler alone")
    scheduler.set_defaults(func=cmd_scheduler)

    jobs = sub.add_parser("jobs", help="background jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    run = jobs_sub.add_parser("run", help="run a job now, with progress and a summary")
    run.add_argument("name", choices=sorted(JOB_NAMES))
    run.set_defaults(func=cmd_jobs_run)

    sweep = sub.add_parser("sweep", help="recompute insurance cover and billing alerts")
    sweep.add_argument(
        "--everyone", action="store_true", help="every patient, not only those due for review"
    )
    sweep.set_defaults(func=cmd_sweep)

    openapi = sub.add_parser("openapi", help="write the OpenAPI document (no server needed)")
    openapi.add_argument("--out", default="-", help="a file to write; - (the default): stdout")
    openapi.set_defaults(func=cmd_openapi)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
