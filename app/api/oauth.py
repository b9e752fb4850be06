"""OAuth 2.0 for SMART apps: the authorization endpoint (the patient's consent page), the
token endpoint and revocation. Authlib does the protocol (see app.smart.server); these routes
read what it needs, show the pages, and store what it decided.

No bearer token here: the consent page goes by the web app's session cookie, and the token
and revocation endpoints by the app's client_id (public clients; PKCE stands in for a
secret). Their errors are OAuth's JSON (RFC 6749 §5.2), not problem+json.
"""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from authlib.oauth2.rfc6749 import OAuth2Error  # type: ignore[import-untyped]
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import SESSION_COOKIE, Session, get_settings, same_origin
from app.api.smart import fhir_base
from app.audit import service as audit_trail
from app.auth import service as auth
from app.smart import scopes
from app.smart import service as smart
from app.smart.models import SmartApp
from app.smart.server import Loaded, SmartServer, StarletteOAuth2Request, oauth_request
from app.web.pages import CONTENT_SECURITY_POLICY, SECURITY_HEADERS, templates
from core.problems import Unauthorized
from core.users import User

router = APIRouter(prefix="/oauth", tags=["smart"])

# The authorization request's parameters, carried through the consent form.
CARRIED = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
    "nonce",
)
FORM = {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}
OAUTH_JSON: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}}, "description": "OAuth JSON"},
    400: {"description": "OAuth error (RFC 6749 §5.2): invalid_request, invalid_grant, ..."},
}


CONSENT_PAGES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "the consent page"},
    302: {"description": "back to the app's redirect_uri with `code` or `error`, and `state`"},
    303: {"description": "to the sign-in page (`/?next=…`), which comes back here"},
    400: {"content": {"text/html": {}}, "description": "unknown app or unregistered redirect_uri"},
    403: {"content": {"text/html": {}}, "description": "staff, or no CSRF token / another site"},
}


def _page(
    request: Request,
    view: str,
    status_code: int,
    redirect_origin: str | None = None,
    **context: Any,
) -> Response:
    """The consent page, or what the browser is told instead (an error, a staff account)."""
    titles = {"consent": "Connect an app", "staff": "Patients only", "error": "Cannot connect"}
    response = templates.TemplateResponse(
        request,
        "consent.html",
        {"title": titles[view], "view": view, **context},
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    # With no-referrer, Chromium sends `Origin: null` with the form's POST, which
    # `same_origin` must refuse; same-origin still keeps the referrer from the app.
    response.headers["Referrer-Policy"] = "same-origin"
    if redirect_origin is not None:
        # The consent form's answer is a redirect to the app: Chromium holds form-action to
        # where a form's redirects go as well.
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
            "form-action 'self'", f"form-action 'self' {redirect_origin}"
        )
    return response


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def _unusable(app: SmartApp | None, oauth: StarletteOAuth2Request) -> str | None:
    """Why the browser cannot be sent back to the app at all (RFC 6749 §4.1.2.1: then it is
    told so here, never redirected), or None."""
    if app is None:
        return "This app is not registered with Chairside, or has been switched off."
    uri = oauth.payload.redirect_uri
    if not uri:
        return "The app did not say where to send you back (redirect_uri)."
    if len(oauth.payload.datalist.get("redirect_uri", [])) > 1 or uri not in app.redirect_uris:
        return "The app asked to send you to an address it has not registered."
    return None


async def _browser(request: Request, session: AsyncSession) -> tuple[auth.Caller, str] | None:
    """Who is signed in to the web app in this browser (the session cookie), and the
    session's CSRF token; None if nobody is."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    settings = get_settings(request)
    idle = timedelta(minutes=settings.token_idle_minutes)
    try:
        state = await auth.resolve(session, cookie, settings.secret_key, idle)
    except Unauthorized:
        return None
    if state.caller.scopes is not None:  # an app's token is no web session
        return None
    return state.caller, auth.csrf_token(cookie, settings.secret_key)


def _sign_in_first(request: Request) -> Response:
    back = request.url.path + ("?" + request.url.query if request.url.query else "")
    return RedirectResponse("/?next=" + quote(back, safe=""), status_code=303)


@router.get("/authorize", response_class=Response, responses=CONSENT_PAGES)
async def authorize(request: Request, session: Session) -> Response:
    """Start a SMART standalone launch (`response_type=code`, `client_id`, `redirect_uri`,
    `scope`, `state`, `aud` = this server's FHIR base URL, `code_challenge` with
    `code_challenge_method=S256`, optionally OpenID Connect's `nonce`). A browser not
    signed in goes to the sign-in page and comes back; a signed-in patient sees the
    consent page; staff are told only patients connect apps (403). An unknown app or
    unregistered redirect_uri is an error page (400), never a redirect; any other error
    goes back to the app as `error=…&state=…`."""
    oauth = await oauth_request(request)
    app = await smart.active_app(session, oauth.payload.client_id)
    why = _unusable(app, oauth)
    if why is not None:
        return _page(request, "error", 400, message=why)
    assert app is not None
    server = SmartServer(Loaded(issuer=fhir_base(request), app=app))
    try:
        grant = server.get_consent_grant(oauth)
    except OAuth2Error as error:
        answer: Response = server.handle_error_response(oauth, error)
        return answer
    browser = await _browser(request, session)
    if browser is None:
        return _sign_in_first(request)
    caller, csrf = browser
    if caller.role != "patient":
        return _page(request, "staff", 403, app_name=app.name)
    fields = {k: oauth.payload.data[k] for k in CARRIED if k in oauth.payload.data}
    return _page(
        request,
        "consent",
        200,
        redirect_origin=_origin(oauth.payload.redirect_uri),
        app_name=app.name,
        app_host=urlsplit(oauth.payload.redirect_uri).hostname,
        sees=scopes.described(grant.request.scope),
        fields=fields,
        csrf_token=csrf,
    )


@router.post(
    "/authorize",
    response_class=Response,
    responses=CONSENT_PAGES,
    openapi_extra={"requestBody": {"content": FORM}},
)
async def answer_consent(request: Request, session: Session) -> Response:
    """The consent page's answer (`decision` = allow or deny, the session's `csrf_token`,
    and the authorization request's parameters). Allow: back to the app's redirect_uri with
    `code` and `state`; deny: with `error=access_denied`. 403 page without the session's
    CSRF token, from another site's page, or for staff."""
    oauth = await oauth_request(request)
    app = await smart.active_app(session, oauth.payload.client_id)
    why = _unusable(app, oauth)
    if why is not None:
        return _page(request, "error", 400, message=why)
    assert app is not None
    browser = await _browser(request, session)
    if browser is None:
        return _page(
            request, "error", 401, message="You were signed out. Start again from the app."
        )
    caller, csrf = browser
    sent = oauth.form.get("csrf_token", "").encode("utf-8", "replace")
    if not same_origin(request) or not hmac.compare_digest(sent, csrf.encode()):
        return _page(request, "error", 403, message="This answer did not come from our page.")
    if caller.role != "patient":
        return _page(request, "staff", 403, app_name=app.name)
    server = SmartServer(Loaded(issuer=fhir_base(request), app=app))
    try:
        grant = server.get_consent_grant(oauth)
    except OAuth2Error as error:
        answer: Response = server.handle_error_response(oauth, error)
        return answer
    allowed = oauth.form.get("decision") == "allow"
    user = await session.get(User, caller.user_id) if allowed else None
    response: Response = server.create_authorization_response(oauth, grant_user=user, grant=grant)
    secret = get_settings(request).secret_key
    for code in server.pending.codes:
        await smart.save_code(session, code, secret)
        await audit_trail.record(
            session,
            audit_trail.Entry(
                actor_id=caller.user_id,
                role=caller.role,
                action="create",
                patient_id=caller.patient_id,
                resource_type="smart_authorization",
                resource_id=app.id,
                outcome="success",
                request_id=getattr(request.state, "request_id", "") or "",
                client=request.client.host if request.client is not None else None,
            ),
        )
    return response


@router.post(
    "/token",
    response_class=Response,
    responses=OAUTH_JSON,
    openapi_extra={"requestBody": {"content": FORM}},
)
async def token(request: Request, session: Session) -> Response:
    """Exchange a code (`grant_type=authorization_code`, `code`, `redirect_uri`,
    `client_id`, `code_verifier`) or a refresh token (`grant_type=refresh_token`,
    `refresh_token`, `client_id`, optionally a narrower `scope`) for an access token:
    `{access_token, token_type: Bearer, expires_in, scope, refresh_token, patient,
    id_token}`; a refresh_token only with `offline_access` or `online_access`. A code
    works once, for five minutes, for the app, redirect_uri and PKCE verifier it was made
    for; a refresh token works once (a new one comes with each answer), and using one again
    revokes the authorization. Errors are OAuth JSON: 400
    invalid_grant, invalid_request, invalid_client, invalid_scope, unsupported_grant_type."""
    oauth = await oauth_request(request)
    secret = get_settings(request).secret_key
    loaded = Loaded(issuer=fhir_base(request))
    loaded.app = await smart.active_app(session, oauth.payload.client_id)
    if loaded.app is not None:
        grant_type = oauth.payload.grant_type
        if grant_type == "authorization_code":
            loaded.code = await smart.code_by_value(session, oauth.form.get("code"), secret)
            owner, granted = (loaded.code.user_id, loaded.code.scope) if loaded.code else (None, "")
        elif grant_type == "refresh_token":
            loaded.refresh = await smart.refresh_by_value(
                session, oauth.form.get("refresh_token"), secret
            )
            owner, granted = (
                (loaded.refresh.user_id, loaded.refresh.scope) if loaded.refresh else (None, "")
            )
        else:
            owner, granted = None, ""
        if owner is not None:
            loaded.user = await smart.patient_user(session, owner)
            if scopes.wants_id_token(oauth.payload.scope or granted):
                loaded.key = await smart.signing_key(session, secret)
    server = SmartServer(loaded)
    response: Response = server.create_token_response(oauth)
    pending = server.pending
    won = True
    if pending.consume_code is not None:
        won = await smart.consume_code(session, pending.consume_code)
        if not won and loaded.code is not None:  # another request used the code meanwhile
            pending.revoke_family = (loaded.code.id, loaded.code.app_id, loaded.code.user_id)
    if pending.retire_refresh is not None:
        won = await smart.retire_refresh(session, pending.retire_refresh)
        if not won and loaded.refresh is not None:
            r = loaded.refresh
            pending.revoke_family = (r.family_id, r.app_id, r.user_id)
    if won:
        for tokens in pending.tokens:
            await smart.save_tokens(session, tokens, secret)
    else:
        response = server.handle_response(
            400,
            {"error": "invalid_grant", "error_description": "already used"},
            [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
        )
    if pending.revoke_family is not None:
        await smart.revoke_family(session, *pending.revoke_family)
    return response


@router.post(
    "/revoke",
    response_class=Response,
    responses=OAUTH_JSON,
    openapi_extra={"requestBody": {"content": FORM}},
)
async def revoke(request: Request, session: Session) -> Response:
    """Revoke an access or refresh token (RFC 7009: `token`, optional `token_type_hint`,
    `client_id`). Revoking a refresh token ends the whole authorization: its refresh tokens
    and the app's access tokens for that patient. 200 even for a token we do not know;
    400 invalid_client for an unknown app."""
    oauth = await oauth_request(request)
    secret = get_settings(request).secret_key
    loaded = Loaded(issuer=fhir_base(request))
    loaded.app = await smart.active_app(session, oauth.payload.client_id)
    if loaded.app is not None:
        value = oauth.form.get("token")
        loaded.refresh = await smart.refresh_by_value(session, value, secret)
        loaded.access = await smart.access_by_value(session, value, secret)
    server = SmartServer(loaded)
    response: Response = server.create_endpoint_response("revocation", oauth)
    if server.pending.revoke_family is not None:
        await smart.revoke_family(session, *server.pending.revoke_family)
    if server.pending.revoke_access is not None:
        await smart.revoke_access(session, server.pending.revoke_access)
    return response
