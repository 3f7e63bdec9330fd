"""The peer distributions diagnostics compare an account with, held in memory by the
consumer: one :class:`PeerDistribution` per (workspace, peer group, figure).

The stored accounts are the truth: each keeps the :class:`PeerStanding` it last contributed,
so the book is rebuilt from them (at start and every ``peers_refresh_seconds``, which also
takes in the accounts other group members scored) and kept incrementally in between by
applying each evaluation's :func:`peer_updates`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from services.scoring.diagnostics import (
    PeerDistribution,
    PeerDistributionError,
    PeerGroup,
    PeerStanding,
    PeerUpdate,
)

BookKey = tuple[str, PeerGroup, str]
"""(workspace id, peer group, figure)."""


class PeerBook:
    """Mutable: :meth:`apply` changes the distributions in place."""

    def __init__(self) -> None:
        self.distributions: dict[BookKey, PeerDistribution] = {}
        self.consistent = True
        """False once an update did not fit (another member moved an account): rebuild."""

    @classmethod
    def of(cls, standings: Iterable[tuple[str, PeerStanding]]) -> PeerBook:
        """The book holding every ``(workspace id, standing)``."""
        book = cls()
        for workspace_id, standing in standings:
            for figure, value in standing.values:
                book._distribution(workspace_id, standing.group, figure).add(value)
        return book

    def apply(self, workspace_id: str, updates: Iterable[PeerUpdate]) -> None:
        """Move one account's values; an update that does not fit marks the book
        inconsistent (the values it could apply stay applied)."""
        for update in updates:
            try:
                update.apply(self._distribution(workspace_id, update.group, update.figure))
            except PeerDistributionError:
                self.consistent = False

    def peers(
        self, workspace_id: str, group: PeerGroup, figures: Iterable[str]
    ) -> Mapping[str, PeerDistribution]:
        """The group's distribution of each figure it has."""
        found = {}
        for figure in figures:
            distribution = self.distributions.get((workspace_id, group, figure))
            if distribution is not None:
                found[figure] = distribution
        return found

    def _distribution(self, workspace_id: str, group: PeerGroup, figure: str) -> PeerDistribution:
        key = (workspace_id, group, figure)
        found = self.distributions.get(key)
        if found is None:
            found = self.distributions[key] = PeerDistribution()
        return found
