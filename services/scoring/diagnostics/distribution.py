"""A tier's peer distribution of one figure, kept incrementally: log-spaced bins of counts.

Each value falls in a fixed bin: zero (``|v| < MIN_MAGNITUDE``), or bin ``k`` of its sign,
holding magnitudes in ``(GAMMA**(k-1), GAMMA**k]`` with ``GAMMA = (1 + ACCURACY) / (1 -
ACCURACY)``. A bin is a count, so adding, removing (an account's old value, when it changes)
and merging are exact and order-free: removing what was added restores the same state, and
the same values give the same bytes.

Error bounds (``ACCURACY`` = 2%):

* :meth:`PeerDistribution.value_at` returns a value within 2% (relative) of the true value
  at that rank (zero exactly);
* :meth:`PeerDistribution.percentile_of` counts the peers in ``v``'s own bin as half below,
  half above, so for ``v > 0`` it lies between the true percentile of ``v / GAMMA`` (share
  of peers ``<=`` it) and of ``v * GAMMA`` (share ``<``), mirrored for ``v < 0``: only peers
  within about 4% of ``v`` are uncertain.

Trade-off against a sorted reservoir of samples: the bins are exact in rank outside that 4%
band and never forget an account (a reservoir must hold every value to support removal, or
gets rank errors after removals), at the cost of value resolution inside a bin. Size grows
with the spread of values, not the peer count: about 57 bins per factor of ten, 12 bytes per
occupied bin encoded, so a figure spanning 1 to 1,000,000 needs at most ~350 bins (~4 KB).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator

from services.scoring.errors import ScoringError

ACCURACY = 0.02
GAMMA = (1 + ACCURACY) / (1 - ACCURACY)
MIN_MAGNITUDE = 1e-9
"""Magnitudes below this count as zero."""

_LOG_GAMMA = math.log(GAMMA)
_HEADER = struct.Struct("<4sQII")
_BIN = struct.Struct("<iQ")
_MAGIC = b"MPD\x01"

Bin = tuple[int, int]
"""(sign: -1, 0 or 1; key): the zero bin is (0, 0)."""


class PeerDistributionError(ScoringError):
    """A value a peer distribution cannot take, or bytes it cannot read."""


class PeerValueInvalid(PeerDistributionError):
    """A NaN or infinite value; it is neither added nor removed."""


class PeerValueMissing(PeerDistributionError):
    """Removing a value that was never added: the stored distribution and the account's
    remembered contribution disagree; rebuild the distribution from the accounts' values."""


class PeerDistributionCorrupt(PeerDistributionError):
    """Stored bytes that do not decode; rebuild the distribution from the accounts' values."""


def bin_of(value: float) -> Bin:
    """The bin ``value`` falls in. Raises :class:`PeerValueInvalid` for NaN or infinity."""
    if not math.isfinite(value):
        raise PeerValueInvalid(f"a peer value must be a finite number, not {value!r}")
    magnitude = abs(value)
    if magnitude < MIN_MAGNITUDE:
        return (0, 0)
    return (1 if value > 0 else -1, math.ceil(math.log(magnitude) / _LOG_GAMMA))


def _representative(bin_: Bin) -> float:
    """The value a bin stands for: within ``ACCURACY`` of every value in it."""
    sign, key = bin_
    return 0.0 if sign == 0 else sign * 2 * GAMMA**key / (GAMMA + 1)


def _order(bin_: Bin) -> tuple[int, int]:
    """Ascending order of values: negatives by falling magnitude, zero, positives."""
    sign, key = bin_
    return (sign, sign * key)


class PeerDistribution:
    """Counts of peer values per bin (see the module for bins and error bounds). Mutable:
    :meth:`add` and :meth:`remove` change it in place; equality compares the counts."""

    __slots__ = ("_bins", "_count")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self) -> None:
        self._bins: dict[Bin, int] = {}
        self._count = 0

    @property
    def count(self) -> int:
        """How many values it holds."""
        return self._count

    def add(self, value: float) -> None:
        bin_ = bin_of(value)
        self._bins[bin_] = self._bins.get(bin_, 0) + 1
        self._count += 1

    def remove(self, value: float) -> None:
        """Take back a value added before; raises :class:`PeerValueMissing` if none is."""
        bin_ = bin_of(value)
        held = self._bins.get(bin_, 0)
        if held == 0:
            raise PeerValueMissing(f"no peer value like {value!r} to remove")
        if held == 1:
            del self._bins[bin_]
        else:
            self._bins[bin_] = held - 1
        self._count -= 1

    def replace(self, old: float | None, new: float | None) -> None:
        """An account's value changed from ``old`` to ``new`` (``None``: it had or has none)."""
        if old is not None:
            self.remove(old)
        if new is not None:
            self.add(new)

    def merged(self, other: PeerDistribution) -> PeerDistribution:
        """A new distribution holding the values of both."""
        merged = PeerDistribution()
        for source in (self, other):
            for bin_, count in source._bins.items():
                merged._bins[bin_] = merged._bins.get(bin_, 0) + count
            merged._count += source._count
        return merged

    def percentile_of(self, value: float) -> float | None:
        """The share of values below ``value`` (those in its bin count half), 0..100;
        ``None`` when empty."""
        if self._count == 0:
            return None
        own = bin_of(value)
        sign, key = own
        at = sign * key  # below: a lower sign, or the same sign and a lower signed key
        below = sum(
            count for (s, k), count in self._bins.items() if s < sign or (s == sign and s * k < at)
        )
        same = self._bins.get(own, 0)
        return 100.0 * (below + same / 2) / self._count

    def value_at(self, percentile: float) -> float | None:
        """The value at ``percentile`` (0..100) by nearest rank: the ``ceil(p/100 * n)``-th
        smallest (the smallest for 0), within ``ACCURACY``; ``None`` when empty."""
        if not 0 <= percentile <= 100:
            raise ValueError(f"a percentile is between 0 and 100, not {percentile!r}")
        if self._count == 0:
            return None
        rank = max(0, math.ceil(percentile / 100 * self._count) - 1)
        seen = 0
        for bin_, count in self._sorted():
            seen += count
            if seen > rank:
                return _representative(bin_)
        raise AssertionError("counts add up to the total")  # pragma: no cover

    def _sorted(self) -> Iterator[tuple[Bin, int]]:
        return iter(sorted(self._bins.items(), key=lambda item: _order(item[0])))

    def encode(self) -> bytes:
        """Compact bytes, the same for the same values (bins in a fixed order)."""
        zeros = self._bins.get((0, 0), 0)
        positive = sorted((k, c) for (s, k), c in self._bins.items() if s == 1)
        negative = sorted((k, c) for (s, k), c in self._bins.items() if s == -1)
        parts = [_HEADER.pack(_MAGIC, zeros, len(positive), len(negative))]
        parts += [_BIN.pack(k, c) for k, c in (*positive, *negative)]
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> PeerDistribution:
        """Read :meth:`encode`'s bytes; raises :class:`PeerDistributionCorrupt`."""
        try:
            magic, zeros, positives, negatives = _HEADER.unpack_from(data)
        except struct.error as exc:
            raise PeerDistributionCorrupt(f"peer distribution header: {exc}") from None
        if magic != _MAGIC:
            raise PeerDistributionCorrupt(f"not a peer distribution (starts {magic!r})")
        if len(data) != _HEADER.size + _BIN.size * (positives + negatives):
            raise PeerDistributionCorrupt(f"peer distribution of {len(data)} bytes is cut")
        distribution = cls()
        if zeros:
            distribution._bins[(0, 0)] = zeros
        offset = _HEADER.size
        for index in range(positives + negatives):
            key, count = _BIN.unpack_from(data, offset)
            offset += _BIN.size
            bin_ = (1 if index < positives else -1, key)
            if count == 0 or bin_ in distribution._bins:
                raise PeerDistributionCorrupt("peer distribution with an empty or repeated bin")
            distribution._bins[bin_] = count
        distribution._count = sum(distribution._bins.values())
        return distribution

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PeerDistribution):
            return NotImplemented
        return self._bins == other._bins

    def __repr__(self) -> str:
        return f"PeerDistribution(count={self._count}, bins={len(self._bins)})"
