"""`GET /v1/openapi.json`: an OpenAPI 3.1 description of every route, request and response.

Every schema comes from the class that reads or writes that JSON: request bodies from the
pydantic models that validate them (a resource, a job definition), response bodies from the
response models the handlers serve (`models`, in serialization mode). So the document cannot
drift from what the daemon accepts and answers; a new response model is one line in
`RESPONSES`. Paths, parameters and statuses are declared here, in one table for the whole HTTP
surface, and kept true by a schemathesis run against the live daemon (tests).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from .. import __version__
from ..hub import OPENAPI_RESPONSES as HUB_RESPONSES
from ..hub import openapi_paths as hub_paths
from ..jobs.spec import JobDefinition
from ..resources import Resource
from .models import (
    Entry,
    EntryList,
    Health,
    Job,
    JobList,
    JobPlan,
    Market,
    Problem,
    Readiness,
    SiteSweepReport,
    Status,
    SweepReport,
    VerifyReport,
)
from .shapes import FLAG_VALUES

routes = web.RouteTableDef()

REF = "#/components/schemas/{model}"

REQUESTS: dict[str, Any] = {"Resource": Resource, "JobDefinition": JobDefinition}
"""Request bodies, by the name the document gives them, and the model that validates each."""

RESPONSES: tuple[type, ...] = (
    Problem,
    Health,
    Readiness,
    Entry,
    EntryList,
    Status,
    Market,
    SweepReport,
    SiteSweepReport,
    VerifyReport,
    Job,
    JobList,
    *HUB_RESPONSES,
    JobPlan,
)
"""Response bodies: each is documented under its class name, with the models it nests."""


def model_schemas(requests: dict[str, Any], responses: Iterable[type]) -> dict[str, Any]:
    """Every model's schema by name (a request's as it validates, a response's as it
    serializes), nested models hoisted from `$defs` into the components. Two different schemas
    under one name are an error, never a silent overwrite."""
    described = [
        (name, TypeAdapter(model).json_schema(ref_template=REF, mode="validation"))
        for name, model in requests.items()
    ] + [
        (model.__name__, TypeAdapter(model).json_schema(ref_template=REF, mode="serialization"))
        for model in responses
    ]
    schemas: dict[str, Any] = {}
    for name, schema in described:
        for each, part in [*schema.pop("$defs", {}).items(), (name, schema)]:
            if schemas.setdefault(each, part) != part:
                raise ValueError(f"two different schemas are both named {each!r}")
    return schemas


def _ref(model: type | str) -> dict[str, str]:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": REF.format(model=name)}


# -- Paths ------------------------------------------------------------------------------------

BOOL = {"type": "string", "enum": FLAG_VALUES}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _problems(*statuses: int) -> dict[str, Any]:
    words = {
        400: "Invalid input, with every error's location",
        401: "Missing or wrong bearer token",
        403: "Upstream refused the credentials",
        404: "Not found (here, or upstream)",
        409: "The state forbids it (pinned, in use, ended)",
        413: "Past a bound on input: a body over api.body_bytes, a job over job.ops",
        500: "Unexpected error (see the daemon's log)",
        502: "Upstream or Docker answered badly",
        503: "Upstream or Docker unavailable",
        507: "Not enough space in the store",
    }
    return {
        str(status): {
            "description": words[status],
            "content": {"application/problem+json": {"schema": _ref(Problem)}},
        }
        for status in statuses
    }


def _param(
    name: str, description: str, schema: dict[str, Any] | None = None, *, path: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path" if path else "query",
        "required": path,
        "schema": schema or {"type": "string"},
        "description": description,
    }


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


def _service_paths() -> dict[str, Any]:
    """Probes, status, metrics, the market and this document."""
    return {
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "security": [],
                "responses": {"200": _json(_ref(Health), "The process serves")},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: the store works, every required item is ready",
                "responses": {
                    "200": _json(_ref(Readiness), "Ready"),
                    "503": _json(_ref(Readiness), "Not ready, and why"),
                },
            }
        },
        "/metrics": {
            "get": {"summary": "Prometheus metrics", "responses": {"200": _text("Prometheus text")}}
        },
        "/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
            }
        },
        "/v1/status": {
            "get": {
                "summary": "Version, store, Docker, market, transfers",
                "responses": {"200": _json(_ref(Status), "Status")},
            }
        },
        "/v1/market": {
            "get": {
                "summary": "The market's required list and each item's state",
                "responses": {"200": _json(_ref(Market), "Market")},
            }
        },
    }


def _resource_paths() -> dict[str, Any]:
    """Cache entries, and the store's maintenance."""
    return {
        "/v1/resources": {
            "get": {
                "summary": "Every cache entry",
                "parameters": [_param("state", "Comma-separated states to keep")],
                "responses": {"200": _json(_ref(EntryList), "Entries"), **_problems(400)},
            },
            "post": {
                "summary": "Start (or join) a resource's download",
                "parameters": [_param("wait", "Answer when the entry is ready", BOOL)],
                "requestBody": _body("Resource"),
                "responses": {
                    "200": _json(_ref(Entry), "Ready (a hit, or waited for)"),
                    "202": _json(_ref(Entry), "Downloading"),
                    **_problems(400, 403, 404, 409, 413, 500, 502, 503, 507),
                },
            },
        },
        "/v1/resources/{id}": {
            "parameters": [_param("id", "Entry id", path=True)],
            "get": {
                "summary": "One entry",
                "parameters": [_param("files", "List its files", BOOL)],
                "responses": {"200": _json(_ref(Entry), "The entry"), **_problems(404)},
            },
            "delete": {
                "summary": "Delete an entry now",
                "responses": {"204": {"description": "Deleted"}, **_problems(404, 409, 502)},
            },
        },
        "/v1/gc": {
            "post": {
                "summary": "Sweep now",
                "responses": {"200": _json(_ref(SweepReport), "Swept")},
            }
        },
        "/v1/verify": {
            "post": {
                "summary": "Re-hash every blob",
                "responses": {"200": _json(_ref(VerifyReport), "Checked")},
            }
        },
        "/v1/site/gc": {
            "post": {
                "summary": "Sweep the site store (site.store): expired manifests, unnamed blobs",
                "responses": {
                    "200": _json(_ref(SiteSweepReport), "Swept"),
                    **_problems(409, 502, 503),
                },
            }
        },
    }


def _job_paths() -> dict[str, Any]:
    """Submitting, following and stopping jobs."""
    stream = {"type": "string", "enum": ["stdout", "stderr", "all"]}
    return {
        "/v1/jobs": {
            "get": {
                "summary": "Jobs, newest first",
                "parameters": [_param("state", "Comma-separated states to keep")],
                "responses": {"200": _json(_ref("JobList"), "Jobs"), **_problems(400)},
            },
            "post": {
                "summary": "Submit a Nosana job definition",
                "parameters": [
                    _param("id", "Name the job"),
                    _param("wait", "Answer when the job has ended", BOOL),
                    _param("dry_run", "Validate and plan; create, fetch and pull nothing", BOOL),
                ],
                "requestBody": _body("JobDefinition"),
                "responses": {
                    "200": _json(_ref("JobPlan"), "Dry run: what running it would take"),
                    "201": _json(_ref("Job"), "Submitted"),
                    **_problems(400, 409, 413),
                },
            },
        },
        "/v1/jobs/{id}": {
            "parameters": [_param("id", "Job id", path=True)],
            "get": {
                "summary": "One job",
                "responses": {"200": _json(_ref("Job"), "The job"), **_problems(404)},
            },
        },
        "/v1/jobs/{id}/logs": {
            "parameters": [_param("id", "Job id", path=True)],
            "get": {
                "summary": "An op's output",
                "parameters": [
                    _param("op", "One op (default: all, prefixed)"),
                    _param("stream", "One stream", stream),
                    _param("follow", "Keep streaming until the op ends", BOOL),
                ],
                "responses": {"200": _text("Lines"), **_problems(400, 404)},
            },
        },
        "/v1/jobs/{id}/stop": {
            "parameters": [_param("id", "Job id", path=True)],
            "post": {
                "summary": "Stop a job's containers",
                "responses": {"200": _json(_ref("Job"), "Stopped"), **_problems(404, 409)},
            },
        },
    }


def _guarded(paths: dict[str, Any]) -> dict[str, Any]:
    """With `api.token` set, every operation but the open ones (`security: []`) answers 401
    to a request without it."""
    for item in paths.values():
        for key, operation in item.items():
            if key != "parameters" and operation.get("security") != []:
                operation["responses"].update(_problems(401))
    return paths


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "nosana-cache",
            "version": __version__,
            "description": "Node-side cache of Docker images and models for Nosana GPU hosts.",
        },
        "paths": _guarded(_service_paths() | _resource_paths() | _job_paths() | hub_paths()),
        "components": {
            "schemas": model_schemas(REQUESTS, RESPONSES),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "api.token, when it is set",
                }
            },
        },
        "security": [{}, {"bearer": []}],
    }


@functools.cache
def _served() -> str:
    """The document as JSON text: the same for the process's whole life, so built once."""
    return json.dumps(document())


@routes.get("/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.Response(text=_served(), content_type="application/json")
