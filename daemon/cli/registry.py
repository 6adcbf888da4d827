"""`nosana-cache registry config --engine ENGINE`: the snippet that points an engine at the
registry endpoint (`registry.listen`), printed from the settings, no daemon asked.

    docker      /etc/docker/daemon.json `registry-mirrors` (Docker Hub names only)
    containerd  /etc/containerd/certs.d/_default/hosts.toml (every registry; `ns` query)
    podman      /etc/containers/registries.conf.d/ mirrors, one per registry (a location
                with a path: 127.0.0.1:9812/ghcr.io), and the endpoint itself as a plain-HTTP
                registry: Podman, unlike Docker, trusts no loopback registry without TLS, and
                the daemon's own pulls name the endpoint (127.0.0.1:9812/library/ubuntu)
"""

from __future__ import annotations

import json

import click

from ..settings import Listener
from .common import Options, global_options, pass_options

REGISTRIES = ("docker.io", "ghcr.io", "lscr.io", "registry.hf.space")
"""Where Nosana's public templates pull from: Docker Hub for 53 of 58, then these."""


@global_options
@click.group()
def registry() -> None:
    """The registry endpoint that engines pull images through (registry.listen)."""


@global_options
@registry.command("config")
@click.option(
    "--engine",
    type=click.Choice(["docker", "containerd", "podman"]),
    required=True,
    help="The engine to print the snippet for.",
)
@pass_options
def registry_config(options: Options, engine: str) -> None:
    """Print the snippet that makes ENGINE pull through the registry endpoint.

    \b
    Examples:
      nosana-cache registry config --engine docker
      nosana-cache registry config --engine podman \\
        > /etc/containers/registries.conf.d/nosana-cache.conf
    """
    listen = options.settings().registry.listen
    address = _address(listen)
    click.echo({"docker": _docker, "containerd": _containerd, "podman": _podman}[engine](address))


def _address(listen: Listener) -> str:
    host = listen.host if listen.host not in (None, "0.0.0.0", "::") else "127.0.0.1"
    host = f"[{host}]" if host and ":" in host else host
    return f"{host}:{listen.port}"


def _docker(address: str) -> str:
    config: dict[str, list[str]] = {"registry-mirrors": [f"http://{address}"]}
    if not address.startswith(("127.", "localhost", "[::1]")):
        config["insecure-registries"] = [address]
    return (
        "# /etc/docker/daemon.json (merge with what is there), then restart dockerd.\n"
        "# Docker's registry-mirrors covers Docker Hub names only.\n" + json.dumps(config, indent=2)
    )


def _containerd(address: str) -> str:
    return (
        "# /etc/containerd/certs.d/_default/hosts.toml, with config_path set in containerd's\n"
        '# config.toml: [plugins."io.containerd.grpc.v1.cri".registry]\n'
        '#   config_path = "/etc/containerd/certs.d"\n'
        "# Every registry goes through it (the upstream in the ns query); a registry that\n"
        "# does not answer there is asked directly.\n"
        f'[host."http://{address}"]\n'
        '  capabilities = ["pull", "resolve"]\n'
    )


def _podman(address: str) -> str:
    lines = ["# /etc/containers/registries.conf.d/nosana-cache.conf"]
    lines += ["", "[[registry]]", f'location = "{address}"', "insecure = true"]
    for upstream in REGISTRIES:
        location = address if upstream == "docker.io" else f"{address}/{upstream}"
        lines += [
            "",
            "[[registry]]",
            f'prefix = "{upstream}"',
            f'location = "{upstream}"',
            "[[registry.mirror]]",
            f'location = "{location}"',
            "insecure = true",
        ]
    return "\n".join(lines) + "\n"
