"""The daemon's configuration: a TOML file, `NOSANA_CACHE_<SECTION>__<KEY>` overrides, defaults.

Read once, at start-up, into one frozen `Settings` that is passed down explicitly; nothing
here reads the environment at import time (the caller hands `environ` in), so tests build
settings without patching globals. Every key is optional; unknown keys and bad values are
errors that name the key (and the environment variable, when that is where it came from).

    schema      the sections and their keys: types, defaults, docs, checks
    fields      the value types they are made of (durations, sizes, URLs, listeners)
    loading     defaults from the host, then the file, then the environment; one error line
    rendering   the effective configuration as TOML, secrets masked (`config show`)
"""

from .fields import ByteSize, Duration, HttpUrl, Listener
from .loading import CONFIG_ENV, ENV_PREFIX, load_settings, settings_from_environment
from .rendering import SECRET_KEYS, effective_values, render_toml
from .schema import (
    DEFAULT_PORT,
    DEFAULT_REQUIRED_RESOURCES_URL,
    SECTIONS,
    ApiSettings,
    DockerSettings,
    DownloadSettings,
    GpuPolicy,
    HuggingFaceSettings,
    JobsSettings,
    MarketSettings,
    NodeSettings,
    OllamaSettings,
    RegistrySettings,
    S3Host,
    S3Settings,
    SecuritySettings,
    Settings,
    SiteSettings,
    StoreSettings,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_PORT",
    "DEFAULT_REQUIRED_RESOURCES_URL",
    "ENV_PREFIX",
    "SECRET_KEYS",
    "SECTIONS",
    "ApiSettings",
    "ByteSize",
    "DockerSettings",
    "DownloadSettings",
    "Duration",
    "GpuPolicy",
    "HttpUrl",
    "HuggingFaceSettings",
    "JobsSettings",
    "Listener",
    "MarketSettings",
    "NodeSettings",
    "OllamaSettings",
    "RegistrySettings",
    "S3Host",
    "S3Settings",
    "SecuritySettings",
    "Settings",
    "SiteSettings",
    "StoreSettings",
    "effective_values",
    "load_settings",
    "render_toml",
    "settings_from_environment",
]
