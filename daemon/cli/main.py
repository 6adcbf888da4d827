"""The command tree, and the one place where errors become exit codes and one-line messages."""

from __future__ import annotations

import sys
from typing import Any

import click

from .. import __version__
from ..errors import ConfigError, NosanaCacheError
from ..settings import render_toml
from ..util.units import human_size
from . import render
from .client import ApiError, DaemonUnreachable
from .common import Options, client_command, global_options, pass_options
from .fence import fence
from .jobs import jobs
from .registry import registry
from .resources import resources

EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3


class _Cli(click.Group):
    """Maps the daemon's error tree to exit codes, with one line on stderr each."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            _fail(f"config error: {exc}", EXIT_USAGE)
        except DaemonUnreachable as exc:
            _fail(str(exc), EXIT_UNREACHABLE)
        except ApiError as exc:
            _fail(str(exc), EXIT_FAILED)
        except NosanaCacheError as exc:
            _fail(str(exc), EXIT_FAILED)


def _fail(message: str, code: int) -> None:
    click.echo(f"nosana-cache: {message}", err=True)
    sys.exit(code)


@global_options
@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nosana-cache")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Node-side cache of Docker images and models for Nosana GPU hosts.

    --config and --api work before or after any command; given twice, the later one wins.

    \b
    Examples:
      nosana-cache serve                      run the daemon on embedded defaults
      nosana-cache status                     what the running daemon is doing
      nosana-cache config show --config /etc/nosana-cache.toml
    """
    ctx.ensure_object(Options)


@global_options
@cli.command()
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@pass_options
def serve(options: Options, log_level: str) -> None:
    """Run the daemon in the foreground until SIGTERM or SIGINT."""
    from ..logs import configure_logging
    from ..service import run_until_signalled

    settings = options.settings()
    configure_logging(level=log_level)
    run_until_signalled(settings)


@global_options
@cli.group()
def config() -> None:
    """Inspect the configuration."""


@global_options
@config.command("show")
@click.option("--show-secrets", is_flag=True, help="Print secrets instead of ***.")
@pass_options
def config_show(options: Options, show_secrets: bool) -> None:
    """Print the effective configuration (file, environment and defaults) as TOML."""
    click.echo(render_toml(options.settings(), mask_secrets=not show_secrets), nl=False)


@client_command(cli)
def status(options: Options) -> Any:
    """Summary of the running daemon: store, Docker, market, transfers."""
    body = options.client().get("/v1/status")
    return body, render.status(body)


@client_command(cli)
@click.option(
    "--site",
    is_flag=True,
    help="Sweep the site store (site.store) instead: manifests past their ttl, blobs no fresh "
    "manifest names. For buckets without lifecycle rules; run it from one node.",
)
def gc(options: Options, site: bool) -> Any:
    """Sweep now: expired entries nothing holds, then blobs nothing references."""
    if site:
        body = options.client().request("POST", "/v1/site/gc", timeout=3600)
        text = (
            f"site store: removed {body['manifests_removed']} manifests and "
            f"{body['blobs_removed']} blobs, freed {human_size(body['bytes_freed'])}; "
            f"{body['claims_removed']} dead claims, {body['uploads_aborted']} abandoned uploads"
        )
        return body, text
    body = options.client().request("POST", "/v1/gc", timeout=3600)
    text = (
        f"removed {body['entries_removed']} entries and {body['blobs_removed']} blobs, "
        f"freed {human_size(body['bytes_freed'])}"
    )
    return body, text


@client_command(cli)
def verify(options: Options) -> Any:
    """Re-hash every blob; corrupt ones are deleted and their entries fetched again later."""
    body = options.client().request("POST", "/v1/verify", timeout=24 * 3600)
    text = f"checked {body['blobs_checked']} blobs ({human_size(body['bytes_checked'])}): "
    damage = len(body["corrupt"]) + len(body["missing"])
    if not damage:
        return body, text + "all intact"
    text += f"{len(body['corrupt'])} corrupt, {len(body['missing'])} missing; "
    text += f"entries to fetch again: {', '.join(body['entries_failed']) or 'none'}"
    return body, text, EXIT_FAILED


@global_options
@cli.command()
@pass_options
def health(options: Options) -> None:
    """Exit 0 if the daemon answers /healthz (3 if it does not): for container health checks."""
    options.client().get("/healthz")


@global_options
@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script.

    \b
    Examples:
      nosana-cache completion bash > /etc/bash_completion.d/nosana-cache
      eval "$(nosana-cache completion zsh)"
    """
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None
    script = completer(cli, {}, "nosana-cache", "_NOSANA_CACHE_COMPLETE").source()
    click.echo(script)


cli.add_command(resources)
cli.add_command(jobs)
cli.add_command(fence)
cli.add_command(registry)


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="nosana-cache", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code or 0
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_FAILED
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_FAILED
    return 0
