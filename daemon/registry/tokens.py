"""The endpoint's own token flow: how an engine's credentials reach it.

Engines send credentials to a registry only as its `GET /v2/` challenge asks (Docker, Podman
and containerd alike): a `200` there makes every pull anonymous, and a Basic challenge makes
an anonymous pull fail for want of a password. So `/v2/` asks for a Bearer token, as Docker
Hub does, from this endpoint's own `/token`: asked anonymously it gives the anonymous token;
asked with Basic credentials (`X-Registry-Auth` of a pull) it gives a token that carries
them, and every request with that token is that credential's (the mirror then uses it
upstream, and keys what it fetched by it). Nothing is checked here: upstream refuses wrong
credentials when the mirror passes them on.

The token is the Basic header itself, encoded: a daemon restarted mid-pull still knows what
an engine's token means, and it tells no one more than the Basic header the engine could
send instead (requests with `Authorization: Basic` are taken too, and requests without any
are anonymous). It never leaves loopback, and is never logged.
"""

from __future__ import annotations

import base64
import binascii
import time

from aiohttp import web

from ..errors import UpstreamAuthError
from ..sources.registry_upstream import Credential

ANONYMOUS = "anonymous"
_CARRIES = "basic."
SERVICE = "nosana-cache"
LIFETIME = 3600


def challenge(request: web.Request) -> str:
    """The `WWW-Authenticate` of `/v2/`: the realm on the address the engine asked."""
    realm = f"{request.scheme}://{request.host}/token"
    return f'Bearer realm="{realm}",service="{SERVICE}"'


def issue(request: web.Request, now: float) -> web.Response:
    """`GET /token`: a token for the request's Basic credentials, or the anonymous one."""
    header = request.headers.get("Authorization", "")
    token = ANONYMOUS
    if header[:6].lower() == "basic ":
        token = _CARRIES + base64.urlsafe_b64encode(header.encode()).decode()
    body = {
        "token": token,
        "access_token": token,
        "expires_in": LIFETIME,
        "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
    }
    return web.json_response(body)


def credential(request: web.Request) -> Credential | None:
    """Whose request this is: a Basic header, or one a token carries; None for anonymous."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        return Credential(header)
    if scheme.lower() != "bearer" or value == ANONYMOUS:
        return None
    if value.startswith(_CARRIES):
        try:
            carried = base64.urlsafe_b64decode(value.removeprefix(_CARRIES)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            carried = ""
        if carried[:6].lower() == "basic ":
            return Credential(carried)
    raise UpstreamAuthError("the registry endpoint did not issue this token")


def presented(request: web.Request) -> bool:
    """Whether the request answers `/v2/`'s challenge (any Authorization it can read)."""
    if "Authorization" not in request.headers:
        return False
    try:
        credential(request)
    except UpstreamAuthError:
        return False
    return True
