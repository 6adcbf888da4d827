"""The daemon's configuration: a TOML file, `NOSANA_CACHE_<SECTION>__<KEY>` overrides, defaults.

Read once, at start-up, into one frozen `Settings` that is passed down explicitly; nothing
here reads the environment at import time (the caller hands `environ` in), so tests build
settings without patching globals. Every key is optional; unknown keys and bad values are
errors that name the key (and the environment variable, when that is where it came from).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo

from .errors import ConfigError
from .units import format_duration, format_size, parse_duration, parse_size

ENV_PREFIX = "NOSANA_CACHE_"
CONFIG_ENV = "NOSANA_CACHE_CONFIG"
DEFAULT_PORT = 9810
DEFAULT_REQUIRED_RESOURCES_URL = (
    "https://host-manager.k8s.prd.nos.ci/markets/{market}/required-resources"
)

Duration = Annotated[float, BeforeValidator(parse_duration)]
ByteSize = Annotated[int, BeforeValidator(parse_size)]


def _http_url(value: str) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


HttpUrl = Annotated[str, BeforeValidator(_http_url)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Listener(BaseModel):
    """One place the API listens: a TCP `HOST:PORT` or a `unix:/path` socket."""

    model_config = ConfigDict(frozen=True)

    host: str | None = None
    port: int | None = None
    unix_path: str | None = None

    @classmethod
    def parse(cls, text: str) -> Listener:
        if text.startswith("unix:"):
            path = text.removeprefix("unix:")
            if not path.startswith("/"):
                raise ValueError(f"{text!r}: a unix socket needs an absolute path")
            return cls(unix_path=path)
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{text!r} is not HOST:PORT or unix:/path")
        return cls(host=host.strip("[]"), port=int(port))

    @property
    def is_local(self) -> bool:
        """Unix sockets and loopback addresses need no token."""
        if self.unix_path is not None:
            return True
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host or "").is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        if self.unix_path is not None:
            return f"unix:{self.unix_path}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{host}:{self.port}"

    def url(self) -> str:
        """Base URL a client uses to reach this listener."""
        if self.unix_path is not None:
            return f"unix:{self.unix_path}"
        host = self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"
        host = f"[{host}]" if host and ":" in host else host
        return f"http://{host}:{self.port}"


def _listeners(value: Any) -> Any:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [Listener.parse(v) if isinstance(v, str) else v for v in value]
    return value


class StoreSettings(_Section):
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


class ApiSettings(_Section):
    listen: Annotated[list[Listener], BeforeValidator(_listeners)] = Field(
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


class MarketSettings(_Section):
    address: str | None = Field(None, description="the market to serve; none: no market")
    required_resources_url: str = Field(
        DEFAULT_REQUIRED_RESOURCES_URL, description="URL template with {market}"
    )
    refresh_interval: Duration = Field(600.0, description="how often the list is fetched again")

    @field_validator("required_resources_url")
    @classmethod
    def _template(cls, value: str) -> str:
        _http_url(value)
        if "{market}" not in value:
            raise ValueError("must contain {market}")
        return value

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and (not value.isalnum() or not 32 <= len(value) <= 44):
            raise ValueError(f"{value!r} is not a market address (base58, 32 to 44 characters)")
        return value


class DockerSettings(_Section):
    host: str = Field(description="Docker engine address; default DOCKER_HOST or the socket")
    registry_mirrors: dict[str, str] = Field(
        default_factory=dict, description="registry host → mirror host to pull through"
    )
    gpu: Literal["auto", "all", "none"] = Field(
        "auto", description="auto: request GPUs when the engine has them; all; none"
    )


class HuggingFaceSettings(_Section):
    endpoint: HttpUrl = Field(description="default HF_ENDPOINT or https://huggingface.co")
    token: SecretStr | None = Field(None, description="default HF_TOKEN")


class S3Host(_Section):
    endpoint_url: HttpUrl
    bucket: str


class S3Settings(_Section):
    endpoint_url: HttpUrl | None = Field(None, description="for s3:// URLs; default AWS")
    region: str | None = Field(None, description="default the standard AWS chain")
    access_key_id: str | None = Field(None, description="default the standard AWS chain")
    secret_access_key: SecretStr | None = Field(None, description="default the AWS chain")
    hosts: dict[str, S3Host] = Field(
        default_factory=dict,
        description="public host → {endpoint_url, bucket} for buckets under their own domain",
    )


class OllamaSettings(_Section):
    registry: HttpUrl = Field("https://registry.ollama.ai", description="the Ollama registry")


class DownloadSettings(_Section):
    concurrency: int = Field(16, ge=1, le=512, description="parallel transfers in total")
    max_retries: int = Field(5, ge=0, le=100, description="per transfer, backoff and resume")
    part_size: ByteSize = Field(
        32 * 1024**2, description="large files are fetched in ranged parts of this size"
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


class SecuritySettings(_Section):
    allow_private_urls: bool = Field(
        False, description="let job URLs reach private, loopback or link-local addresses"
    )


class Settings(_Section):
    store: StoreSettings
    api: ApiSettings = Field(default_factory=ApiSettings)
    market: MarketSettings = Field(default_factory=MarketSettings)
    docker: DockerSettings
    huggingface: HuggingFaceSettings
    s3: S3Settings = Field(default_factory=S3Settings)
    ollama: OllamaSettings = Field(default_factory=OllamaSettings)
    download: DownloadSettings = Field(default_factory=DownloadSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)


SECTIONS: dict[str, type[_Section]] = {
    name: field.annotation  # type: ignore[misc]
    for name, field in Settings.model_fields.items()
}
SECRET_KEYS = {
    ("api", "token"),
    ("huggingface", "token"),
    ("s3", "secret_access_key"),
}


def _environment_defaults(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Defaults that depend on where the daemon runs: XDG, Docker, Hugging Face variables."""
    cache_home = environ.get("XDG_CACHE_HOME") or str(
        Path(environ.get("HOME") or Path.home()) / ".cache"
    )
    hf: dict[str, Any] = {"endpoint": environ.get("HF_ENDPOINT") or "https://huggingface.co"}
    if environ.get("HF_TOKEN"):
        hf["token"] = environ["HF_TOKEN"]
    return {
        "store": {"path": str(Path(cache_home) / "nosana-cache")},
        "docker": {"host": environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"},
        "huggingface": hf,
    }


def _env_overrides(
    environ: Mapping[str, str],
) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], str]]:
    """Values from `NOSANA_CACHE_<SECTION>__<KEY>`, and which variable each came from."""
    overrides: dict[str, dict[str, Any]] = {}
    origins: dict[tuple[str, str], str] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        section, sep, key = name.removeprefix(ENV_PREFIX).lower().partition("__")
        model = SECTIONS.get(section)
        if not sep or model is None or key not in model.model_fields:
            raise ConfigError(name, "unknown setting (expected NOSANA_CACHE_<SECTION>__<KEY>)")
        overrides.setdefault(section, {})[key] = _env_value(model, key, raw, name)
        origins[(section, key)] = name
    return overrides, origins


def _env_value(model: type[_Section], key: str, raw: str, name: str) -> Any:
    """Scalars go to pydantic as text; tables and lists are written as TOML inline values."""
    annotation = str(model.model_fields[key].annotation)
    if "dict[" in annotation or (key == "listen" and raw.lstrip().startswith("[")):
        try:
            return tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(name, f"not a TOML inline value: {exc}") from exc
    return raw


def _merge(base: dict[str, dict[str, Any]], top: Mapping[str, Any]) -> None:
    for section, values in top.items():
        if section in SECTIONS and isinstance(values, dict):
            base.setdefault(section, {}).update(values)
        else:
            base[section] = values  # let validation name the bad section


def _describe(exc: ValidationError, origins: Mapping[tuple[str, str], str]) -> ConfigError:
    """One line naming every bad key, and the environment variable it came from."""
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        key = ".".join(loc)
        origin = origins.get((loc[0], loc[1])) if len(loc) >= 2 else None
        where = f"{key} (from {origin})" if origin else key
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(f"{where}: {message}")
    return ConfigError("", "; ".join(problems))


def load_settings(config_path: Path | None, environ: Mapping[str, str]) -> Settings:
    """Defaults, then the TOML file, then the environment; validated as a whole."""
    data = _environment_defaults(environ)
    path = config_path or (Path(environ[CONFIG_ENV]) if environ.get(CONFIG_ENV) else None)
    if path is not None:
        try:
            with open(path, "rb") as handle:
                _merge(data, tomllib.load(handle))
        except FileNotFoundError as exc:
            raise ConfigError("config", f"file not found: {path}") from exc
        except OSError as exc:
            raise ConfigError("config", f"cannot read {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config", f"{path} is not valid TOML: {exc}") from exc
    overrides, origins = _env_overrides(environ)
    _merge(data, overrides)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise _describe(exc, origins) from None
    settings.api.check_exposure()
    return settings


def settings_from_environment(config_path: Path | None = None) -> Settings:
    """The one place the real process environment is read."""
    return load_settings(config_path, os.environ)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _toml_value(key)


def _parsed_by(field: FieldInfo, parser: Any) -> bool:
    """Whether a field's type is `Duration` or `ByteSize` (optional or not)."""

    def annotated_with(annotation: Any) -> bool:
        if get_origin(annotation) is Annotated:
            return any(getattr(m, "func", None) is parser for m in get_args(annotation)[1:])
        return any(annotated_with(arg) for arg in get_args(annotation))

    metadata = any(getattr(m, "func", None) is parser for m in field.metadata)
    return metadata or annotated_with(field.annotation)


def effective_values(settings: Settings, *, mask_secrets: bool = True) -> dict[str, dict[str, Any]]:
    """Every key as an operator would write it in the TOML file (`24h`, `512MiB`)."""
    out: dict[str, dict[str, Any]] = {}
    for section_name in SECTIONS:
        section = getattr(settings, section_name)
        values: dict[str, Any] = {}
        for key, field in type(section).model_fields.items():
            value = getattr(section, key)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = "***" if mask_secrets else value.get_secret_value()
            elif (section_name, key) in SECRET_KEYS and mask_secrets:
                value = "***"
            elif _parsed_by(field, parse_duration):
                value = format_duration(value)
            elif _parsed_by(field, parse_size):
                value = format_size(value)
            elif isinstance(value, Path):
                value = str(value)
            elif key == "listen":
                value = [str(lst) for lst in value]
            elif isinstance(value, dict):
                value = {
                    k: v.model_dump() if isinstance(v, BaseModel) else v for k, v in value.items()
                }
            values[key] = value
        out[section_name] = values
    return out


def render_toml(settings: Settings, *, mask_secrets: bool = True) -> str:
    """The effective configuration as a TOML document (what `config show` prints)."""
    lines: list[str] = []
    for section, values in effective_values(settings, mask_secrets=mask_secrets).items():
        lines.append(f"[{section}]")
        lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in values.items())
        lines.append("")
    return "\n".join(lines)
