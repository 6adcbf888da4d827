"""Nosana's node's engine calls, replayed by `nosana_node.mjs` with the node's own client
library: dockerode (and undici, which the node uses for libpod), pinned to the majors the node
depends on (`@nosana/node`'s package.json: dockerode ^4.0.2, undici ^6.14.1).

They are installed with npm into `.testbed/nosana-node/` of the checkout when missing
(scripts/test does it during set-up; `python -m tests.peers.nosana_node` does only that).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

PACKAGES = {"dockerode": "4.0.9", "undici": "6.29.1"}
ROOT = Path(__file__).resolve().parents[2]
INSTALL_DIR = ROOT / ".testbed" / "nosana-node"
SCRIPT = Path(__file__).with_name("nosana_node.mjs")


def installed(folder: Path = INSTALL_DIR) -> Path | None:
    """The node_modules folder if every package is there at its pinned version."""
    modules = folder / "node_modules"
    for name, version in PACKAGES.items():
        try:
            found = json.loads((modules / name / "package.json").read_text())["version"]
        except (OSError, ValueError, KeyError):
            return None
        if found != version:
            return None
    return modules


def install(folder: Path = INSTALL_DIR) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        modules = installed(folder)
        if modules is not None:
            return modules
        if shutil.which("node") is None or shutil.which("npm") is None:
            raise RuntimeError(
                "the node's client needs Node.js and npm (apt-get install nodejs npm)"
            )
        specs = [f"{name}@{version}" for name, version in PACKAGES.items()]
        npm = ["npm", "install", "--prefix", str(folder), "--no-audit", "--no-fund", "--no-save"]
        result = subprocess.run(
            [*npm, *specs],
            capture_output=True,
            text=True,
            timeout=600,
        )
        modules = installed(folder)
        if result.returncode != 0 or modules is None:
            raise RuntimeError(
                f"npm install {specs} into {folder} failed:\n{result.stderr[-2000:]}"
            )
        return modules


def node_call(
    socket: str | Path, action: str, args: dict[str, Any] | None = None, timeout: float = 180
) -> dict[str, Any]:
    """One of the node's sequences against `socket`; its JSON result (`thrown` if it threw)."""
    modules = install()
    env = {**os.environ, "NOSANA_NODE_MODULES": str(modules)}
    result = subprocess.run(
        ["node", str(SCRIPT), str(socket), action, json.dumps(args or {})],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"nosana_node.mjs {action} printed nothing:\n{result.stderr[-3000:]}")
    value: dict[str, Any] = json.loads(lines[-1])
    return value


if __name__ == "__main__":
    print(install(Path(sys.argv[1]) if len(sys.argv) > 1 else INSTALL_DIR))
