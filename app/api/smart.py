"""SMART App Launch: the apps admins register, and the discovery documents apps read."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from app.api.deps import Allowed, Audited, IfMatch, Session, etag, get_settings
from app.smart import scopes
from app.smart import service as smart
from app.smart.models import SmartApp
from core.problems import ensure_version
from core.schemas import Input, printable

router = APIRouter(tags=["smart"])

LOOPBACK = ("localhost", "127.0.0.1", "::1")


def redirect_uri(value: str) -> str:
    """An https URL, or http on the loopback (an app in development, RFC 8252 §7.3); no
    fragment, no user name, nothing a browser would read differently from us. Kept exactly
    as given: the app must send it back character for character."""
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError:
        raise ValueError("give an absolute https URL") from None
    if any(ch.isspace() or ord(ch) < 33 or ch in "\"'<>\\^`{|}" for ch in value):
        raise ValueError("a redirect URI has no spaces, quotes or control characters")
    if not hostname or parts.fragment or "#" in value or "@" in parts.netloc:
        raise ValueError("give an absolute URL with a host, no fragment and no user name")
    # Its origin goes into the consent page's Content-Security-Policy: a host and port only.
    if not re.fullmatch(
        r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?", parts.netloc
    ):
        raise ValueError("give a host name or address, and a port if any")
    if parts.scheme == "https" or (parts.scheme == "http" and hostname in LOOPBACK):
        return value
    raise ValueError("redirect URIs use https (http only on localhost or 127.0.0.1)")


RedirectUri = Annotated[
    str, StringConstraints(min_length=8, max_length=2000), AfterValidator(redirect_uri)
]
AppName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(printable),
]


class SmartAppCreate(Input):
    name: AppName = Field(description="shown to patients on the consent page")
    redirect_uris: list[RedirectUri] = Field(min_length=1, max_length=10)


class SmartAppUpdate(Input):
    name: AppName | None = None
    redirect_uris: list[RedirectUri] | None = Field(default=None, min_length=1, max_length=10)
    active: bool | None = Field(
        default=None, description="false: the app can no longer connect, and its tokens stop now"
    )


class SmartAppOut(BaseModel):
    id: uuid.UUID
    client_id: str = Field(description="the app's OAuth client_id (a public client: no secret)")
    name: str
    redirect_uris: list[str]
    active: bool
    created_at: datetime
    version: int


def app_out(app: SmartApp) -> SmartAppOut:
    return SmartAppOut(
        id=app.id,
        client_id=app.client_id,
        name=app.name,
        redirect_uris=list(app.redirect_uris),
        active=app.active,
        created_at=app.created_at,
        version=app.version,
    )


def _unique(uris: list[str]) -> list[str]:
    return list(dict.fromkeys(uris))


@router.post("/api/v1/smart-apps", status_code=status.HTTP_201_CREATED, response_model=SmartAppOut)
async def register_smart_app(
    data: SmartAppCreate, session: Session, _: Allowed, trail: Audited, response: Response
) -> SmartAppOut:
    """Register a patient app for SMART App Launch (admins). It gets a `client_id`; it is a
    public client, so it has no secret and must use PKCE (S256). 422 for a redirect URI
    that is not https (or http on localhost/127.0.0.1)."""
    app = await smart.create_app(session, data.name, _unique(data.redirect_uris))
    trail.saw(resource_id=app.id)
    response.headers["Location"] = f"/api/v1/smart-apps/{app.id}"
    response.headers["ETag"] = etag(app.version)
    return app_out(app)


@router.get("/api/v1/smart-apps", response_model=list[SmartAppOut])
async def list_smart_apps(session: Session, _: Allowed) -> list[SmartAppOut]:
    """Every registered SMART app, oldest first (admins)."""
    return [app_out(a) for a in await smart.list_apps(session)]


@router.get("/api/v1/smart-apps/{smart_app_id}", response_model=SmartAppOut)
async def get_smart_app(
    smart_app_id: uuid.UUID, session: Session, _: Allowed, response: Response
) -> SmartAppOut:
    """One registered SMART app, with its ETag (admins). 404 if there is none."""
    app = await smart.get_app(session, smart_app_id)
    response.headers["ETag"] = etag(app.version)
    return app_out(app)


@router.patch("/api/v1/smart-apps/{smart_app_id}", response_model=SmartAppOut)
async def update_smart_app(
    smart_app_id: uuid.UUID,
    data: SmartAppUpdate,
    version: IfMatch,
    session: Session,
    _: Allowed,
    trail: Audited,
    response: Response,
) -> SmartAppOut:
    """Rename an app, change its redirect URIs, or switch it off (`active` false: it can no
    longer connect and every token it holds stops working) or on again (admins). Needs
    If-Match (428 without, 412 when stale); 404 if there is no such app."""
    app = await smart.get_app(session, smart_app_id)
    ensure_version(app.version, version, "SMART app")
    trail.saw(resource_id=app.id)
    if data.name is not None:
        app.name = data.name
    if data.redirect_uris is not None:
        app.redirect_uris = _unique(data.redirect_uris)
    switched_off = app.active and data.active is False
    if data.active is not None:
        app.active = data.active
    await session.flush()  # one flush, one version
    if switched_off:
        await smart.shut_out_app(session, app)
    response.headers["ETag"] = etag(app.version)
    return app_out(app)


# --- discovery ---------------------------------------------------------------------------------


def fhir_base(request: Request) -> str:
    """The FHIR base URL: the issuer, `aud` of authorization requests, `iss` of id_tokens.
    From `CHAIRSIDE_PUBLIC_URL` when set; else as this request reached us (its Host header,
    which a client chooses)."""
    public = get_settings(request).public_url
    root = public if public is not None else str(request.base_url)
    return root.rstrip("/") + "/fhir/r4"


def smart_configuration(base: str) -> dict[str, Any]:
    """SMART App Launch 2's discovery document for this server. Pure."""
    root = base.removesuffix("/fhir/r4")
    return {
        "issuer": base,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "authorization_endpoint": f"{root}/oauth/authorize",
        "token_endpoint": f"{root}/oauth/token",
        "revocation_endpoint": f"{root}/oauth/revoke",
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": list(scopes.SUPPORTED),
        "id_token_signing_alg_values_supported": ["RS256"],
        "capabilities": [
            "launch-standalone",
            "client-public",
            "context-standalone-patient",
            "permission-patient",
            "permission-offline",
            "permission-online",
            "permission-v1",
            "permission-v2",
            "sso-openid-connect",
        ],
    }


@router.get("/fhir/r4/.well-known/smart-configuration")
async def get_smart_configuration(request: Request) -> JSONResponse:
    """How a SMART app connects (SMART App Launch 2.x): the authorization, token and
    revocation endpoints, PKCE S256, public clients, the scopes we grant. Public."""
    return JSONResponse(smart_configuration(fhir_base(request)))


@router.get("/fhir/r4/.well-known/jwks.json")
async def get_signing_keys(request: Request, session: Session) -> JSONResponse:
    """The public keys that sign id_tokens (a JWK Set; RS256). Public."""
    return JSONResponse(await smart.public_keys(session, get_settings(request).secret_key))
