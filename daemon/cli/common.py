"""What every command shares: the options of the group, the client, `--json` output."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from ..client import Client
from ..settings import Settings, settings_from_environment


@dataclass
class Options:
    config_path: Path | None
    api_url: str | None
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = settings_from_environment(self.config_path)
        return self._settings

    def client(self) -> Client:
        """A client of the daemon at `--api`, else at the config's first unix or TCP listener."""
        settings = self.settings()
        token = settings.api.token.get_secret_value() if settings.api.token else None
        if self.api_url:
            return Client(self.api_url, token=token)
        listeners = sorted(settings.api.listen, key=lambda lst: lst.unix_path is None)
        return Client(listeners[0].url(), token=token)


pass_options = click.make_pass_decorator(Options)


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
        return group.command(name)(pass_options(wrapper))

    return decorate


def is_terminal() -> bool:
    return os.isatty(1)
