"""What must hold of a store after any crash, checked from outside the daemon.

Shared by the store's kill test (a worker process) and the chaos suite (the real daemon):
the same promises, whoever was killed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from daemon.store import EntryState, Store, blob_index


async def check_consistent(store: Store, expected: Mapping[str, Mapping[str, bytes]]) -> int:
    """Every ready entry serves exactly upstream's bytes; nothing unfinished looks ready; the
    blobs on disk are the index's; temp files belong to resumable downloads. `expected` maps
    an entry's source to its files. Returns how many entries were ready."""
    ready = 0
    for entry in await store.entries():
        assert entry.state != EntryState.DOWNLOADING, entry  # recovery marked it pending
        if entry.state != EntryState.READY:
            assert not store.views.path(entry.id).exists(), entry
            continue
        ready += 1
        files = expected[entry.source]
        stored = await store.files(entry.id)
        assert {file.path for file in stored} == set(files), entry
        for file in stored:
            data = (store.views.path(entry.id) / file.path).read_bytes()
            assert data == files[file.path], (entry.source, file.path)
            assert hashlib.sha256(data).hexdigest() == file.sha256
    used, count = await store.db.read(blob_index.usage)
    blob_files = list(store.paths.blobs.glob("*/*"))
    assert count == len(blob_files)
    assert used == sum(p.stat().st_size for p in blob_files)
    known = {row["tmp_name"] for row in await store.db.read(blob_index.all_downloads)}
    assert {p.name for p in store.paths.tmp.iterdir()} <= known
    assert not [p for p in store.views.root.iterdir() if p.name.endswith(".partial")]
    return ready
