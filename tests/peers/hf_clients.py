"""huggingface_hub as job containers run it: the version this project pins (the newest) and
the versions the serving images of the last years ship, each in a venv of its own under
`.testbed/` (made with pip from PyPI when missing; scripts/test makes them during set-up):

- 0.24.6: the vLLM and TGI images of 2024 (`requests`, no Xet);
- 0.31.4 with hf_xet: TGI 3.3 (hf_xet is only an extra of 0.31, a dependency of 0.36;
  the venv has it, to run the client with Xet available);
- 0.36.2, which depends on hf_xet, with transformers 4.57.6: the vLLM images of 2025;
- 1.33.0 (httpx, hf_xet; >= 1.22 keeps the tree listings it saw in `trees/<commit>.json` and
  reads Xet files' metadata from them instead of asking HEAD): current vLLM.

Each runs in a process of its own with `HF_ENDPOINT` set, as in a container: the library reads
it at import. Nothing disables Xet: the clients run with their default settings, and the
daemon's answers alone keep them on plain HTTP. A call runs one operation of
`hf_client_script.py` and returns what it printed: the downloaded files' digests, the repo info,
or the error the library raised (its class name and status), so tests compare the versions.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TESTBED = ROOT / ".testbed"
SCRIPT = Path(__file__).with_name("hf_client_script.py")
OLD_VERSION = "0.24.6"
TRANSFORMERS = "4.57.6"
HF_XET = "1.8.0"


@dataclass(frozen=True)
class ClientVenv:
    """One huggingface_hub version (and what comes with it) in a venv under `.testbed/`."""

    version: str
    also: dict[str, str] = field(default_factory=dict)
    """Other distributions pinned beside it, by name."""

    @property
    def folder(self) -> Path:
        return TESTBED / f"huggingface_hub-{self.version}"

    def requirements(self) -> list[str]:
        pins = [f"{name}=={version}" for name, version in self.also.items()]
        return [f"huggingface_hub=={self.version}", *pins]

    def installed(self) -> Path | None:
        """Its python, if the venv holds exactly the pinned versions."""
        python = self.folder / "bin" / "python"
        if not python.exists():
            return None
        wanted = {"huggingface_hub": self.version, **self.also}
        probe = subprocess.run(
            [str(python), "-c", _PROBE, json.dumps(sorted(wanted))],
            capture_output=True,
            text=True,
        )
        try:
            found = json.loads(probe.stdout)
        except ValueError:
            return None
        return python if found == wanted else None

    def install(self) -> Path:
        """The venv, made with pip unless it is there; its python."""
        TESTBED.mkdir(parents=True, exist_ok=True)
        with open(TESTBED / f".{self.folder.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two sessions in one checkout install it once
            python = self.installed()
            if python is not None:
                return python
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(self.folder)], check=True)
            result = subprocess.run(
                [str(self.folder / "bin" / "pip"), "install", "--quiet", *self.requirements()],
                capture_output=True,
                text=True,
                timeout=900,
            )
            python = self.installed()
            if result.returncode != 0 or python is None:
                raise RuntimeError(f"pip install {self.requirements()} failed:\n{result.stderr}")
            return python


_PROBE = """import json, sys
from importlib.metadata import version, PackageNotFoundError
found = {}
for name in json.loads(sys.argv[1]):
    try:
        found[name] = version(name)
    except PackageNotFoundError:
        found[name] = None
print(json.dumps(found))
"""

VENVS = (
    ClientVenv(OLD_VERSION),
    ClientVenv("0.31.4", also={"hf_xet": HF_XET}),
    ClientVenv("0.36.2", also={"transformers": TRANSFORMERS}),
    ClientVenv("1.33.0"),
)


@dataclass(frozen=True)
class HfClient:
    name: str
    python: str

    def run(self, endpoint: str, home: Path, **operation: Any) -> dict[str, Any]:
        """Run one operation (`op=` snapshot, download, info, tree, paths, config, weights)
        against `endpoint` (`HF_ENDPOINT`), with `home` as its cache; what it printed."""
        return self.run_with({}, endpoint, home, operation)

    def run_with(
        self, env: dict[str, str], endpoint: str, home: Path, operation: dict[str, Any]
    ) -> dict[str, Any]:
        """`run`, with `env` on top of the environment (what a job container gets, say)."""
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))
            and "PROXY" not in key.upper()
        }
        environment |= {
            "HF_ENDPOINT": endpoint,
            "HF_HOME": str(home),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_ETAG_TIMEOUT": "30",
            "HF_HUB_DOWNLOAD_TIMEOUT": "60",
        }
        environment |= env
        result = subprocess.run(
            [self.python, str(SCRIPT), json.dumps(operation)],
            capture_output=True,
            text=True,
            env=environment,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{self.name} failed:\n{result.stderr[-3000:]}")
        answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return answer


def pinned() -> HfClient:
    """The client of this venv: the version the project pins (the newest)."""
    from huggingface_hub import __version__

    return HfClient(f"huggingface_hub {__version__}", sys.executable)


def client(version: str) -> HfClient:
    """The client of that version, its venv installed if missing."""
    venv = next(v for v in VENVS if v.version == version)
    return HfClient(f"huggingface_hub {version}", str(venv.install()))


def clients() -> list[HfClient]:
    """The pinned client and the old 0.24 one (installed if missing)."""
    return [pinned(), client(OLD_VERSION)]


def install_missing() -> list[str]:
    """Install the venvs that are missing, at once; the versions that were installed. On a
    warm machine this is one probe per venv."""
    missing = [venv for venv in VENVS if venv.installed() is None]
    with ThreadPoolExecutor(max_workers=max(1, len(missing))) as pool:
        list(pool.map(ClientVenv.install, missing))
    return [venv.version for venv in missing]


if __name__ == "__main__":
    print(install_missing())
