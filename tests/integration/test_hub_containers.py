"""Job containers on the test engine download through the `HF_ENDPOINT` they are given: the
endpoint's own listener on the host's address on the engine's default bridge, which serves
`/hf` and `/healthz` and nothing of the API, and which status names (or says why it is not
there). A fresh engine's case (no `docker0` before it): test_hub_fresh_engine.py."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.faults import Faults
from tests.fakes.hf_hub import FakeHub
from tests.peers.dockerd import DockerPeer
from tests.peers.registry import RegistryPeer

pytestmark = pytest.mark.docker

MB = 1024 * 1024
REPO = "hubtest/container-model"
WEIGHTS = Content.generated(6 * MB, seed=600)
NOT_HERE = "198.51.100.7"  # TEST-NET-2: no host holds it


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory,
    docker_peer: DockerPeer,
    registry: RegistryPeer,
    hub: FakeHub,
) -> Iterator[DaemonProcess]:
    hub.commit(REPO, {"config.json": b'{"model_type": "llama"}', "w.safetensors": WEIGHTS})
    config: dict[str, dict[str, Any]] = {
        **docker_peer.daemon_config(registry.host),
        "huggingface": {"endpoint": hub.url, "mirror_port": 0},
    }
    process = DaemonProcess(tmp_path_factory.mktemp("hub-containers"), config).start()
    yield process
    assert process.stop() == 0


def run_job(daemon: DaemonProcess, *ops: dict[str, Any]) -> dict[str, Any]:
    definition = {"version": "0.1", "type": "container", "ops": list(ops)}
    job = daemon.client().request("POST", "/v1/jobs", body=definition)
    return daemon.wait_job(job["id"], timeout=180)


def op(op_id: str, cmd: str, **args: Any) -> dict[str, Any]:
    return {"type": "container/run", "id": op_id, "args": {"image": "ubuntu", "cmd": cmd, **args}}


def test_a_container_downloads_through_the_injected_endpoint(
    daemon: DaemonProcess, hub: FakeHub
) -> None:
    record = run_job(
        daemon,
        op(
            "fetch",
            "wget -q -O - $HF_ENDPOINT/hubtest/container-model/resolve/main/config.json; echo;"
            " wget -q -O /tmp/w $HF_ENDPOINT/hubtest/container-model/resolve/main/w.safetensors"
            " && sha256sum /tmp/w",
        ),
    )
    assert record["state"] == "completed", record
    lines = daemon.job_logs(record["id"]).splitlines()
    assert lines[0] == '{"model_type": "llama"}'
    assert lines[1].split()[0] == WEIGHTS.sha256
    resources = daemon.client().get("/v1/resources")["resources"]
    assert any(e["details"].get("path") == "w.safetensors" for e in resources)


def test_two_containers_reading_one_cold_file_fetch_it_once(
    daemon: DaemonProcess, hub: FakeHub
) -> None:
    content = Content.generated(10 * MB, seed=601)
    hub.commit("hubtest/shared-weights", {"w.safetensors": content})
    release = threading.Event()
    hub.set_faults(content, Faults(hold_after=MB, hold=release))
    fetch = (
        "wget -q -O /tmp/w $HF_ENDPOINT/hubtest/shared-weights/resolve/main/w.safetensors"
        " && sha256sum /tmp/w"
    )
    together = {"execution": {"group": "readers"}}
    ops = [{**op("a", fetch), **together}, {**op("b", fetch), **together}]
    job = daemon.client().request(
        "POST", "/v1/jobs", body={"version": "0.1", "type": "container", "ops": ops}
    )
    try:
        _wait_for_readers(daemon, "hubtest/shared-weights", 2)  # both containers are reading
    finally:
        release.set()
    record = daemon.wait_job(job["id"], timeout=180)
    assert record["state"] == "completed", record
    for op_id in ("a", "b"):
        assert daemon.job_logs(record["id"], op_id).split()[0] == content.sha256
    # One fetch: its ranged parts start where others end, and only one request ever asked
    # for the file's first byte (a second fetch would start at 0 again).
    path = f"/lfs/{content.sha256}"
    requests = hub.cdn_traffic.count(f"GET {path}")
    ranged = [r for p, r in hub.cdn_traffic.ranges if p == path]
    starts = [r.removeprefix("bytes=").split("-")[0] for r in ranged]
    assert requests >= 1
    assert (requests - len(ranged)) + starts.count("0") == 1, (requests, ranged)


def _wait_for_readers(daemon: DaemonProcess, repo: str, count: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for entry in daemon.client().get("/v1/resources")["resources"]:
            details = entry["details"]
            if details.get("repo") == repo and details.get("path") and entry["leases"] >= count:
                return
        time.sleep(0.1)
    raise AssertionError(f"{count} readers of {repo} never showed up")


def test_the_containers_listener_serves_the_hub_and_nothing_of_the_api(
    daemon: DaemonProcess,
) -> None:
    record = run_job(
        daemon,
        op(
            "probe",
            'base=${HF_ENDPOINT%/hf}; echo "$HF_ENDPOINT";'
            " wget -q -O - $base/healthz; echo;"
            " for route in /v1/status /v1/resources /v1/jobs /metrics /hf/../v1/status; do"
            "   wget -q -O - $base$route >/dev/null 2>&1 && echo open $route || echo closed $route;"
            " done",
        ),
    )
    assert record["state"] == "completed", record
    lines = daemon.job_logs(record["id"]).splitlines()
    endpoint = lines[0]
    assert endpoint.startswith("http://nosana-cache.internal:")
    assert endpoint.endswith("/hf")
    assert lines[1] == '{"status": "ok"}'
    assert all(line.startswith("closed ") for line in lines[2:]), lines
    # Status says where it is bound, as the log did; from the host, there, the same answers.
    listener = daemon.client().get("/v1/status")["hub_listener"]
    assert listener["state"] == "bound", listener
    assert listener["url"] == endpoint
    bound = listener["address"]
    assert f'"address": "{bound}"' in daemon.log()
    assert requests.get(f"http://{bound}/v1/status", timeout=10).status_code == 404
    assert requests.get(f"http://{bound}/hf/api/models/{REPO}", timeout=10).status_code == 200


def test_a_container_gets_the_companions_and_llama_cpp_finds_its_file(
    daemon: DaemonProcess, hub: FakeHub
) -> None:
    """`HF_HUB_DISABLE_XET=1` and `MODEL_ENDPOINT` beside `HF_ENDPOINT`; llama.cpp's requests
    (its paths, User-Agent and Accept) from inside the container, under `MODEL_ENDPOINT`."""
    quant = Content.generated(MB, seed=602)
    hub.commit(
        "hubtest/container-GGUF",
        {"m-Q4_K_M.gguf": Content.generated(MB, seed=603), "m-Q8_0.gguf": quant},
    )
    get = 'wget -q -U llama-cpp/b7123 --header "Accept: application/json" -O -'
    record = run_job(
        daemon,
        op(
            "llama",
            'echo "$HF_HUB_DISABLE_XET"; echo "$MODEL_ENDPOINT"; echo "$HF_ENDPOINT";'
            f' {get} "${{MODEL_ENDPOINT}}api/models/hubtest/container-GGUF/refs"; echo;'
            f' {get} "${{MODEL_ENDPOINT}}v2/hubtest/container-GGUF/manifests/q8_0"; echo;'
            " wget -q -U llama-cpp/b7123 -O /tmp/m"
            ' "${MODEL_ENDPOINT}hubtest/container-GGUF/resolve/main/m-Q8_0.gguf"'
            " && sha256sum /tmp/m",
        ),
    )
    assert record["state"] == "completed", record
    assert "hub_bypassed" not in record["ops"][0] or record["ops"][0]["hub_bypassed"] is None
    xet, model_endpoint, hf_endpoint, refs, manifest, digest = daemon.job_logs(
        record["id"]
    ).splitlines()
    assert xet == "1"
    assert model_endpoint == hf_endpoint + "/"
    commit = hub.repos["hubtest/container-GGUF"].refs["main"]
    assert json.loads(refs)["branches"][0]["targetCommit"] == commit
    assert json.loads(manifest)["ggufFile"]["rfilename"] == "m-Q8_0.gguf"
    assert digest.split()[0] == quant.sha256


def test_a_job_that_sets_its_own_endpoint_or_offline_mode_keeps_it_and_is_told(
    daemon: DaemonProcess,
) -> None:
    show = "echo ${HF_ENDPOINT:-unset} ${HF_HUB_DISABLE_XET:-unset} ${MODEL_ENDPOINT:-unset}"
    record = run_job(
        daemon,
        op("own", show, env={"HF_ENDPOINT": "http://mirror.example/hf"}),
        op("offline", show, env={"HF_HUB_OFFLINE": "1"}),
        op("llama", show, env={"MODEL_ENDPOINT": "http://models.example/"}),
    )
    assert record["state"] == "completed", record
    ops = {o["id"]: o for o in record["ops"]}
    assert daemon.job_logs(record["id"], op="own") == "http://mirror.example/hf unset unset\n"
    assert ops["own"]["hub_bypassed"] == (
        "the job sets HF_ENDPOINT: its Hub clients download from it, not the cache"
    )
    injected, xet, model_endpoint = daemon.job_logs(record["id"], op="offline").split()
    assert injected.startswith("http://nosana-cache.internal:")
    assert (xet, model_endpoint) == ("1", injected + "/")
    assert ops["offline"]["hub_bypassed"] == (
        "the job sets HF_HUB_OFFLINE: its Hub clients read only their own cache"
    )
    assert daemon.job_logs(record["id"], op="llama").split()[2] == "http://models.example/"
    assert "MODEL_ENDPOINT" in ops["llama"]["hub_bypassed"]
    logged = [line for line in daemon.log().splitlines() if '"op.hub_bypassed"' in line]
    assert any(record["id"] in line and "HF_HUB_OFFLINE" in line for line in logged), logged


def test_mirror_off_turns_it_all_off(
    tmp_path_factory: pytest.TempPathFactory,
    docker_peer: DockerPeer,
    registry: RegistryPeer,
    hub: FakeHub,
) -> None:
    config: dict[str, dict[str, Any]] = {
        **docker_peer.daemon_config(registry.host),
        "huggingface": {"endpoint": hub.url, "mirror": False},
    }
    process = DaemonProcess(tmp_path_factory.mktemp("hub-off"), config).start()
    try:
        record = run_job(process, op("plain", "echo ${HF_ENDPOINT:-unset}"))
        assert record["state"] == "completed", record
        assert process.job_logs(record["id"]) == "unset\n"
        off = requests.get(f"{process.url}/hf/api/models/{REPO}", timeout=10)
        assert off.status_code == 404
        assert off.headers["Content-Type"].startswith("application/problem+json")
        assert '"hub.listening"' not in process.log()
        assert process.client().get("/v1/status")["hub_listener"]["state"] == "off"
    finally:
        assert process.stop() == 0


def test_a_listener_that_cannot_bind_is_a_warning_in_status_and_jobs_run_without_it(
    tmp_path_factory: pytest.TempPathFactory,
    docker_peer: DockerPeer,
    registry: RegistryPeer,
    hub: FakeHub,
) -> None:
    """`huggingface.mirror_address` wins, even where this host cannot listen: status says so
    loudly, with the reason and what to set, and jobs run as without the cache."""
    config: dict[str, dict[str, Any]] = {
        **docker_peer.daemon_config(registry.host),
        "huggingface": {"endpoint": hub.url, "mirror_address": NOT_HERE},
    }
    process = DaemonProcess(tmp_path_factory.mktemp("hub-unbound"), config).start()
    try:
        listener = process.client().get("/v1/status")["hub_listener"]
        assert listener["state"] == "unbound", listener
        assert listener["address"] is None
        assert listener["url"] is None
        detail = listener["detail"]
        assert f"cannot listen on {NOT_HERE}:0 (huggingface.mirror_address)" in detail
        assert "job containers get no HF_ENDPOINT" in detail
        assert "set huggingface.mirror_address" in detail
        human = process.cli("status")
        assert human.returncode == 0, human.stderr
        assert f"hub      WARNING: job containers' listener not bound: {detail}" in human.stdout
        record = run_job(process, op("plain", "echo ${HF_ENDPOINT:-unset}"))
        assert record["state"] == "completed", record
        assert process.job_logs(record["id"]) == "unset\n"
    finally:
        assert process.stop() == 0
