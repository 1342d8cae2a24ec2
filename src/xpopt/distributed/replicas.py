"""Are the replicas still identical? A cheap checksum of each rank's buffers, compared.

Every rank applies the same update to the same parameters with the same summed gradient,
so the replicas stay identical bit for bit without broadcasting parameters. That rests on
every rank computing the same floating-point operations (same library versions, a
deterministic all-reduce); :func:`check_replicas` verifies it every N epochs and raises
:class:`ReplicaDivergenceError` on every rank at once when it does not hold.
"""

from __future__ import annotations

import numpy

from ..backend import get_xp, to_host

__all__ = ["ReplicaDivergenceError", "check_replicas", "checksum"]


class ReplicaDivergenceError(RuntimeError):
    """The ranks' parameters or optimizer state are no longer the same bits (raised on
    every rank at once: ``all_ranks`` is True)."""

    all_ranks = True


def checksum(*flats) -> tuple:
    """One integer per buffer: the sum, modulo 2**64, of its elements' bit patterns.

    A single element that differs in any bit changes the sum. Computed where the buffers
    are (one reduction each) and read back once (on a GPU: one small device-to-host copy).

    Parameters
    ----------
    *flats : ndarray of shape (n,)
        float64 or float32 buffers (parameters, moments), NumPy or CuPy.

    Returns
    -------
    tuple of int
    """
    if not flats:
        return ()
    xp = get_xp(*flats)
    sums = []
    for flat in flats:
        bits = {8: numpy.uint64, 4: numpy.uint32}[flat.dtype.itemsize]
        sums.append(xp.sum(flat.view(bits), dtype=numpy.uint64))
    return tuple(int(s) for s in to_host(xp.stack(sums)).tolist())


def check_replicas(engine, epoch: int, params, state) -> None:
    """Compare this rank's checksum of the parameters, moments and step count with every
    other rank's (a collective call: every rank must make it at the same epoch).

    Raises
    ------
    ReplicaDivergenceError
        On every rank, naming the ranks that differ from rank 0.
    """
    flats = [params.flat] + [d.flat for d in (state.v, state.s) if d is not None]
    mine = (int(state.t), checksum(*flats))
    everyone = engine.allgather(mine)
    odd = [r for r, theirs in enumerate(everyone) if theirs != everyone[0]]
    if odd:
        raise ReplicaDivergenceError(
            f"replicas diverged by epoch {epoch}: ranks {odd} hold other parameters or "
            f"optimizer state than rank 0 ((t, checksums) rank 0 {everyone[0]}, "
            + ", ".join(f"rank {r} {everyone[r]}" for r in odd)
            + "). Every rank must run the same xpopt, NumPy/CuPy and BLAS, on the same data "
            "and arguments."
        )
