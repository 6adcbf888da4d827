"""`--config` and `--api` before or after the command, on every level of the command tree.

The CLI runs in-process through `main()`, as the console script does; the only daemons it
is sent to are refused loopback ports, so the exit code and message say which `--api` won.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.shell_completion import BashComplete

from daemon.cli import main
from daemon.cli.main import cli

REFUSED = "http://127.0.0.1:1"  # nothing listens on port 1: connection refused at once
ALSO_REFUSED = "http://127.0.0.1:2"


def command_paths(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and group of the tree, as the words that name it."""
    yield path
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from command_paths(command, (*path, name))
        else:
            yield (*path, name)


ALL_COMMANDS = list(command_paths(cli))


def write_config(tmp_path: Path, name: str, ttl: str) -> Path:
    path = tmp_path / name
    path.write_text(f'[store]\npath = "{tmp_path}/store"\nttl = "{ttl}"\n')
    return path


def test_the_tree_is_walked_whole() -> None:
    assert ("serve",) in ALL_COMMANDS
    assert ("config", "show") in ALL_COMMANDS
    assert ("jobs", "submit") in ALL_COMMANDS
    assert ("resources",) in ALL_COMMANDS
    assert len(ALL_COMMANDS) > 15


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "nosana-cache")
def test_every_command_takes_and_shows_the_global_options(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*path, "--help"]) == 0
    shown = capsys.readouterr().out
    assert "--config FILE" in shown
    assert "--api URL" in shown


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "{b}", "config", "show"],
        ["config", "show", "--config", "{b}"],
        ["config", "--config", "{b}", "show"],
        ["--config", "{a}", "config", "show", "--config", "{b}"],
        ["--config", "{a}", "config", "--config", "{b}", "show"],
        ["config", "show", "--config", "{a}", "--config", "{b}"],
    ],
)
def test_config_works_in_every_position_and_the_last_one_wins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    a = write_config(tmp_path, "a.toml", "3h")
    b = write_config(tmp_path, "b.toml", "5h")
    assert main([arg.format(a=a, b=b) for arg in argv]) == 0
    assert 'ttl = "5h"' in capsys.readouterr().out


def test_a_bad_config_after_the_command_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--config", str(tmp_path / "absent.toml")]) == 2
    assert "file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('[store]\nttl = "forever"\n')
    assert main(["--config", str(tmp_path / "absent.toml"), "serve", "--config", str(bad)]) == 2
    assert "store.ttl" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "reached"),
    [
        (["status", "--api", REFUSED], REFUSED),
        (["--api", REFUSED, "status"], REFUSED),
        (["--api", ALSO_REFUSED, "status", "--api", REFUSED], REFUSED),
        (["resources", "ls", "--api", REFUSED], REFUSED),
        (["resources", "--api", ALSO_REFUSED, "ls", "--api", REFUSED], REFUSED),
        (["--api", REFUSED, "resources", "ls", "--json"], REFUSED),
        (["jobs", "show", "x", "--api", REFUSED, "--json"], REFUSED),
        (["health", "--api", ALSO_REFUSED, "--api", REFUSED], REFUSED),
    ],
)
def test_api_works_in_every_position_and_the_last_one_wins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], reached: str
) -> None:
    config = ["--config", str(write_config(tmp_path, "c.toml", "1h"))]
    assert main([*config, *argv]) == 3
    assert f"no daemon answers at {reached}" in capsys.readouterr().err


def test_jobs_submit_takes_the_api_between_its_own_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = tmp_path / "job.json"
    definition.write_text('{"version": "0.1", "type": "container", "ops": []}')
    argv = ["jobs", "submit", str(definition), "--api", REFUSED, "--follow"]
    assert main(["--api", ALSO_REFUSED, *argv]) == 3
    assert f"no daemon answers at {REFUSED}" in capsys.readouterr().err


def test_a_global_option_without_its_value_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["status", "--api"]) == 2
    assert "'--api' requires an argument" in capsys.readouterr().err


def complete(words: list[str], incomplete: str) -> list[tuple[str, str]]:
    completer = BashComplete(cli, {}, "nosana-cache", "_NOSANA_CACHE_COMPLETE")
    return [(item.type, item.value) for item in completer.get_completions(words, incomplete)]


def test_shell_completion_offers_the_global_options_after_the_command() -> None:
    assert ("plain", "--config") in complete(["serve"], "--c")
    assert ("plain", "--api") in complete(["resources", "ls"], "--a")
    assert ("file", "") in complete(["jobs", "submit", "job.json", "--config"], "")
    after_global = complete(["--api", REFUSED, "jobs"], "s")
    assert [value for _, value in after_global] == ["show", "stop", "submit"]
