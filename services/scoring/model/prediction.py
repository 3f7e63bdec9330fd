"""One account's churn probability at a date, explained. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from services.scoring.definitions import MetricDefinitions
from services.scoring.model.errors import AccountNotFound, ModelMismatch
from services.scoring.model.features import readings
from services.scoring.model.history import History
from services.scoring.model.predictor import Explanation
from services.scoring.model.training import ChurnModel


@dataclass(frozen=True, slots=True)
class Prediction:
    """``explanation`` of the account's features at ``at`` (from its events before it);
    ``cancelled``: the account stands cancelled then, so the figure is moot."""

    workspace_id: str
    account_id: str
    at: int
    cancelled: bool
    explanation: Explanation


def predict_account(
    model: ChurnModel,
    history: History,
    definitions: MetricDefinitions,
    account_id: str,
    *,
    at: int | None = None,
    workspace_id: str | None = None,
) -> Prediction:
    """Predict for ``account_id`` at ``at`` (default: just after the history's last event).

    Raises :class:`ModelMismatch` when ``definitions`` are not the ones the model was
    trained with, :class:`AccountNotFound` when the history has no such account (or has it
    in several workspaces and none was named).
    """
    if definitions.digest != model.metadata.metrics_digest:
        raise ModelMismatch(
            f"the model was trained with metric definitions {model.metadata.metrics_digest[:12]}, "
            f"these are {definitions.digest[:12]}: pass the same --metrics file as for training"
        )
    keys = [
        key
        for key in history.accounts
        if key[1] == account_id and (workspace_id is None or key[0] == workspace_id)
    ]
    if not keys:
        raise AccountNotFound(f"no events for account {account_id!r} in the history")
    if len(keys) > 1:
        raise AccountNotFound(
            f"account {account_id!r} is in workspaces {', '.join(sorted(k[0] for k in keys))}: "
            "name one"
        )
    account = history.accounts[keys[0]]
    when = history.end + 1 if at is None else at
    [(_, values)], _invalid = readings(account, definitions, [when])
    return Prediction(
        keys[0][0],
        account_id,
        when,
        account.cancelled_at(when),
        model.predictor.explain(values),
    )
