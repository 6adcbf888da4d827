from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from daemon.errors import ConfigError
from daemon.settings import (
    SECTIONS,
    Listener,
    Settings,
    effective_values,
    load_settings,
    render_toml,
)

ROOT = Path(__file__).resolve().parents[2]
ENV = {"HOME": "/home/op"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_embedded_defaults_need_no_file_and_no_environment() -> None:
    settings = load_settings(None, ENV)
    assert settings.store.path == Path("/home/op/.cache/nosana-cache")
    assert settings.store.engine_path == settings.store.path
    assert settings.store.ttl == 86400
    assert settings.store.ttl_from == "download"
    assert settings.store.sweep_interval == 60
    assert settings.store.max_size is None
    assert [str(lst) for lst in settings.api.listen] == ["127.0.0.1:9810"]
    assert settings.market.address is None
    assert "{market}" in settings.market.required_resources_url
    assert settings.market.refresh_interval == 600
    assert settings.docker.host == "unix:///var/run/docker.sock"
    assert settings.docker.gpu == "auto"
    assert settings.huggingface.endpoint == "https://huggingface.co"
    assert settings.ollama.registry == "https://registry.ollama.ai"
    assert settings.security.allow_private_urls is False


def test_defaults_follow_the_usual_environment_variables() -> None:
    env = {
        "XDG_CACHE_HOME": "/var/cache/x",
        "DOCKER_HOST": "tcp://127.0.0.1:2375",
        "HF_ENDPOINT": "http://hf-mirror.local/",
        "HF_TOKEN": "hf_abc",
    }
    settings = load_settings(None, env)
    assert settings.store.path == Path("/var/cache/x/nosana-cache")
    assert settings.docker.host == "tcp://127.0.0.1:2375"
    assert settings.huggingface.endpoint == "http://hf-mirror.local"
    assert settings.huggingface.token is not None
    assert settings.huggingface.token.get_secret_value() == "hf_abc"


def test_the_shipped_config_documents_every_key_with_its_default(tmp_path: Path) -> None:
    """Uncommenting every key of config/nosana-cache.toml (but examples) must change nothing."""
    text = (ROOT / "config" / "nosana-cache.toml").read_text()
    every_key = re.sub(r"^# ?(\w+ = .*?)(  # example)?$", r"\1", text, flags=re.MULTILINE)
    document = tomllib.loads(every_key)
    uncommented = re.sub(r"^# ?(\w+ = (?!.*# example$).*)$", r"\1", text, flags=re.MULTILINE)
    for section, model in SECTIONS.items():
        assert section in document, f"[{section}] missing from config/nosana-cache.toml"
        missing = set(model.model_fields) - set(document[section])
        assert not missing, f"{section}: {missing} not documented"
    for line in text.splitlines():
        if re.match(r"^# ?\w+ = ", line):
            index = text.splitlines().index(line)
            assert text.splitlines()[index - 1].startswith("#"), f"no comment above {line!r}"
    env = {"HOME": "/root"}
    documented = load_settings(write(tmp_path, uncommented), env)
    defaults = load_settings(None, env)
    assert effective_values(documented) == effective_values(defaults)


def test_every_section_and_type_can_be_set_in_the_file(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """
        [store]
        path = "/srv/cache"
        host_path = "/host/srv/cache"
        ttl = "12h"
        ttl_from = "last_use"
        sweep_interval = "30s"
        max_size = "500GiB"
        min_free = "25GiB"
        [api]
        listen = ["127.0.0.1:7000", "unix:/run/nosana-cache/api.sock"]
        [market]
        address = "97G9NnvBDQ2WpKu6fasoMsAKmfj63C9rhysJnkeWodAf"
        required_resources_url = "http://127.0.0.1:1/markets/{market}/required-resources"
        refresh_interval = "5m"
        [docker]
        host = "unix:///tmp/d.sock"
        registry_mirrors = { "registry.hub.docker.com" = "127.0.0.1:5000" }
        gpu = "none"
        publish_host = "0.0.0.0"
        fence = "required"
        fence_allow = ["192.168.7.0/24"]
        [jobs]
        health_interval = "2s"
        health_continuous_interval = "1m"
        ready_timeout = "30m"
        [huggingface]
        endpoint = "http://127.0.0.1:8000"
        token = "hf_x"
        [s3]
        endpoint_url = "http://127.0.0.1:9000"
        region = "eu-west-1"
        access_key_id = "AKIA1"
        secret_access_key = "s3cret"
        hosts = { "models.nosana.io" = { endpoint_url = "http://127.0.0.1:9000", bucket = "nos" } }
        [ollama]
        registry = "http://127.0.0.1:5001"
        [download]
        concurrency = 48
        max_retries = 3
        [security]
        allow_private_urls = true
        """.replace("\n        ", "\n"),
    )
    settings = load_settings(config, ENV)
    assert settings.store.engine_path == Path("/host/srv/cache")
    assert settings.store.ttl == 12 * 3600
    assert settings.store.max_size == 500 * 1024**3
    assert settings.api.listen[1] == Listener(unix_path="/run/nosana-cache/api.sock")
    assert settings.docker.registry_mirrors == {"registry.hub.docker.com": "127.0.0.1:5000"}
    assert settings.docker.publish_host == "0.0.0.0"
    assert settings.docker.fence == "required"
    assert [str(net) for net in settings.docker.fence_allow] == ["192.168.7.0/24"]
    assert (settings.jobs.health_interval, settings.jobs.ready_timeout) == (2.0, 1800.0)
    assert settings.s3.hosts["models.nosana.io"].bucket == "nos"
    assert settings.download.concurrency == 48
    assert settings.security.allow_private_urls is True


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = write(tmp_path, '[store]\nttl = "12h"\n')
    env = ENV | {
        "NOSANA_CACHE_STORE__TTL": "2h",
        "NOSANA_CACHE_STORE__MAX_SIZE": "10GiB",
        "NOSANA_CACHE_DOWNLOAD__CONCURRENCY": "4",
        "NOSANA_CACHE_SECURITY__ALLOW_PRIVATE_URLS": "true",
        "NOSANA_CACHE_API__LISTEN": "127.0.0.1:7001,unix:/tmp/a.sock",
        "NOSANA_CACHE_DOCKER__REGISTRY_MIRRORS": '{ "ghcr.io" = "127.0.0.1:5000" }',
        "NOSANA_CACHE_API__TOKEN": "12345",
    }
    settings = load_settings(config, env)
    assert settings.store.ttl == 7200
    assert settings.store.max_size == 10 * 1024**3
    assert settings.download.concurrency == 4
    assert settings.security.allow_private_urls is True
    assert [str(lst) for lst in settings.api.listen] == ["127.0.0.1:7001", "unix:/tmp/a.sock"]
    assert settings.docker.registry_mirrors == {"ghcr.io": "127.0.0.1:5000"}
    assert settings.api.token is not None
    assert settings.api.token.get_secret_value() == "12345"


def test_config_file_named_by_environment(tmp_path: Path) -> None:
    config = write(tmp_path, '[store]\nttl = "3h"\n')
    settings = load_settings(None, ENV | {"NOSANA_CACHE_CONFIG": str(config)})
    assert settings.store.ttl == 3 * 3600


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[store]\nttl = "3x"\n', "store.ttl"),
        ('[store]\nmax_size = "12 potatoes"\n', "store.max_size"),
        ('[store]\nttl_from = "forever"\n', "store.ttl_from"),
        ('[store]\nsweep_interval = "0s"\n', "store.sweep_interval"),
        ('[store]\ncolour = "blue"\n', "store.colour: unknown key"),
        ('[stor]\nttl = "1h"\n', "stor: unknown key"),
        ('[docker]\ngpu = "maybe"\n', "docker.gpu"),
        ('[docker]\npublish_host = "localhost"\n', "docker.publish_host"),
        ('[docker]\nfence = "maybe"\n', "docker.fence"),
        ('[docker]\nfence_allow = ["10.0.0.1/8"]\n', "docker.fence_allow"),
        ('[docker]\nfence_allow = ["lan"]\n', "docker.fence_allow"),
        ('[jobs]\nhealth_interval = "10ms"\n', "jobs.health_interval"),
        ('[jobs]\nready_timeout = "soon"\n', "jobs.ready_timeout"),
        ("[download]\nconcurrency = 0\n", "download.concurrency"),
        ('[download]\nmax_retries = "many"\n', "download.max_retries"),
        ('[api]\nlisten = ["nonsense"]\n', "api.listen"),
        ("[api]\nlisten = []\n", "api.listen"),
        ('[api]\nlisten = ["0.0.0.0:9810"]\n', "api.token"),
        ('[market]\nrequired_resources_url = "https://x/list"\n', "market.required_resources_url"),
        ('[market]\naddress = "not a market"\n', "market.address"),
        ('[huggingface]\nendpoint = "ftp://x"\n', "huggingface.endpoint"),
        ('[s3]\nhosts = { "a.io" = { bucket = "b" } }\n', "s3.hosts.a.io.endpoint_url"),
        ("[security]\nallow_private_urls = 3\n", "security.allow_private_urls"),
        ("store = 3\n", "store"),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), ENV)
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)


def test_bad_environment_values_name_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"store\.ttl \(from NOSANA_CACHE_STORE__TTL\)"):
        load_settings(None, ENV | {"NOSANA_CACHE_STORE__TTL": "soon"})
    with pytest.raises(ConfigError, match="NOSANA_CACHE_STORE__COLOUR: unknown setting"):
        load_settings(None, ENV | {"NOSANA_CACHE_STORE__COLOUR": "blue"})
    with pytest.raises(ConfigError, match="NOSANA_CACHE_TTL: unknown setting"):
        load_settings(None, ENV | {"NOSANA_CACHE_TTL": "1h"})


def test_unreadable_or_invalid_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.toml", ENV)
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[store\n"), ENV)


def test_a_token_allows_exposed_listeners_and_unix_sockets_need_none(tmp_path: Path) -> None:
    exposed = load_settings(write(tmp_path, '[api]\nlisten = ["0.0.0.0:9810"]\ntoken = "t"\n'), ENV)
    assert not exposed.api.listen[0].is_local
    local = load_settings(write(tmp_path, '[api]\nlisten = ["unix:/tmp/x.sock", "[::1]:1"]\n'), ENV)
    assert all(lst.is_local for lst in local.api.listen)


def test_config_show_masks_secrets_and_round_trips(tmp_path: Path) -> None:
    env = ENV | {
        "NOSANA_CACHE_API__TOKEN": "api-secret",
        "HF_TOKEN": "hf-secret",
        "NOSANA_CACHE_S3__SECRET_ACCESS_KEY": "s3-secret",
        "NOSANA_CACHE_STORE__MAX_SIZE": "3GiB",
    }
    settings = load_settings(None, env)
    shown = render_toml(settings)
    assert "-secret" not in shown
    assert shown.count('"***"') == 3
    full = write(tmp_path, render_toml(settings, mask_secrets=False))
    again = load_settings(full, ENV)
    assert again == settings
    assert isinstance(again, Settings)


def test_tables_and_lists_from_the_environment_are_toml_inline_values() -> None:
    env = ENV | {
        "NOSANA_CACHE_API__LISTEN": '["127.0.0.1:7002", "unix:/tmp/b.sock"]',
        "NOSANA_CACHE_S3__HOSTS": '{ "a.io" = { endpoint_url = "http://127.0.0.1:9000", '
        'bucket = "b" } }',
    }
    settings = load_settings(None, env)
    assert [str(lst) for lst in settings.api.listen] == ["127.0.0.1:7002", "unix:/tmp/b.sock"]
    assert settings.s3.hosts["a.io"].bucket == "b"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("NOSANA_CACHE_STOR__TTL", "1h", "NOSANA_CACHE_STOR__TTL: unknown setting"),
        ("NOSANA_CACHE_STORE", "x", "NOSANA_CACHE_STORE: unknown setting"),
        (
            "NOSANA_CACHE_DOCKER__REGISTRY_MIRRORS",
            "{ ghcr.io = ",
            "NOSANA_CACHE_DOCKER__REGISTRY_MIRRORS: not a TOML inline value",
        ),
        (
            "NOSANA_CACHE_S3__HOSTS",
            '{ "a.io" = { bucket = "b" } }',
            "s3.hosts.a.io.endpoint_url (from NOSANA_CACHE_S3__HOSTS)",
        ),
        (
            "NOSANA_CACHE_DOWNLOAD__CONCURRENCY",
            "0",
            "download.concurrency (from NOSANA_CACHE_DOWNLOAD__CONCURRENCY)",
        ),
    ],
)
def test_every_bad_variable_is_named(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, ENV | {variable: value})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_only_upper_case_variables_are_settings() -> None:
    """Variables are matched as the shell spells them; a lower-case one is someone else's."""
    settings = load_settings(None, ENV | {"nosana_cache_store__ttl": "soon"})
    assert settings.store.ttl == 86400


def test_every_problem_is_named_on_one_line(tmp_path: Path) -> None:
    text = '[store]\nttl = "3x"\ncolour = "blue"\n[docker]\ngpu = "maybe"\n'
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), ENV | {"NOSANA_CACHE_STORE__MAX_SIZE": "lots"})
    message = str(caught.value)
    assert "\n" not in message
    for named in ("store.ttl", "store.colour: unknown key", "docker.gpu"):
        assert named in message
    assert "store.max_size (from NOSANA_CACHE_STORE__MAX_SIZE)" in message


def test_the_command_line_file_wins_over_the_variable_and_a_folder_is_no_file(
    tmp_path: Path,
) -> None:
    named = write(tmp_path, '[store]\nttl = "3h"\n')
    other = tmp_path / "other.toml"
    other.write_text('[store]\nttl = "5h"\n')
    settings = load_settings(other, ENV | {"NOSANA_CACHE_CONFIG": str(named)})
    assert settings.store.ttl == 5 * 3600
    with pytest.raises(ConfigError, match="config: cannot read"):
        load_settings(tmp_path, ENV)


def test_the_environment_replaces_a_value_of_the_file_key_by_key(tmp_path: Path) -> None:
    config = write(tmp_path, '[store]\nttl = "never"\nsweep_interval = "2m"\n')
    settings = load_settings(config, ENV | {"NOSANA_CACHE_STORE__TTL": "1h"})
    assert settings.store.ttl == 3600
    assert settings.store.sweep_interval == 120


def test_the_site_store_is_off_by_default_and_named_as_s3_urls() -> None:
    assert load_settings(None, ENV).site.store is None
    env = {
        **ENV,
        "NOSANA_CACHE_SITE__STORE": "s3://rack-cache/nodes/",
        "NOSANA_CACHE_SITE__ENDPOINT_URL": "http://minio.rack:9000/",
        "NOSANA_CACHE_SITE__ACCESS_KEY_ID": "site-key",
        "NOSANA_CACHE_SITE__SECRET_ACCESS_KEY": "site-secret",
        "NOSANA_CACHE_SITE__SHARE_PRIVATE": "true",
    }
    site = load_settings(None, env).site
    assert site.store == "s3://rack-cache/nodes"
    assert site.endpoint_url == "http://minio.rack:9000"
    assert site.share_private is True
    assert load_settings(None, {**ENV, "NOSANA_CACHE_SITE__STORE": "s3://bare"}).site.store == (
        "s3://bare"
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"NOSANA_CACHE_SITE__STORE": "https://bucket/prefix"}, "site.store"),
        ({"NOSANA_CACHE_SITE__STORE": "s3:///prefix"}, "site.store"),
        ({"NOSANA_CACHE_SITE__STALL_TIMEOUT": "0s"}, "site.stall_timeout"),
        ({"NOSANA_CACHE_SITE__ACCESS_KEY_ID": "half"}, "site.access_key_id"),
        ({"NOSANA_CACHE_SITE__SECRET_ACCESS_KEY": "half"}, "site.access_key_id"),
    ],
)
def test_bad_site_settings_name_their_key(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_settings(None, {**ENV, **env})


def test_config_show_masks_the_site_stores_secret() -> None:
    env = {
        **ENV,
        "NOSANA_CACHE_SITE__SECRET_ACCESS_KEY": "hush",
        "NOSANA_CACHE_SITE__ACCESS_KEY_ID": "k",
    }
    text = render_toml(load_settings(None, env), mask_secrets=True)
    assert "hush" not in text
    assert 'secret_access_key = "***"' in text.split("[site]")[1]


@pytest.mark.parametrize(
    "value", ['["10.1.0.0/16", "fd00::/8"]', "10.1.0.0/16, fd00::/8", "10.1.0.0/16,fd00::/8"]
)
def test_the_fence_allows_cidrs_from_a_list_or_one_string(value: str) -> None:
    settings = load_settings(None, ENV | {"NOSANA_CACHE_DOCKER__FENCE_ALLOW": value})
    assert [str(net) for net in settings.docker.fence_allow] == ["10.1.0.0/16", "fd00::/8"]
    assert settings.docker.fence == "auto"


def test_the_nodes_engine_is_the_daemons_own_unless_docker_host_is_given(tmp_path: Path) -> None:
    podman = {"NOSANA_CACHE_NODE__ENGINE": "/run/podman/podman.sock"}
    assert load_settings(None, {**ENV, **podman}).docker.host == "unix:///run/podman/podman.sock"
    named = {**ENV, "NOSANA_CACHE_NODE__ENGINE": "unix:///run/podman/podman.sock"}
    assert load_settings(None, named).docker.host == "unix:///run/podman/podman.sock"
    given = [
        {"DOCKER_HOST": "unix:///run/docker.sock"},
        {"NOSANA_CACHE_DOCKER__HOST": "unix:///run/docker.sock"},
    ]
    for env in given:
        assert load_settings(None, {**ENV, **podman, **env}).docker.host == env[next(iter(env))]
    path = write(tmp_path, '[docker]\nhost = "unix:///run/docker.sock"\n')
    assert load_settings(path, {**ENV, **podman}).docker.host == "unix:///run/docker.sock"
    path = write(tmp_path, '[node]\nengine = "unix:///run/podman/podman.sock"\n')
    assert load_settings(path, ENV).docker.host == "unix:///run/podman/podman.sock"
    assert load_settings(None, ENV).docker.host == "unix:///var/run/docker.sock"
