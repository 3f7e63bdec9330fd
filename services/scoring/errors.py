"""The scoring service's errors."""

from __future__ import annotations

from shared.errors import Conflict, MilepostError, NotFound


class ScoringError(MilepostError):
    """Root of the errors raised by the scoring service."""


class MetricUnknown(ScoringError):
    """No metric by that id in the workspace's definitions."""


class UnsupportedQuery(ScoringError):
    """A question the metric store cannot answer, such as a baseline of a last-seen metric."""


class EventValueInvalid(ScoringError):
    """An event whose property or fact a metric adds up is not a finite number."""


class StoreCorrupt(ScoringError):
    """Stored metric bytes that do not decode; rebuild the account's metrics by replay."""


class DefinitionsUnchanged(ScoringError, Conflict):
    """The file has the same content as the workspace's current metric definitions."""

    field = "source"


class DefinitionsNotFound(ScoringError, NotFound):
    """The workspace has no published metric definitions (or not that version)."""

    field = "version"


class AccountNotScored(ScoringError, NotFound):
    """No events have been scored for that account in the workspace."""

    field = "account_id"
