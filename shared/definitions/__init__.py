"""Versioned YAML definition files (growth paths, metric definitions, playbooks) loaded
into pydantic models, with every problem reported as ``file:line:column: field: message``.

See :mod:`shared.definitions.loader` for how models report their own problems.
"""

from shared.definitions.digest import definition_digest
from shared.definitions.document import MAX_DEFINITION_BYTES
from shared.definitions.loader import load_definition
from shared.definitions.problems import (
    DefinitionError,
    DefinitionInvalid,
    DefinitionProblem,
    Location,
)

__all__ = [
    "MAX_DEFINITION_BYTES",
    "DefinitionError",
    "DefinitionInvalid",
    "DefinitionProblem",
    "Location",
    "definition_digest",
    "load_definition",
]
