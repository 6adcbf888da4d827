"""Nosana's own job-definition validator (`@nosana/types`, pinned), as a test-bed oracle.

Nosana's node refuses a job whose definition its validator refuses; the daemon promises the
same verdicts (shared/SPEC.md). The validator is TypeScript compiled by typia, so it runs in
node: `install()` puts the exact tree of this folder's package-lock.json into a folder of the
test bed with `npm ci` (never committed), and `NosanaValidator` keeps one node process that
answers one JSON document per line, so hundreds of documents cost one start.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.peers.procs import PEER_PIDS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VERSION = json.loads((HERE / "package.json").read_text())["dependencies"]["@nosana/types"]


def install_dir() -> Path:
    """Where the pinned tree goes: `$NOSANA_ORACLE_DIR`, else beside the project's venv."""
    return Path(os.environ.get("NOSANA_ORACLE_DIR") or ROOT / ".venv" / "nosana-oracle")


def install(dest: Path | None = None) -> Path:
    """`npm ci` of this folder's lock into `dest`, once per lock (a stamp says which);
    concurrent test sessions wait for each other on a lock file."""
    dest = dest or install_dir()
    lock = (HERE / "package-lock.json").read_bytes()
    stamp = dest / f".installed-{hashlib.sha256(lock).hexdigest()[:16]}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f".{dest.name}.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if stamp.exists():
            return dest
        if shutil.which("npm") is None:
            raise RuntimeError("npm is not installed (apt-get install nodejs npm)")
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(HERE / name, dest / name)
        done = subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=dest,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"npm ci of @nosana/types {VERSION} failed:\n{done.stderr}")
        stamp.touch()
    return dest


@dataclass(frozen=True)
class Verdict:
    valid: bool
    errors: list[dict[str, str]]
    """Nosana's own words: `{path: "$input.ops[0].id", expected: "..."}` per problem."""
    threw: str | None = None
    """The validator's own exception, where it threw instead of answering (a refusal)."""

    def paths(self) -> list[str]:
        return [e["path"] for e in self.errors]


class NosanaValidator:
    """One node process running `validateJobDefinition`; use as a context manager."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> NosanaValidator:
        dest = install()
        with open(self.log, "ab") as stderr:
            self._process = subprocess.Popen(
                ["node", str(HERE / "validate.mjs"), str(dest)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                encoding="utf-8",
            )
        PEER_PIDS.add(self._process.pid)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()  # end of input: the process ends by itself
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()
        PEER_PIDS.discard(process.pid)

    def check(self, document: Any) -> Verdict:
        """Nosana's verdict on one document (anything JSON can carry)."""
        process = self._process
        assert process is not None
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(json.dumps(document, allow_nan=False) + "\n")
        process.stdin.flush()
        line = process.stdout.readline()
        if not line:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"the Nosana validator ended (exit {process.poll()}):\n{tail}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the Nosana validator could not read the document: {answer}")
        return Verdict(bool(answer["valid"]), list(answer["errors"]), answer.get("threw"))
