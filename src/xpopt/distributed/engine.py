"""The communication engines: MPI (mpi4py) for NumPy buffers, NCCL (CuPy) for GPU buffers.

An engine gives the training loop what it needs of the other ranks: its ``rank`` and
``size``, ONE in-place sum of a contiguous buffer across ranks per step
(:meth:`Engine.allreduce`, on the flat gradient buffer), and host-side control messages
(small Python objects and host arrays: checkpoints, checksums, agreement on the run).

- :class:`MpiEngine`: everything over an mpi4py communicator; the gradient buffer goes
  through mpi4py's buffer interface (``Allreduce(IN_PLACE, flat, SUM)``): no pickling of
  arrays, no copy.
- :class:`NcclEngine`: control over MPI, the device buffers through a *collective*, an
  object with ``all_reduce(array)``: :class:`NcclCollective` (``cupy.cuda.nccl``, its
  communicator id bootstrapped over MPI) on GPUs, or a host-side fake in tests
  (:class:`xpopt.distributed.fake.HostCollective`, for the CuPy stand-in).

:func:`choose_engine` picks by the arrays' module. mpi4py is imported lazily: ``import
xpopt.distributed`` works without it.
"""

from __future__ import annotations

import numpy

from ..backend import get_xp, is_cupy_array

__all__ = [
    "Engine",
    "MpiEngine",
    "NcclCollective",
    "NcclEngine",
    "MpiUnavailableError",
    "choose_engine",
    "describe",
    "describe_line",
    "local_rank",
    "use_local_device",
    "world",
]

INSTALL_HINT = (
    "pip install mpi4py mpich (the 'mpi' extra), or build mpi4py against your "
    "cluster's MPI: env MPICC=mpicc pip install --no-binary mpi4py mpi4py"
)


class MpiUnavailableError(ImportError):
    """mpi4py (and so MPI) cannot be imported here."""


def mpi():
    """The ``mpi4py.MPI`` module; :class:`MpiUnavailableError` with the install hint."""
    try:
        from mpi4py import MPI  # noqa: PLC0415
    except ImportError as exc:
        raise MpiUnavailableError(
            f"distributed training needs mpi4py ({exc}): {INSTALL_HINT}"
        ) from exc
    return MPI


def world():
    """``MPI.COMM_WORLD``: every rank that ``mpiexec`` (or ``srun``) started."""
    return mpi().COMM_WORLD


def local_rank(comm) -> int:
    """This rank's index among the ranks on its own node (a collective call: every rank
    of ``comm`` must call it). One GPU per rank is chosen from it."""
    MPI = mpi()
    node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
    try:
        return node.Get_rank()
    finally:
        node.Free()


def use_local_device(comm, cupy) -> int:
    """Make GPU ``local_rank % device_count`` current for this process; returns its id.

    Call it before any CuPy array is created (the data, the parameters): CuPy allocates on
    the current device.
    """
    count = cupy.cuda.runtime.getDeviceCount()
    device = local_rank(comm) % max(count, 1)
    cupy.cuda.Device(device).use()
    return device


class Engine:
    """What the training loop asks of the other ranks (see the module's docstring).

    Parameters
    ----------
    comm : mpi4py communicator
        For control messages (and, in :class:`MpiEngine`, the buffers too).
    """

    name = "engine"

    def __init__(self, comm):
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    # -- the per-step collective
    def allreduce(self, buf) -> None:
        """Sum ``buf`` (1-D, contiguous) over the ranks, in place; every rank gets the sum."""
        raise NotImplementedError

    # -- control (host objects, a few per run or every N epochs)
    def bcast(self, obj, root: int = 0):
        """``obj`` of ``root`` on every rank (a small, picklable object: no arrays)."""
        return self.comm.bcast(obj, root=root)

    def allgather(self, obj) -> list:
        """Every rank's ``obj``, in rank order (small objects)."""
        return self.comm.allgather(obj)

    def bcast_array(self, host, root: int = 0) -> None:
        """Broadcast a NumPy array in place through the buffer interface (no pickling)."""
        self.comm.Bcast(host, root=root)

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, status: int = 1) -> None:
        """End every rank of the job now (``MPI_Abort``)."""
        self.comm.Abort(status)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


class MpiEngine(Engine):
    """Everything over MPI: NumPy buffers summed with ``Allreduce(IN_PLACE, buf, SUM)``.

    MPI's reduction of float64 or float32 gives the same bits on every rank; with one rank
    it is a copy (skipped here: the buffer already holds the sum).
    """

    name = "mpi"

    def __init__(self, comm):
        super().__init__(comm)
        MPI = mpi()
        self._in_place, self._sum = MPI.IN_PLACE, MPI.SUM

    def allreduce(self, buf) -> None:
        if is_cupy_array(buf):
            raise TypeError(
                "MpiEngine sums host (NumPy) buffers; CuPy arrays go through "
                "NcclEngine (choose_engine picks it for CuPy data)"
            )
        if self.size > 1:
            self.comm.Allreduce(self._in_place, buf, op=self._sum)


class NcclCollective:
    """The device collective of :class:`NcclEngine` over ``cupy.cuda.nccl``.

    Parameters
    ----------
    communicator : cupy.cuda.nccl.NcclCommunicator
        One per rank, all made with the same unique id (see :meth:`bootstrap`).
    """

    def __init__(self, communicator, nccl_module, cupy):
        self.communicator = communicator
        self.nccl = nccl_module
        self.cupy = cupy
        self.dtypes = {
            numpy.dtype(numpy.float64): nccl_module.NCCL_FLOAT64,
            numpy.dtype(numpy.float32): nccl_module.NCCL_FLOAT32,
        }

    @classmethod
    def bootstrap(cls, comm, cupy) -> NcclCollective:
        """Rank 0 draws NCCL's unique id, MPI broadcasts it, every rank joins.

        Raises
        ------
        RuntimeError
            Without NCCL (``pip install nvidia-nccl-cu12``; CuPy finds it then).
        """
        import warnings  # noqa: PLC0415

        with warnings.catch_warnings():  # CuPy only warns when libnccl is missing
            warnings.simplefilter("ignore")
            try:
                from cupy.cuda import nccl  # noqa: PLC0415
            except ImportError as exc:
                nccl, why = None, str(exc)
            else:
                why = "cupy.cuda.nccl.available is False"
        if nccl is None or not getattr(nccl, "available", False):
            raise RuntimeError(
                f"NCCL is not usable through CuPy ({why}): pip install "
                f"nvidia-nccl-cu12 (CUDA 12) and run one rank per GPU"
            )
        uid = nccl.get_unique_id() if comm.Get_rank() == 0 else None
        uid = comm.bcast(uid, root=0)
        communicator = nccl.NcclCommunicator(comm.Get_size(), uid, comm.Get_rank())
        return cls(communicator, nccl, cupy)

    def all_reduce(self, a) -> None:
        """Sum ``a`` over the ranks in place, on the current stream (no host transfer)."""
        dtype = self.dtypes.get(numpy.dtype(a.dtype))
        if dtype is None or not a.flags.c_contiguous:
            raise TypeError(
                f"NCCL all-reduce needs a contiguous float32/float64 buffer, got {a.dtype}"
            )
        stream = self.cupy.cuda.get_current_stream().ptr
        self.communicator.allReduce(
            a.data.ptr, a.data.ptr, a.size, dtype, self.nccl.NCCL_SUM, stream
        )


class NcclEngine(Engine):
    """Control over MPI, device buffers through a collective (NCCL on GPUs).

    Parameters
    ----------
    comm : mpi4py communicator
    collective : object with ``all_reduce(array)``
        :class:`NcclCollective` on GPUs; a host-side fake in tests.
    """

    name = "nccl"

    def __init__(self, comm, collective):
        super().__init__(comm)
        self.collective = collective

    def allreduce(self, buf) -> None:
        if self.size > 1:
            self.collective.all_reduce(buf)


_DEFAULT_ENGINES: dict = {}  # the engine of COMM_WORLD per array module, made once


def choose_engine(xp_or_array, comm=None, *, collective=None) -> Engine:
    """The engine for data on ``xp_or_array``'s module: MPI for NumPy, NCCL for CuPy.

    Parameters
    ----------
    xp_or_array : module or ndarray
        ``numpy`` / ``cupy``, or an array of the data.
    comm : mpi4py communicator, optional
        ``MPI.COMM_WORLD`` by default; that engine is made once per process and module (a
        NCCL communicator is costly to set up) and reused by later calls.
    collective : object, optional
        Replaces NCCL's collective for CuPy data (tests: a host-side fake).
    """
    xp = xp_or_array if hasattr(xp_or_array, "ndarray") else get_xp(xp_or_array)
    reuse = comm is None and collective is None
    key = (xp.__name__, id(xp))
    if reuse and key in _DEFAULT_ENGINES:
        return _DEFAULT_ENGINES[key]
    comm = world() if comm is None else comm
    if xp is numpy:
        engine: Engine = MpiEngine(comm)
    else:
        if collective is None:
            collective = NcclCollective.bootstrap(comm, xp)
        engine = NcclEngine(comm, collective)
    if reuse:
        _DEFAULT_ENGINES[key] = engine
    return engine


def describe() -> dict:
    """What distributed training can use here, without starting MPI or CUDA (for ``xpopt
    info``): mpi4py's version or why it is missing, the ``mpiexec`` on PATH, whether the
    NCCL wheel is installed, and the engine each array module gets."""
    import importlib.metadata as metadata  # noqa: PLC0415
    import os  # noqa: PLC0415
    import shutil  # noqa: PLC0415
    import sys  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    info = {"engine_numpy": "mpi", "engine_cupy": "nccl"}
    try:
        import mpi4py  # noqa: PLC0415  (not mpi4py.MPI: that would initialise MPI)

        info["mpi4py"] = mpi4py.__version__
    except ImportError as exc:
        info["mpi4py"] = f"missing ({exc}): {INSTALL_HINT}"
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    info["mpiexec"] = shutil.which("mpiexec", path=search) or "not found"
    for wheel in ("nvidia-nccl-cu12", "nvidia-nccl-cu13"):
        try:
            info["nccl"] = f"{wheel} {metadata.version(wheel)}"
            break
        except metadata.PackageNotFoundError:
            info["nccl"] = "no NCCL wheel (pip install nvidia-nccl-cu12 for GPUs)"
    return info


def describe_line(info: dict | None = None) -> str:
    """:func:`describe` on one line, as ``xpopt info`` prints it."""
    info = describe() if info is None else info
    return (
        f"mpi4py {info['mpi4py']}, mpiexec {info['mpiexec']}, {info['nccl']}; "
        f"engines: NumPy -> {info['engine_numpy']}, CuPy -> {info['engine_cupy']}"
    )
