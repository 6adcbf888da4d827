"""What a `/hf` request asks, read without trusting it: its revision and a paths-info body.

Requests come from job containers too, and whatever they send must end in the Hub's 400 (an
`InvalidInput`, answered by problems.py), never in a 500 and a traceback in the log: a body
is bounded in size before it is read whole, its JSON in depth before it is parsed (a document
nested 100,000 deep would exhaust the parser's recursion), its numbers in digits (Python's
`int()` refuses more than 4,300), and every value is checked for its type.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..errors import InvalidInput
from ..sources.hub_upstream import refuse_unsafe_revision
from .tree import MAX_PATHS

MAX_BODY = 1024 * 1024
"""Bytes of a paths-info body: ten thousand paths of about a hundred characters."""
MAX_DEPTH = 8
"""Nesting of a paths-info JSON body (`{"paths": [...]}` is 2)."""
MAX_DIGITS = 20
"""Digits of a number in a JSON body (none is expected there at all)."""
_FORMS = ("", "application/x-www-form-urlencoded")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)
"""A string, or what is left of an unterminated one: every match ends where the next may
start, so taking strings out costs one pass over the body, whatever it holds."""
_INNERMOST = re.compile(r"\[[^\[\]{}]*\]|\{[^\[\]{}]*\}")


def revision_of(request: web.Request) -> str:
    """The request's revision (`main` when it names none), if it can be one."""
    revision = request.match_info.get("rev", "main")
    printable = revision.isprintable() and not any(c.isspace() for c in revision)
    if not revision or len(revision) > 255 or not printable:
        raise InvalidInput(f"{revision!r} is not a revision")
    refuse_unsafe_revision(revision)
    return revision


async def asked_paths(request: web.Request) -> list[str]:
    """`paths` of a form (what huggingface_hub sends) or of a JSON object."""
    if request.content_type == "multipart/form-data":
        form = await _multipart(request)
        asked: Any = form.getall("paths", [])
    else:
        body = await _body(request)
        if request.content_type == "application/json":
            document = _json(body)
            asked = document.get("paths") if isinstance(document, dict) else None
            asked = [asked] if isinstance(asked, str) else asked
        elif request.content_type in _FORMS:
            asked = [value for key, value in _form(body) if key == "paths"]
        else:
            asked = []  # as aiohttp reads a body of another type: no fields
    if not isinstance(asked, list) or not all(isinstance(p, str) for p in asked):
        raise InvalidInput("`paths` must be a list of paths")
    if len(asked) > MAX_PATHS:
        raise InvalidInput(f"at most {MAX_PATHS} paths at once")
    return asked


async def _body(request: web.Request) -> bytes:
    """The whole body, at most `MAX_BODY` bytes (a bigger one is refused before it is read,
    or as soon as it passes the bound)."""
    if (request.content_length or 0) > MAX_BODY:
        raise _too_big()
    chunks, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > MAX_BODY:
            raise _too_big()
        chunks.append(chunk)
    return b"".join(chunks)


async def _multipart(request: web.Request) -> Any:
    if (request.content_length or 0) > MAX_BODY:
        raise _too_big()
    try:
        return await request.post()
    except (ValueError, HttpProcessingError) as exc:  # a malformed multipart body
        raise InvalidInput(f"the form is not well formed: {_first_line(exc)}") from exc


def _form(body: bytes) -> list[tuple[str, str]]:
    try:
        text = body.decode()
        return parse_qsl(
            text, keep_blank_values=True, errors="strict", max_num_fields=MAX_PATHS + 16
        )
    except ValueError as exc:  # not UTF-8, or too many fields
        raise InvalidInput(f"the form is not one this endpoint reads: {exc}") from exc


def _json(body: bytes) -> Any:
    try:
        text = body.decode()
        if not _shallow(text):
            raise ValueError(f"nested more than {MAX_DEPTH} deep, or unbalanced")
        return json.loads(text, parse_int=_integer, parse_constant=_constant)
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidInput(f"the body is not a JSON object this endpoint reads: {exc}") from exc


def _shallow(text: str) -> bool:
    """Whether the document nests at most `MAX_DEPTH` deep: outside its strings, brackets
    are taken off the innermost pair first, one level a pass (each pass at regex speed)."""
    rest = _STRING.sub("", text)
    for _level in range(MAX_DEPTH):
        rest, taken = _INNERMOST.subn("", rest)
        if not taken:
            break
    return not any(bracket in rest for bracket in "[]{}")


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"a number of {len(text)} digits")
    return int(text)


def _constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _too_big() -> InvalidInput:
    return InvalidInput(f"a paths-info body is at most {MAX_BODY} bytes")
