"""`chairside jobs run NAME`: a job now, with a progress bar and a summary table."""

from __future__ import annotations

import asyncio
import sys

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from app.jobs.registry import JOBS, run_job
from app.settings import get_settings
from core.db import Database
from core.problems import Conflict


def run_now(name: str) -> int:
    console = Console()

    async def go() -> int:
        db = Database(get_settings().database_url)
        try:
            with Progress(console=console, transient=True) as bar:
                task = bar.add_task(name, total=None)

                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                run = await run_job(db, name, "command", progress=progress)
        except Conflict as exc:
            # Not a fault: say what is under way and when to try again, in one line.
            print(exc.detail, file=sys.stderr)
            return 75  # EX_TEMPFAIL: try again later
        finally:
            await db.dispose()
        table = Table(title=f"{name}: {run.outcome}")
        table.add_column("what")
        table.add_column("count", justify="right")
        for what, count in sorted(run.counts.items()):
            table.add_row(what, str(count))
        seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at else 0.0
        table.add_row("seconds", f"{seconds:.1f}")
        console.print(table)
        if run.error:
            console.print(f"error: {run.error}")
        return 0 if run.outcome == "succeeded" else 1

    assert name in JOBS
    return asyncio.run(go())
