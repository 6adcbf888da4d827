"""The keys of the configuration: each section's fields, types, defaults, docs and checks.

One frozen model per `[section]` of the TOML file, each field with its default and a one-line
description; every section forbids unknown keys, so a typo is an error that names it.
The value types (durations, sizes, URLs, listeners, networks) are `fields`'; where values come
from is `loading`'s business, how they are shown `rendering`'s.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    field_validator,
)

from ..errors import ConfigError
from .fields import (
    ByteSize,
    CidrNetwork,
    Duration,
    HttpUrl,
    Listener,
    Section,
    cidrs,
    http_url,
    ip_address_text,
    listeners,
    one_listener,
)

DEFAULT_PORT = 9810
DEFAULT_REQUIRED_RESOURCES_URL = (
    "https://host-manager.k8s.prd.nos.ci/markets/{market}/required-resources"
)


class StoreSettings(Section):
    path: Path = Field(description="where blobs, views and the index live")
    host_path: Path | None = Field(
        None, description="the store as the Docker engine sees it (sidecar); default: path"
    )
    ttl: Duration = Field(86400.0, description="lifetime of an entry from the end of its download")
    ttl_from: Literal["download", "last_use"] = Field(
        "download", description="`download` (Nosana's documented rule) or `last_use`"
    )
    sweep_interval: Duration = Field(60.0, description="how often expired entries are swept")
    max_size: ByteSize | None = Field(None, description="cap on the store's bytes; none: no cap")
    min_free: ByteSize = Field(
        1024**3, description="free space always left on the store's filesystem"
    )

    @field_validator("sweep_interval")
    @classmethod
    def _positive_interval(cls, value: float) -> float:
        if value < 1:
            raise ValueError("must be at least 1s")
        return value

    @property
    def engine_path(self) -> Path:
        """The store's folder as bind-mount sources must name it on the engine's host."""
        return self.host_path or self.path


class ApiSettings(Section):
    listen: Annotated[list[Listener], BeforeValidator(listeners)] = Field(
        default_factory=lambda: [Listener(host="127.0.0.1", port=DEFAULT_PORT)],
        description="list of HOST:PORT or unix:/path",
    )
    token: SecretStr | None = Field(
        None, description="bearer token; required when a listener is not loopback or unix"
    )

    @field_validator("listen")
    @classmethod
    def _some_listener(cls, value: list[Listener]) -> list[Listener]:
        if not value:
            raise ValueError("needs at least one listener")
        return value

    def check_exposure(self) -> None:
        """A listener beyond loopback without a token would hand the host to the network."""
        exposed = [str(lst) for lst in self.listen if not lst.is_local]
        if exposed and not (self.token and self.token.get_secret_value()):
            raise ConfigError(
                "api.token",
                f"required because {', '.join(exposed)} is not loopback or a unix socket",
            )


class MarketSettings(Section):
    address: str | None = Field(None, description="the market to serve; none: no market")
    required_resources_url: str = Field(
        DEFAULT_REQUIRED_RESOURCES_URL, description="URL template with {market}"
    )
    refresh_interval: Duration = Field(600.0, description="how often the list is fetched again")

    @field_validator("required_resources_url")
    @classmethod
    def _template(cls, value: str) -> str:
        http_url(value)
        if "{market}" not in value:
            raise ValueError("must contain {market}")
        return value

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and (not value.isalnum() or not 32 <= len(value) <= 44):
            raise ValueError(f"{value!r} is not a market address (base58, 32 to 44 characters)")
        return value


GpuPolicy = Literal["auto", "all", "none"]
"""`docker.gpu`: request GPUs when the engine has them (auto), always (all), or never (none)."""


class DockerSettings(Section):
    host: str = Field(description="Docker engine address; default DOCKER_HOST or the socket")
    registry_mirrors: dict[str, str] = Field(
        default_factory=dict, description="registry host → mirror host to pull through"
    )
    gpu: GpuPolicy = Field(
        "auto", description="auto: request GPUs when the engine has them; all; none"
    )
    publish_host: Annotated[str, AfterValidator(ip_address_text)] = Field(
        "127.0.0.1", description="the host address job ports are published on"
    )
    fence: Literal["auto", "required", "off"] = Field(
        "auto",
        description="keep job containers off private, loopback, link-local, CGNAT and ULA "
        "addresses, the host's included: auto (where the fence can be installed, else a "
        "warning), required (refuse jobs without it), off",
    )
    fence_allow: Annotated[list[CidrNetwork], BeforeValidator(cidrs)] = Field(
        default_factory=list, description="CIDRs that job containers may reach through the fence"
    )


class JobsSettings(Section):
    health_interval: Duration = Field(
        1.0, description="longest pause between an op's health checks until it is ready"
    )
    health_continuous_interval: Duration = Field(
        30.0, description="pause between the continuous health checks of a ready op"
    )
    ready_timeout: Duration = Field(
        0.0, description="an op whose health checks have not passed by then fails; 0: no limit"
    )

    @field_validator("health_interval", "health_continuous_interval")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value < 0.1:
            raise ValueError("must be at least 0.1s")
        return value


DEFAULT_MIRROR_PORT = 9811


class HuggingFaceSettings(Section):
    endpoint: HttpUrl = Field(description="default HF_ENDPOINT or https://huggingface.co")
    token: SecretStr | None = Field(None, description="default HF_TOKEN")
    mirror: bool = Field(
        True,
        description="serve the Hub's download protocol at /hf, backed by the store, and point "
        "job containers at it with HF_ENDPOINT",
    )
    mirror_address: str | None = Field(
        None,
        description="the host address job containers reach /hf on; default: this host's "
        "address on the Docker engine's default bridge (docker0)",
    )
    mirror_port: int = Field(
        DEFAULT_MIRROR_PORT, ge=0, le=65535, description="its port; 0: any free port"
    )
    access_ttl: Duration = Field(
        300.0,
        description="how long upstream's answer on a token's access to a repo it did not say "
        "is public (gated, private, or leaving the fields out) is kept",
    )

    @field_validator("mirror_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address") from None
        return value


class S3Host(Section):
    endpoint_url: HttpUrl
    bucket: str


class S3Settings(Section):
    endpoint_url: HttpUrl | None = Field(None, description="for s3:// URLs; default AWS")
    region: str | None = Field(None, description="default the standard AWS chain")
    access_key_id: str | None = Field(None, description="default the standard AWS chain")
    secret_access_key: SecretStr | None = Field(None, description="default the AWS chain")
    hosts: dict[str, S3Host] = Field(
        default_factory=dict,
        description="public host → {endpoint_url, bucket} for buckets under their own domain",
    )


class OllamaSettings(Section):
    registry: HttpUrl = Field("https://registry.ollama.ai", description="the Ollama registry")


class DownloadSettings(Section):
    # 32 connections fill a link that caps each at a twentieth of the whole (a CDN 150 ms
    # away: 10 MiB/s each, 200 in all), with room for each part's request round trip.
    concurrency: int = Field(32, ge=1, le=512, description="parallel transfers in total")
    max_retries: int = Field(5, ge=0, le=100, description="per transfer, backoff and resume")
    # 8 MiB, not 16: parts in flight hold `concurrency * part_size` bytes not yet contiguous,
    # which a reader of the growing file (an engine pulling through the registry endpoint)
    # gets only as the parts before them end, the last ones in one burst after the last
    # byte. An image of 1.5 GiB + 84 MiB on `far`, 3 interleaved rounds through an engine
    # (bench/blob_fetch.py, issue 27): cold pull 18.28 s -> 17.18 s, the endpoint's serving
    # 11.77 s -> 10.80 s; curl alone for 1.5 GiB: far 9.56 -> 9.43 s, cdn 4.47 -> 4.28 s.
    part_size: ByteSize = Field(
        8 * 1024**2, description="large files are fetched in ranged parts of this size"
    )
    connect_timeout: Duration = Field(10.0, description="to open a connection upstream")
    stall_timeout: Duration = Field(30.0, description="a transfer with no bytes this long retries")
    min_speed: ByteSize = Field(
        16 * 1024,
        description="bytes per second a transfer must average over each stall_timeout window",
    )

    @field_validator("part_size")
    @classmethod
    def _part_size(cls, value: int) -> int:
        if value < 1024**2:
            raise ValueError("must be at least 1MiB")
        return value


class SecuritySettings(Section):
    allow_private_urls: bool = Field(
        False, description="let job URLs reach private, loopback or link-local addresses"
    )


def _site_url(value: Any) -> Any:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not value.startswith("s3://"):
        raise ValueError(f"{value!r} is not s3://bucket/prefix")
    bucket, _, prefix = value.removeprefix("s3://").partition("/")
    if not bucket or "//" in prefix:
        raise ValueError(f"{value!r} is not s3://bucket/prefix")
    return f"s3://{bucket}/{prefix.strip('/')}".rstrip("/")


class SiteSettings(Section):
    store: Annotated[str | None, BeforeValidator(_site_url)] = Field(
        None, description="s3://bucket/prefix of the site's shared store; empty: off"
    )
    endpoint_url: HttpUrl | None = Field(None, description="the site store's S3 endpoint; AWS")
    region: str | None = Field(None, description="the site store's region; default us-east-1")
    access_key_id: str | None = Field(None, description="default the standard AWS chain")
    secret_access_key: SecretStr | None = Field(None, description="default the AWS chain")
    share_private: bool = Field(
        False, description="also share entries fetched with credentials (same credential only)"
    )
    stall_timeout: Duration = Field(
        5.0, description="a site store read stalled this long falls back to upstream"
    )
    herd_wait: Duration = Field(
        600.0, description="longest wait for another node's fetch of the same entry"
    )
    upload_concurrency: int = Field(4, ge=1, le=64, description="parallel uploads (parts)")

    @field_validator("stall_timeout")
    @classmethod
    def _short_but_positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be more than 0s")
        return value

    def check_keys(self) -> None:
        """A key id without its secret (or the reverse) would sign with half a credential."""
        if bool(self.access_key_id) != bool(self.secret_access_key):
            raise ConfigError(
                "site.access_key_id", "site.access_key_id and site.secret_access_key go together"
            )


DEFAULT_REGISTRY_PORT = 9812
"""Beside the API's 9810 and the containers' Hub listener 9811."""


class RegistrySettings(Section):
    mirror: bool = Field(
        True,
        description="serve the pull side of the OCI Distribution API from the store, for the "
        "engines' registry mirrors",
    )
    listen: Annotated[Listener, BeforeValidator(one_listener)] = Field(
        default_factory=lambda: Listener(host="127.0.0.1", port=DEFAULT_REGISTRY_PORT),
        description="HOST:PORT of the registry endpoint",
    )

    @field_validator("listen")
    @classmethod
    def _tcp(cls, value: Listener) -> Listener:
        """Engines reach a registry over TCP only; beyond loopback it would serve every
        cached image (private ones only with their credentials) to the network."""
        if value.unix_path is not None:
            raise ValueError("the registry endpoint needs a TCP HOST:PORT")
        return value


class NodeSettings(Section):
    socket: str = Field(
        "",
        description="unix socket path of the engine socket for Nosana's own node; empty = off",
    )
    engine: str = Field(
        "", description="the real engine behind it (Docker or Podman socket); empty = docker.host"
    )
    hub: bool = Field(
        True,
        description="give the node's job containers HF_ENDPOINT (and its companions) unless "
        "they set them",
    )

    @field_validator("socket")
    @classmethod
    def _socket_path(cls, value: str) -> str:
        """A path on this host: the node mounts the file; `unix://` is accepted and dropped."""
        path = value.removeprefix("unix://")
        if path and not path.startswith("/"):
            raise ValueError(f"{value!r} is not an absolute path of a unix socket")
        return path

    @field_validator("engine")
    @classmethod
    def _engine_socket(cls, value: str) -> str:
        """The node speaks to its engine over a unix socket only, and so does this proxy."""
        if value and not (value.startswith(("unix://", "/"))):
            raise ValueError(f"{value!r} is not a unix socket (unix:///path or /path)")
        return value


class Settings(Section):
    store: StoreSettings
    api: ApiSettings = Field(default_factory=ApiSettings)
    market: MarketSettings = Field(default_factory=MarketSettings)
    docker: DockerSettings
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    huggingface: HuggingFaceSettings
    s3: S3Settings = Field(default_factory=S3Settings)
    ollama: OllamaSettings = Field(default_factory=OllamaSettings)
    download: DownloadSettings = Field(default_factory=DownloadSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    site: SiteSettings = Field(default_factory=SiteSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    node: NodeSettings = Field(default_factory=NodeSettings)


SECTIONS: dict[str, type[Section]] = {
    name: field.annotation  # type: ignore[misc]
    for name, field in Settings.model_fields.items()
}
