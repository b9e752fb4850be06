"""Settings from `CHAIRSIDE_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "change-me-in-production"  # noqa: S105 - the sentinel we refuse outside development


def default_database_url() -> str:
    return f"sqlite:///{Path('var') / 'chairside.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHAIRSIDE_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = default_database_url()
    secret_key: str = DEFAULT_SECRET
    # The service's public address (https://chairside.example.org): SMART's issuer, its
    # discovery URLs and the id_tokens' `iss` are made from it, never from a request's Host
    # header. Unset: the address each request came to.
    public_url: str | None = None
    token_ttl_hours: float = 12.0
    token_idle_minutes: float = 30.0
    max_body_bytes: int = 1_000_000
    # A request's line and headers together: larger ones get 431 before more of them is read.
    max_header_bytes: int = 16_384
    # Header fields in one request (431 past it): real clients send a few dozen at most.
    max_headers: int = 100
    # A connection's request headers must be complete this long after it opened (or after its
    # previous response), or it is closed: slow senders cannot hold connections open.
    header_timeout_seconds: float = 10.0
    # A request still running after this many seconds is answered 503 and its work undone
    # (background-job and sweep runs, which commit as they go, are exempt).
    request_timeout_seconds: float = 30.0
    # Failed sign-ins allowed per account and per client address within the window.
    sign_in_failures_per_account: int = 5
    sign_in_failures_per_address: int = 20
    sign_in_window_minutes: float = 15.0
    # Requests that fail authentication (no credential, a bad or an expired one), per client
    # address: this many a minute are answered 401 (a burst of them, then one per share of the
    # minute), the rest 429 with Retry-After and not recorded. Each one answered 401 is counted
    # in its address's tally for the minute; the first few of the minute (on audited routes)
    # are also audit events of their own. A good credential is never turned away.
    unauthenticated_per_address_per_minute: int = 300
    unauthenticated_events_per_address_per_minute: int = 1
    # Connections a process may hold (opened as needed, then kept). No overflow beyond the
    # pool: an overflow connection is closed as soon as it is returned to a full pool, so a
    # steady load above the pool size opened and closed connections all the time (a new
    # connection also prepares its statements afresh), which was most of the one-SELECT
    # floor's p99 at 32 clients. Past the pool, requests wait for a connection in turn.
    db_pool_size: int = 40
    db_max_overflow: int = 0
    log_level: str = "INFO"
    # Run the job scheduler in this process (`chairside serve` turns it on unless told not to).
    scheduler: bool = False
    scheduler_tick_seconds: float = 15.0
    # First retry of a failed webhook delivery; each later one waits twice as long (max 1 h).
    webhook_retry_seconds: float = 30.0
    reminder_hours: float = 48.0
    # A job run whose heartbeat is older than this died with its process: another may start.
    job_stale_seconds: float = 90.0
    # Webhooks to loopback, private or link-local addresses (a test receiver, an internal
    # service): refused unless allowed, so the API cannot be used to probe the network inside.
    webhook_allow_private: bool = False
    # Electronic prior authorization: how long a payer may take to connect and to answer, and
    # how many tries a call gets (network failures and 5xx only; the first retry waits
    # `payer_retry_seconds`, each later one twice as long).
    payer_connect_timeout_seconds: float = 5.0
    payer_read_timeout_seconds: float = 20.0
    payer_attempts: int = 3
    payer_retry_seconds: float = 0.5
    # Payer endpoints on loopback or private addresses (a local fake payer): refused unless
    # allowed, as webhooks are.
    payer_allow_private: bool = False
    # A pended request is asked about this long after the payer pended it, then twice as
    # long after each inquiry still pended, up to `pas_inquiry_max_hours`.
    pas_inquiry_first_minutes: float = 15.0
    pas_inquiry_max_hours: float = 12.0
    # Lets a request say what time it is (the `Chairside-Test-Now` header), so tests can check
    # in a session booked for next year. Refused outside the test environment.
    test_clock: bool = False

    @field_validator("public_url")
    @classmethod
    def _an_origin(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError("CHAIRSIDE_PUBLIC_URL is an http(s) URL, such as https://host")
        if parts.fragment or "@" in parts.netloc:
            raise ValueError("CHAIRSIDE_PUBLIC_URL has no fragment and no user name")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.environment != "development" and self.secret_key == DEFAULT_SECRET:
            raise ValueError(
                "CHAIRSIDE_SECRET_KEY must be set to a real secret outside development"
            )
        if self.test_clock and self.environment != "test":
            raise ValueError("CHAIRSIDE_TEST_CLOCK is only for the test environment")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
