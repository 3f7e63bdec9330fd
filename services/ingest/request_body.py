"""Read a JSON request body defensively: type, encoding, size, gzip and depth limits.

Every refusal is a :class:`RequestRejected` naming what was wrong and the limit; nothing
here can raise anything else for hostile input (gzip bombs, deep nesting, bad UTF-8).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request

from services.ingest.errors import Problem, RequestRejected


@dataclass(frozen=True, slots=True)
class BodyLimits:
    max_bytes: int
    max_depth: int


async def read_json_body(request: Request, limits: BodyLimits, media_types: frozenset[str]) -> Any:
    """The parsed JSON body, or :class:`RequestRejected` (413, 415 or 400)."""
    media_type = _media_type(request)
    if media_type not in media_types:
        raise RequestRejected(
            415,
            [
                Problem(
                    "Content-Type",
                    "unsupported_media_type",
                    f"expected {' or '.join(sorted(media_types))}, got {media_type or 'nothing'}",
                )
            ],
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise RequestRejected(
            415,
            [Problem("Content-Encoding", "unsupported_encoding", "only gzip is supported")],
        )
    raw = await _read_capped(request, limits.max_bytes)
    if encoding == "gzip":
        raw = _gunzip_capped(raw, limits.max_bytes)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestRejected(
            400, [Problem("body", "invalid_encoding", f"body is not UTF-8 (byte {exc.start})")]
        ) from exc
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if _PARSER_DEPTH_ERROR.search(str(exc)):
            raise _too_deep(limits.max_depth) from exc
        raise RequestRejected(400, [Problem("body", "invalid_json", str(exc))]) from exc
    if nesting_depth(document, limits.max_depth) > limits.max_depth:
        raise _too_deep(limits.max_depth)
    return document


def nesting_depth(document: Any, stop_after: int) -> int:
    """Depth of nested objects and arrays, counted up to ``stop_after + 1``.

    Level by level, keeping only the containers of the next level: scalars, which are most
    of a document, cost one type check each.
    """
    if type(document) not in _CONTAINERS:
        return 0
    depth = 1
    level = [document]
    while depth <= stop_after:
        level = [
            child
            for value in level
            for child in (value.values() if type(value) is dict else value)
            if type(child) in _CONTAINERS
        ]
        if not level:
            return depth
        depth += 1
    return depth


_PARSER_DEPTH_ERROR = re.compile("depth limit|recursion", re.IGNORECASE)
"""How orjson says a document nests past its own limit (1,024 levels)."""
_CONTAINERS = frozenset({dict, list})
"""What ``orjson.loads`` makes of JSON objects and arrays (exactly these types)."""


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def _read_capped(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > max_bytes:
            raise _too_large(max_bytes)
    return bytes(chunks)


def _gunzip_capped(compressed: bytes, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(compressed, max_bytes + 1)
    except zlib.error as exc:
        raise RequestRejected(400, [Problem("body", "invalid_gzip", str(exc))]) from exc
    if len(inflated) > max_bytes or inflater.unconsumed_tail:
        raise RequestRejected(
            413,
            [
                Problem(
                    "body",
                    "decompressed_too_large",
                    f"body inflates past {max_bytes} bytes",
                    max_bytes,
                )
            ],
        )
    if not inflater.eof:
        raise RequestRejected(400, [Problem("body", "invalid_gzip", "truncated gzip stream")])
    return inflated


def _too_large(max_bytes: int) -> RequestRejected:
    return RequestRejected(
        413, [Problem("body", "too_large", f"body exceeds {max_bytes} bytes", max_bytes)]
    )


def _too_deep(max_depth: int) -> RequestRejected:
    return RequestRejected(
        400,
        [Problem("body", "too_deep", f"JSON nests deeper than {max_depth} levels", max_depth)],
    )
