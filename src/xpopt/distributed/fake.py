"""A host-side stand-in for NCCL, to run the GPU path under :func:`xpopt.testing.cupy_standin`.

The CuPy stand-in has no ``cupy.cuda.nccl`` (and NCCL needs a GPU). :class:`HostCollective`
does the collective's work over MPI on the memory the stand-in holds for its "device"
arrays, the way NCCL reads and writes device memory itself: it counts no host<->device
transfer, so a test's counters show what the rest of the training step costs.
"""

from __future__ import annotations

__all__ = ["HostCollective"]


class HostCollective:
    """``all_reduce(array)`` for stand-in arrays, summed over an mpi4py communicator.

    Parameters
    ----------
    comm : mpi4py communicator
    """

    def __init__(self, comm):
        from .engine import mpi  # noqa: PLC0415

        MPI = mpi()
        self.comm, self._in_place, self._sum = comm, MPI.IN_PLACE, MPI.SUM
        self.calls = 0
        self.elements = 0

    def all_reduce(self, a) -> None:
        """Sum the stand-in array ``a`` over the ranks, in place."""
        import sys  # noqa: PLC0415

        from ..testing import is_standin  # noqa: PLC0415

        if not is_standin(sys.modules.get("cupy")) or not hasattr(a, "_a"):
            raise TypeError(
                "HostCollective works on arrays of xpopt's CuPy stand-in only; "
                "real CuPy arrays go through NcclCollective"
            )
        memory = a._a  # the stand-in's "device" memory (NumPy), read as NCCL would
        if not memory.flags.c_contiguous:
            raise TypeError("the all-reduce buffer must be contiguous")
        self.calls += 1
        self.elements += memory.size
        self.comm.Allreduce(self._in_place, memory, op=self._sum)
