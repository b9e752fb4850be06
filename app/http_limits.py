"""Limits on a request's head, enforced while it is read: uvicorn's httptools protocol has none.

Without them a 64 MB header was read to its end and served, four 16 MB headers grew the
process by 31 MB, and connections sending one header line a second stayed open for ever
(issue 14, defect 4). `LimitedHttpToolsProtocol` is uvicorn's httptools protocol with three
limits from the settings:

- `max_header_bytes`: the request line and headers, counted as raw bytes arrive. The parser is
  never fed more than that of one head: past it the answer is 431 and no more is read into it.
- `max_headers`: header fields in one request (431 past it).
- `header_timeout_seconds`: a connection must finish a request's head within this many
  seconds of opening or of its previous response; otherwise it is closed (408 when part of a
  request had arrived). An idle keep-alive connection is closed sooner by uvicorn's own
  keep-alive timeout.

A refused connection is closed gracefully: the short problem+json answer, then our half of
the connection (FIN), then whatever the client still sends is read and dropped for a moment,
so its kernel does not reset the connection before the client has read the answer. A reverse
proxy in front should enforce the same (README, "Behind a reverse proxy").
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from app.settings import get_settings
from core.problems import PROBLEM_BASE

# How long a refused connection's remaining input is read and dropped before it is closed.
LINGER_SECONDS = 2.0


class _HeadersTooLarge(Exception):
    """Raised inside a parser callback to stop the parser at once."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        settings = get_settings()
        self.max_header_bytes = settings.max_header_bytes
        self.max_headers = settings.max_headers
        self.header_timeout = settings.header_timeout_seconds
        # The head being read: whether it is, its raw bytes received, its fields and the
        # bytes of its parsed parts (URL, names, values).
        self.reading_head = True
        self.head_bytes = 0
        self.head_fields = 0
        self.head_parsed = 0
        self.head_deadline: asyncio.TimerHandle | None = None
        self.refused = False
        # A refusal waiting for the responses to earlier (pipelined) requests to go out first.
        self.pending_refusal: tuple[int, str, str] | None = None

    # The head's deadline: armed when the connection opens and when a response completes,
    # cancelled when a head is complete.
    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self.head_deadline = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _cancel_head_deadline(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None

    def _head_too_slow(self) -> None:
        self.head_deadline = None
        # A request being served (or queued behind one) is the request timeout's business.
        busy = self.cycle is not None and not self.cycle.response_complete
        if self.transport.is_closing() or not self.reading_head or busy:
            return
        if self.head_bytes:
            self._refuse(
                408,
                "Request timeout",
                f"request headers must arrive within {self.header_timeout:g} s",
            )
        else:
            self.transport.close()

    def _refuse(self, status: int, title: str, detail: str) -> None:
        """Answer `status` as problem+json, close our side, drop what else arrives."""
        self.refused = True
        self._cancel_head_deadline()
        if self.cycle is not None and not self.cycle.response_complete:
            self.pending_refusal = (status, title, detail)  # after the earlier responses
            return
        self._unset_keepalive_if_required()
        self.transport.write(self._problem(status, title, detail))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _problem(self, status: int, title: str, detail: str) -> bytes:
        """A whole problem+json response that closes the connection."""
        body = json.dumps(
            {
                "type": f"{PROBLEM_BASE}http-{status}",
                "title": title,
                "status": status,
                "detail": detail,
            }
        ).encode()
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        content += [
            b"content-type: application/problem+json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
        return b"".join(content)

    def send_400_response(self, msg: str) -> None:
        # uvicorn's own answer to what is not HTTP is plain text; like every 4xx, ours is
        # problem+json.
        self.transport.write(self._problem(400, "Bad request", "the request is not valid HTTP"))
        self.transport.close()

    def _too_large(self) -> None:
        if self.head_fields > self.max_headers:
            detail = f"a request may have at most {self.max_headers} header fields"
        else:
            detail = f"a request's line and headers are limited to {self.max_header_bytes} bytes"
        self._refuse(431, "Request header fields too large", detail)

    # Protocol interface
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # As uvicorn's, but a head is fed to the parser only up to its limit.
        if self.refused:
            return  # read and dropped
        self._unset_keepalive_if_required()
        while data and not self.transport.is_closing():
            if self.reading_head:
                room = self.max_header_bytes - self.head_bytes
                piece, data = data[:room], data[room:]
                self.head_bytes += len(piece)
            else:
                piece, data = data, b""
            try:
                self.parser.feed_data(piece)
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
                return
            except httptools.HttpParserError:
                if self.refused or self.transport.is_closing():
                    return
                if self.head_fields > self.max_headers or self.head_parsed > self.max_header_bytes:
                    self._too_large()  # stopped by a parser callback below
                    return
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
                return
            if self.reading_head and self.head_bytes >= self.max_header_bytes:
                self._too_large()
                return

    # Parser callbacks
    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_fields += 1
        if self.head_fields > self.max_headers:
            raise _HeadersTooLarge
        super().on_header(name, value)
        self._count(len(name) + len(value))

    def _count(self, parsed: int) -> None:
        # Raw bytes are counted as they arrive, except a head that begins in the same read as
        # the previous request's end (a read is at most 256 KiB); the parsed parts bound it.
        self.head_parsed += parsed
        if self.head_parsed > self.max_header_bytes:
            raise _HeadersTooLarge

    def on_headers_complete(self) -> None:
        self.reading_head = False
        self._cancel_head_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_head = True
        self.head_bytes = 0
        self.head_fields = 0
        self.head_parsed = 0
        if self.cycle is not None and self.cycle.response_complete:
            self._arm_head_deadline()  # answered before its body had all arrived

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.pending_refusal is not None and self.cycle.response_complete:
            refusal, self.pending_refusal = self.pending_refusal, None
            if not self.transport.is_closing():
                self._refuse(*refusal)
        elif self.reading_head and self.cycle.response_complete and not self.transport.is_closing():
            self._arm_head_deadline()
