"""What an op exposes: ports, the kind of service behind each, and its health checks.

Nosana's `expose` is one entry or a list of entries; an entry is a port number, a
`{port, type?, health_checks?}` object, a literal standing for ports known when the op starts
(`%%ops.<id>.results.<name>%%`), or a `{__spread__: literal}` marker. Nosana's validator
refuses a port exposed twice; it takes any number as a port, where the daemon, which must
publish it, wants a whole number from 1 to 65535 (and an HTTP status a check can answer).
Health checks are parsed and kept; running them is the service layer's work.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Discriminator, Tag

from ..errors import FieldError
from ..util.literals import is_whole_literal
from ..util.strict import Strict, by_type, json_kind
from .markers import SpreadMarker


def whole_number(value: Any) -> Any:
    """A JSON number with nothing after the point (`8080.0`) is that whole number."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, float):
        raise ValueError(f"{value} is not a whole number")
    return value


def _port_number(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"{value} is not a port (1-65535)")
    return value


def _status(value: int) -> int:
    if not 100 <= value <= 599:
        raise ValueError(f"{value} is not an HTTP status (100-599)")
    return value


def _literal(value: str) -> str:
    if not is_whole_literal(value):
        raise ValueError(
            f"{value!r} is not a port: a number, a {{port: ...}} object, or a literal "
            "standing alone such as %%ops.<id>.results.<name>%%"
        )
    return value


WholeNumber = Annotated[int, BeforeValidator(whole_number)]
PortNumber = Annotated[WholeNumber, AfterValidator(_port_number)]
PortLiteral = Annotated[str, AfterValidator(_literal)]


class HttpHealthCheck(Strict):
    nullable = frozenset({"body"})

    type: Literal["http"]
    path: str
    method: Literal["GET", "POST", "PUT", "DELETE"]
    expected_status: Annotated[WholeNumber, AfterValidator(_status)]
    headers: dict[str, str] | None = None
    body: Any = None
    continuous: bool


class WebSocketHealthCheck(Strict):
    type: Literal["websocket"]
    expected_response: str
    continuous: bool


HealthCheck = Annotated[
    Annotated[HttpHealthCheck, Tag("http")] | Annotated[WebSocketHealthCheck, Tag("websocket")],
    by_type,
]
ServiceType = Literal["web", "api", "websocket", "webapi", "none"]


class ExposedPort(Strict):
    port: PortNumber
    type: ServiceType | None = None
    health_checks: list[HealthCheck] | None = None


def _entry_kind(value: Any) -> str:
    """Which kind of entry, decided as Nosana's validator does: `__spread__` makes a marker,
    any other object a port object."""
    if isinstance(value, dict):
        return "spread" if "__spread__" in value else "object"
    return json_kind(value)


ExposeEntry = Annotated[
    Annotated[PortNumber, Tag("number")]
    | Annotated[PortLiteral, Tag("string")]
    | Annotated[ExposedPort, Tag("object")]
    | Annotated[SpreadMarker, Tag("spread")],
    Discriminator(
        _entry_kind,
        custom_error_type="wrong_kind",
        custom_error_message="must be a port number, a {port: ...} object, a literal or a "
        "{__spread__: literal} marker",
    ),
]
Expose = Annotated[
    Annotated[ExposeEntry, Tag("entry")] | Annotated[list[ExposeEntry], Tag("list")],
    Discriminator(lambda value: "list" if isinstance(value, list) else "entry"),
]


def entries(expose: Expose | None) -> list[int | str | ExposedPort | SpreadMarker]:
    if expose is None:
        return []
    return list(expose) if isinstance(expose, list) else [expose]


def concrete_ports(expose: Expose | None) -> list[ExposedPort]:
    """The ports known now; literals and spread markers are filled when the op starts."""
    return [
        e if isinstance(e, ExposedPort) else ExposedPort(port=e)
        for e in entries(expose)
        if isinstance(e, ExposedPort | int)
    ]


def duplicate_ports(expose: Expose | None, where: str) -> list[FieldError]:
    """Nosana's rule: a port is exposed once (literals and markers are not counted)."""
    if not isinstance(expose, list):
        return []
    errors: list[FieldError] = []
    first: dict[int, int] = {}
    for index, entry in enumerate(expose):
        port = entry.port if isinstance(entry, ExposedPort) else entry
        if not isinstance(port, int):
            continue
        if port in first:
            loc = f"{where}[{index}]"
            errors.append(FieldError(loc, f"port {port} is exposed twice ({where}[{first[port]}])"))
        first.setdefault(port, index)
    return errors
