"""HTTP to a payer's PAS endpoint: timeouts, retries with backoff on network failures and 5xx
(never on a 4xx: the payer read the request and said no), a client-credentials bearer token
fetched and kept until shortly before it expires, and no calls to loopback or private
addresses unless the settings allow them.

Nothing here logs or raises a body, a header or a URL's query: requests and answers carry
patient data. Every attempt comes back as an `Attempt` (timing, HTTP status, what went wrong
in words) for the caller to keep on the authorization's history.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.clock import wall_now
from core.problems import Invalid

BODY_LIMIT = 64_000  # characters of an answer kept on the exchange
TOKEN_MARGIN_SECONDS = 30.0  # a token this close to expiring is fetched again
RETRY_CAP_SECONDS = 8.0


@dataclass(frozen=True)
class Options:
    """How we talk to payers (from the `CHAIRSIDE_PAYER_*` settings)."""

    connect_seconds: float = 5.0
    read_seconds: float = 20.0
    attempts: int = 3
    retry_seconds: float = 0.5  # the first wait; each later one twice as long
    allow_private: bool = False

    @classmethod
    def of(cls, settings: Any) -> Options:
        """From anything with the settings' `payer_*` attributes (the app's Settings)."""
        return cls(
            connect_seconds=settings.payer_connect_timeout_seconds,
            read_seconds=settings.payer_read_timeout_seconds,
            attempts=max(1, settings.payer_attempts),
            retry_seconds=settings.payer_retry_seconds,
            allow_private=settings.payer_allow_private,
        )


@dataclass(frozen=True)
class Endpoint:
    """A payer's PAS base URL and the client credentials it gave us."""

    base_url: str
    token_url: str
    client_id: str | None
    client_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Attempt:
    attempt: int
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    http_status: int | None
    # answered (any HTTP answer below 500), server_error, timeout, network, unauthorized
    outcome: str
    body: str | None  # the answer as received, cut at BODY_LIMIT
    error: str | None  # what went wrong, in words without patient data


@dataclass
class Reply:
    """What came of one call, however many attempts it took."""

    attempts: list[Attempt] = field(default_factory=list)
    status: int | None = None  # the last answer's HTTP status
    document: Any = None  # the last answer parsed as JSON (None if it was not JSON)
    failure: str | None = None  # None: the payer answered; else the last attempt's outcome
    token_requests: int = 0

    @property
    def reached(self) -> bool:
        """The payer answered (2xx or 4xx): it had the request."""
        return self.failure is None


def _is_private(address: str) -> bool:
    try:
        return not ipaddress.ip_address(address.split("%", 1)[0]).is_global
    except ValueError:
        return True  # not an address we can judge: refuse rather than guess


def private_host(host: str) -> bool:
    """A host we must not call unless allowed: localhost, or a literal loopback, private,
    link-local or otherwise non-global address (as the webhook check judges them)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False  # a name: judged by what it resolves to, when called


def refuse_private(url: str, allow_private: bool) -> None:
    """Invalid for a payer URL naming a private host, unless allowed (names are resolved and
    judged when called)."""
    host = urlsplit(url).hostname or ""
    if not allow_private and private_host(host):
        raise Invalid("payer endpoints must be public addresses")


async def _check_address(url: str, allow_private: bool) -> None:
    """Refuse a URL whose host is, or resolves to, a private address: a payer URL must not
    become a way to probe the network inside."""
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    if private_host(host):
        raise Invalid("payer endpoints must be public addresses")
    try:
        ipaddress.ip_address(host)
        return  # a literal global address
    except ValueError:
        pass
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if any(_is_private(str(info[4][0])) for info in infos):
        raise Invalid("payer endpoints must be public addresses")


# Tokens by (token URL, client id, hash of the secret): a changed secret gets a new token.
_TOKENS: dict[tuple[str, str, str], tuple[str, float]] = {}


def _token_key(endpoint: Endpoint) -> tuple[str, str, str]:
    secret = hashlib.sha256((endpoint.client_secret or "").encode()).hexdigest()
    return endpoint.token_url, endpoint.client_id or "", secret


def forget_tokens() -> None:
    _TOKENS.clear()


def _cut(text: str | None) -> str | None:
    return text[:BODY_LIMIT] if text is not None else None


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


class _Attempts:
    """Runs attempts with backoff and keeps their record."""

    def __init__(self, options: Options, reply: Reply) -> None:
        self.options, self.reply = options, reply

    async def send(
        self, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
    ) -> httpx.Response | None:
        """Up to `attempts` tries; the answer below 500, or None when every try failed."""
        for n in range(1, self.options.attempts + 1):
            if n > 1:
                wait = self.options.retry_seconds * 2 ** (n - 2)
                await asyncio.sleep(min(wait, RETRY_CAP_SECONDS))
            started, clock = wall_now(), time.monotonic()
            status: int | None = None
            body: str | None = None
            error: str | None = None
            try:
                response = await client.request(method, url, **kwargs)
                status, body = response.status_code, response.text
                outcome = "server_error" if status >= 500 else "answered"
                if status >= 500:
                    error = f"the payer answered {status}"
            except httpx.TimeoutException as exc:
                response, outcome = None, "timeout"
                error = f"no answer in time ({type(exc).__name__})"
            except httpx.HTTPError as exc:
                response, outcome = None, "network"
                error = f"could not reach the payer ({type(exc).__name__})"
            except OSError as exc:
                response, outcome = None, "network"
                error = f"could not reach the payer ({type(exc).__name__})"
            self.record(n, started, clock, status, outcome, body, error)
            if response is not None and status is not None and status < 500:
                return response
        return None

    def record(
        self,
        n: int,
        started: datetime,
        clock: float,
        status: int | None,
        outcome: str,
        body: str | None,
        error: str | None,
    ) -> None:
        self.reply.attempts.append(
            Attempt(
                attempt=n,
                started_at=started,
                finished_at=wall_now(),
                duration_ms=round((time.monotonic() - clock) * 1000),
                http_status=status,
                outcome=outcome,
                body=_cut(body),
                error=error,
            )
        )
        self.reply.status = status
        self.reply.failure = None if outcome == "answered" else outcome


async def _token(
    client: httpx.AsyncClient, endpoint: Endpoint, options: Options, reply: Reply
) -> str | None:
    """A bearer token from the payer's token endpoint (client credentials, HTTP Basic), kept
    until shortly before it expires. None when the payer would not give one (reply.failure
    says why)."""
    key = _token_key(endpoint)
    held = _TOKENS.get(key)
    if held is not None and held[1] > time.monotonic():
        return held[0]
    await _check_address(endpoint.token_url, options.allow_private)
    reply.token_requests += 1
    # The token request is not an exchange about a patient: its attempts are not kept.
    scratch = Reply()
    response = await _Attempts(options, scratch).send(
        client,
        "POST",
        endpoint.token_url,
        data={"grant_type": "client_credentials"},
        auth=httpx.BasicAuth(endpoint.client_id or "", endpoint.client_secret or ""),
        headers={"Accept": "application/json"},
    )
    if response is None:
        reply.failure, reply.status = scratch.failure, scratch.status
        reply.attempts.extend(
            Attempt(
                a.attempt,
                a.started_at,
                a.finished_at,
                a.duration_ms,
                a.http_status,
                a.outcome,
                None,
                f"token: {a.error}",
            )
            for a in scratch.attempts
        )
        return None
    document = _parse(response.text)
    token = document.get("access_token") if isinstance(document, dict) else None
    if response.status_code != 200 or not isinstance(token, str) or not token:
        last = scratch.attempts[-1]
        reply.attempts.append(
            Attempt(
                last.attempt,
                last.started_at,
                last.finished_at,
                last.duration_ms,
                last.http_status,
                "unauthorized",
                None,
                f"the payer's token endpoint refused our credentials ({response.status_code})",
            )
        )
        reply.failure, reply.status = "unauthorized", response.status_code
        return None
    lifetime = document.get("expires_in", 300)
    seconds = float(lifetime) if isinstance(lifetime, int | float) else 300.0
    _TOKENS[key] = (token, time.monotonic() + max(0.0, seconds - TOKEN_MARGIN_SECONDS))
    return token


async def post(
    endpoint: Endpoint,
    operation: str,
    document: dict[str, Any],
    options: Options,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Reply:
    """POST a FHIR document to `{base_url}/{operation}` (e.g. `Claim/$submit`): every attempt
    in `reply.attempts`, the answer in `reply.status` and `reply.document`. Raises Invalid
    (before any attempt) when the endpoint is a private address that is not allowed."""
    url = f"{endpoint.base_url}/{operation}"
    await _check_address(url, options.allow_private)
    reply = Reply()
    timeout = httpx.Timeout(
        options.read_seconds, connect=options.connect_seconds, pool=options.connect_seconds
    )
    body = json.dumps(document, separators=(",", ":")).encode()
    async with httpx.AsyncClient(
        timeout=timeout, follow_redirects=False, transport=transport, trust_env=False
    ) as client:
        for fresh_token in (False, True):
            headers = {
                "Content-Type": "application/fhir+json",
                "Accept": "application/fhir+json",
            }
            if endpoint.client_id is not None:
                if fresh_token:
                    _TOKENS.pop(_token_key(endpoint), None)
                token = await _token(client, endpoint, options, reply)
                if token is None:
                    return reply
                headers["Authorization"] = f"Bearer {token}"
            response = await _Attempts(options, reply).send(
                client, "POST", url, content=body, headers=headers
            )
            if response is None:
                return reply
            # A kept token the payer no longer takes: fetch a new one, once.
            if response.status_code == 401 and endpoint.client_id is not None and not fresh_token:
                continue
            reply.document = _parse(response.text)
            return reply
    return reply
