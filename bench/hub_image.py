"""A job image that runs huggingface_hub, built offline from this machine's own Python.

The test images are busybox and have no Python, and nothing may be pulled from the internet.
So the benchmark's image is busybox plus the interpreter that runs this venv (its binary,
`libpython`, the standard library without tests, `lib-dynload`), the shared libraries they
load, and huggingface_hub with what it requires, all at the paths they have here, so the
dynamic loader and `sys.prefix` find them as on the host. It runs `bench/hub_client.py`.
"""

from __future__ import annotations

import importlib.metadata as metadata
import io
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
from packaging.requirements import Requirement

from tests.peers.images import PATH_ENV, busybox_rootfs

SITE = "/opt/hf/site-packages"
CLIENT = "/opt/hf/hub_client.py"
_SKIP = re.compile(r"/(test|tests|idlelib|tkinter|turtledemo|ensurepip|lib2to3|__pycache__)/")


def python_files() -> Iterator[Path]:
    """The interpreter, its standard library and its extension modules, without tests."""
    base = Path(sys.base_prefix)
    yield Path(os.path.realpath(sys.executable))
    library = sysconfig.get_config_var("LDLIBRARY")
    if library:
        yield from (base / "lib").glob(f"{library}*")
    stdlib = Path(sysconfig.get_paths(vars={"base": sys.base_prefix})["stdlib"])
    for path in stdlib.rglob("*"):
        relative = "/" + str(path.relative_to(stdlib)) + "/"
        if path.is_file() and "site-packages" not in relative and not _SKIP.search(relative):
            yield path


def packages(root: str = "huggingface_hub") -> Iterator[tuple[Path, str]]:
    """Every file of `root`'s distribution and of what it requires (extras left out), with
    its path under site-packages."""
    seen: set[str] = set()
    waiting = [Requirement(root)]
    while waiting:
        name = waiting.pop().name.lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        dist = metadata.distribution(name)
        for text in dist.requires or []:
            required = Requirement(text)
            if required.marker is None or required.marker.evaluate({"extra": ""}):
                waiting.append(required)
        for file in dist.files or []:
            located = Path(str(dist.locate_file(file)))
            if located.is_file() and "__pycache__" not in file.parts:
                yield located, str(file)


def shared_libraries(files: list[Path]) -> set[Path]:
    """The shared libraries the binaries among `files` load (ldd), outside those files."""
    found: set[Path] = set()
    for path in files:
        if path.suffix != ".so" and ".so." not in path.name and not os.access(path, os.X_OK):
            continue
        result = subprocess.run(["ldd", str(path)], capture_output=True, text=True)
        for match in re.finditer(r"(/\S+\.so[^\s]*)", result.stdout):
            found |= set(_link_chain(Path(match.group(1))))
    return found


def _link_chain(path: Path) -> Iterator[Path]:
    """`path` and every hop of the symlinks it is: each must exist in the image."""
    for _hop in range(16):
        yield path
        if not path.is_symlink():
            return
        path = Path(os.path.normpath(os.path.join(path.parent, os.readlink(path))))


def context(client_script: Path) -> bytes:
    """The build context: busybox's root, and a tar of everything above at its own path."""
    interpreter = list(python_files())
    site = list(packages())
    libraries = shared_libraries(interpreter + [path for path, _name in site])
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        for path in sorted(set(interpreter) | libraries):
            tar.add(path, arcname=str(path).lstrip("/"), recursive=False)
        for path, name in site:
            tar.add(path, arcname=f"{SITE.lstrip('/')}/{name}", recursive=False)
        tar.add(client_script, arcname=CLIENT.lstrip("/"))
    dockerfile = "\n".join(
        [
            "FROM scratch",
            "ADD rootfs.tar /",
            "ADD python.tar /",
            f"ENV {PATH_ENV}",
            f"ENV PYTHONPATH={SITE} PYTHONDONTWRITEBYTECODE=1",
            "ENV HF_HUB_DISABLE_XET=1 HF_HUB_DISABLE_PROGRESS_BARS=1",
            f'ENTRYPOINT ["{os.path.realpath(sys.executable)}", "{CLIENT}"]',
            "",
        ]
    )
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in (
            ("Dockerfile", dockerfile.encode()),
            ("rootfs.tar", busybox_rootfs()),
            ("python.tar", layer.getvalue()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def build(client: docker.DockerClient, tag: str) -> None:
    """Build the image on `client`'s engine as `tag`."""
    script = Path(__file__).with_name("hub_client.py")
    client.images.build(fileobj=io.BytesIO(context(script)), custom_context=True, tag=tag, rm=True)
