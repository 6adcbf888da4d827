"""Test images made without internet: a busybox root filesystem, and a several-layer image.

`library/ubuntu:latest` is a stand-in for Ubuntu (busybox with every applet linked in /bin),
so the seed's example job (`ls /data-models` in `ubuntu`) runs unchanged.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from dataclasses import dataclass

import docker

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class TestImage:
    repository: str  # as pushed, e.g. library/ubuntu
    tag: str
    layers: int


def busybox_rootfs() -> bytes:
    """A tar of a root filesystem: /bin/busybox and a link per applet, /tmp, /root, /etc."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    applets = subprocess.run(
        [busybox, "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for folder in ("bin", "tmp", "root", "etc", "data-models", "proc", "sys", "dev"):
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in applets:
            if applet == "busybox":
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        for name, text in (
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
            ("etc/group", "root:x:0:\n"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _context(dockerfile: str, files: dict[str, bytes]) -> io.BytesIO:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in {"Dockerfile": dockerfile.encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out.seek(0)
    return out


def build(
    client: docker.DockerClient, tag: str, extra_layers: dict[str, bytes] | None = None
) -> None:
    """Build a busybox image, plus one layer per extra file (COPY), tagged `tag`."""
    lines = ["FROM scratch", "ADD rootfs.tar /", f"ENV {PATH_ENV}"]
    files = {"rootfs.tar": busybox_rootfs()}
    for index, (name, data) in enumerate((extra_layers or {}).items()):
        files[f"layer{index}"] = data
        lines.append(f"COPY layer{index} /{name}")
    lines.append('CMD ["sh"]')
    client.images.build(
        fileobj=_context("\n".join(lines) + "\n", files), custom_context=True, tag=tag, rm=True
    )


STANDARD_IMAGES = [
    TestImage("library/ubuntu", "latest", 1),
    TestImage("library/busybox", "latest", 1),
    TestImage("nosana/multi", "1.0", 4),
]


def publish(client: docker.DockerClient, registry_host: str) -> list[TestImage]:
    """Build the standard images, push them to the registry, and remove them from the engine."""
    for image in STANDARD_IMAGES:
        target = f"{registry_host}/{image.repository}:{image.tag}"
        extra = {
            f"opt/layer{i}.txt": f"layer {i} of {image.repository}\n".encode() * (i + 1)
            for i in range(image.layers - 1)
        }
        build(client, target, extra)
        for line in client.images.push(
            f"{registry_host}/{image.repository}", tag=image.tag, stream=True, decode=True
        ):
            if "error" in line:
                raise RuntimeError(f"push of {target} failed: {line['error']}")
        client.images.remove(target, force=True)
    client.images.prune(filters={"dangling": False})
    return STANDARD_IMAGES
