"""Reading requests: a JSON body, a boolean query parameter. (Responses are `models`.)"""

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


_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
FLAG_VALUES = list(_FLAGS)
"""What a boolean query parameter may be (the OpenAPI document lists the same)."""


def flag(request: web.Request, name: str) -> bool:
    """A boolean query parameter: absent is false; a value that is not one is a 400 (read
    leniently, `?follow=` would quietly mean false, and a typo the opposite of what was
    meant)."""
    value = request.query.get(name)
    if value is None:
        return False
    try:
        return _FLAGS[value.lower()]
    except KeyError:
        raise InvalidInput(f"{name} is true or false, not {value!r}") from None
