"""huggingface_hub as job containers run it: the version this project pins, and an old 0.x as
the vLLM and TGI images of 2024 ship (0.24.6, with `requests` instead of httpx).

Each runs in a process of its own with `HF_ENDPOINT` set, as in a container: the library reads
it at import. The old one lives in a venv under `.testbed/` (made with pip when missing;
scripts/test makes it during set-up). A call runs one operation of `hf_client_script.py` and
returns what it printed: the downloaded files' digests, the repo info, or the error the
library raised (its class name and status), so tests compare the two versions' answers.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OLD_VERSION = "0.24.6"
ROOT = Path(__file__).resolve().parents[2]
OLD_DIR = ROOT / ".testbed" / f"huggingface_hub-{OLD_VERSION}"
SCRIPT = Path(__file__).with_name("hf_client_script.py")


@dataclass(frozen=True)
class HfClient:
    name: str
    python: str

    def run(self, endpoint: str, home: Path, **operation: Any) -> dict[str, Any]:
        """Run one operation (`op=` snapshot, download, info, tree, paths) against
        `endpoint` (`HF_ENDPOINT`), with `home` as its cache; what it printed."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("HF_", "HUGGINGFACE_")) and "PROXY" not in key.upper()
        }
        env |= {
            "HF_ENDPOINT": endpoint,
            "HF_HOME": str(home),
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_ETAG_TIMEOUT": "30",
            "HF_HUB_DOWNLOAD_TIMEOUT": "60",
        }
        result = subprocess.run(
            [self.python, str(SCRIPT), json.dumps(operation)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{self.name} failed:\n{result.stderr[-3000:]}")
        answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return answer


def installed() -> Path | None:
    python = OLD_DIR / "bin" / "python"
    if not python.exists():
        return None
    probe = subprocess.run(
        [str(python), "-c", "import huggingface_hub; print(huggingface_hub.__version__)"],
        capture_output=True,
        text=True,
    )
    return python if probe.stdout.strip() == OLD_VERSION else None


def install() -> Path:
    """The old client's venv, made with pip unless it is there; its python."""
    OLD_DIR.parent.mkdir(parents=True, exist_ok=True)
    with open(OLD_DIR.parent / f".{OLD_DIR.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two sessions in one checkout install it once
        python = installed()
        if python is not None:
            return python
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(OLD_DIR)], check=True)
        result = subprocess.run(
            [str(OLD_DIR / "bin" / "pip"), "install", "--quiet", f"huggingface_hub=={OLD_VERSION}"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        python = installed()
        if result.returncode != 0 or python is None:
            raise RuntimeError(
                f"pip install huggingface_hub=={OLD_VERSION} failed:\n{result.stderr}"
            )
        return python


def clients() -> list[HfClient]:
    """The pinned client (this venv's) and the old one (installed if missing)."""
    from huggingface_hub import __version__

    return [
        HfClient(f"huggingface_hub {__version__}", sys.executable),
        HfClient(f"huggingface_hub {OLD_VERSION}", str(install())),
    ]


if __name__ == "__main__":
    print(install())
