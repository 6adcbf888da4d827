"""The health checks' state machine on a manual clock: when an op becomes ready, how long the
pauses are, when it fails for not being ready, and how continuous checks mark it unhealthy.
The probe is a script of answers (what a service would say); what a check does on the wire is
tested in test_probes.py against real servers."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from daemon.jobs.health import Answer, HealthWatch, NotReady, describe, endpoint_records
from daemon.jobs.models import EndpointRecord, OpRecord
from daemon.jobs.ports import HealthCheck, HttpHealthCheck, WebSocketHealthCheck
from daemon.jobs.states import OpState
from daemon.settings import JobsSettings
from daemon.util.clock import ManualClock

START = 1_800_000_000.0
OK = Answer(True, "200 OK")
DOWN = Answer(False, "connection refused")
BUSY = Answer(False, "503 Service Unavailable: loading model")


def http(path: str = "/health", *, continuous: bool = False, status: int = 200) -> HealthCheck:
    return HttpHealthCheck.model_validate(
        {
            "type": "http",
            "path": path,
            "method": "GET",
            "expected_status": status,
            "continuous": continuous,
        }
    )


class Script:
    """Answers per check (by its description), in order; the last one repeats. Records
    every call with the clock's time. `block_after` calls, it never answers again (so that a
    test can look at a watch that would otherwise go on forever)."""

    def __init__(
        self, clock: ManualClock, answers: dict[str, list[Answer]], block_after: int = 10**6
    ) -> None:
        self.clock = clock
        self.answers = {name: iter(seq) for name, seq in answers.items()}
        self.last: dict[str, Answer] = {}
        self.calls: list[tuple[float, int, str]] = []
        self.block_after = block_after
        self.blocked = asyncio.Event()

    async def __call__(self, endpoint: EndpointRecord, check: HealthCheck) -> Answer:
        if len(self.calls) >= self.block_after:
            self.blocked.set()
            await asyncio.Event().wait()
        name = describe(check)
        self.calls.append((self.clock.now() - START, endpoint.port, name))
        answer = next(self.answers[name], None) or self.last[name]
        self.last[name] = answer
        return answer

    def times(self) -> list[float]:
        return [round(t, 3) for t, _port, _name in self.calls]


class Watched:
    def __init__(
        self, ports: dict[int, list[HealthCheck]], script: dict[str, list[Answer]], **kw: Any
    ) -> None:
        self.clock = ManualClock(START)
        self.settings = JobsSettings(**{"health_interval": 1.0, **kw.pop("settings", {})})
        self.record = OpRecord(id="svc", type="container/run", state=OpState.RUNNING)
        self.record.endpoints = endpoint_records({p: ("api", c) for p, c in ports.items()})
        for endpoint in self.record.endpoints:
            endpoint.address = f"127.0.0.1:{30000 + endpoint.port}"
        self.probe = Script(self.clock, script, **kw)
        self.saves = 0
        self.watch = HealthWatch(
            self.record.endpoints,
            self.record.ready_at,
            ports,
            self.probe,
            self.clock,
            self.settings,
            self._report,
            self.record.id,
        )

    async def _report(
        self, endpoints: list[EndpointRecord], ready_at: float | None, changed: bool
    ) -> None:
        """As the op's run records a report: the watch changes no record of its own."""
        self.record.endpoints = endpoints
        if ready_at is not None:
            self.record.ready_at = ready_at
        if changed:
            self.saves += 1


@pytest.fixture
def checks() -> tuple[HealthCheck, HealthCheck]:
    return http("/health"), http("/ready", continuous=True)


async def test_an_op_is_ready_once_its_check_passes_with_the_pauses_doubling() -> None:
    w = Watched({8080: [http()]}, {describe(http()): [DOWN, DOWN, BUSY, BUSY, OK]})
    await w.watch.run(started=START)
    assert w.probe.times() == [0.0, 0.1, 0.3, 0.7, 1.5]
    assert w.record.ready_at == pytest.approx(START + 1.5)
    [endpoint] = w.record.endpoints
    assert endpoint.health == "healthy"
    assert (endpoint.checks[0].passed, endpoint.checks[0].answer) == (True, "200 OK")
    assert w.record.health() == ("healthy", None)
    # Saved when the answer changed (refused, busy, ok), not for every identical answer.
    assert w.saves == 3


async def test_the_pause_stops_growing_at_the_health_interval() -> None:
    w = Watched({8080: [http()]}, {describe(http()): [DOWN] * 8 + [OK]}, settings={})
    await w.watch.run(started=START)
    times = w.probe.times()
    assert [round(b - a, 3) for a, b in itertools.pairwise(times)] == [
        0.1,
        0.2,
        0.4,
        0.8,
        1.0,
        1.0,
        1.0,
        1.0,
    ]


async def test_a_check_that_never_passes_fails_the_op_naming_it_and_its_last_answer() -> None:
    w = Watched(
        {8080: [http()]},
        {describe(http()): [DOWN, BUSY]},
        settings={"ready_timeout": 3.0},
    )
    with pytest.raises(NotReady) as caught:
        await w.watch.run(started=START)
    assert w.clock.now() == pytest.approx(START + 3.0)
    assert caught.value.message == (
        "op svc was not ready within 3s (jobs.ready_timeout): port 8080, "
        "http GET /health expects 200, last answered: 503 Service Unavailable: loading model"
    )
    assert w.record.ready_at is None
    assert w.record.health() == (
        "starting",
        "port 8080: http GET /health expects 200: 503 Service Unavailable: loading model",
    )


async def test_the_timeout_counts_from_the_containers_start() -> None:
    """After a daemon restart the watch resumes; the op's earlier time counts."""
    w = Watched({8080: [http()]}, {describe(http()): [DOWN]}, settings={"ready_timeout": 10.0})
    with pytest.raises(NotReady):
        await w.watch.run(started=START - 9.5)
    assert w.probe.times() == [0.0, 0.1, 0.3, 0.5]


async def test_a_round_stops_at_the_first_failing_check(
    checks: tuple[HealthCheck, HealthCheck],
) -> None:
    health, ready = checks
    w = Watched({8080: [health, ready]}, {describe(health): [BUSY, OK], describe(ready): [OK]})
    run = asyncio.ensure_future(w.watch.run(started=START))
    await asyncio.sleep(0)
    w.probe.block_after = 3
    await w.probe.blocked.wait()
    assert [name for _t, _p, name in w.probe.calls] == [
        describe(health),  # busy: /ready is not asked
        describe(health),
        describe(ready),
    ]
    assert w.record.ready_at == pytest.approx(START + 0.1)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


async def test_readiness_needs_every_check_of_a_port_to_pass_in_one_round(
    checks: tuple[HealthCheck, HealthCheck],
) -> None:
    """Continuous checks too, as on Nosana's node, whose start-up rounds run all of them."""
    health, ready = checks
    w = Watched(
        {8080: [health, ready]},
        {describe(health): [OK], describe(ready): [DOWN, OK]},
        block_after=4,
    )
    run = asyncio.ensure_future(w.watch.run(started=START))
    await w.probe.blocked.wait()
    assert w.record.ready_at == pytest.approx(START + 0.1)
    assert w.probe.times() == [0.0, 0.0, 0.1, 0.1]
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


async def test_a_port_without_checks_does_not_hold_the_op_back() -> None:
    w = Watched({8080: [], 9090: [http()]}, {describe(http()): [DOWN, OK]})
    await w.watch.run(started=START)
    plain, checked = w.record.endpoints
    assert (plain.health, checked.health) == ("unknown", "healthy")
    assert w.record.ready_at == pytest.approx(START + 0.1)
    assert {port for _t, port, _name in w.probe.calls} == {9090}


async def test_an_op_whose_ports_have_no_checks_is_ready_at_once() -> None:
    w = Watched({8080: []}, {})
    await w.watch.run(started=START)
    assert w.record.ready_at == START
    assert w.probe.calls == []


async def test_a_failing_continuous_check_marks_the_op_unhealthy_until_it_passes_again(
    checks: tuple[HealthCheck, HealthCheck],
) -> None:
    health, ready = checks
    w = Watched(
        {8080: [health, ready]},
        {
            describe(health): [OK],
            describe(ready): [OK, OK, Answer(False, "500 Internal Server Error"), OK],
        },
        settings={"health_continuous_interval": 30.0},
        block_after=5,
    )
    states: list[tuple[str | None, str | None]] = []
    report = w.watch.report

    async def record_state(
        endpoints: list[EndpointRecord], ready_at: float | None, changed: bool
    ) -> None:
        await report(endpoints, ready_at, changed)
        if changed:
            states.append(w.record.health())

    w.watch.report = record_state
    run = asyncio.ensure_future(w.watch.run(started=START))
    await w.probe.blocked.wait()
    # Ready at once; then only the continuous check runs, every 30 s.
    assert w.probe.times() == [0.0, 0.0, 30.0, 60.0, 90.0]
    assert [name for _t, _p, name in w.probe.calls][2:] == [describe(ready)] * 3
    assert states == [
        ("healthy", None),
        ("unhealthy", "port 8080: http GET /ready expects 200: 500 Internal Server Error"),
        ("healthy", None),
    ]
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


async def test_a_websocket_check_is_described_by_what_it_expects() -> None:
    check = WebSocketHealthCheck.model_validate(
        {"type": "websocket", "expected_response": "pong", "continuous": False}
    )
    assert describe(check) == "websocket expects 'pong'"
    w = Watched({7000: [check]}, {describe(check): [Answer(False, "closed"), OK]})
    await w.watch.run(started=START)
    assert w.record.endpoints[0].checks[0].description == "websocket expects 'pong'"


async def test_the_watch_changes_no_record_only_its_reports_carry_what_it_saw() -> None:
    """The op's run is the one writer of its record: the watch works on copies."""
    record = OpRecord(id="svc", type="container/run", state=OpState.RUNNING)
    record.endpoints = endpoint_records({8080: ("api", [http()])})
    before = record.model_dump()
    clock = ManualClock(START)
    reports: list[tuple[str, float | None, bool]] = []

    async def report(
        endpoints: list[EndpointRecord], ready_at: float | None, changed: bool
    ) -> None:
        reports.append((endpoints[0].health, ready_at, changed))

    script = Script(clock, {describe(http()): [DOWN, OK]})
    watch = HealthWatch(
        record.endpoints, None, {8080: [http()]}, script, clock, JobsSettings(), report, "svc"
    )
    await watch.run(started=START)
    assert record.model_dump() == before
    assert reports == [("starting", None, True), ("healthy", pytest.approx(START + 0.1), True)]
