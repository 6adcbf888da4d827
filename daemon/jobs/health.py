"""Health checks of an op's exposed ports, run as Nosana's node runs them, on the runner's
clock.

    starting ──every check of every port passed──► ready ──► continuous checks, for as long
       │                                                     as the op runs: healthy ⇄ unhealthy
       └──jobs.ready_timeout went by──► NotReady: the op fails, naming the check and its answer

A port's checks run in the order the definition gives them, and a round stops at the first
that fails; the port is up when a whole round passes, continuous checks included (Nosana's
node runs every check at start-up and calls a port started only when all pass). The op is
ready when every port with checks is up; a port without checks is up once published.
While starting, a round runs at once, then after 0.1 s, the pause doubling up to
`jobs.health_interval` (Nosana's node waits 5 s between rounds: a ready service found late
is time its user waits for nothing). Once ready, only the continuous checks run, every
`jobs.health_continuous_interval` (30 s, as on Nosana's node); while one fails the port, and
the op, are unhealthy, and the op keeps running, as on Nosana's node.

What a check does on the wire is `probes`' business: this module only sees answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..errors import JobError
from ..logs import get_logger
from ..settings import JobsSettings
from ..util.clock import Clock
from ..util.units import format_duration
from .models import CheckRecord, EndpointRecord
from .ports import HealthCheck, HttpHealthCheck

log = get_logger(__name__)

FIRST_PAUSE = 0.1
"""Seconds between the first two rounds of a starting op's checks; the pause then doubles."""


@dataclass(frozen=True)
class Answer:
    """What one check saw: whether it passed, and the answer in a few words."""

    passed: bool
    text: str


Probe = Callable[[EndpointRecord, HealthCheck], Awaitable[Answer]]
"""Runs one check against one published port."""


class NotReady(JobError):
    """A starting op's checks did not all pass within `jobs.ready_timeout`."""


def describe(check: HealthCheck) -> str:
    """A check in a few words, as records and errors name it."""
    if isinstance(check, HttpHealthCheck):
        return f"http {check.method} {check.path} expects {check.expected_status}"
    return f"websocket expects {check.expected_response!r}"


def endpoint_records(ports: dict[int, tuple[str, list[HealthCheck]]]) -> list[EndpointRecord]:
    """The records of an op's exposed ports (`port → (type, checks)`), before they run."""
    return [
        EndpointRecord(
            port=port,
            type=kind,
            health="starting" if checks else "unknown",
            checks=[CheckRecord(description=describe(c), continuous=c.continuous) for c in checks],
        )
        for port, (kind, checks) in ports.items()
    ]


Report = Callable[[list[EndpointRecord], float | None, bool], Awaitable[None]]
"""Told after every round: the ports' records as they are now (copies, for the op's record),
when the op became ready (None while it is not), and whether a reader should see it now (a
check's answer or a port's health changed, or the op became ready)."""


class HealthWatch:
    """The checks of one op's ports, from its container's start to its end. The watch keeps
    its own copies of the ports' records and reports them; it never touches the op's record."""

    def __init__(
        self,
        endpoints: list[EndpointRecord],
        ready_at: float | None,
        checks: dict[int, list[HealthCheck]],
        probe: Probe,
        clock: Clock,
        settings: JobsSettings,
        report: Report,
        op_id: str,
    ) -> None:
        self.endpoints = [e.model_copy(deep=True) for e in endpoints]
        self.ready_at = ready_at
        self.checks = checks
        self.probe = probe
        self.clock = clock
        self.settings = settings
        self.report = report
        self.op_id = op_id

    async def run(self, started: float) -> None:
        """Until the op is ready (or `NotReady`, counting from `started`), then the
        continuous checks; returns only if there are none."""
        if self.ready_at is None:
            await self._until_ready(started)
        await self._continuously()

    async def _reported(self, changed: bool) -> None:
        endpoints = [e.model_copy(deep=True) for e in self.endpoints]
        await self.report(endpoints, self.ready_at, changed)

    async def _until_ready(self, started: float) -> None:
        timeout = self.settings.ready_timeout
        pause = FIRST_PAUSE
        while True:
            changed = False
            for endpoint in self._starting():
                up, moved = await self._round(endpoint, continuous_only=False)
                changed |= moved
                if up:
                    endpoint.health = "healthy"
            if not self._starting():
                self.ready_at = self.clock.now()
                log.info("op.ready", op=self.op_id, seconds=self.clock.now() - started)
                await self._reported(True)
                return
            await self._reported(changed)
            waited = self.clock.now() - started
            if timeout and waited >= timeout:
                raise NotReady(self._not_ready(timeout))
            await self.clock.sleep(min(pause, timeout - waited) if timeout else pause)
            pause = min(pause * 2, self.settings.health_interval)

    async def _continuously(self) -> None:
        watched = [e for e in self.endpoints if any(c.continuous for c in self.checks[e.port])]
        if not watched:
            return
        while True:
            await self.clock.sleep(self.settings.health_continuous_interval)
            changed = False
            for endpoint in watched:
                up, moved = await self._round(endpoint, continuous_only=True)
                health = "healthy" if up else "unhealthy"
                if health != endpoint.health:
                    log.info("op.health", op=self.op_id, port=endpoint.port, health=health)
                    endpoint.health, moved = health, True
                changed |= moved
            await self._reported(changed)

    async def _round(self, endpoint: EndpointRecord, *, continuous_only: bool) -> tuple[bool, bool]:
        """Run a port's checks in order until one fails: (whether all passed, whether any
        record changed)."""
        changed = False
        for check, seen in zip(self.checks[endpoint.port], endpoint.checks, strict=True):
            if continuous_only and not check.continuous:
                continue
            answer = await self.probe(endpoint, check)
            seen.checked_at = self.clock.now()
            if (seen.passed, seen.answer) != (answer.passed, answer.text):
                seen.passed, seen.answer, changed = answer.passed, answer.text, True
            if not answer.passed:
                return False, changed
        return True, changed

    def _starting(self) -> list[EndpointRecord]:
        return [e for e in self.endpoints if e.health == "starting"]

    def _not_ready(self, timeout: float) -> str:
        failing = next(
            (
                (endpoint, check)
                for endpoint in self._starting()
                for check in endpoint.checks
                if check.passed is not True
            ),
            None,
        )
        within = f"within {format_duration(timeout)} (jobs.ready_timeout)"
        if failing is None:  # every check passed, but not in one round
            return f"op {self.op_id} was not ready {within}"
        endpoint, check = failing
        answer = check.answer if check.answer is not None else "no answer yet"
        return (
            f"op {self.op_id} was not ready {within}: port {endpoint.port}, "
            f"{check.description}, last answered: {answer}"
        )
