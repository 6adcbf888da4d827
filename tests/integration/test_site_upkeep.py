"""The site store's upkeep, in-process: claims of nodes that stopped, a slow store, uploads
resumed part by part, blobs damaged on a node's own disk, and `gc --site`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from daemon.settings import load_settings
from daemon.site import herd, pushing
from daemon.site.journal import Multipart, Upload
from daemon.site.layout import Layout
from daemon.util.clock import ManualClock
from tests.daemon_process import DaemonProcess
from tests.fakes.content import Content
from tests.fakes.faults import Faults
from tests.fakes.hf_hub import FakeHub
from tests.fakes.proxy import FaultyProxy
from tests.fakes.server import ThreadedServers
from tests.integration.test_site import hf, tree
from tests.peers.s3 import S3Peer
from tests.peers.s3rver import S3rverPeer
from tests.site_nodes import (
    new_bucket,
    node,
    site_config,
    site_env,
    site_objects,
    stopped_journal,
)

MB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]


async def test_the_claim_of_a_node_that_stopped_is_taken_over(
    tmp_path: Path, hub: FakeHub, s3: S3Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(herd, "STALE", 1.5)
    hub.commit("site/orphaned", {"weights.bin": os.urandom(MB)})
    bucket = new_bucket(s3)
    env = site_env(s3, bucket) | {"HF_ENDPOINT": hub.url}
    async with node(tmp_path / "a", env) as a:
        request = a.cache.request(hf("site/orphaned")).request
        dead = json.dumps({"node": "gone-node", "beat": 7}).encode()  # never beats again
        s3.client().put_object(
            Bucket=bucket, Key=f"nodes/fetching/{request.request_key}", Body=dead
        )
        started = time.monotonic()
        lease = await a.cache.acquire(hf("site/orphaned"), holder="t")
        assert 1.5 <= time.monotonic() - started < 20
        assert lease.view is not None
        assert a.site.counters.herd_waits == 1
        await a.uploaded()
    objects = site_objects(s3, bucket)
    assert [k for k in objects if k.startswith("manifests/")]
    assert not [k for k in objects if k.startswith("fetching/")]  # taken over, then released


async def test_a_live_claim_is_waited_for_no_longer_than_herd_wait(
    tmp_path: Path, hub: FakeHub, s3: S3Peer
) -> None:
    hub.commit("site/slowpoke", {"weights.bin": os.urandom(MB)})
    bucket = new_bucket(s3)
    env = site_env(s3, bucket, NOSANA_CACHE_SITE__HERD_WAIT="2s") | {"HF_ENDPOINT": hub.url}
    async with node(tmp_path / "a", env) as a:
        request = a.cache.request(hf("site/slowpoke")).request
        key = f"nodes/fetching/{request.request_key}"
        s3.client().put_object(Bucket=bucket, Key=key, Body=b'{"node": "busy", "beat": 1}')
        started = time.monotonic()
        lease = await a.cache.acquire(hf("site/slowpoke"), holder="t")
        assert 2 <= time.monotonic() - started < 20
        assert lease.view is not None
        await a.uploaded()
    assert f"fetching/{request.request_key}" in site_objects(s3, bucket)  # not ours to remove


async def test_a_site_store_that_stalls_falls_back_within_its_stall_timeout(
    tmp_path: Path, servers: ThreadedServers, hub: FakeHub, s3: S3Peer
) -> None:
    weights = os.urandom(2 * MB)
    hub.commit("site/stalled", {"weights.bin": weights})
    bucket = new_bucket(s3)
    env = site_env(s3, bucket) | {"HF_ENDPOINT": hub.url}
    async with node(tmp_path / "a", env) as a:
        await a.cache.acquire(hf("site/stalled"), holder="t")
        await a.uploaded()
    slow = FaultyProxy(servers, s3.url)
    slow.faults["/blobs/"] = Faults(stall_after=0, stall_seconds=30, stall_times=10)
    stalling = site_env(
        s3, bucket, NOSANA_CACHE_SITE__ENDPOINT_URL=slow.url, NOSANA_CACHE_SITE__STALL_TIMEOUT="1s"
    )
    cdn = hub.cdn_traffic.body_bytes
    async with node(tmp_path / "b", stalling | {"HF_ENDPOINT": hub.url}) as b:
        started = time.monotonic()
        lease = await b.cache.acquire(hf("site/stalled"), holder="t")
        assert time.monotonic() - started < 15  # two tries of 1 s each, then upstream
        assert tree(lease.view) == {"weights.bin": weights}
        assert b.site.counters.manifest_hits == 1
        assert b.site.counters.fallbacks == 1
        assert (await b.site.report()).up is False
    assert hub.cdn_traffic.body_bytes - cdn == len(weights)


async def test_a_large_upload_resumes_with_the_parts_the_site_store_holds(
    tmp_path: Path, hub: FakeHub, s3: S3Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pushing, "SINGLE_PUT", 6 * MB)
    monkeypatch.setattr(pushing, "MIN_PART", 5 * MB)
    big = Content.generated(17 * MB, seed=1804)
    hub.commit("site/resumed", {"model.safetensors": big})
    bucket = new_bucket(s3)
    dead = site_env(s3, bucket, NOSANA_CACHE_SITE__ENDPOINT_URL="http://127.0.0.1:9")
    async with node(tmp_path / "a", dead | {"HF_ENDPOINT": hub.url}) as a:
        await a.cache.acquire(hf("site/resumed"), holder="t")  # the site store is away
    # As a daemon killed mid-upload leaves it: two parts in the site store, the id recorded
    # in its journal before it starts again (its worker takes what is owed at once).
    client = s3.client()
    key = f"nodes/blobs/sha256/{big.sha256}"
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    for number in (1, 2):
        part = big.read((number - 1) * 5 * MB, number * 5 * MB)
        client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=part)
    async with stopped_journal(tmp_path / "a") as journal:
        assert await journal.pending() == 1  # owed across the restart
        await journal.begin_multipart(big.sha256, Multipart(upload_id, 5 * MB), 0.0)
    async with node(tmp_path / "a", site_env(s3, bucket) | {"HF_ENDPOINT": hub.url}) as a:
        await a.uploaded()
        assert a.site.counters.bytes_uploaded == 7 * MB  # parts 3 and 4 only
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == big.read()
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


async def test_an_upload_the_site_store_cannot_list_is_begun_anew_and_completes(
    tmp_path: Path, hub: FakeHub, s3rver: S3rverPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """s3rver answers ListParts (and AbortMultipartUpload) with 405: an unfinished upload in
    the journal after a restart can be neither continued nor given up, and was owed forever.
    It is begun anew: the blob completes, and nothing stays owed."""
    monkeypatch.setattr(pushing, "SINGLE_PUT", 6 * MB)
    monkeypatch.setattr(pushing, "MIN_PART", 5 * MB)
    big = Content.generated(12 * MB, seed=1806)
    hub.commit("site/unlisted", {"model.safetensors": big})
    bucket = new_bucket(s3rver)
    dead = site_env(s3rver, bucket, NOSANA_CACHE_SITE__ENDPOINT_URL="http://127.0.0.1:9")
    async with node(tmp_path / "a", dead | {"HF_ENDPOINT": hub.url}) as a:
        await a.cache.acquire(hf("site/unlisted"), holder="t")  # the site store is away
    # As a daemon killed mid-upload leaves it: a part in the site store, the upload's id in
    # the journal.
    client = s3rver.client()
    key = f"nodes/blobs/sha256/{big.sha256}"
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    client.upload_part(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=big.read(0, 5 * MB)
    )
    async with stopped_journal(tmp_path / "a") as journal:
        assert await journal.pending() == 1
        await journal.begin_multipart(big.sha256, Multipart(upload_id, 5 * MB), 0.0)
    async with node(tmp_path / "a", site_env(s3rver, bucket) | {"HF_ENDPOINT": hub.url}) as a:
        await a.uploaded()
        report = await a.site.report()
        assert report.uploads_pending == 0
        assert report.up is True
        assert a.site.counters.manifests_uploaded == 1
        assert a.site.counters.bytes_uploaded == big.size  # every part, anew
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == big.read()
    async with stopped_journal(tmp_path / "a") as journal:
        assert await journal.multipart(big.sha256) is None


async def test_an_entry_ready_as_the_node_stops_is_owed_at_its_next_start(
    tmp_path: Path, hub: FakeHub, s3: S3Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.commit("site/last", {"weights.bin": os.urandom(MB)})
    bucket = new_bucket(s3)
    dead = site_env(s3, bucket, NOSANA_CACHE_SITE__ENDPOINT_URL="http://127.0.0.1:9")
    closing = asyncio.Event()
    async with node(tmp_path / "a", dead | {"HF_ENDPOINT": hub.url}) as a:
        owe, close = a.site.uploader.owe, a.site._tasks.close

        async def owe_once_closing(upload: Upload) -> None:  # the settle loses the race
            await closing.wait()
            await owe(upload)

        async def close_settling(timeout: float = 5.0, grace: float = 0.0) -> None:
            closing.set()
            await close(timeout, grace)

        monkeypatch.setattr(a.site.uploader, "owe", owe_once_closing)
        monkeypatch.setattr(a.site._tasks, "close", close_settling)
        await a.cache.acquire(hf("site/last"), holder="t")
    async with stopped_journal(tmp_path / "a") as journal:
        assert await journal.pending() == 1
    async with node(tmp_path / "a", site_env(s3, bucket) | {"HF_ENDPOINT": hub.url}) as a:
        await a.uploaded()
        assert a.site.counters.manifests_uploaded == 1


async def test_a_blob_damaged_on_this_disk_is_not_uploaded(
    tmp_path: Path, hub: FakeHub, s3: S3Peer
) -> None:
    weights = os.urandom(MB)
    hub.commit("site/rotten", {"weights.bin": weights})
    bucket = new_bucket(s3)
    dead = site_env(s3, bucket, NOSANA_CACHE_SITE__ENDPOINT_URL="http://127.0.0.1:9")
    async with node(tmp_path / "a", dead | {"HF_ENDPOINT": hub.url}) as a:
        await a.cache.acquire(hf("site/rotten"), holder="t")
        blob = a.store.paths.blob(hashlib.sha256(weights).hexdigest())
    blob.chmod(0o644)
    blob.write_bytes(b"rot" + weights[3:])
    async with node(tmp_path / "a", site_env(s3, bucket) | {"HF_ENDPOINT": hub.url}) as a:
        await a.uploaded()
        assert a.site.counters.manifests_uploaded == 0
    assert site_objects(s3, bucket) == {}


async def test_gc_site_removes_expired_manifests_and_the_blobs_only_they_named(
    tmp_path: Path, hub: FakeHub, s3: S3Peer
) -> None:
    hub.commit("site/old", {"old.bin": os.urandom(MB), "shared.json": b'{"shared": 1}'})
    hub.commit("site/new", {"new.bin": os.urandom(MB), "shared.json": b'{"shared": 1}'})
    bucket = new_bucket(s3)
    env = site_env(s3, bucket, NOSANA_CACHE_STORE__TTL="1h") | {"HF_ENDPOINT": hub.url}
    clock = ManualClock(start=time.time())
    async with node(tmp_path / "a", env, clock) as a:
        await a.cache.acquire(hf("site/old"), holder="t")
        await a.uploaded()
        clock.advance(1800)
        await a.cache.acquire(hf("site/new"), holder="t")
        await a.uploaded()
        claim = "nodes/fetching/" + "0" * 64
        s3.client().put_object(Bucket=bucket, Key=claim, Body=b"{}")
        s3.client().create_multipart_upload(Bucket=bucket, Key="nodes/blobs/sha256/" + "1" * 64)
        assert len(site_objects(s3, bucket, "blobs/")) == 3
        clock.advance(2 * 3600)  # "old" and "new" past their hour, the blobs older than it
        report = await a.site.sweep()
    assert report.manifests_removed == 2
    assert report.blobs_removed == 3
    assert report.bytes_freed == 2 * MB + 13
    assert report.claims_removed == 1
    assert report.uploads_aborted == 1
    assert site_objects(s3, bucket) == {}


async def test_an_entry_owed_by_the_journal_is_uploaded_at_start(
    tmp_path: Path, hub: FakeHub, s3: S3Peer
) -> None:
    hub.commit("site/owed", {"weights.bin": os.urandom(MB)})
    bucket = new_bucket(s3)
    env = {"HF_ENDPOINT": hub.url}
    dead = site_env(s3, bucket, NOSANA_CACHE_SITE__ENDPOINT_URL="http://127.0.0.1:9")
    async with node(tmp_path / "a", dead | env) as a:
        lease = await a.cache.acquire(hf("site/owed"), holder="t")
        await a.site.journal.done(lease.entry.id)  # as if the upload had never been owed
        owed = Upload(lease.entry.id, lease.entry.request_key, False, True, frozenset())
        await a.site.journal.add(owed, 0.0)
    async with node(tmp_path / "a", site_env(s3, bucket) | env) as a:
        await a.uploaded()
    assert len(site_objects(s3, bucket, "manifests/")) == 1


def test_the_documented_lifecycle_rule_fits_the_layout_and_s3_takes_it(s3: S3Peer) -> None:
    """config/site-lifecycle.json, for a site store at s3://BUCKET/nosana-cache: S3 accepts
    it as written, its prefixes are the site store's folders, and no rule can take what a
    fresh manifest still needs (manifests outlive their default ttl; blobs, refreshed when a
    new manifest names them, outlive any manifest naming them)."""
    rules = json.loads((ROOT / "config" / "site-lifecycle.json").read_text())
    bucket = new_bucket(s3)
    client = s3.client()
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=rules)
    stored = client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert {r["ID"]: r["Filter"] for r in stored} == {r["ID"]: r["Filter"] for r in rules["Rules"]}
    layout = Layout("nosana-cache")
    days = {r["Filter"]["Prefix"]: r["Expiration"]["Days"] * 86400 for r in rules["Rules"]}
    assert set(days) == {layout.manifests, layout.markers, layout.blobs.removesuffix("sha256/")}
    ttl = load_settings(None, {"HOME": "/x"}).store.ttl
    assert days[layout.manifests] >= ttl
    assert days[layout.blobs.removesuffix("sha256/")] >= pushing.REFRESH_AFTER + 2 * ttl


async def test_an_old_blob_a_new_manifest_names_is_written_anew(
    tmp_path: Path, hub: FakeHub, s3: S3Peer
) -> None:
    shared = os.urandom(MB)
    hub.commit("site/first", {"shared.bin": shared, "a.json": b"1"})
    hub.commit("site/second", {"shared.bin": shared, "b.json": b"2"})
    bucket = new_bucket(s3)
    key = f"nodes/blobs/sha256/{hashlib.sha256(shared).hexdigest()}"
    clock = ManualClock(start=time.time())
    async with node(tmp_path / "a", site_env(s3, bucket) | {"HF_ENDPOINT": hub.url}, clock) as a:
        await a.cache.acquire(hf("site/first"), holder="t")
        await a.uploaded()
        written = s3.client().head_object(Bucket=bucket, Key=key)["LastModified"]
        await asyncio.sleep(1.1)  # LastModified counts whole seconds
        clock.advance(pushing.REFRESH_AFTER + 60)
        await a.cache.acquire(hf("site/second"), holder="t")
        await a.uploaded()
    assert s3.client().head_object(Bucket=bucket, Key=key)["LastModified"] > written
    assert s3.client().get_object(Bucket=bucket, Key=key)["Body"].read() == shared


def test_a_daemon_stopped_while_reading_the_site_store_resumes_the_entry_after(
    tmp_path: Path, servers: ThreadedServers, hub: FakeHub, s3: S3Peer
) -> None:
    """SIGTERM mid-read leaves the entry pending, not failed (fetches are cut before the site
    store's clients close), and the next start finishes it from the site store."""
    weights = Content.generated(10 * MB, seed=1805)
    hub.commit("site/interrupted", {"model.safetensors": weights})
    bucket = new_bucket(s3)

    async def upload() -> None:
        async with node(tmp_path / "a", site_env(s3, bucket) | {"HF_ENDPOINT": hub.url}) as a:
            await a.cache.acquire(hf("site/interrupted"), holder="t")
            await a.uploaded()

    asyncio.run(upload())
    cdn = hub.cdn_traffic.body_bytes
    holding = FaultyProxy(servers, s3.url)
    holding.faults["/blobs/"] = Faults(stall_after=0, stall_seconds=60, stall_times=100)
    site = site_config(s3, bucket, endpoint_url=holding.url, stall_timeout="30s")
    daemon = DaemonProcess(tmp_path / "b", {"site": site}, env={"HF_ENDPOINT": hub.url})
    daemon.start()
    try:
        daemon.client().request(
            "POST", "/v1/resources", body={"type": "HF", "repo": "site/interrupted"}
        )
        deadline = time.monotonic() + 30
        while not any("/blobs/" in k for k in holding.traffic.requests):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        assert daemon.stop() == 0
    assert "fetch.failed" not in daemon.log()
    daemon.config["site"] = site_config(s3, bucket)  # the site store answers again
    daemon.start()
    try:
        deadline = time.monotonic() + 60
        while [e["state"] for e in daemon.client().get("/v1/resources")["resources"]] != ["ready"]:
            assert time.monotonic() < deadline, daemon.client().get("/v1/resources")
            time.sleep(0.1)
        assert daemon.client().get("/v1/status")["site"]["bytes_from_site"] == weights.size
    finally:
        assert daemon.stop() == 0
    assert hub.cdn_traffic.body_bytes == cdn  # not a byte from upstream, before or after
