"""The one writer of an op's record (`OpRecord`): its run tells it what happened, in the
words of the op's life, and it changes the record and saves the job's.

Preparing, the container, supervision and health checks return what they found (values,
dataclasses), or report it as it comes; only the op's run hands that here. So a field of the
record has one place that sets it, and the record's JSON (what `GET /v1/jobs/{id}` shows,
what `jobs.sqlite` keeps) is what these methods make of it: a field is written once given
(`models`), so a list that only grows is extended, never assigned empty.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..engine.shapes import DeviceRequest
from ..util.clock import Clock
from .models import EndpointRecord, ImageUse, OpRecord, ResourceUse, Results
from .states import OpState

Save = Callable[[], Awaitable[None]]
"""Saves the job's record, which holds the op's."""


class OpRecorder:
    def __init__(self, record: OpRecord, clock: Clock, save: Save) -> None:
        self._record = record
        self.clock = clock
        self.save = save

    @property
    def record(self) -> OpRecord:
        """The record, to read (every change goes through this recorder)."""
        return self._record

    # -- preparing ----------------------------------------------------------------------------

    async def preparing(self) -> None:
        record = self._record
        record.state, record.prepare_started = OpState.PREPARING, self.clock.now()
        await self.save()

    async def acquired(
        self, image: ImageUse | None, resources: list[ResourceUse], lease_ids: list[int]
    ) -> None:
        """What the preparation holds, all of it or what arrived before one failed: the
        leases are released by id when the op ends (after a restart too)."""
        record = self._record
        if image is not None:
            record.image = image
        record.resources, record.lease_ids = resources, lease_ids
        await self.save()

    async def prepared(self) -> None:
        self._record.prepare_ended = self.clock.now()
        await self.save()

    def writable_layers(self, names: list[str]) -> None:
        """The container's copy-on-write layers, removed when the op ends; saved with the
        next change."""
        self._record.writable_layers.extend(names)

    def warnings(self, warnings: list[str]) -> None:
        """What the op runs without; saved with the next change."""
        self._record.warnings.extend(warnings)

    def hub_bypassed(self, reason: str | None) -> None:
        if reason is not None:
            self._record.hub_bypassed = reason

    # -- running ------------------------------------------------------------------------------

    async def running(self, container_name: str | None = None) -> None:
        """The op runs (its container about to be created, or its volume)."""
        record = self._record
        record.state, record.run_started = OpState.RUNNING, self.clock.now()
        if container_name is not None:
            record.container_name = container_name
        await self.save()

    async def created(self, container_id: str, device_requests: list[DeviceRequest]) -> None:
        record = self._record
        record.container_id, record.device_requests = container_id, device_requests
        await self.save()

    async def published(self, ports: dict[str, str], endpoints: list[EndpointRecord]) -> None:
        """Where the engine published the op's ports, before any check runs."""
        record = self._record
        record.ports, record.endpoints = ports, endpoints
        await self.save()

    async def restarted(self, restarts: int) -> None:
        self._record.restarts = restarts
        await self.save()

    async def health(
        self, endpoints: list[EndpointRecord], ready_at: float | None, *, changed: bool
    ) -> None:
        """What a round of health checks found; saved when a reader should see it."""
        record = self._record
        record.endpoints = endpoints
        if ready_at is not None and record.ready_at is None:
            record.ready_at = ready_at
        if changed:
            await self.save()

    # -- ending -------------------------------------------------------------------------------

    async def ended(
        self,
        state: OpState,
        *,
        error: str | None = None,
        exit_code: int | None = None,
        results: Results | None = None,
    ) -> None:
        """How the op ended (only what is given changes besides the state)."""
        record = self._record
        record.state, record.ended = state, self.clock.now()
        if error is not None:
            record.error = error
        if exit_code is not None:
            record.exit_code = exit_code
        if results is not None:
            record.results = results
        await self.save()

    async def stopped(self, reason: str | None, results: Results | None) -> None:
        """Stopped with its job: the job's reason, even when there is none."""
        self._record.error = reason
        await self.ended(OpState.STOPPED, results=results)

    def requeued(self) -> None:
        """After a daemon restart, an op that was preparing starts over."""
        self._record.state = OpState.QUEUED

    def never_ran(self, reason: str) -> None:
        """The job ended before the op's turn came; saved with the job's end."""
        record = self._record
        record.state, record.error = OpState.STOPPED, reason
