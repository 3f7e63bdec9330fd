"""Place one account in its growth path's tiers from its measured tier figure.

The ladder and its hysteresis are the growth path's (the engine places tiers with the same
:meth:`~shared.contracts.tiers.TierLadder.move`); the metrics file's ``tiers`` section
names the figure (metric and window) scoring measures it with.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

import msgspec

from services.scoring.definitions.compiled import TierSource
from services.scoring.errors import ScoringError
from shared.contracts.scores import ScoreKind, ScoreRecord
from shared.contracts.tiers import TierLadder


class TierValueInvalid(ScoringError):
    """A tier figure that is not a finite number; the account keeps its tier."""


class TierChange(msgspec.Struct, frozen=True, gc=False):
    """An account moving between tiers of ``path`` (``None``: no tier), and why: its
    ``figure`` (metric over window) was ``value`` and crossed ``threshold``: the ``enter_at``
    reached on a placement or promotion, the ``exit_below`` fallen under on a demotion."""

    path: str
    from_tier: str | None
    to_tier: str | None
    direction: Literal["placement", "promotion", "demotion"]
    metric: str
    window_days: int | None
    figure: str
    label: str
    value: float
    threshold: float
    benefits: tuple[tuple[str, str], ...]
    """(id, name) of the new tier's benefits."""

    @property
    def sentence(self) -> str:
        """The change as a CSM reads it."""
        crossed = "fell below" if self.direction == "demotion" else "reached"
        return (
            f"{self.direction.capitalize()}: {self.from_tier or 'no tier'} -> "
            f"{self.to_tier or 'no tier'}; {self.label} was {self.value:g}, "
            f"which {crossed} {self.threshold:g}."
        )

    def explanation(self) -> dict[str, Any]:
        """The JSON explanation of a ``tier_changed`` score event."""
        return {
            "path": self.path,
            "from": self.from_tier,
            "to": self.to_tier,
            "direction": self.direction,
            "metric": self.metric,
            "window_days": self.window_days,
            "figure": self.figure,
            "label": self.label,
            "value": self.value,
            "threshold": self.threshold,
            "benefits": [{"id": id_, "name": name} for id_, name in self.benefits],
            "sentence": self.sentence,
        }

    def envelope(
        self, *, score_event_id: str, workspace_id: str, account_id: str, occurred_at: datetime
    ) -> ScoreRecord:
        """The ``tier_changed`` event; ``score_event_id`` must be deterministic."""
        return ScoreRecord(
            score_event_id=score_event_id,
            workspace_id=workspace_id,
            account_id=account_id,
            kind=ScoreKind.TIER_CHANGED,
            tier=self.to_tier,
            explanation=self.explanation(),
            occurred_at=occurred_at,
        )


def place_account(
    binding: TierSource, ladder: TierLadder, current_tier: str | None, metric_value: float | None
) -> TierChange | None:
    """The tier change for an account in ``current_tier`` whose bound figure is
    ``metric_value``, or ``None`` when it keeps its tier or the figure is unknown (``None``).

    ``ladder`` is the compiled growth path's tiers (of ``binding.path``). Raises
    :class:`TierValueInvalid` for a NaN or infinite figure.
    """
    if metric_value is None:
        return None
    value = float(metric_value)
    if not math.isfinite(value):
        raise TierValueInvalid(f"tier figure {binding.figure!r} is {metric_value!r}")
    move = ladder.move(current_tier, value)
    if move is None:
        return None
    return TierChange(
        path=binding.path,
        from_tier=move.old.id if move.old else None,
        to_tier=move.new.id if move.new else None,
        direction=move.direction,
        metric=binding.metric,
        window_days=None if binding.window is None else binding.window.value,
        figure=binding.figure,
        label=ladder.label,
        value=value,
        threshold=move.threshold,
        benefits=tuple((b.id, b.name) for b in move.new.benefits) if move.new else (),
    )
