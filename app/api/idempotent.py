"""Idempotency-Key on POSTs that create things: appointments, courses, course bookings."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Header, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app import idempotency
from app.auth.service import Caller

IdempotencyKey = Annotated[str | None, Header()]
JSON = "application/json"


def _headers(body: str, location: str | None) -> dict[str, str]:
    headers = {"Location": location} if location else {}
    version = json.loads(body).get("version")
    if isinstance(version, int):
        headers["ETag"] = f'"{version}"'
    return headers


class IdempotentPost:
    """The same key and body get the first reply again; another body with the key is 422.

    The key is matched against the validated body, so the same request sent with different
    spacing or field order is still the same request.
    """

    def __init__(
        self, session: AsyncSession, caller: Caller, key: str | None, scope: str, data: BaseModel
    ) -> None:
        self.session = session
        self.attempt = (
            None
            if key is None
            else idempotency.attempt(caller.user_id, scope, key, data.model_dump_json().encode())
        )

    async def earlier(self) -> Response | None:
        if self.attempt is None:
            return None
        replay = await idempotency.earlier_reply(self.session, self.attempt)
        if replay is None:
            return None
        headers = _headers(replay.body, replay.location)
        return Response(replay.body, replay.status_code, headers=headers, media_type=JSON)

    async def reply(self, status: int, out: BaseModel, location: str | None = None) -> Response:
        """The reply, kept with the change it describes when a key was given."""
        body = out.model_dump_json()
        if self.attempt is not None:
            await idempotency.remember(self.session, self.attempt, status, body, location)
        return Response(body, status, headers=_headers(body, location), media_type=JSON)
