"""The op's recorder is the one writer of its record: what it writes is the JSON clients and
`jobs.sqlite` have always had, field for field (a field appears once it means something)."""

from __future__ import annotations

from daemon.jobs.models import ImageUse, OpRecord, ResourceUse
from daemon.jobs.recorder import OpRecorder
from daemon.jobs.states import OpState
from daemon.util.clock import ManualClock

START = 1_800_000_000.0


class Saves:
    def __init__(self) -> None:
        self.count = 0

    async def __call__(self) -> None:
        self.count += 1


def fresh() -> OpRecord:
    return OpRecord(
        id="a", type="container/run", group=None, state=OpState.QUEUED, exit_code=None, error=None
    )


async def test_a_run_that_completes_writes_the_fields_it_always_wrote() -> None:
    clock, saves = ManualClock(START), Saves()
    recorder = OpRecorder(fresh(), clock, saves)
    await recorder.preparing()
    clock.advance(2)
    image = ImageUse(ref="busybox", entry_id="img", hit=True, pulled=False)
    use = ResourceUse(source="hf://org/m", target="/m", type="HF", entry_id="e", hit=True)
    await recorder.acquired(image, [use], [1, 2])
    await recorder.prepared()
    recorder.hub_bypassed(None)
    recorder.writable_layers([])
    recorder.warnings([])
    await recorder.running("nosana-j-a")
    await recorder.created("c1", [])
    await recorder.published({}, [])
    clock.advance(3)
    await recorder.ended(OpState.COMPLETED, exit_code=0, results={})
    dumped = recorder.record.model_dump()
    assert dumped == {
        "id": "a",
        "type": "container/run",
        "group": None,
        "state": OpState.COMPLETED,
        "exit_code": 0,
        "error": None,
        "prepare_started": START,
        "prepare_ended": START + 2,
        "run_started": START + 2,
        "ended": START + 5,
        "image": image.model_dump(),
        "resources": [use.model_dump()],
        "lease_ids": [1, 2],
        "container_name": "nosana-j-a",
        "container_id": "c1",
        "device_requests": [],
        "ports": {},
        "results": {},
        "endpoints": [],
    }
    assert saves.count == 7


async def test_what_an_op_runs_without_and_its_restarts_appear_once_given() -> None:
    recorder = OpRecorder(fresh(), ManualClock(START), Saves())
    recorder.hub_bypassed("the job sets HF_ENDPOINT: its Hub clients download from it")
    recorder.writable_layers(["layer"])
    recorder.warnings(["gpu: true, but docker.gpu = none: running without a GPU"])
    await recorder.restarted(0)
    dumped = recorder.record.model_dump()
    assert dumped["hub_bypassed"].startswith("the job sets HF_ENDPOINT")
    assert (dumped["writable_layers"], dumped["restarts"]) == (["layer"], 0)
    assert dumped["warnings"] == ["gpu: true, but docker.gpu = none: running without a GPU"]


async def test_an_op_that_never_ran_is_stopped_with_the_jobs_reason_and_nothing_else() -> None:
    saves = Saves()
    recorder = OpRecorder(fresh(), ManualClock(START), saves)
    recorder.never_ran("not started: op b failed")
    assert recorder.record.model_dump() == {
        "id": "a",
        "type": "container/run",
        "group": None,
        "state": OpState.STOPPED,
        "exit_code": None,
        "error": "not started: op b failed",
    }
    assert saves.count == 0  # saved with the job's end
