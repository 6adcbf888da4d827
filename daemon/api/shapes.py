"""Reading requests: a JSON body, a boolean query flag. (Responses are `models`.)"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..errors import InvalidInput


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, or a 400 that says why not."""
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidInput("the body is not JSON this daemon accepts: nested too deeply") from exc


def truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")
