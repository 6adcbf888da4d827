"""GET/DELETE /v1/resources, POST /v1/gc and /v1/verify: fields, statuses, problems."""

from __future__ import annotations

import hashlib
import os

from tests.unit.api.conftest import Api
from tests.unit.store.upstream import MemoryUpstream, request

SPEC_FIELDS = {
    "id",
    "type",
    "source",
    "state",
    "size_bytes",
    "file_count",
    "downloaded_at",
    "expires_at",
    "pinned",
    "in_use",
    "hits",
    "progress",
    "error",
    "path",
}


async def test_entries_have_every_field_the_spec_names(api: Api) -> None:
    upstream = MemoryUpstream({"a/b.txt": b"hello", "c.bin": os.urandom(1000)})
    lease = await api.store.acquire(request("listed"), upstream, holder="job:1")
    response = await api.client.get("/v1/resources")
    assert response.status == 200
    [entry] = (await response.json())["resources"]
    assert set(entry) >= SPEC_FIELDS
    assert entry["id"] == lease.entry.id
    assert entry["state"] == "ready"
    assert entry["size_bytes"] == 1005
    assert entry["file_count"] == 2
    assert entry["in_use"] is True
    assert entry["pinned"] is False
    assert entry["progress"] == {"bytes_done": 1005, "bytes_total": 1005}
    assert entry["path"].endswith(f"views/{lease.entry.id}")
    assert entry["expires_at"].endswith("Z")
    one = await (await api.client.get(f"/v1/resources/{lease.entry.id}?files=true")).json()
    assert [f["path"] for f in one["files"]] == ["a/b.txt", "c.bin"]
    assert one["files"][0]["sha256"] == hashlib.sha256(b"hello").hexdigest()


async def test_unknown_entries_and_states_are_problems(api: Api) -> None:
    missing = await api.client.get("/v1/resources/nope")
    assert missing.status == 404
    assert missing.content_type == "application/problem+json"
    body = await missing.json()
    assert body["status"] == 404
    assert body["detail"] == "no entry nope"
    bad = await api.client.get("/v1/resources?state=cooking")
    assert bad.status == 400
    ready = await api.client.get("/v1/resources?state=ready,failed")
    assert ready.status == 200


async def test_delete_is_409_while_pinned_or_in_use_then_204(api: Api) -> None:
    lease = await api.store.acquire(request("del"), MemoryUpstream({"f": b"x"}), holder="job:1")
    in_use = await api.client.delete(f"/v1/resources/{lease.entry.id}")
    assert in_use.status == 409
    assert "in use" in (await in_use.json())["detail"]
    await api.store.release(lease)
    await api.store.pin(lease.entry.id, "market")
    pinned = await api.client.delete(f"/v1/resources/{lease.entry.id}")
    assert pinned.status == 409
    await api.store.unpin(lease.entry.id, "market")
    deleted = await api.client.delete(f"/v1/resources/{lease.entry.id}")
    assert deleted.status == 204
    assert (await api.client.get(f"/v1/resources/{lease.entry.id}")).status == 404


async def test_gc_sweeps_now_and_verify_reports_damage(api: Api) -> None:
    upstream = MemoryUpstream({"f": b"expiring"})
    lease = await api.store.acquire(request("gc"), upstream, holder="h")
    await api.store.release(lease)
    kept = await api.store.acquire(request("kept"), MemoryUpstream({"g": b"kept"}), holder="h")
    api.clock.advance(25 * 3600)
    swept = await (await api.client.post("/v1/gc")).json()
    assert swept == {"entries_removed": 1, "blobs_removed": 1, "bytes_freed": 8}
    blob = api.store.paths.blob(hashlib.sha256(b"kept").hexdigest())
    os.chmod(blob, 0o644)
    blob.write_bytes(b"KEPT")
    report = await (await api.client.post("/v1/verify")).json()
    assert report["corrupt"] == [hashlib.sha256(b"kept").hexdigest()]
    assert report["entries_failed"] == [kept.entry.id]


async def test_status_reports_store_usage(api: Api) -> None:
    await api.store.acquire(request("s"), MemoryUpstream({"f": b"12345"}), holder="h")
    status = await (await api.client.get("/v1/status")).json()
    assert status["store"]["bytes_used"] == 5
    assert status["store"]["entries"] == 1
    assert status["store"]["blobs"] == 1
    assert status["store"]["misses"] == 1
    assert status["docker"]["reachable"] is False


async def test_metrics_are_prometheus_text_that_match_what_happened(api: Api) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    upstream = MemoryUpstream({"f": b"12345", "g": b"678"})
    await api.store.acquire(request("m1"), upstream, holder="h")
    await api.store.acquire(request("m1"), upstream, holder="h")
    await api.client.get("/v1/resources/nope")  # a NotFound problem
    response = await api.client.get("/metrics")
    assert response.status == 200
    assert response.content_type.startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(await response.text())
        for sample in family.samples
    }
    assert samples[("nosana_cache_entries", (("state", "ready"), ("type", "test")))] == 1
    assert samples[("nosana_cache_entry_bytes", (("state", "ready"), ("type", "test")))] == 8
    assert samples[("nosana_cache_blobs", ())] == 2
    assert samples[("nosana_cache_store_bytes", ())] == 8
    assert samples[("nosana_cache_hits_total", (("type", "test"),))] == 1
    assert samples[("nosana_cache_misses_total", (("type", "test"),))] == 1
    assert samples[("nosana_cache_fetched_bytes_total", (("type", "test"),))] == 8
    assert samples[("nosana_cache_errors_total", (("kind", "NotFound"), ("where", "api")))] == 1
    assert samples[("nosana_cache_market_ready", ())] == 1
    assert ("nosana_cache_op_run_seconds_count", ()) in samples
