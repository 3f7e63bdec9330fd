"""The scoring service's errors."""

from __future__ import annotations

from shared.errors import MilepostError


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


class DefinitionsUnchanged(ScoringError):
    """The file has the same content as the workspace's current metric definitions."""


class DefinitionsNotFound(ScoringError):
    """The workspace has no published metric definitions (or not that version)."""


class AccountNotScored(ScoringError):
    """No events have been scored for that account in the workspace."""
