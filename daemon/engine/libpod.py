"""Podman's own pull (libpod's), for the registry endpoint's names.

Podman pulls from no plain-HTTP registry it was not told of (a registries.conf entry with
`insecure = true`), and its Docker-compatible pull (`POST /images/create`) ignores
`tlsVerify`: the endpoint, plain HTTP on loopback, is refused ("server gave HTTP response to
HTTPS client"). libpod's pull, `POST /v{API}/libpod/images/pull?reference=R&tlsVerify=false`,
honours it: Podman then skips TLS verification for that pull and falls back to plain HTTP. So
on Podman the endpoint's names are pulled that way, and they alone: a name of an upstream
registry is never pulled with `tlsVerify=false`.

    libpod_api(version)     the libpod API version `GET /version` names (its `Podman Engine`
                            component), None for Docker
    pull_target(...)        the request's path and query
    auth_header(auth)       `X-Registry-Auth` as libpod reads it: one auth config, which it
                            uses for the registry it pulls from
    docker_event(report)    one line of libpod's report (`{"stream"}`, `{"error"}`, at the
                            end `{"images", "id"}`) as a Docker progress event (`{"status"}`,
                            `{"error", "errorDetail"}`): the callers read Docker's
    pull(...)               the whole pull on the Docker SDK's client (blocking: run it in
                            the engine's threads), as Docker progress events
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

import docker
import docker.errors

PODMAN = "Podman Engine"


def libpod_api(version: Mapping[str, Any]) -> str | None:
    """The libpod API version of an engine whose `GET /version` names Podman, else None."""
    for component in version.get("Components") or ():
        if not isinstance(component, dict) or component.get("Name") != PODMAN:
            continue
        details = component.get("Details") or {}
        api = details.get("APIVersion") if isinstance(details, dict) else None
        found = api or component.get("Version")
        return str(found).removeprefix("v") if found else None
    return None


def pull_target(api: str, reference: str, platform: str | None = None) -> str:
    """libpod's pull of `reference` (the endpoint's name), TLS not verified."""
    query = {"reference": reference, "tlsVerify": "false", "policy": "always"}
    if platform:
        parts = platform.split("/")
        query |= dict(zip(("os", "arch", "variant"), parts, strict=False))
    return f"/v{api}/libpod/images/pull?{urlencode(query)}"


def auth_header(auth: Mapping[str, str]) -> str:
    """`X-Registry-Auth`: the auth config as base64url JSON (Docker's form, which libpod
    reads too)."""
    return base64.urlsafe_b64encode(json.dumps(dict(auth)).encode()).decode()


def docker_event(report: Mapping[str, Any], reference: str) -> dict[str, Any]:
    """One line of libpod's pull report as Docker's progress event."""
    error = report.get("error")
    if error:
        return {"errorDetail": {"message": str(error)}, "error": str(error)}
    if report.get("images") or report.get("id"):
        image = str(report.get("id") or report["images"][0])
        return {"status": f"Status: Downloaded newer image for {reference}", "id": image}
    return {"status": str(report.get("stream", "")).strip()}


def pull(
    client: docker.APIClient, api: str, reference: str, auth: Mapping[str, str] | None
) -> list[dict[str, Any]]:
    """Pull `reference` with libpod's pull: Docker progress events, an error among them if
    it failed part way; `docker.errors.APIError` if it was refused before streaming, as
    the SDK's own pull raises it."""
    headers = {"X-Registry-Auth": auth_header(auth)} if auth else {}
    url = f"{client.base_url}{pull_target(api, reference)}"
    response = client.post(url, headers=headers, stream=True, timeout=None)
    try:
        if response.status_code != 200:
            said = _message(response.content)
            raise docker.errors.APIError(said, response=response, explanation=said)
        return list(_events(response.iter_lines(), reference))
    finally:
        response.close()


def _events(lines: Iterable[bytes], reference: str) -> Iterator[dict[str, Any]]:
    for line in lines:
        try:
            report = json.loads(line)
        except ValueError:
            continue  # not a report line (keep-alive whitespace)
        if isinstance(report, dict):
            yield docker_event(report, reference)


def _message(body: bytes) -> str:
    """libpod's error body (`{"cause", "message", "response"}`): its message."""
    try:
        document = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()
    if isinstance(document, dict) and document.get("message"):
        return str(document["message"])
    return body.decode("utf-8", "replace").strip()
