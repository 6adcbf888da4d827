"""How the settings are read: embedded defaults, the TOML file, then the environment.

Defaults that depend on the host (XDG_CACHE_HOME or HOME, DOCKER_HOST, HF_ENDPOINT,
HF_TOKEN) come first, then the file (`--config`, else `$NOSANA_CACHE_CONFIG`), then
`NOSANA_CACHE_<SECTION>__<KEY>` variables, key by key; the result is validated as a whole.
`node.engine` given and `docker.host` not (anywhere, `DOCKER_HOST` included), the daemon's
own engine is the node's: one engine, where the market's images must be.
`environ` is always handed in, so tests build settings without patching globals.

The merge is written here rather than left to pydantic-settings (2.16.3 tried): its
`EnvSettingsSource` reads only `os.environ` (another mapping means overriding its private
`_load_env_vars`), silently ignores prefixed variables that match no section
(`NOSANA_CACHE_STOR__TTL`, `NOSANA_CACHE_TTL`), decodes tables and lists as JSON, not as
TOML inline values nor `api.listen`'s `HOST:PORT,unix:/path`, and reports a bad one as
`error parsing value for field "docker"` without the key; its `TomlConfigSettingsSource`
skips a missing file silently; and its validation errors never name the variable a bad
value came from. Each would change what an operator sees.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import ConfigError
from .fields import Section
from .schema import SECTIONS, Settings

ENV_PREFIX = "NOSANA_CACHE_"
CONFIG_ENV = "NOSANA_CACHE_CONFIG"


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


def _env_value(model: type[Section], key: str, raw: str, name: str) -> Any:
    """Scalars go to pydantic as text; tables and lists are written as TOML inline values (a
    list may also be one string of items apart by commas, which its validator splits)."""
    annotation = str(model.model_fields[key].annotation)
    if "dict[" in annotation or ("list[" in annotation and raw.lstrip().startswith("[")):
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


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError("config", f"file not found: {path}") from exc
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from exc


def load_settings(config_path: Path | None, environ: Mapping[str, str]) -> Settings:
    """Defaults, then the TOML file, then the environment; validated as a whole."""
    data = _environment_defaults(environ)
    path = config_path or (Path(environ[CONFIG_ENV]) if environ.get(CONFIG_ENV) else None)
    given: list[Mapping[str, Any]] = []
    if path is not None:
        given.append(_read_file(path))
        _merge(data, given[-1])
    overrides, origins = _env_overrides(environ)
    given.append(overrides)
    _merge(data, overrides)
    _one_engine(data, environ, given)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise _describe(exc, origins) from None
    settings.api.check_exposure()
    settings.site.check_keys()
    return settings


def _one_engine(
    data: dict[str, dict[str, Any]], environ: Mapping[str, str], given: list[Mapping[str, Any]]
) -> None:
    """`node.engine` is also the daemon's own engine (`docker.host`) unless that is given (in
    the file, `NOSANA_CACHE_DOCKER__HOST` or `DOCKER_HOST`): the market's images must land in
    the store of the engine the node runs its jobs on, Podman's included, and an operator who
    names one engine expects one."""
    node = data.get("node")
    engine = node.get("engine") if isinstance(node, dict) else None
    if not engine or environ.get("DOCKER_HOST"):
        return
    for top in given:
        docker = top.get("docker")
        if isinstance(docker, dict) and "host" in docker:
            return
    docker = data.get("docker")
    if isinstance(docker, dict) and isinstance(engine, str):
        docker["host"] = engine if engine.startswith("unix://") else f"unix://{engine}"


def settings_from_environment(config_path: Path | None = None) -> Settings:
    """The one place the real process environment is read."""
    return load_settings(config_path, os.environ)
