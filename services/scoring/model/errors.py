"""Errors of the learned churn model."""

from __future__ import annotations

from services.scoring.errors import ScoringError


class NotEnoughHistory(ScoringError):
    """The history cannot train or backtest a model (too few snapshots, one class only, a
    cut date with nothing on one side); the message says what is missing."""


class ModelFileInvalid(ScoringError):
    """A model file that does not load; the message names the file and the field."""


class ModelMismatch(ScoringError):
    """A model used with metric definitions other than the ones it was trained on."""


class AccountNotFound(ScoringError):
    """No events for that account in the history."""


class MissingExtra(ScoringError):
    """Training needs scikit-learn, which is not installed (``pip install 'milepost[ml]'``)."""
