"""Logging: structlog to stdout, JSON lines when stdout is not a terminal, console otherwise.

The standard library's loggers (aiohttp, botocore, docker, apscheduler) are routed through the
same processors, so a journal or a log shipper sees one format. Events are named like
`blob.stored` or `fetch.failed` with key-value fields; context such as `job_id` or
`request_id` is bound with `structlog.contextvars`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

_NOISY = {
    "aiohttp.access": logging.WARNING,
    "botocore": logging.WARNING,
    "aiobotocore": logging.WARNING,
    "urllib3": logging.WARNING,
    "docker": logging.WARNING,
    "apscheduler": logging.WARNING,
    "asyncio": logging.WARNING,
    "httpx": logging.WARNING,
    "huggingface_hub": logging.WARNING,
}


def configure_logging(
    *, level: str = "info", stream: TextIO | None = None, json: bool | None = None
) -> None:
    """Configure structlog and the stdlib root logger once for the whole process."""
    stream = stream or sys.stdout
    as_json = not stream.isatty() if json is None else json
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if as_json else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, noisy_level in _NOISY.items():
        logging.getLogger(name).setLevel(max(noisy_level, root.level))


def _identity(_logger: Any, _name: str, event: Any) -> Any:
    return event


def get_logger(name: str) -> Any:
    """A bound structlog logger; `name` is the module, as with `logging.getLogger`."""
    return structlog.stdlib.get_logger(name)
