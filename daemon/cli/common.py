"""What every command shares: the global options, the client, `--json` output."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from ..settings import Settings, settings_from_environment
from .client import Client

CommandT = TypeVar("CommandT", bound=click.Command)


@dataclass
class Options:
    """The global options of one invocation, wherever on the command line they were given."""

    config_path: Path | None = None
    api_url: str | None = None
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = settings_from_environment(self.config_path)
        return self._settings

    def use_config(self, path: Path) -> None:
        self.config_path = path
        self._settings = None  # read again from the file given last

    def client(self) -> Client:
        """A client of the daemon at `--api`, else at the config's first unix or TCP listener."""
        settings = self.settings()
        token = settings.api.token.get_secret_value() if settings.api.token else None
        if self.api_url:
            return Client(self.api_url, token=token)
        listeners = sorted(settings.api.listen, key=lambda lst: lst.unix_path is None)
        return Client(listeners[0].url(), token=token)


pass_options = click.make_pass_decorator(Options, ensure=True)


def _take_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.ensure_object(Options).use_config(value)


def _take_api(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(Options).api_url = value


def global_options(command: CommandT) -> CommandT:
    """Give a command (or group) `--config` and `--api`, listed after its own options.

    Click binds an option to the command whose name it follows, so the same two options on
    every level are what let `nosana-cache serve --config X` and `nosana-cache --config X
    serve` mean the same. Every level writes into the invocation's one `Options`, in the
    order click parses them (a group before its subcommand, left to right within one), so
    the one given last wins, as a repeated option does: a wrapper or alias that passes
    `--api` can still be overridden by typing another one after the command.
    """
    command.params += [
        click.Option(
            ["--config", "config_path"],
            type=click.Path(dir_okay=False, path_type=Path),
            expose_value=False,
            callback=_take_config,
            help="TOML config file (default: $NOSANA_CACHE_CONFIG, else embedded defaults).",
        ),
        click.Option(
            ["--api", "api_url"],
            metavar="URL",
            expose_value=False,
            callback=_take_api,
            help="Daemon to talk to: http://HOST:PORT or unix:/path (default: from api.listen).",
        ),
    ]
    return command


def client_command(
    group: click.Group, name: str | None = None
) -> Callable[[Callable[..., Any]], click.Command]:
    """A command that asks the daemon; it returns `(json_body, text)` or `(json_body, text,
    exit_code)`, and `--json` picks which of the two is printed."""

    def decorate(fn: Callable[..., Any]) -> click.Command:
        @functools.wraps(fn)
        def wrapper(options: Options, as_json: bool, **kwargs: Any) -> None:
            result = fn(options, **kwargs)
            if result is None:
                return
            body, text, *code = result
            if as_json:
                click.echo(json.dumps(body, indent=2))
            elif text:
                click.echo(text, err=bool(code and code[0]))
            if code and code[0]:
                raise SystemExit(code[0])

        wrapper = click.option(
            "--json", "as_json", is_flag=True, help="Print the daemon's JSON answer."
        )(wrapper)
        return global_options(group.command(name)(pass_options(wrapper)))

    return decorate


def is_terminal() -> bool:
    return os.isatty(1)
