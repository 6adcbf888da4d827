"""Reading requests: a JSON body, a boolean query parameter. (Responses are `models`.)"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..errors import InvalidInput, TooLarge
from ..util.limits import API_BODY_BYTES


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, or a 400 that says why not; a body past `api.body_bytes` is
    a 413, from its `Content-Length` before anything is read (else once it has been read
    that far)."""
    try:
        return json.loads(await _body(request))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidInput("the body is not JSON this daemon accepts: nested too deeply") from exc


async def _body(request: web.Request) -> bytes:
    declared = request.content_length
    too_large = API_BODY_BYTES.over(declared or 0, "the body")
    if too_large:
        raise TooLarge(too_large)
    pieces: list[bytes] = []
    size = 0
    async for piece in request.content.iter_any():
        size += len(piece)
        too_large = API_BODY_BYTES.over(size, "the body")
        if too_large:
            raise TooLarge(too_large)
        pieces.append(piece)
    return b"".join(pieces)


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
