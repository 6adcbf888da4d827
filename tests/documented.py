"""Live answers checked against the daemon's own OpenAPI document, with jsonschema.

Schemathesis samples requests at random; this checks the answers a test provokes on purpose (a
failed market item, a problem with field errors, an entry's files), each against the schema the
document gives for its path, method, status and content type. The response schemas forbid
fields they do not declare, so a handler that serves one fails here.
"""

from __future__ import annotations

import http.client
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

_URI = "urn:nosana-cache:openapi"


@dataclass(frozen=True)
class Answer:
    method: str
    path: str
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def ask(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> Answer:
    """One request to the daemon at `base`, whatever the status (no error raised)."""
    parts = urlsplit(base)
    assert parts.hostname == "127.0.0.1", "tests only speak to loopback"
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    content_type = (response.getheader("Content-Type") or "").split(";")[0].strip()
    return Answer(method, urlsplit(path).path, response.status, content_type, raw)


class Document:
    """The document, and what has been checked against it so far."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(_URI, resource)
        self._templates: list[tuple[re.Pattern[str], str]] = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"), template)
            for template in document["paths"]
        ]
        self.schemas_checked: set[str] = set()
        self.answers_checked: set[tuple[str, str, int]] = set()

    def check(self, answer: Answer) -> Any:
        """Fail unless the document lists this answer and its body fits the schema it gives;
        return the body, decoded."""
        template = self._template(answer.path)
        operation = self.document["paths"][template].get(answer.method.lower())
        assert operation is not None, f"{answer.method} {template} is not documented"
        documented = operation["responses"].get(str(answer.status))
        assert documented is not None, (
            f"{answer.method} {template} answered {answer.status}, which is not documented: "
            f"{answer.body[:500]!r}"
        )
        self.answers_checked.add((answer.method, template, answer.status))
        if "content" not in documented:
            assert answer.body == b"", f"{answer.method} {template}: a body nobody documented"
            return None
        assert answer.content_type in documented["content"], (
            f"{answer.method} {template} {answer.status}: {answer.content_type} is not documented"
        )
        if not answer.content_type.endswith("json"):
            return answer.body  # a file's bytes: nothing for a JSON Schema to say
        schema = documented["content"][answer.content_type]["schema"]
        if "$ref" in schema:
            self.schemas_checked.add(schema["$ref"].rsplit("/", 1)[-1])
            schema = {"$ref": _URI + schema["$ref"]}
        body = answer.json()
        validator = Draft202012Validator(
            schema, registry=self._registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        errors = list(validator.iter_errors(body))
        assert not errors, f"{answer.method} {answer.path} {answer.status}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in errors
        )
        return body

    def _template(self, path: str) -> str:
        matches = [template for pattern, template in self._templates if pattern.match(path)]
        assert matches, f"{path} matches no documented path"
        return min(matches, key=lambda template: template.count("{"))  # literal segments win
