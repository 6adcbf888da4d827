"""The types the sections' keys are made of: durations, sizes, URLs, listeners, networks.

`schema` builds each `[section]` from these; each parses a value as it is written in the file
or an environment variable (`90s`, `512MiB`, `HOST:PORT` or `unix:/path`, a list of CIDRs as
one string apart by commas) and says, on a bad one, what it should have been.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from ..util.units import parse_duration, parse_size

Duration = Annotated[float, BeforeValidator(parse_duration)]
ByteSize = Annotated[int, BeforeValidator(parse_size)]


def http_url(value: str) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


HttpUrl = Annotated[str, BeforeValidator(http_url)]


class Section(BaseModel):
    """A `[section]` of the file: frozen, and an unknown key in it is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Listener(BaseModel):
    """One place the API listens: a TCP `HOST:PORT` or a `unix:/path` socket."""

    model_config = ConfigDict(frozen=True)

    host: str | None = None
    port: int | None = None
    unix_path: str | None = None

    @classmethod
    def parse(cls, text: str) -> Listener:
        if text.startswith("unix:"):
            path = text.removeprefix("unix:")
            if not path.startswith("/"):
                raise ValueError(f"{text!r}: a unix socket needs an absolute path")
            return cls(unix_path=path)
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{text!r} is not HOST:PORT or unix:/path")
        return cls(host=host.strip("[]"), port=int(port))

    @property
    def is_local(self) -> bool:
        """Unix sockets and loopback addresses need no token."""
        if self.unix_path is not None:
            return True
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host or "").is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        if self.unix_path is not None:
            return f"unix:{self.unix_path}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{host}:{self.port}"

    def url(self) -> str:
        """Base URL a client uses to reach this listener."""
        if self.unix_path is not None:
            return f"unix:{self.unix_path}"
        host = self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"
        host = f"[{host}]" if host and ":" in host else host
        return f"http://{host}:{self.port}"


def listeners(value: Any) -> Any:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [Listener.parse(v) if isinstance(v, str) else v for v in value]
    return value


def one_listener(value: Any) -> Any:
    return Listener.parse(value) if isinstance(value, str) else value


def ip_address_text(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address (Docker publishes ports on one)"
        ) from None


CidrNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def cidrs(value: Any) -> Any:
    """A list, or one string of CIDRs apart by commas (as an environment variable gives)."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        return value
    try:
        return [ipaddress.ip_network(v, strict=True) if isinstance(v, str) else v for v in value]
    except ValueError as exc:
        raise ValueError(f"not a list of CIDR networks: {exc}") from None
