"""`GET /v1/openapi.json`: an OpenAPI 3.1 description of every route, request and response.

Request bodies come from the same pydantic models that validate them (a resource, a job
definition), so the document cannot drift from what the daemon accepts; response shapes are
written out here and kept true by a schemathesis run against the live daemon (tests).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from .. import __version__
from ..jobs.spec import JobDefinition
from ..resources import Resource

routes = web.RouteTableDef()

REF = "#/components/schemas/{model}"
NULLABLE_STRING = {"type": ["string", "null"]}
TIME = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }


def _problems(*statuses: int) -> dict[str, Any]:
    words = {
        400: "Invalid input, with every error's location",
        401: "Missing or wrong bearer token",
        403: "Upstream refused the credentials",
        404: "Not found (here, or upstream)",
        409: "The state forbids it (pinned, in use, ended)",
        500: "Unexpected error (see the daemon's log)",
        502: "Upstream or Docker answered badly",
        503: "Upstream or Docker unavailable",
        507: "Not enough space in the store",
    }
    return {str(s): _problem(words[s]) for s in statuses}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path_id(description: str) -> dict[str, Any]:
    return {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


BOOL = {"type": "string", "enum": ["true", "false"]}

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "kind": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["loc", "msg"],
                    "properties": {"loc": {"type": "string"}, "msg": {"type": "string"}},
                },
            },
        },
    },
    "Progress": {
        "type": "object",
        "required": ["bytes_done", "bytes_total"],
        "properties": {"bytes_done": {"type": "integer"}, "bytes_total": {"type": "integer"}},
    },
    "Entry": {
        "type": "object",
        "required": [
            "id",
            "type",
            "source",
            "state",
            "size_bytes",
            "file_count",
            "downloaded_at",
            "expires_at",
            "pinned",
            "in_use",
            "hits",
            "progress",
            "error",
            "path",
        ],
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string", "enum": ["hf", "s3", "ollama", "image"]},
            "source": {"type": "string"},
            "state": {
                "type": "string",
                "enum": ["pending", "downloading", "ready", "failed", "deleting"],
            },
            "version": NULLABLE_STRING,
            "size_bytes": {"type": "integer"},
            "file_count": {"type": "integer"},
            "created_at": TIME,
            "downloaded_at": TIME,
            "expires_at": TIME,
            "last_used_at": TIME,
            "pinned": {"type": "boolean"},
            "pinned_by": {"type": "array", "items": {"type": "string"}},
            "in_use": {"type": "boolean"},
            "leases": {"type": "integer"},
            "hits": {"type": "integer"},
            "progress": _ref("Progress"),
            "error": NULLABLE_STRING,
            "path": NULLABLE_STRING,
            "details": {"type": "object"},
            "files": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["path", "size", "sha256", "executable"],
                    "properties": {
                        "path": {"type": "string"},
                        "size": {"type": "integer"},
                        "sha256": NULLABLE_STRING,
                        "executable": {"type": "boolean"},
                    },
                },
            },
        },
    },
    "EntryList": {
        "type": "object",
        "required": ["resources"],
        "properties": {"resources": {"type": "array", "items": _ref("Entry")}},
    },
    "Op": {
        "type": "object",
        "required": ["id", "type", "state", "exit_code", "error", "timings", "cache"],
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string", "enum": ["container/run", "container/create-volume"]},
            "group": NULLABLE_STRING,
            "state": {
                "type": "string",
                "enum": ["queued", "preparing", "running", "completed", "failed", "stopped"],
            },
            "exit_code": {"type": ["integer", "null"]},
            "error": NULLABLE_STRING,
            "container_id": NULLABLE_STRING,
            "image": {"type": ["object", "null"]},
            "resources": {"type": "array", "items": {"type": "object"}},
            "cache": {
                "type": "object",
                "required": ["hits", "misses", "bytes_fetched"],
                "properties": {
                    "hits": {"type": "integer"},
                    "misses": {"type": "integer"},
                    "bytes_fetched": {"type": "integer"},
                },
            },
            "timings": {
                "type": "object",
                "properties": {
                    "prepare_seconds": {"type": ["number", "null"]},
                    "run_seconds": {"type": ["number", "null"]},
                    "prepare_started_at": TIME,
                    "run_started_at": TIME,
                    "ended_at": TIME,
                },
            },
            "ports": {"type": "object", "additionalProperties": {"type": "string"}},
            "results": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
            "device_requests": {"type": "array", "items": {"type": "object"}},
            "warnings": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Job": {
        "type": "object",
        "required": ["id", "state", "created_at", "started_at", "ended_at", "error", "ops"],
        "properties": {
            "id": {"type": "string"},
            "state": {
                "type": "string",
                "enum": ["queued", "preparing", "running", "completed", "failed", "stopped"],
            },
            "created_at": TIME,
            "started_at": TIME,
            "ended_at": TIME,
            "error": NULLABLE_STRING,
            "ops": {"type": "array", "items": _ref("Op")},
            "definition": {},
        },
    },
    "JobList": {
        "type": "object",
        "required": ["jobs"],
        "properties": {"jobs": {"type": "array", "items": _ref("Job")}},
    },
    "Status": {
        "type": "object",
        "required": ["version", "uptime_seconds", "store", "docker", "transfers", "market"],
        "properties": {
            "version": {"type": "string"},
            "uptime_seconds": {"type": "number"},
            "store": {"type": "object"},
            "docker": {
                "type": "object",
                "required": ["host", "reachable"],
                "properties": {"host": {"type": "string"}, "reachable": {"type": "boolean"}},
            },
            "transfers": {"type": "object"},
            "market": {"type": "object"},
            "scheduler": {"type": "object"},
        },
    },
    "Market": {
        "type": "object",
        "required": ["address", "url", "ready", "last_fetch_at", "last_error", "items"],
        "properties": {
            "address": NULLABLE_STRING,
            "url": NULLABLE_STRING,
            "ready": {"type": "boolean"},
            "last_fetch_at": TIME,
            "last_attempt_at": TIME,
            "last_error": NULLABLE_STRING,
            "items": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Readiness": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string"},
            "missing": {"type": "array", "items": {"type": "object"}},
        },
    },
    "SweepReport": {
        "type": "object",
        "required": ["entries_removed", "blobs_removed", "bytes_freed"],
        "properties": {
            "entries_removed": {"type": "integer"},
            "blobs_removed": {"type": "integer"},
            "bytes_freed": {"type": "integer"},
        },
    },
    "VerifyReport": {
        "type": "object",
        "required": ["blobs_checked", "bytes_checked", "corrupt", "missing", "entries_failed"],
        "properties": {
            "blobs_checked": {"type": "integer"},
            "bytes_checked": {"type": "integer"},
            "corrupt": {"type": "array", "items": {"type": "string"}},
            "missing": {"type": "array", "items": {"type": "string"}},
            "entries_failed": {"type": "array", "items": {"type": "string"}},
        },
    },
}


def _model_schemas() -> dict[str, Any]:
    """Request bodies from the pydantic models that validate them, $defs hoisted."""
    schemas: dict[str, Any] = {}
    for name, schema in (
        ("Resource", TypeAdapter(Resource).json_schema(ref_template=REF)),
        ("JobDefinition", JobDefinition.model_json_schema(ref_template=REF, by_alias=True)),
    ):
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    return schemas


def document() -> dict[str, Any]:
    states = {"type": "string"}
    paths: dict[str, Any] = {
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "The process serves")},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: the store works, every required item is ready",
                "responses": {
                    "200": _json(_ref("Readiness"), "Ready"),
                    "503": _json(_ref("Readiness"), "Not ready, and why"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
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
                "responses": {"200": _json(_ref("Status"), "Status")},
            }
        },
        "/v1/resources": {
            "get": {
                "summary": "Every cache entry",
                "parameters": [_query("state", states, "Comma-separated states to keep")],
                "responses": {"200": _json(_ref("EntryList"), "Entries"), **_problems(400)},
            },
            "post": {
                "summary": "Start (or join) a resource's download",
                "parameters": [_query("wait", BOOL, "Answer when the entry is ready")],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Resource")}},
                },
                "responses": {
                    "200": _json(_ref("Entry"), "Ready (a hit, or waited for)"),
                    "202": _json(_ref("Entry"), "Downloading"),
                    **_problems(400, 403, 404, 409, 500, 502, 503, 507),
                },
            },
        },
        "/v1/resources/{id}": {
            "parameters": [_path_id("Entry id")],
            "get": {
                "summary": "One entry",
                "parameters": [_query("files", BOOL, "List its files")],
                "responses": {"200": _json(_ref("Entry"), "The entry"), **_problems(404)},
            },
            "delete": {
                "summary": "Delete an entry now",
                "responses": {"204": {"description": "Deleted"}, **_problems(404, 409, 502)},
            },
        },
        "/v1/gc": {
            "post": {
                "summary": "Sweep now",
                "responses": {"200": _json(_ref("SweepReport"), "Swept")},
            }
        },
        "/v1/verify": {
            "post": {
                "summary": "Re-hash every blob",
                "responses": {"200": _json(_ref("VerifyReport"), "Checked")},
            }
        },
        "/v1/jobs": {
            "get": {
                "summary": "Jobs, newest first",
                "parameters": [_query("state", states, "Comma-separated states to keep")],
                "responses": {"200": _json(_ref("JobList"), "Jobs"), **_problems(400)},
            },
            "post": {
                "summary": "Submit a Nosana job definition",
                "parameters": [
                    _query("id", {"type": "string"}, "Name the job"),
                    _query("wait", BOOL, "Answer when the job has ended"),
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("JobDefinition")}},
                },
                "responses": {"201": _json(_ref("Job"), "Submitted"), **_problems(400, 409)},
            },
        },
        "/v1/jobs/{id}": {
            "parameters": [_path_id("Job id")],
            "get": {
                "summary": "One job",
                "responses": {"200": _json(_ref("Job"), "The job"), **_problems(404)},
            },
        },
        "/v1/jobs/{id}/logs": {
            "parameters": [_path_id("Job id")],
            "get": {
                "summary": "An op's output",
                "parameters": [
                    _query("op", {"type": "string"}, "One op (default: all, prefixed)"),
                    _query(
                        "stream",
                        {"type": "string", "enum": ["stdout", "stderr", "all"]},
                        "One stream",
                    ),
                    _query("follow", BOOL, "Keep streaming until the op ends"),
                ],
                "responses": {
                    "200": {
                        "description": "Lines",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_problems(400, 404),
                },
            },
        },
        "/v1/jobs/{id}/stop": {
            "parameters": [_path_id("Job id")],
            "post": {
                "summary": "Stop a job's containers",
                "responses": {"200": _json(_ref("Job"), "Stopped"), **_problems(404, 409)},
            },
        },
        "/v1/market": {
            "get": {
                "summary": "The market's required list and each item's state",
                "responses": {"200": _json(_ref("Market"), "Market")},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "nosana-cache",
            "version": __version__,
            "description": "Node-side cache of Docker images and models for Nosana GPU hosts.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS | _model_schemas(),
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


@routes.get("/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document())
