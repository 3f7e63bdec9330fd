"""Tier placement: a growth path's tier ladder applied to the figure the metrics file binds to
it, with the path's own hysteresis (:meth:`shared.contracts.tiers.TierLadder.place`)."""

from services.scoring.tiers.placement import TierChange, TierValueInvalid, place_account

__all__ = ["TierChange", "TierValueInvalid", "place_account"]
