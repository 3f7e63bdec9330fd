"""The node engine's errors."""

from __future__ import annotations

from shared.errors import Conflict, Invalid, MilepostError, NotFound


class NodeEngineError(MilepostError):
    """Root of the errors raised by the node engine."""


class ExpressionError(NodeEngineError):
    """A condition that does not compile: unknown name, forbidden construct, bad argument.

    ``offset`` is the 0-based index in the expression's text where the problem is, when known.
    """

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class ConditionFailed(NodeEngineError):
    """A compiled condition failed on one account's data (for example comparing a text with a
    number). It is recorded on the account; the partition goes on."""


class PathNotFound(NodeEngineError, NotFound):
    """No published growth path (or version) by that id in the workspace."""

    field = "path_id"


class PathRejected(NodeEngineError, Invalid):
    """A growth path cannot be published (identical to the current version, or a migration
    policy that does not fit the versions). ``field`` names the request field at fault."""

    field = "source"


class PathUnchanged(Conflict, PathRejected):
    """The file has the same content as the path's current version: nothing to publish."""
