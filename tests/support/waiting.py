"""Waiting for something a real process does, without a timed assertion: poll until it is
so, and fail only after a generous limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    what: str, check: Callable[[], T | None], timeout: float = 90, every: float = 0.1
) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"gave up waiting for {what}")
