"""What an op's container leaves behind: its stdout and stderr copied into the op's output
files while it runs, and the op's results read out of them once it has ended.
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime

from ..engine.containers import Containers
from .models import Results
from .output import STREAMS, LogWriter, OpOutput
from .spec import ResultPattern, RunOp


@dataclass
class LogCapture:
    """The log pumps of one op's container: one thread per stream, each with its writer."""

    containers: Containers
    output: OpOutput
    job_id: str
    op_id: str
    _pumps: list[tuple[threading.Thread, LogWriter]] = field(default_factory=list)

    def start(self, container_id: str, after: str | None = None) -> None:
        """Copy stdout and stderr to the op's files; after a restart, from `after` on (lines
        at or before that timestamp were written before)."""
        for stream in STREAMS:
            writer = self.output.writer(self.job_id, self.op_id, stream, after)
            thread = self.containers.follow_logs(
                container_id, stream, writer.write, since=_seconds(after)
            )
            self._pumps.append((thread, writer))

    async def join(self) -> None:
        """Wait (up to 10 s a stream: the container has ended) for the pumps to write their
        last lines, and close the files."""
        await asyncio.to_thread(self._join)

    def _join(self) -> None:
        for thread, writer in self._pumps:
            thread.join(timeout=10)
            writer.close()
        self._pumps.clear()


async def extract_results(output: OpOutput, job_id: str, op: RunOp) -> Results:
    """The op's `results`, read from its output in a worker thread, as Nosana's node reads
    them when an op ends: each line of the streams a pattern names (both when it names none)
    is searched once, and a match adds what JavaScript's `line.match(regex)` gives: the whole
    match, then each group (null for a group that took no part). A pattern that is not a
    regex gives the error instead."""
    return await asyncio.to_thread(_extract, output, job_id, op)


def _extract(output: OpOutput, job_id: str, op: RunOp) -> Results:
    results: Results = {}
    patterns: dict[str, tuple[re.Pattern[str], tuple[str, ...]]] = {}
    for name, spec in (op.results or {}).items():
        regex = spec.regex if isinstance(spec, ResultPattern) else spec
        streams = tuple(spec.logType) if isinstance(spec, ResultPattern) else STREAMS
        results[name] = []
        try:
            patterns[name] = (re.compile(_python_regex(regex)), streams)
        except re.error as exc:
            results[name] = [f"invalid regex: {exc}"]
    if not patterns:
        return results
    for _stamp, stream, line in output.lines(job_id, op.id):
        for name, (pattern, wanted) in patterns.items():
            if stream in wanted and (found := pattern.search(line)):
                results[name] += [found.group(0), *found.groups()]
    return results


_NAMED_GROUP = re.compile(r"\(\?<(?![=!])")


def _python_regex(regex: str) -> str:
    """A JavaScript regex as Python's `re` reads it: Nosana's node reads `*` as `/*`, and
    JavaScript names a group `(?<name>...)` where Python wants `(?P<name>...)`."""
    if regex == "*":
        return "/*"
    return _NAMED_GROUP.sub("(?P<", regex)


def _seconds(stamp: str | None) -> float | None:
    """Docker's RFC 3339 log timestamp as seconds since the epoch (for `since`)."""
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return None
