"""The daemon killed (SIGKILL) while an engine pulls through its registry endpoint.

The test registry sits behind a proxy that holds a blob's body after some MiB (or a manifest's
answer before its first byte) until the test lets it go, so the kill lands at a known point,
never at a moment guessed by a timer. What is checked: nothing partial is ever served (the
reader cut by the kill sees a short body; the restarted daemon's reader gets the whole,
verified blob or waits for it), the next pull resumes where the killed one stopped (the Range
upstream sees), and a tag or manifest whose fetch was cut is fetched again, never served.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_process import DaemonProcess
from tests.fakes.faults import Faults
from tests.fakes.proxy import FaultyProxy
from tests.fakes.server import ThreadedServers
from tests.peers.ollama import MODEL, push_model
from tests.peers.procs import free_port
from tests.peers.registry import RegistryPeer

MB = 1024 * 1024
ACCEPT = "application/vnd.docker.distribution.manifest.v2+json"
HELD_AT = 8 * MB
SLACK = 512 * 1024
"""What a part may lose at a kill: bytes it had received but not yet written out."""


def daemon_config(proxy: FaultyProxy, port: int, retries: int = 5) -> dict[str, dict[str, Any]]:
    return {
        "docker": {"registry_mirrors": {"docker.io": proxy.url}, "gpu": "none"},
        "registry": {"listen": f"127.0.0.1:{port}"},
        "download": {"part_size": "64MiB", "stall_timeout": "60s", "max_retries": retries},
    }


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def recorded(store: Path, digest: str) -> int:
    """The bytes of the blob's download the store's index says are written (0 if none)."""
    index = store / "index.sqlite"
    if not index.exists():
        return 0
    with sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=5) as conn:
        row = conn.execute("SELECT ranges FROM downloads WHERE key = ?", (digest,)).fetchone()
    return sum(end - start for start, end in json.loads(row[0])) if row else 0


def wait_for(what: Callable[[], bool], why: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, why
        time.sleep(0.1)


def read_cut(url: str, first: int) -> tuple[bytes, Future[bytes]]:
    """Open a GET of `url`, read `first` bytes; the rest is read in a thread (it may fail)."""
    response = urllib.request.urlopen(urllib.request.Request(url), timeout=60)
    assert response.status == 200
    head = response.read(first)
    pool = ThreadPoolExecutor(1)
    rest = pool.submit(lambda: response.read())
    pool.shutdown(wait=False)
    return head, rest


def release(faults: Faults) -> None:
    assert faults.hold is not None
    faults.hold.set()


def blob_gets(proxy: FaultyProxy, digest: str) -> int:
    return sum(n for k, n in proxy.traffic.requests.items() if k.startswith("GET ") and digest in k)


def test_a_blob_pull_killed_with_the_daemon_resumes_and_nothing_partial_is_served(
    tmp_path: Path, registry: RegistryPeer, servers: ThreadedServers
) -> None:
    layer = os.urandom(24 * MB)
    image = push_model(registry.url, "nosana/killed", "1", {MODEL: layer})
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    proxy = FaultyProxy(servers, registry.url)
    before_kill = Faults(hold_after=HELD_AT, hold=threading.Event())
    proxy.faults[digest] = before_kill
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    blob_url = f"{endpoint}/v2/nosana/killed/blobs/{digest}"
    daemon = DaemonProcess(tmp_path, daemon_config(proxy, port)).start()
    try:
        status, headers, _ = get(f"{endpoint}/v2/nosana/killed/manifests/1", {"Accept": ACCEPT})
        assert (status, headers["Docker-Content-Digest"]) == (200, image.digest)
        head, rest = read_cut(blob_url, MB)  # an engine unpacking while the layer lands
        assert head == layer[:MB]
        assert before_kill.held.wait(30)
        # The store has recorded what it wrote before the hold (it does so every 2 s).
        wait_for(
            lambda: recorded(tmp_path / "store", digest) >= HELD_AT - SLACK,
            "the download's progress is never recorded",
        )
    finally:
        assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
    with pytest.raises(http.client.IncompleteRead):
        rest.result(timeout=30)  # a short body, never one that looks whole
    release(before_kill)  # the killed daemon's connection ends
    seen_ranges, seen_gets = len(proxy.traffic.ranges), blob_gets(proxy, digest)
    with pytest.raises(urllib.error.URLError):
        get(blob_url)  # down: nothing answers, nothing partial either

    after_restart = Faults(hold_after=HELD_AT, hold=threading.Event())
    proxy.faults[digest] = after_restart
    again = DaemonProcess(tmp_path, daemon_config(proxy, port), port=daemon.port).start()
    try:
        # The restarted daemon fetches the rest by itself, before any engine asks again.
        assert after_restart.held.wait(30)  # the resumed fetch is held in turn
        assert "registry.resuming" in again.log()
        size_asked = f"HEAD /v2/nosana/killed/blobs/{digest}"
        sizes = proxy.traffic.requests[size_asked]
        pool = ThreadPoolExecutor(1)
        whole = pool.submit(get, blob_url)  # joins that fetch
        # It has arrived once the daemon asks the blob's size (a restart forgot the manifest's).
        wait_for(lambda: proxy.traffic.requests[size_asked] > sizes, "the GET never arrives")
        assert not whole.done()  # the reader waits: it has no short, unverified blob
        release(after_restart)
        status, headers, body = whole.result(timeout=60)
        pool.shutdown()
        assert status == 200
        assert int(headers["Content-Length"]) == len(layer)
        assert hashlib.sha256(body).hexdigest() == digest.removeprefix("sha256:")

        resumed = [r for path, r in proxy.traffic.ranges[seen_ranges:] if digest in path]
        assert blob_gets(proxy, digest) - seen_gets == len(resumed)  # every GET is ranged
        spans = [tuple(map(int, r.removeprefix("bytes=").split("-"))) for r in resumed]
        assert spans, proxy.traffic.ranges
        assert min(start for start, _ in spans) > 0, resumed  # never again from byte 0
        asked = sum(end + 1 - start for start, end in spans)
        assert asked <= len(layer) - HELD_AT + len(spans) * SLACK, resumed
        assert "fetch.resuming" in again.log()

        # The image pulls as an engine pulls it: the tag's manifest, its config, its layer.
        status, headers, manifest = get(
            f"{endpoint}/v2/nosana/killed/manifests/1", {"Accept": ACCEPT}
        )
        assert (status, headers["Docker-Content-Digest"]) == (200, image.digest)
        assert manifest == image.manifest
        for descriptor in [json.loads(manifest)["config"], *json.loads(manifest)["layers"]]:
            status, _, data = get(f"{endpoint}/v2/nosana/killed/blobs/{descriptor['digest']}")
            assert status == 200
            assert "sha256:" + hashlib.sha256(data).hexdigest() == descriptor["digest"]
    finally:
        release(after_restart)
        assert again.stop() == 0


@pytest.mark.parametrize("held", ["tag", "manifest"])
def test_a_manifest_cut_by_a_kill_is_never_served_as_ready(
    tmp_path: Path, registry: RegistryPeer, servers: ThreadedServers, held: str
) -> None:
    """Killed while upstream holds the tag's HEAD (before any answer), or the manifest's body
    (after 64 bytes): the restarted daemon serves neither entry as ready; with upstream down
    it says so (503), and once upstream is back it fetches the manifest again."""
    name = f"nosana/cut-{held}"
    image = push_model(registry.url, name, "1", {MODEL: os.urandom(1024)})
    proxy = FaultyProxy(servers, registry.url)
    key = "/manifests/1" if held == "tag" else f"/manifests/{image.digest}"
    hold = threading.Event()
    cut = Faults(hold=hold, hold_answer=True) if held == "tag" else Faults(hold_after=64, hold=hold)
    proxy.faults[key] = cut
    port = free_port()
    url = f"http://127.0.0.1:{port}/v2/{name}/manifests/1"
    daemon = DaemonProcess(tmp_path, daemon_config(proxy, port)).start()
    pool = ThreadPoolExecutor(1)
    try:
        pending = pool.submit(get, url, {"Accept": ACCEPT})
        assert cut.held.wait(30)
    finally:
        assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
        pending.result(timeout=30)
    pool.shutdown()
    release(cut)
    proxy.faults.clear()

    proxy.faults["/v2/"] = Faults(fail_times=1000, fail_status=503)
    # Upstream down is said at once (no retries): what matters is what is not served.
    config = daemon_config(proxy, port, retries=0)
    again = DaemonProcess(tmp_path, config, port=daemon.port).start()
    try:
        cut_entry = f"({'tag' if held == 'tag' else 'manifest'})"
        states = {
            e["source"]: e["state"]
            for e in again.client().get("/v1/resources")["resources"]
            if name in e["source"]
        }
        # The cut answer was never whole in memory: no entry was made of it (one left by a kill
        # between its row and its file would be `pending` after recovery): none is ready.
        assert all(s != "ready" for source, s in states.items() if cut_entry in source), states
        assert held == "tag" or states[f"docker.io/{name}:1 (tag)"] == "ready"
        status, _, body = get(url, {"Accept": ACCEPT})
        assert status == 503, body  # not a manifest half fetched, nor an empty one
        assert json.loads(body)["errors"][0]["code"] == "UNAVAILABLE"
        status, _, body = get(url.replace("/manifests/1", f"/manifests/{image.digest}"))
        assert status == 503, body  # by its digest neither
        asked = f"HEAD {key}" if held == "tag" else f"GET {key}"
        asked = asked.replace(" /", f" /v2/{name}/", 1)
        before = proxy.traffic.requests[asked]
        del proxy.faults["/v2/"]

        status, headers, body = get(url, {"Accept": ACCEPT})
        assert (status, headers["Docker-Content-Digest"]) == (200, image.digest)
        assert body == image.manifest
        assert proxy.traffic.requests[asked] > before  # what was cut is asked again
    finally:
        assert again.stop() == 0
