"""Authlib's OAuth 2.0 authorization server behind a small Starlette adapter.

Authlib decides (validates requests, checks PKCE, picks the error), we store. Its callbacks
are synchronous and our database is async, so instead of running Authlib in a worker thread
that calls back into the event loop, a request first reads what the grant can ask for (the
app named by client_id, the code or refresh token it sends, their user, the signing key),
Authlib runs on those in memory, and what it decided to write is applied after, in the
same transaction (`Pending`). Everything a grant may look up is named by the request
itself, so nothing is missed, and no Authlib call ever waits on the database. Writes that
must happen once (consuming a code, rotating a refresh token) are conditional UPDATEs, so
two requests racing with one code cannot both win even though both read it unused.

One `SmartServer` serves one request: it holds that request's reads and writes.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped]
    AuthorizationServer,
    ClientMixin,
    InsecureTransportError,
    InvalidRequestError,
    JsonRequest,
    OAuth2Payload,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import CodeChallenge  # type: ignore[import-untyped]
from joserfc.jwk import RSAKey
from starlette.datastructures import FormData, QueryParams
from starlette.requests import Request
from starlette.responses import Response

from app.auth.models import AccessToken
from app.smart import scopes, service
from app.smart.models import SmartApp, SmartAuthorizationCode, SmartRefreshToken
from core.clock import wall_now
from core.problems import Invalid
from core.users import User

# --- the adapter: Starlette requests in, Starlette responses out -----------------------------


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, items: list[tuple[str, str]]) -> None:
        lists: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            lists[key].append(value)
        self._datalist = lists
        self._data = {key: values[0] for key, values in lists.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):  # type: ignore[misc]
    """An OAuth2Request made from a Starlette request whose form was already read (reading
    it is async; Authlib's calls are not). Parameters come from the query and the form, as
    Flask's `request.values` gives them to Authlib's Flask integration."""

    def __init__(self, request: Request, form: FormData | None) -> None:
        super().__init__(request.method, str(request.url), headers=dict(request.headers))
        query = QueryParams(request.url.query)
        self._args = dict(query)
        self._form = {k: v for k, v in (form or FormData()).items() if isinstance(v, str)}
        items = list(query.multi_items()) + [
            (k, v) for k, v in (form or FormData()).multi_items() if isinstance(v, str)
        ]
        self.payload = _Payload(items)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


async def oauth_request(request: Request) -> StarletteOAuth2Request:
    """Authlib refuses OAuth over plain http (but on the loopback): behind a proxy that ends
    TLS, the proxy must say so (X-Forwarded-Proto, see README "Behind a reverse proxy")."""
    form = await request.form() if request.method == "POST" else None
    try:
        return StarletteOAuth2Request(request, form)
    except InsecureTransportError:
        raise Invalid("OAuth needs https: this request came over plain http") from None


# --- what Authlib sees of our records ---------------------------------------------------------


class Client(ClientMixin):  # type: ignore[misc]
    """A registered app: a public client (no secret), code flow only, exact redirect URIs."""

    def __init__(self, app: SmartApp) -> None:
        self.app = app

    def get_client_id(self) -> str:
        return self.app.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # SMART apps always name theirs

    def get_allowed_scope(self, scope: str | None) -> str:
        return scopes.granted(scope)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.app.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class Code:
    row: SmartAuthorizationCode

    @property
    def code_challenge(self) -> str:
        return self.row.code_challenge

    @property
    def code_challenge_method(self) -> str:
        return self.row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope


@dataclass
class Refresh:
    row: SmartRefreshToken

    def check_client(self, client: Client) -> bool:
        return self.row.app_id == client.app.id

    def get_scope(self) -> str:
        return self.row.scope

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None


@dataclass
class Access:
    row: AccessToken

    def check_client(self, client: Client) -> bool:
        return self.row.client_id == client.app.id


# --- one request's reads and writes -----------------------------------------------------------


@dataclass
class Loaded:
    """What the request names, read before Authlib runs."""

    issuer: str  # the FHIR base URL: `aud` of requests, `iss` of id_tokens
    app: SmartApp | None = None
    code: SmartAuthorizationCode | None = None
    refresh: SmartRefreshToken | None = None
    access: AccessToken | None = None
    user: User | None = None
    key: RSAKey | None = None


@dataclass
class Pending:
    """What Authlib decided to write, applied after it returns."""

    codes: list[service.NewCode] = field(default_factory=list)
    tokens: list[service.NewTokens] = field(default_factory=list)
    consume_code: uuid.UUID | None = None
    retire_refresh: uuid.UUID | None = None
    # (family, app, user) of a code or refresh token used again, or of a revoked refresh
    revoke_family: tuple[uuid.UUID, uuid.UUID, uuid.UUID] | None = None
    revoke_access: uuid.UUID | None = None


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE, required of every request, with S256 only (SMART App Launch 2)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge (S256)")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)


NONCE_MAX = 255  # the column's width; OpenID Connect sets no limit, and apps send ~43


class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]
    server: SmartServer

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        if (self.request.payload.data.get("aud") or "").rstrip("/") != self.server.loaded.issuer:
            raise InvalidRequestError(
                "aud must be this server's FHIR base URL", redirect_uri=redirect_uri
            )
        if not self.request.scope:
            raise InvalidRequestError(
                "none of the scopes asked for is one we grant", redirect_uri=redirect_uri
            )
        if len(self.request.payload.data.get("nonce") or "") > NONCE_MAX:
            raise InvalidRequestError(
                f"nonce is at most {NONCE_MAX} characters", redirect_uri=redirect_uri
            )
        return redirect_uri

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        self.server.pending.codes.append(
            service.NewCode(
                code=code,
                app_id=request.client.app.id,
                user_id=request.user.id,
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope,
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                nonce=data.get("nonce") or None,
            )
        )

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        row = self.server.loaded.code
        if row is None or row.app_id != client.app.id:
            return None
        if row.used_at is not None:
            # Used before: whoever holds it now may have stolen it.
            self.server.pending.revoke_family = (row.id, row.app_id, row.user_id)
            return None
        if row.expires_at <= wall_now():
            return None
        return Code(row)

    def delete_authorization_code(self, authorization_code: Code) -> None:
        self.server.pending.consume_code = authorization_code.row.id

    def authenticate_user(self, authorization_code: Code) -> User | None:
        return self.server.loaded.user


class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: each refresh token works once
    server: SmartServer

    def authenticate_refresh_token(self, refresh_token: str) -> Refresh | None:
        row = self.server.loaded.refresh
        if row is None:
            return None
        if row.revoked_at is not None:
            # A replaced token used again: the old one leaked, or the new one did.
            self.server.pending.revoke_family = (row.family_id, row.app_id, row.user_id)
            return None
        if row.expires_at <= wall_now():
            return None
        return Refresh(row)

    def authenticate_user(self, refresh_token: Refresh) -> User | None:
        return self.server.loaded.user

    def revoke_old_credential(self, refresh_token: Refresh) -> None:
        self.server.pending.retire_refresh = refresh_token.row.id


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["none"]
    server: SmartServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        loaded = self.server.loaded
        found: list[Any] = []
        if loaded.refresh is not None:
            found.append(Refresh(loaded.refresh))
        if loaded.access is not None:
            found.append(Access(loaded.access))
        if token_type_hint == "access_token":  # noqa: S105 - a hint's name
            found.reverse()
        return found[0] if found else None

    def revoke_token(self, token: Any, request: OAuth2Request) -> None:
        if isinstance(token, Refresh):
            row = token.row
            self.server.pending.revoke_family = (row.family_id, row.app_id, row.user_id)
        else:
            self.server.pending.revoke_access = token.row.id


class SmartServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, loaded: Loaded) -> None:
        super().__init__()
        self.loaded = loaded
        self.pending = Pending()
        self.register_grant(CodeGrant, [S256Only(required=True)])
        self.register_grant(RefreshGrant)
        self.register_endpoint(Revocation)
        self.register_token_generator("default", self._tokens)

    def query_client(self, client_id: str) -> Client | None:
        app = self.loaded.app
        return Client(app) if app is not None and app.client_id == client_id else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        if request.authorization_code is not None:
            code = request.authorization_code.row
            family = code.id
            ends_by = code.created_at + service.ONLINE_ACCESS_LIFETIME
        else:
            family = request.refresh_token.row.family_id
            ends_by = request.refresh_token.row.expires_at  # a rotated token outlives none
        refresh_expires_at = (
            service.refresh_expires_at(token["scope"], wall_now(), ends_by)
            if token.get("refresh_token")
            else None
        )
        self.pending.tokens.append(
            service.NewTokens(
                access_token=token["access_token"],
                refresh_token=token.get("refresh_token"),
                scope=token["scope"],
                app_id=request.client.app.id,
                user_id=request.user.id,
                family_id=family,
                refresh_expires_at=refresh_expires_at,
            )
        )

    def _tokens(
        self,
        grant_type: str,
        client: Client,
        user: User,
        scope: str,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """The token response: the bearer token, a refresh token only when the patient let
        the app keep access (Authlib asks for one whenever the client may refresh, which
        ours always may), and SMART's context (`patient`) and id_token when the scopes ask
        for them."""
        token: dict[str, Any] = {
            "access_token": secrets.token_urlsafe(32),
            "token_type": "Bearer",
            "expires_in": int(service.ACCESS_LIFETIME / timedelta(seconds=1)),
            "scope": scope,
        }
        if include_refresh_token and scopes.keeps_access(scope):
            token["refresh_token"] = secrets.token_urlsafe(32)
        if scopes.has_patient_context(scope):
            token["patient"] = str(user.patient_id)
        if scopes.wants_id_token(scope) and self.loaded.key and user.patient_id:
            code = self.loaded.code if grant_type == "authorization_code" else None
            token["id_token"] = service.id_token(
                self.loaded.key,
                self.loaded.issuer,
                client.app.client_id,
                user.id,
                user.patient_id,
                nonce=code.nonce if code is not None else None,
                auth_time=code.created_at if code is not None else None,
            )
        return token

    # The adapter's half: Authlib asks the framework for requests and responses.

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        raise TypeError("read the request with oauth_request() first")

    def create_json_request(self, request: Any) -> JsonRequest:
        if isinstance(request, JsonRequest):
            return request
        raise TypeError("no endpoint of ours takes JSON")

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        content = json.dumps(body) if isinstance(body, dict) else (body or "")
        return Response(content, status_code=status, headers=dict(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None  # no listeners
