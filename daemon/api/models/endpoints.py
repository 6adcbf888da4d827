"""An op's exposed ports as the API shows them: where each was published, its URL, the kind
of service behind it, and its health checks with what they saw last.

`Op.ports` (`{"8080/tcp": "127.0.0.1:32768"}`) stays as it was for the clients that read it;
`endpoints` says the rest, one item per port. An op that asked for `private: true` keeps its
addresses out of job listings (Nosana's node hands a private op's URLs to the job's owner
only): they are shown with the one job, `GET /v1/jobs/{id}`.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from ...jobs.models import CheckRecord, EndpointRecord
from ...util.wire import Instant, body

PRIVATE = "private"
"""What a listing shows instead of a private op's address."""

EndpointHealth = Literal["unknown", "starting", "healthy", "unhealthy"]


@body
class HealthCheckState:
    """One health check of a port, in words, and what it saw last."""

    check: str
    """`http GET /health expects 200`, `websocket expects "pong"`."""
    continuous: bool
    passed: bool | None
    """None until it has run."""
    answer: str | None
    """What the service answered last: a status, the start of a body, `connection refused`."""
    checked_at: Instant

    @classmethod
    def of(cls, check: CheckRecord) -> HealthCheckState:
        return cls(
            check=check.description,
            continuous=check.continuous,
            passed=check.passed,
            answer=check.answer,
            checked_at=check.checked_at,
        )


@body
class Endpoint:
    """One exposed port of an op. `health` is `unknown` for a port without checks."""

    port: int
    protocol: Literal["tcp"]
    type: str
    """As the definition says (`web`, `api`, `websocket`, `webapi`, `none`)."""
    address: str | None
    """Where it was published (`127.0.0.1:32768`); None until then, or in a listing when the
    op is private."""
    url: str | None
    """`http://` (`ws://` for a websocket service) to that address; on the unspecified
    address (`docker.publish_host = "0.0.0.0"`), through loopback."""
    private: bool
    health: EndpointHealth
    checks: list[HealthCheckState]

    @classmethod
    def of(cls, endpoint: EndpointRecord, *, private: bool, hide: bool) -> Endpoint:
        address = None if hide else endpoint.address
        return cls(
            port=endpoint.port,
            protocol="tcp",
            type=endpoint.type,
            address=address,
            url=_url(address, endpoint.type),
            private=private,
            health=endpoint.health,  # type: ignore[arg-type]  # the record keeps the words
            checks=[HealthCheckState.of(c) for c in endpoint.checks],
        )


def _url(address: str | None, kind: str) -> str | None:
    if address is None:
        return None
    host, _, port = address.rpartition(":")
    bare = host.strip("[]")
    if ipaddress.ip_address(bare).is_unspecified:
        host = "[::1]" if ":" in bare else "127.0.0.1"
    return f"{'ws' if kind == 'websocket' else 'http'}://{host}:{port}"
