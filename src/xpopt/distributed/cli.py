"""``python -m xpopt.distributed``: the course experiment, data-parallel, under ``mpiexec``.

::

    mpiexec -n 4 python -m mpi4py -m xpopt.distributed --optimizer adam --epochs 5000

Every rank parses the same arguments and trains its shards; rank 0 prints the course's
lines, the summary and writes the figures and checkpoints. Exit status: 0 on success, 2 for
bad arguments (found before training, on every rank), 1 when a checkpoint cannot be used,
training diverged or the replicas diverged. Any other failure on one rank aborts the whole
job (``MPI_Abort``) after printing the error, so no rank is left waiting.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy

from .. import backend, experiment
from ..checkpoint import CheckpointError
from ..data import load_moons
from ..network import accuracy
from ..train import OPTIMIZERS, make_optimizer
from .engine import MpiUnavailableError, choose_engine, use_local_device, world
from .loop import ALL_RANKS, train
from .replicas import ReplicaDivergenceError

__all__ = ["build_parser", "main", "run"]


def _layers(text: str) -> list[int]:
    try:
        dims = [int(d) for d in text.replace(" ", "").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes such as 2,5,2,1, got {text!r}") from None
    if len(dims) < 2 or dims[0] != 2 or dims[-1] != 1 or min(dims) < 1:
        raise argparse.ArgumentTypeError(
            f"layers must start with 2 (the moons' features) and "
            f"end with 1 (one output), got {text!r}"
        )
    return dims


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
        return value

    return parse


def _non_negative(kind):
    def parse(text: str):
        value = _positive(kind)(text) if text.strip() not in ("0", "0.0") else kind(0)
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The options of ``xpopt train`` plus ``--layers`` and ``--check-every``."""
    p = argparse.ArgumentParser(
        prog="python -m xpopt.distributed",
        description="Train on the moons as the course's model() does, data-parallel over "
        "the ranks of an MPI job (MPI for NumPy, NCCL for CuPy).",
    )
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    p.add_argument(
        "--layers",
        type=_layers,
        default=[2, 5, 2, 1],
        metavar="DIMS",
        help="layer sizes, comma-separated (default: 2,5,2,1)",
    )
    p.add_argument("--learning-rate", type=_positive(float), default=0.0007, metavar="LR")
    p.add_argument("--epochs", type=_non_negative(int), default=5000, metavar="N")
    p.add_argument(
        "--batch-size",
        default="64",
        metavar="SIZE",
        help="the GLOBAL mini-batch, split over the ranks; 'full' for all 300",
    )
    p.add_argument("--decay", choices=("none", *experiment.DECAYS), default="none")
    p.add_argument("--decay-rate", type=_non_negative(float), default=1.0, metavar="RATE")
    p.add_argument("--time-interval", type=_positive(int), default=1000, metavar="N")
    p.add_argument("--beta", type=float, default=0.9)
    p.add_argument("--beta1", type=float, default=0.9)
    p.add_argument("--beta2", type=float, default=0.999)
    p.add_argument("--epsilon", type=_positive(float), default=1e-8)
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--seed", type=int, default=10)
    p.add_argument(
        "--backend",
        choices=backend.BACKENDS,
        default=None,
        help="cpu (MPI) or cuda (NCCL, one GPU per rank); default $XPOPT_BACKEND or cpu",
    )
    p.add_argument("--strict", action="store_true", help="no CPU fallback for --backend cuda")
    p.add_argument("--print-every", type=_positive(int), default=1000, metavar="N")
    p.add_argument("--record-every", type=_positive(int), default=100, metavar="N")
    p.add_argument(
        "--check-every",
        type=_positive(int),
        default=100,
        metavar="N",
        help="compare the replicas' checksums every N epochs (default: 100)",
    )
    p.add_argument("--quiet", action="store_true", help="print the summary only")
    p.add_argument("--plot-dir", type=Path, metavar="DIR", help="figures (rank 0; matplotlib)")
    p.add_argument("--checkpoint", type=Path, metavar="PATH", help="rank 0 saves there, atomically")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--checkpoint-every", type=_positive(int), default=1000, metavar="N")
    return p


def _batch_size(value, m: int) -> int:
    """``--batch-size``: an int, None or ``"full"`` (all ``m``: batch gradient descent)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("full", "m")):
        return m
    return int(value)


def _run(args, comm) -> int:
    rank = comm.Get_rank()
    name = args.backend or "cpu"
    with backend.use_backend(name, strict=True if args.strict else None) as effective:
        xp = numpy
        if effective == "cuda":
            xp = backend.get_xp()
            use_local_device(comm, xp)  # before any array is born on the GPU
        X, Y = load_moons(dtype=numpy.dtype(args.dtype))
        batch = _batch_size(args.batch_size, X.shape[1])
        layers = getattr(args, "layers", None) or [2, 5, 2, 1]
        opt = make_optimizer(
            args.optimizer,
            args.learning_rate,
            beta=args.beta,
            beta1=args.beta1,
            beta2=args.beta2,
            epsilon=args.epsilon,
        )
        engine = choose_engine(xp, comm)
        result = train(
            X,
            Y,
            layers,
            opt,
            mini_batch_size=batch,
            num_epochs=args.epochs,
            seed=args.seed,
            decay=experiment.resolve_decay(args.decay, args.time_interval),
            decay_rate=args.decay_rate,
            print_cost=not args.quiet,
            print_every=args.print_every,
            record_every=getattr(args, "record_every", 100),
            checkpoint=args.checkpoint,
            checkpoint_every=args.checkpoint_every,
            resume=args.resume,
            engine=engine,
            check_every=getattr(args, "check_every", 100),
        )
        if rank != 0:
            return 0
        cost = experiment.final_cost(X, Y, result.parameters)
        acc = accuracy(X, Y, result.parameters)
        share = result.allreduce_seconds / result.wall_time if result.wall_time > 0 else 0.0
        lines = [
            ("optimizer", args.optimizer),
            ("layers", layers),
            ("final cost", f"{cost:f}"),
            ("train accuracy", f"{acc:.4f} ({round(acc * X.shape[1])}/{X.shape[1]})"),
            ("wall time", f"{result.wall_time:.2f} s for {result.steps} steps"),
            (
                "ranks",
                f"{result.size} ({result.engine}; all-reduce {100 * share:.0f}% of rank 0's time)",
            ),
            ("backend", effective),
        ]
        if args.plot_dir is not None:  # xpopt train --plot-dir's figures, by its function
            from ..cli.output import train_figures  # noqa: PLC0415

            args.plot_dir.mkdir(parents=True, exist_ok=True)
            row = SimpleNamespace(optimizer=args.optimizer, result=result, accuracy=acc)
            figures = train_figures(row, args, X, Y)
            lines.append(("figures", ", ".join(map(str, figures))))
        width = max(len(k) for k, _ in lines)
        print()
        for key, value in lines:
            print(f"{key:<{width}} : {value}")
        sys.stdout.flush()
        return 0 if math.isfinite(cost) else 1


def main(argv=None) -> int:
    """Parse, train on every rank, report on rank 0; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)  # the same arguments on every rank: the same outcome
    if args.resume and args.checkpoint is None:
        parser.error("--resume needs --checkpoint PATH")
    size = args.batch_size.strip().lower()
    if size not in ("full", "m") and not (size.isdigit() and int(size) >= 1):
        parser.error(f"--batch-size: expected an integer >= 1 or 'full', got {args.batch_size!r}")
    return run(args)


def run(args) -> int:
    """Train as ``args`` say on every rank of the job; returns this rank's exit status.

    ``args`` is this module's parsed arguments, or ``xpopt train``'s (the same names; the
    network is then the course's ``[2, 5, 2, 1]``): the hook for ``xpopt train
    --distributed``. Refusals that every rank reaches alike end each rank with status 2
    (arguments) or 1 (checkpoint, diverged replicas) and one message from rank 0; anything
    raised on one rank alone aborts the whole job (``MPI_Abort``) so no rank waits forever.
    """
    try:
        comm = world()
    except MpiUnavailableError as exc:
        print(f"xpopt.distributed: {exc}", file=sys.stderr)
        return 2
    rank = comm.Get_rank()
    try:
        return _run(args, comm)
    except BaseException as exc:
        # Raised alike on every rank (xpopt.distributed.train agrees on its refusals and
        # on a divergence of the replicas): a clean exit with a status on each rank.
        if isinstance(exc, Exception) and (
            getattr(exc, ALL_RANKS, False) or isinstance(exc, backend.BackendUnavailableError)
        ):
            if rank == 0 or isinstance(exc, ReplicaDivergenceError):
                print(f"xpopt.distributed: {exc}", file=sys.stderr)
            return 1 if isinstance(exc, (CheckpointError, ReplicaDivergenceError)) else 2
        # One rank failing alone: the others would wait in the next all-reduce forever.
        print(
            f"xpopt.distributed: rank {rank} failed: {type(exc).__name__}: {exc}; "
            f"aborting all {comm.Get_size()} ranks",
            file=sys.stderr,
            flush=True,
        )
        comm.Abort(130 if isinstance(exc, KeyboardInterrupt) else 1)
        return 1  # not reached: MPI_Abort ends the process
