"""What Nosana's node asks its resource helper for, read back from the helper's create body.

Confirmed in Nosana's node (`nosana-ci/nosana-node`, TypeScript, `src/NodeManager`):
- The image is `registry.hub.docker.com/nosana/resource-manager:v1.1.19`
  (`node/resource/definition/index.ts`); older nodes named other tags, so any tag matches.
  Before the first resource the node asks `GET /images/json` and, if the image is missing,
  pulls it (`POST /images/create`, progress followed with dockerode's `followProgress`).
- The create (`node/resource/helpers/create{HF,S3,Ollama}Args.ts`, sent with dockerode's
  `createContainer`, `POST /containers/create`, on Podman too) has `Tty: false`,
  `AttachStdout/AttachStderr: true`, `HostConfig.Mounts: [{Target: "/s3/temp", Source:
  <volume>, Type: "volume"}]` and one of
  `Cmd: ["HF", repo, revision or ("main" if files else ""), "f1,f2" or ""]` with
  `Env: ["HUGGING_FACE_TOKEN=..."]` when the resource has an `accessToken`;
  `Cmd: ["S3", url (s3://nos-ai-models-qllsn32u rewritten to https://models.nosana.io),
  "f1,f2" or ""]` with `Env: ["BUCKET=..." or "", "REGION=...", "ACCESS_KEY_ID=...",
  "SECRET_ACCESS_KEY=..."]` when it has `IAM` (one helper per entry of `buckets`);
  `Cmd: ["Ollama", model]`. `allowWrite` is not in it.
- The volume was made just before by `POST /volumes/create` with `{}` (the node keeps the
  engine's name; Podman answers `name`), or is the one an earlier helper filled (a re-sync).
- Then (`node/resource/volume/volumeManager.ts`): `POST /containers/{id}/start`; `GET
  /containers/{id}/logs?follow=true&stdout=true&stderr=false`, each data event parsed as one
  multiplexed frame (`slice(8, -1)`: header, JSON, newline) holding
  `{"event":"status","size":{"total","current"},"count":{"total","current"}}`; `POST
  /containers/{id}/wait?condition=not-running`. Exit 0: `POST .../stop` (an error ignored),
  `GET .../json`, `DELETE /containers/{id}?force=true&v=true`. Otherwise `GET .../logs?
  stderr=true&stdout=false&tail=24999&timestamps=true`, whose last
  `{"event":"error","message":...}` line is the job's error; `DELETE` the container, then
  `GET` and `DELETE /volumes/{name}`, and the job fails ("Missing required resource").
- The helper's own source is not public: how it lays files out is not said. The daemon lays
  the volume out as its own views (README "Nosana's node on the cache").
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from ..errors import InvalidInput
from ..resources import parse_resource
from ..sources import Resource

HELPER_IMAGE = re.compile(
    r"^(?:(?:registry\.hub\.docker\.com|docker\.io|index\.docker\.io|registry-1\.docker\.io)/)?"
    r"nosana/resource-manager(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
VOLUME_TARGET = "/s3/temp"
KINDS = ("HF", "S3", "Ollama")


def is_helper_image(image: object) -> bool:
    return isinstance(image, str) and HELPER_IMAGE.match(image) is not None


def is_helper(body: Any) -> bool:
    """A create the daemon answers: the helper's image running one of its three commands."""
    if not isinstance(body, dict) or not is_helper_image(body.get("Image")):
        return False
    cmd = body.get("Cmd")
    return isinstance(cmd, list) and bool(cmd) and cmd[0] in KINDS


def helper_volume(body: dict[str, Any]) -> str | None:
    """The name of the volume the node mounted at `/s3/temp`."""
    host = body.get("HostConfig") or {}
    for mount in host.get("Mounts") or []:
        if isinstance(mount, dict) and mount.get("Target") == VOLUME_TARGET:
            source = mount.get("Source")
            return source if isinstance(source, str) and source else None
    for bind in host.get("Binds") or []:
        parts = str(bind).split(":")
        if len(parts) >= 2 and parts[1] == VOLUME_TARGET:
            return parts[0]
    return None


def helper_resource(body: dict[str, Any]) -> Resource:
    """The resource the helper is asked for, as a job would declare it (no `target`)."""
    cmd = [str(part) for part in body["Cmd"]]
    env = _env(body.get("Env"))
    kind = cmd[0]
    if kind == "HF" and len(cmd) >= 2:
        data: dict[str, Any] = {"type": "HF", "repo": cmd[1]}
        if len(cmd) > 2 and cmd[2]:
            data["revision"] = cmd[2]
        if len(cmd) > 3 and _files(cmd[3]):
            data["files"] = _files(cmd[3])
        if env.get("HUGGING_FACE_TOKEN"):
            data["accessToken"] = env["HUGGING_FACE_TOKEN"]
    elif kind == "S3" and len(cmd) >= 2:
        data = {"type": "S3", "url": cmd[1]}
        if env.get("BUCKET"):
            data["bucket"] = env["BUCKET"]
        elif len(cmd) > 2 and _files(cmd[2]):
            data["files"] = _files(cmd[2])
        keys = ("REGION", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY")
        if all(env.get(key) for key in keys):
            data["IAM"] = {key: env[key] for key in keys}
    elif kind == "Ollama" and len(cmd) >= 2:
        data = {"type": "Ollama", "model": cmd[1]}
    else:
        raise InvalidInput(f"the resource helper's command {cmd[:2]} names no resource")
    return parse_resource(data, where="helper")


def _env(env: Any) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in env or []:
        name, sep, value = str(item).partition("=")
        if sep:
            values[name] = value
    return values


def _files(joined: str) -> list[str]:
    return [part for part in joined.split(",") if part]


def status_line(size_total: int, size_current: int, count_total: int, count_current: int) -> bytes:
    return json.dumps(
        {
            "event": "status",
            "size": {"total": size_total, "current": size_current},
            "count": {"total": count_total, "current": count_current},
        },
        separators=(",", ":"),
    ).encode()


def error_line(message: str) -> bytes:
    return json.dumps({"event": "error", "message": message}, separators=(",", ":")).encode()


def frame(stream: int, payload: bytes, *, tty: bool) -> bytes:
    """One line as `docker logs` sends it: raw with a TTY, else an 8-byte multiplexed header
    (stream 1 stdout, 2 stderr; big-endian length) before it."""
    if tty:
        return payload
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


def timestamp(at: float) -> str:
    """Docker's RFC 3339 timestamp with nanoseconds, as `timestamps=true` prefixes lines."""
    seconds = int(at)
    nanos = int((at - seconds) * 1e9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"
