"""A fingerprint of a definition's content, to refuse publishing the same version twice."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import date

from shared.definitions.document import parse_document


def definition_digest(text: str, *, source: str = "<definition>") -> str:
    """SHA-256 hex of the parsed data as canonical JSON (sorted keys, no spaces).

    Comments, layout, quoting, key order and anchors do not change it; any change to a
    value does. Text that does not parse raises :class:`DefinitionError` naming ``source``.
    """
    data = parse_document(source, text).data
    canonical = json.dumps(
        _plain(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_scalar
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _plain(value: object) -> object:
    """Mapping keys as text (JSON's own rule, applied before sorting), recursively."""
    if isinstance(value, dict):
        return {_key(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _key(key: object) -> str:
    return key if isinstance(key, str) else json.dumps(key, default=_scalar)


def _scalar(value: object) -> str:
    if isinstance(value, date):  # datetime included
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"no canonical form for {type(value).__name__}")
