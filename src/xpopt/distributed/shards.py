"""Which columns of each global mini-batch a rank computes: contiguous, balanced shards.

Every rank draws the same permutation of the ``m`` examples each epoch (the course's seed)
and cuts it into the same global mini-batches (``floor(m / b)`` of width ``b``, then one of
``m % b``). Rank ``r`` of ``n`` takes columns ``[r * B // n, (r + 1) * B // n)`` of a batch of
width ``B``: shards differ by at most one column, the first ranks get the smaller ones, and a
shard may be empty (``B < n``: stochastic gradient descent over several ranks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy

__all__ = ["ShardPlan", "batch_widths", "shard_bounds"]


def batch_widths(m: int, mini_batch_size: int) -> list[int]:
    """The widths of one epoch's global mini-batches, in order (the course's cut).

    Parameters
    ----------
    m : int
        Examples in the data set.
    mini_batch_size : int
        ``b``; a size larger than ``m`` gives one batch of ``m``.

    Returns
    -------
    list of int
        ``floor(m / b)`` times ``b``, then ``m % b`` when it is not 0.
    """
    b = min(int(mini_batch_size), int(m))
    widths = [b] * (m // b)
    if m % b:
        widths.append(m % b)
    return widths


def shard_bounds(width: int, size: int, rank: int) -> tuple[int, int]:
    """``(lo, hi)``: the columns of a batch of ``width`` that ``rank`` of ``size`` computes.

    Examples
    --------
    >>> [shard_bounds(10, 4, r) for r in range(4)]
    [(0, 2), (2, 5), (5, 7), (7, 10)]
    """
    if not 0 <= rank < size:
        raise ValueError(f"rank must be in [0, {size}), got {rank}")
    return rank * width // size, (rank + 1) * width // size


@dataclass(frozen=True)
class ShardPlan:
    """One rank's share of every epoch: the same for every epoch (only the order changes).

    Attributes
    ----------
    m : int
        Examples in the data set.
    mini_batch_size : int
    size, rank : int
        The number of ranks and this one.
    widths : tuple of int
        The global width ``B_k`` of each mini-batch: the gradient of batch ``k`` is the sum
        over its examples divided by ``B_k`` (the course's ``dz_L = (a_L - Y) / m_batch``).
    shards : tuple of (int, int)
        Per batch, this rank's columns ``(lo, hi)`` IN ITS LOCAL BUFFER (the rank's shards
        of an epoch, laid end to end).
    positions : ndarray of shape (m_local,), int64
        Where this rank's columns sit in the epoch's shuffled order: its examples of epoch
        ``e`` are ``permutation_e[positions]``. At one rank, ``arange(m)``.
    """

    m: int
    mini_batch_size: int
    size: int
    rank: int
    widths: tuple
    shards: tuple
    positions: numpy.ndarray

    @classmethod
    def build(cls, m: int, mini_batch_size: int, size: int, rank: int) -> ShardPlan:
        widths = batch_widths(m, mini_batch_size)
        b = min(int(mini_batch_size), int(m))
        shards, pieces, at = [], [], 0
        for k, width in enumerate(widths):
            lo, hi = shard_bounds(width, size, rank)
            shards.append((at, at + hi - lo))
            pieces.append(numpy.arange(k * b + lo, k * b + hi, dtype=numpy.int64))
            at += hi - lo
        positions = numpy.concatenate(pieces) if pieces else numpy.empty(0, numpy.int64)
        positions.setflags(write=False)
        return cls(
            int(m),
            int(mini_batch_size),
            int(size),
            int(rank),
            tuple(widths),
            tuple(shards),
            positions,
        )

    @property
    def m_local(self) -> int:
        """The columns this rank computes per epoch."""
        return int(self.positions.shape[0])
