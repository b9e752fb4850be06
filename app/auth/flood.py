"""Turning away floods of requests that fail authentication, by client address.

A token bucket per address: `per_minute` failed authentications may come at once, then one
every 60 / `per_minute` seconds. Past that, a request that fails authentication is answered
429 with Retry-After, and nothing of it is written anywhere. Only failures count: a request
whose credential is good is never turned away, whatever else comes from its address (a
clinic's staff behind one NAT address).

The buckets live in this process's memory, on purpose: a flood is made of refused requests,
and checking one here costs no database round trip (telling a bad token from a good one
still costs the read that looks it up). With several API processes an address gets its
allowance in each, which still bounds what it can make us write; the count across processes
is the tally in the database (`app.audit.service.tally_refusal`), which every refusal that is
answered 401 adds to. A restart forgets the buckets: the flood gets one more burst.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float  # when `tokens` was worked out (the clock's seconds)


class Gate:
    """Whether one more failed authentication from an address may be answered (and
    recorded) now. Synchronous, so one event loop's requests cannot race on a bucket."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = 10_000,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.clock = clock
        self.max_addresses = max_addresses
        # Oldest use first (a use moves its address to the end), so the quietest go first.
        self._buckets: dict[str, _Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def admit(self, address: str) -> int:
        """0: go ahead (this one is counted); else the seconds to wait for the next."""
        now = self.clock()
        bucket = self._buckets.pop(address, None) or _Bucket(self.capacity, now)
        bucket.tokens = self._level(bucket, now)
        bucket.at = now
        wait = 0
        if bucket.tokens >= 1:
            bucket.tokens -= 1
        else:
            wait = max(1, math.ceil((1 - bucket.tokens) / self.rate))
        self._buckets[address] = bucket
        if len(self._buckets) > self.max_addresses:
            self._forget(now)
        return wait

    def _level(self, bucket: _Bucket, now: float) -> float:
        return min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)

    def _forget(self, now: float) -> None:
        """Drop the addresses whose bucket has filled again (as good as never seen); if that
        is not enough (a flood from very many addresses), the least recently seen, which
        then start afresh: memory stays bounded, at the price of a burst more for them."""
        for address in [
            a for a, b in self._buckets.items() if self._level(b, now) >= self.capacity
        ]:
            del self._buckets[address]
        while len(self._buckets) > self.max_addresses * 3 // 4:
            del self._buckets[next(iter(self._buckets))]
