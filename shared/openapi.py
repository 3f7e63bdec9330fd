"""Document request bodies that endpoints read themselves (to enforce limits before parsing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

REF_TEMPLATE = "#/components/schemas/{model}"


def body_of(model: type[BaseModel], *media_types: str) -> dict[str, Any]:
    """``openapi_extra`` for an endpoint whose body is ``model`` in the given media types."""
    schema = {"$ref": REF_TEMPLATE.format(model=model.__name__)}
    return {
        "requestBody": {
            "required": True,
            "content": {
                media: {"schema": schema} for media in media_types or ("application/json",)
            },
        }
    }


def register_body_models(app: FastAPI, models: Sequence[type[BaseModel]]) -> None:
    """Add ``models`` (and what they reference) to the app's OpenAPI components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        _, definitions = models_json_schema(
            [(m, "validation") for m in models], ref_template=REF_TEMPLATE
        )
        components = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in definitions.get("$defs", {}).items():
            components.setdefault(name, schema)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
