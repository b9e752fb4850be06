"""SMART scopes: which of those asked for we grant, what they mean in plain words, and what a
scoped token may reach. Pure.

We grant patient-level read scopes only, in the v2 form (`patient/Appointment.rs`, or `.r`
and `.s` apart) and the v1 form (`patient/Appointment.read`), plus the identity and context
scopes. Anything else asked for is dropped, not refused: the token response says what was
granted (RFC 6749 §3.3).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# What a patient app may read: their appointments, their own Patient record, and the
# Location (the center) an appointment names.
RESOURCES = ("Appointment", "Patient", "Location")
_PERMISSIONS = ("rs", "r", "s", "read")
IDENTITY = ("openid", "fhirUser")
CONTEXT = ("launch/patient",)
ACCESS = ("offline_access", "online_access")
SUPPORTED: tuple[str, ...] = (
    IDENTITY + CONTEXT + ACCESS + tuple(f"patient/{r}.{p}" for r in RESOURCES for p in _PERMISSIONS)
)
_SUPPORTED = frozenset(SUPPORTED)
MOST_SCOPES = 40  # a request naming more is no app's honest request; the rest are dropped

_RESOURCE_SCOPE = re.compile(r"patient/([A-Za-z]+)\.(rs|r|s|read)")
# A FHIR route as the app declares it: /fhir/r4/{Type} (search) or /fhir/r4/{Type}/{id} (read).
_FHIR_ROUTE = re.compile(r"/fhir/r4/([A-Z][A-Za-z]+)(/\{[^}/]+\})?")


def granted(requested: str | None) -> str:
    """The scopes we grant of those asked for, in the order asked, each once."""
    out: list[str] = []
    for scope in (requested or "").split()[:MOST_SCOPES]:
        if scope in _SUPPORTED and scope not in out:
            out.append(scope)
    return " ".join(out)


def narrows(granted_scope: str, asked: str) -> bool:
    """Whether `asked` (a refresh's scope) takes nothing beyond what was granted."""
    return set(asked.split()) <= set(granted_scope.split())


def permits(scopes: Iterable[str], resource: str, interaction: str) -> bool:
    """Whether the scopes let the token `r`ead or `s`earch this resource type. `.read` (v1)
    means both. A Location is the center an appointment names: reading one is part of
    reading your appointments, so `patient/Appointment` read reaches it too."""
    for scope in scopes:
        match = _RESOURCE_SCOPE.fullmatch(scope)
        if match is None:
            continue
        kind, permission = match.groups()
        allowed = permission == "read" or interaction in permission
        if allowed and kind == resource:
            return True
        if resource == "Location" and interaction == "r" and kind == "Appointment" and allowed:
            return True
    return False


def reaches(scopes: frozenset[str], method: str, route: str) -> bool:
    """Whether a scoped token may call this route at all: FHIR reads and searches its
    scopes permit, nothing else (not the portal API, staff API or the web app)."""
    match = _FHIR_ROUTE.fullmatch(route)
    if method not in ("GET", "HEAD") or match is None:
        return False
    resource, one = match.groups()
    return permits(scopes, resource, "r" if one else "s")


def has_patient_context(scope: str) -> bool:
    return "launch/patient" in scope.split()


def wants_id_token(scope: str) -> bool:
    """An id_token is issued for `openid fhirUser` (SMART's sso-openid-connect)."""
    names = scope.split()
    return "openid" in names and "fhirUser" in names


def offline(scope: str) -> bool:
    return "offline_access" in scope.split()


def keeps_access(scope: str) -> bool:
    """Whether a refresh token comes with the access token: only when the patient let the
    app keep access, `offline_access` (until withdrawn) or `online_access` (12 hours from
    their allowing it). Without either, the app's access ends with its access token."""
    names = scope.split()
    return "offline_access" in names or "online_access" in names


_PLAIN = {
    "Appointment": "your upcoming appointments: when, where and their status",
    "Patient": "your basic details as the center has them, such as your name",
    "Location": "the addresses of the centers where you have appointments",
}


def described(scope: str) -> list[str]:
    """What the scopes let the app see, in plain words, for the consent page."""
    names = scope.split()
    lines: list[str] = []
    if "fhirUser" in names or "openid" in names:
        lines.append("who you are (that you are a patient here)")
    for resource in RESOURCES:
        if any(n.startswith(f"patient/{resource}.") for n in names):
            lines.append(_PLAIN[resource])
    if "offline_access" in names:
        lines.append("keep access after you close it, until you withdraw it")
    elif "online_access" in names:
        lines.append("keep access for up to 12 hours from now, even after you close it")
    return lines
