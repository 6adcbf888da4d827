"""`nosana-cache registry config`: each engine's snippet names the endpoint's address."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from daemon.cli import main


def printed(tmp_path: Path, capsys: pytest.CaptureFixture[str], engine: str, listen: str) -> str:
    config = tmp_path / "c.toml"
    config.write_text(f'[store]\npath = "{tmp_path}/s"\n[registry]\nlisten = "{listen}"\n')
    assert main(["registry", "config", "--engine", engine, "--config", str(config)]) == 0
    return capsys.readouterr().out


def test_docker_gets_registry_mirrors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(tmp_path, capsys, "docker", "127.0.0.1:9900")
    body = json.loads(out[out.index("{") :])
    assert body == {"registry-mirrors": ["http://127.0.0.1:9900"]}
    beyond = printed(tmp_path, capsys, "docker", "0.0.0.0:9900")
    assert "insecure-registries" not in beyond  # 0.0.0.0 is reached on loopback
    lan = printed(tmp_path, capsys, "docker", "10.1.2.3:9900")
    assert json.loads(lan[lan.index("{") :])["insecure-registries"] == ["10.1.2.3:9900"]


def test_containerd_gets_a_hosts_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hosts = tomllib.loads(printed(tmp_path, capsys, "containerd", "127.0.0.1:9812"))
    assert hosts["host"]["http://127.0.0.1:9812"]["capabilities"] == ["pull", "resolve"]


def test_podman_gets_a_mirror_per_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tomllib.loads(printed(tmp_path, capsys, "podman", "127.0.0.1:9812"))
    endpoint, *mirrored = conf["registry"]
    # The endpoint itself, in plain HTTP: the daemon's own pulls name it.
    assert endpoint == {"location": "127.0.0.1:9812", "insecure": True}
    mirrors = {r["prefix"]: r["mirror"][0]["location"] for r in mirrored}
    assert mirrors["docker.io"] == "127.0.0.1:9812"
    assert mirrors["ghcr.io"] == "127.0.0.1:9812/ghcr.io"
    assert all(r["mirror"][0]["insecure"] for r in mirrored)
