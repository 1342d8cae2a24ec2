"""Data-parallel training over MPI (mpi4py) for NumPy and NCCL (CuPy) for GPUs.

Launch one process per rank with the standard tools::

    mpiexec -n 4 python -m mpi4py -m xpopt.distributed --optimizer adam --epochs 5000

or call :func:`train` on every rank of an MPI job. Every rank draws the same permutation,
computes its shard of each global mini-batch, and one all-reduce of the flat gradient buffer
per step gives every rank the batch's gradient; every rank applies the same update. At one
rank the result is bit for bit :func:`xpopt.train`'s. See ``docs/distributed.md``.
"""

from .engine import (
    Engine,
    MpiEngine,
    MpiUnavailableError,
    NcclCollective,
    NcclEngine,
    choose_engine,
    describe,
    describe_line,
    local_rank,
    use_local_device,
    world,
)
from .loop import DistributedResult, train
from .replicas import ReplicaDivergenceError, check_replicas, checksum
from .shards import ShardPlan, batch_widths, shard_bounds

__all__ = [
    "DistributedResult",
    "Engine",
    "MpiEngine",
    "MpiUnavailableError",
    "NcclCollective",
    "NcclEngine",
    "ReplicaDivergenceError",
    "ShardPlan",
    "batch_widths",
    "check_replicas",
    "checksum",
    "choose_engine",
    "describe",
    "describe_line",
    "local_rank",
    "shard_bounds",
    "train",
    "use_local_device",
    "world",
]
