"""The three Nosana resource types (HF, S3, Ollama), validated strictly.

These are the shapes a job's `resources` entries, the market's required list and
`POST /v1/resources` share (shared/NOSANA.md). Unknown properties are errors, as on Nosana's
own node. `target` is where a job mounts the resource; it is not part of what is cached.

In a job definition (validated with the `literals.JOB` context) a field may hold a literal
filled when the op starts (`%%ops.<id>.results.<name>%%`): the check of its form waits until
then. There, as on Nosana's node, a property is left out or has a value: never `null`.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import FieldError, InvalidInput
from .store.views import validate_relative_path
from .util.literals import deferred
from .util.strict import Strict, by_type

OLLAMA_DEFAULT_TARGET = "/root/.ollama/models"

_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")
_OLLAMA_MODEL = re.compile(
    r"^(?:(?P<host>[a-z0-9.-]+(?::\d+)?)/)??(?:(?P<namespace>[a-z0-9][a-z0-9._-]*)/)?"
    r"(?P<name>[a-z0-9][a-z0-9._-]*)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?$"
)


def _relative_file(value: str, info: ValidationInfo) -> str:
    if deferred(value, info):
        return value
    try:
        return validate_relative_path(value.strip("/") if value != "/" else value)
    except Exception as exc:
        raise ValueError(f"{value!r} is not a file path inside the resource") from exc


_RESERVED_TARGETS = ("/proc", "/sys")
"""Mount points the engine refuses under (runc: "cannot be mounted because it is inside
/proc"), or whose tree a mount would hide from the container (sysfs): with `/` (Docker: "invalid
mount config: destination can't be '/'") and `/dev` itself (the container's device nodes),
refused up front rather than when the op starts. Below `/dev` is allowed (`/dev/shm` is a
common place for a volume)."""


def mount_target_problem(value: str) -> str | None:
    """Why `value` cannot be where something is mounted in a container; None if it can."""
    if "\x00" in value:
        return f"{value!r} has a NUL character: no path can"
    if not value.startswith("/"):
        return f"{value!r} must be an absolute path in the container"
    parts = [part for part in value.split("/") if part not in ("", ".")]
    if ".." in parts:
        return f"{value!r} must not contain '..'"
    normal = "/" + "/".join(parts)
    if normal == "/":
        return f"{value!r} is the container's root: the engine refuses a mount there"
    for place in ("/dev", *_RESERVED_TARGETS):
        within = normal.startswith(f"{place}/") and place in _RESERVED_TARGETS
        if normal == place or within:
            where = f"under {place}" if within else place
            return f"{value!r} is {where}, the engine's own: a mount there fails or hides it"
    return None


def _absolute_target(value: str, info: ValidationInfo) -> str:
    if deferred(value, info):
        return value
    problem = mount_target_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _repo_id(value: str, info: ValidationInfo) -> str:
    if deferred(value, info):
        return value
    if not _REPO_ID.match(value) or ".." in value or value.endswith((".git", ".")):
        raise ValueError(f"{value!r} is not a Hugging Face repo id (org/name)")
    return value


def _revision(value: str, info: ValidationInfo) -> str:
    if deferred(value, info):
        return value
    if not value or len(value) > 255 or any(c.isspace() for c in value) or ".." in value:
        raise ValueError(f"{value!r} is not a revision (a branch, tag or commit)")
    return value


def _model_name(value: str, info: ValidationInfo) -> str:
    if deferred(value, info):
        return value
    if not _OLLAMA_MODEL.match(value):
        raise ValueError(f"{value!r} is not an Ollama model (name, name:tag, ns/name:tag)")
    return value


def _unique_files(value: list[str]) -> list[str]:
    if not value:
        raise ValueError("must list at least one file (or leave `files` out for all)")
    return value


RelativeFile = Annotated[str, AfterValidator(_relative_file)]
FileList = Annotated[list[RelativeFile], AfterValidator(_unique_files)]
Target = Annotated[str, AfterValidator(_absolute_target)]


class S3Auth(Strict):
    REGION: str = Field(min_length=1)
    ACCESS_KEY_ID: str = Field(min_length=1)
    SECRET_ACCESS_KEY: SecretStr


class S3Location(Strict):
    url: str = Field(min_length=1)
    files: FileList | None = None


class HFResource(Strict):
    type: Literal["HF"]
    repo: Annotated[str, AfterValidator(_repo_id)]
    revision: Annotated[str, AfterValidator(_revision)] | None = None
    files: FileList | None = None
    accessToken: SecretStr | None = None
    target: Target | None = None


class S3Resource(Strict):
    type: Literal["S3"]
    url: str | None = Field(None, min_length=1)
    bucket: str | None = Field(None, min_length=1)
    buckets: list[S3Location] | None = Field(None, min_length=1)
    files: FileList | None = None
    allowWrite: bool = False
    IAM: S3Auth | None = None
    target: Target | None = None

    @field_validator("files")
    @classmethod
    def _not_with_bucket(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is not None and info.data.get("bucket") is not None:
            raise ValueError("not with `bucket`: Nosana's S3 resource with a bucket has no `files`")
        return value

    @model_validator(mode="after")
    def _one_location(self) -> S3Resource:
        if (self.url is None) == (self.buckets is None):
            raise ValueError("give either `url` or `buckets`")
        if self.buckets is not None and (self.bucket is not None or self.files is not None):
            raise ValueError("with `buckets`, give `files` per bucket and no `bucket`")
        return self

    def locations(self) -> list[S3Location]:
        if self.buckets is not None:
            return list(self.buckets)
        assert self.url is not None
        return [S3Location(url=self.url, files=self.files)]


class OllamaResource(Strict):
    type: Literal["Ollama"]
    model: Annotated[str, AfterValidator(_model_name)]
    target: Target | None = None

    def parts(self) -> tuple[str | None, str, str, str]:
        """(registry host or None, namespace, name, tag) with Ollama's defaults."""
        match = _OLLAMA_MODEL.match(self.model)
        assert match is not None
        host, namespace = match["host"], match["namespace"]
        # `ns/name` may parse as host/name; a registry host has a dot or a port.
        if host and not namespace and "." not in host and ":" not in host:
            host, namespace = None, host
        return host, namespace or "library", match["name"], match["tag"] or "latest"


Resource = Annotated[
    Annotated[HFResource, Tag("HF")]
    | Annotated[S3Resource, Tag("S3")]
    | Annotated[OllamaResource, Tag("Ollama")],
    by_type,
]
_RESOURCE = TypeAdapter(Resource)


_PLAIN_KEY = re.compile(r'^[^.\[\]"\s=\x00-\x1f]+$')


def error_location(
    loc: tuple[int | str, ...],
    prefix: str,
    document: Any,
    *,
    keep_last: bool = False,
) -> str:
    """`("ops", 0, "args", "resources", 1, "repo")` → `ops[0].args.resources[1].repo`.

    Pydantic puts its own markers in a location: the tag of a tagged union member
    (`resources.1.HF.repo`), or the member of a plain union it tried (`cmd.str`). A reader
    wants the path in the document, so a part is kept only where the document has it (and
    the last part of an error about something absent, `keep_last`).
    """
    out = prefix
    node = document
    for position, part in enumerate(loc):
        if _has(node, part):
            node = node[part]
        elif not (keep_last and position == len(loc) - 1):
            continue  # not in the document: pydantic's marker
        out = join_location(out, part)
    return out


def _has(node: Any, part: int | str) -> bool:
    if isinstance(part, int):
        return isinstance(node, list) and 0 <= part < len(node)
    return isinstance(node, dict) and part in node


def join_location(out: str, part: int | str) -> str:
    """`out` and one more part of a location, a key that is empty or has dots quoted."""
    if isinstance(part, int):
        return f"{out}[{part}]"
    if not _PLAIN_KEY.match(part):
        return f"{out}[{json.dumps(part)}]"  # a key that is empty or has dots: quoted
    return f"{out}.{part}" if out else part


def field_errors(exc: ValidationError, prefix: str, document: Any) -> list[FieldError]:
    """One error per location; the members of a union that all failed are said together.
    `document` is what was validated, to tell its places from pydantic's markers."""
    merged: dict[str, list[str]] = {}
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        loc = tuple(error["loc"])
        absent = error["type"] == "missing"
        if error["type"] == "extra_forbidden":
            message = "unknown property"
        elif error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            expected = str((error.get("ctx") or {}).get("expected_tags", "")).replace("'", "")
            message = f"`type` must be one of {expected}" if expected else "`type` is required"
            loc += ("type",)  # the field at fault, not the object holding it
            absent = True
        where = error_location(loc, prefix, document, keep_last=absent)
        messages = merged.setdefault(where, [])
        if message not in messages:
            messages.append(message)
    return [FieldError(loc, " or ".join(messages)) for loc, messages in merged.items()]


def describe(error: FieldError) -> str:
    """`loc: msg`, or the message alone when the problem is the whole document."""
    return f"{error.loc}: {error.msg}" if error.loc else error.msg


def parse_resource(data: Any, *, where: str = "") -> HFResource | S3Resource | OllamaResource:
    """A resource from JSON data; `InvalidInput` naming every problem's location otherwise."""
    try:
        return _RESOURCE.validate_python(data)
    except ValidationError as exc:
        errors = field_errors(exc, where, data)
        raise InvalidInput(f"invalid resource: {describe(errors[0])}", errors) from None
