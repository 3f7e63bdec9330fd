"""What the definition file models (growth paths, playbooks) share: their base model and the
fields every kind writes the same way."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

Identifier = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$", strip_whitespace=True)
]
"""An id an operator writes: lowercase, digits, ``_`` and ``-``, up to 63 characters."""
Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Duration = Annotated[str, StringConstraints(min_length=2, max_length=40)]
"""An ISO 8601 duration as written (each model checks its own bounds)."""


class FileModel(BaseModel):
    """A part of a definition file: unknown keys are refused, values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)
