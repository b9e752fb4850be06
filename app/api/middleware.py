"""ASGI middleware: request ids, body size limit and JSON access logs without patient data."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import fhir
from app.api.errors import PROBLEM_JSON, fhir_aware, outage_response
from app.api.metrics import Metrics
from core import clock
from core.logs import describe
from core.outages import classify

log = logging.getLogger("chairside.access")


class BodyTooLarge(HTTPException):
    """An HTTPException, so FastAPI's body reader lets it through instead of answering 400."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request bodies are limited to {max_bytes} bytes")


# Where a request's time limit is kept, for a route the policy exempts to lift it (runs of
# background jobs and sweeps commit as they go and may take minutes on purpose).
TIME_LIMIT = "chairside.time_limit"


class RequestGuard:
    """Refuses bodies over `max_bytes` (413), answers a request still running after
    `timeout` seconds with 503 (its transaction rolls back), and logs each request as one
    JSON line.

    The log line has the route template, never the concrete path or query string: ids and
    searches in URLs can identify patients.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, metrics: Metrics, timeout: float = 30.0
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = {"code": 500, "sent": False}

        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._problem(
                scope,
                send,
                request_id,
                413,
                "Request body too large",
                f"request bodies are limited to {self.max_bytes} bytes",
            )
            self._log(scope, 413, started, request_id)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["sent"] = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            async with asyncio.timeout(self.timeout) as deadline:
                scope[TIME_LIMIT] = deadline
                await self.app(scope, limited_receive, tracking_send)
        except TimeoutError:
            if not status["sent"]:
                await self._problem(
                    scope,
                    send,
                    request_id,
                    503,
                    "Busy, try again",
                    f"the request took longer than {self.timeout:g} s and was stopped; "
                    "what it had not saved yet was undone",
                )
            status["code"] = 503
        except BodyTooLarge:
            if not status["sent"]:
                await self._problem(
                    scope,
                    send,
                    request_id,
                    413,
                    "Request body too large",
                    f"request bodies are limited to {self.max_bytes} bytes",
                )
            status["code"] = 413
        except Exception as exc:
            outage = classify(exc)
            if outage is not None:
                # The database was out of reach before any handler saw it (a connection that
                # could not be opened raises the driver's own error): a 503, not a bug.
                log.warning(json.dumps({"request_id": request_id, "outage": outage.value}))
                if not status["sent"]:
                    answer = fhir_aware(str(scope.get("path", "")), outage_response(outage))
                    await answer(scope, receive, tracking_send)
                status["code"] = 503
                return
            # A bug. Answer here rather than let the server print the exception (its message
            # can quote patient data); log only where it happened.
            log.error(
                json.dumps(
                    {"request_id": request_id, "error": type(exc).__name__, "stack": describe(exc)}
                )
            )
            if not status["sent"]:
                await self._problem(
                    scope,
                    send,
                    request_id,
                    500,
                    "Internal error",
                    "something went wrong on our side",
                )
            status["code"] = 500
        finally:
            self._log(scope, int(status["code"]), started, request_id)

    async def _problem(
        self, scope: Scope, send: Send, request_id: str, status: int, title: str, detail: str
    ) -> None:
        body = json.dumps(
            {
                "type": f"https://chairside.dev/problems/http-{status}",
                "title": title,
                "status": status,
                "detail": detail,
            }
        ).encode()
        media = PROBLEM_JSON
        if fhir.under_fhir(str(scope.get("path", ""))):
            outcome = fhir.operation_outcome(status, detail, slug=f"http-{status}", title=title)
            body, media = json.dumps(outcome).encode(), fhir.FHIR_JSON
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", media.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _log(self, scope: Scope, status: int, started: float, request_id: str) -> None:
        route: Any = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        seconds = time.perf_counter() - started
        method = str(scope.get("method"))
        self.metrics.observe(method, template, status, seconds)
        if log.isEnabledFor(logging.INFO):
            entry = {
                "request_id": request_id,
                "method": method,
                "route": template,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
            }
            log.info(json.dumps(entry))


TEST_NOW = b"chairside-test-now"


class TestClock:
    """Test servers only (see `Settings.test_clock`): a request carrying `Chairside-Test-Now`
    (an ISO instant with its offset) is handled as if that were the time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = dict(scope.get("headers") or []).get(TEST_NOW) if scope["type"] == "http" else None
        if raw is None:
            await self.app(scope, receive, send)
            return
        now = datetime.fromisoformat(raw.decode())
        if now.tzinfo is None:
            raise ValueError("Chairside-Test-Now needs an offset")
        with clock.shifted(now):
            await self.app(scope, receive, send)
