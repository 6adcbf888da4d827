"""An upstream held in memory, speaking the store's Resolver protocol.

It stands where a source (HF, S3, Ollama) stands, so store tests exercise the real store with
an upstream whose every call is counted and whose failures are chosen by the test. The
sources themselves are tested against real servers elsewhere.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from dataclasses import dataclass, field

from daemon.store import BlobSink, EntryRequest, Expected, FileSpec, Manifest

CHUNK = 64 * 1024


def request(name: str, kind: str = "test") -> EntryRequest:
    return EntryRequest(key=f'{{"name": "{name}"}}', type=kind, source=f"mem://{name}")


@dataclass
class MemoryUpstream:
    files: dict[str, bytes]
    version: str = "v1"
    announce_sha256: bool = True
    alias_scope: str | None = None
    resolve_calls: int = 0
    fetched: Counter[str] = field(default_factory=Counter)
    ranges: list[tuple[str, int, int]] = field(default_factory=list)
    fail_after: dict[str, int] = field(default_factory=dict)
    wrong_bytes: set[str] = field(default_factory=set)
    gate: asyncio.Event | None = None
    holds: dict[str, tuple[int, asyncio.Event]] = field(default_factory=dict)
    """path → (offset, event): the file's bytes stop at that offset until the test sets it."""
    delay: float = 0.0
    closed: int = 0

    async def resolve(self) -> Manifest:
        self.resolve_calls += 1
        specs = tuple(self.spec(path) for path in self.files)
        return Manifest(version=self.version, files=specs, details={"revision": self.version})

    def spec(self, path: str) -> FileSpec:
        data = self.files[path]
        sha = hashlib.sha256(data).hexdigest() if self.announce_sha256 else None
        alias = (
            f"{self.alias_scope}/{path}@{hashlib.md5(data).hexdigest()}"
            if self.alias_scope
            else None
        )
        return FileSpec(path=path, expected=Expected(size=len(data), sha256=sha), alias=alias)

    async def close(self) -> None:
        self.closed += 1

    async def fetch(self, file: FileSpec, sink: BlobSink) -> None:
        self.fetched[file.path] += 1
        if self.gate is not None:
            await self.gate.wait()
        data = self.files[file.path]
        if file.path in self.wrong_bytes:
            data = bytes([data[0] ^ 1]) + data[1:] if data else b"x"
        for start, end in sink.missing():
            self.ranges.append((file.path, start, end))
            for offset in range(start, end, CHUNK):
                limit = self.fail_after.get(file.path)
                if limit is not None and offset >= limit:
                    del self.fail_after[file.path]
                    raise ConnectionResetError(f"upstream dropped {file.path} at {offset}")
                hold = self.holds.get(file.path)
                if hold is not None and offset >= hold[0]:
                    await hold[1].wait()
                if self.delay:
                    await asyncio.sleep(self.delay)
                await sink.write(offset, data[offset : min(end, offset + CHUNK)])
