"""The command line's commands: ``info``, ``train``, ``compare``, each checked before it trains."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy

from .. import backend, experiment, plots
from ..checkpoint import CheckpointError
from ..data import load_moons
from ..train import check_settings
from .output import decay_text, device_line, divergence, print_summary, train_figures

COURSE_LR, DECAY_LR = 0.0007, 0.1  # the notebook's rate, and its decay section's


# ------------------------------------------------------------------------ helpers
class Failure(Exception):
    """A command stops with a message on stderr and an exit status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _require_plots(hint: str) -> None:
    """Fail before any training when figures are wanted and matplotlib is missing."""
    try:
        plots.require_matplotlib()
    except plots.PlotsUnavailableError as exc:
        raise Failure(f"{exc} ({hint})", 2) from None


def _check_settings(args, checkpoint=None) -> None:
    """What train() would refuse, checked before any data is loaded or epoch run."""
    try:
        check_settings(num_epochs=args.epochs, mini_batch_size=args.batch_size or 1,
                       seed=args.seed, print_every=getattr(args, "print_every", 1000),
                       checkpoint_every=getattr(args, "checkpoint_every", 1000),
                       checkpoint=checkpoint)
    except CheckpointError as exc:
        raise Failure(str(exc), 2) from None
    except (TypeError, ValueError) as exc:
        args.parser.error(str(exc))


def _check_figure_folder(folder: Path, option: str) -> None:
    """Create the figure folder and write a file there now, not after training."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise Failure(f"cannot write the figures into {folder} ({option}): "
                       f"{exc.strerror or exc}", 2) from None


def _backend_context(args):
    """``use_backend`` for the command's ``--backend`` / ``--strict``; what they leave out is
    the choice made outside (``XPOPT_BACKEND``, ``XPOPT_STRICT``), as :mod:`backend` reads it."""
    try:
        backend.requested()  # a bad XPOPT_BACKEND: a usage error, before anything runs
    except ValueError as exc:
        args.parser.error(str(exc))
    return backend.use_backend(args.backend, strict=True if args.strict else None)


def _hyperparameters(args) -> dict:
    return dict(beta=args.beta, beta1=args.beta1, beta2=args.beta2, epsilon=args.epsilon)


# ----------------------------------------------------------------------- commands
def info(args) -> int:
    if args.backend:
        backend.set_backend(args.backend)
    print(f"backend: {backend.get_backend()}")
    print(backend.format_device_info(backend.device_info()))
    from ..distributed import describe_line  # noqa: PLC0415  (mpi4py is not imported)

    print(f"{'distributed':<12} : {describe_line()}")
    return 0


def train(args) -> int:
    """``xpopt train``: one run as the course's model(), its lines, a summary, figures."""
    if args.resume and args.checkpoint is None:
        args.parser.error("--resume needs --checkpoint PATH")
    if args.plot_dir is not None:
        _require_plots("or leave out --plot-dir")
    if args.checkpoint is not None:
        # Fail now, not at the first save (epoch 1000) after minutes of training.
        try:
            args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Failure(f"cannot write the checkpoint there: {exc}", 2) from None
    _check_settings(args, args.checkpoint)
    if args.plot_dir is not None:
        _check_figure_folder(args.plot_dir, "--plot-dir")
    if args.distributed:  # every rank of the MPI job trains its shards; rank 0 reports
        from ..distributed.cli import run as run_distributed  # noqa: PLC0415

        return run_distributed(args)
    with _backend_context(args):
        X, Y = load_moons(dtype=numpy.dtype(args.dtype))
        try:
            row = experiment.train_timed(
                X, Y, args.optimizer, learning_rate=args.learning_rate, **_hyperparameters(args),
                num_epochs=args.epochs,
                mini_batch_size=X.shape[1] if args.batch_size is None else args.batch_size,
                seed=args.seed, decay=experiment.resolve_decay(args.decay, args.time_interval),
                decay_rate=args.decay_rate, print_cost=not args.quiet,
                print_every=args.print_every, progress=False, checkpoint=args.checkpoint,
                checkpoint_every=args.checkpoint_every, resume=args.resume)
        except CheckpointError as exc:
            raise Failure(str(exc), 1) from None
        device = device_line()
    figures = failed = None
    if args.plot_dir is not None:
        try:
            figures = train_figures(row, args, X, Y)
        except OSError as exc:  # the summary is printed all the same
            failed = f"xpopt: cannot write the figures into {args.plot_dir}: {exc}"
    print_summary(row, args, m=X.shape[1], ran=row.result.epochs - row.result.start_epoch, device=device,
                   figures=figures)
    if failed:
        print(failed, file=sys.stderr)
        return 1
    return divergence([row])


def compare(args) -> int:
    """``xpopt compare``: the notebook's experiment, a table and two figures."""
    names = list(dict.fromkeys(n for group in args.optimizers for n in group))
    decay = None if args.decay == "none" else args.decay
    lr = args.learning_rate
    if lr is None:
        lr = DECAY_LR if decay else COURSE_LR
    if not args.no_plots:
        _require_plots("or pass --no-plots")
    _check_settings(args)
    if not args.no_plots:
        _check_figure_folder(args.out, "--out")
    with _backend_context(args):
        X, Y = load_moons(dtype=numpy.dtype(args.dtype))
        batch = "full batch" if args.batch_size is None else f"mini-batch {args.batch_size}"
        print(f"moons ({X.shape[1]} examples), layers {list(experiment.LAYERS_DIMS)}, "
              f"{args.epochs} epochs, {batch}, learning rate {lr:g}{decay_text(args)}, "
              f"{args.dtype}, backend {device_line()}")
        rows = experiment.run_comparison(
            names, num_epochs=args.epochs, learning_rate=lr, mini_batch_size=args.batch_size,
            **_hyperparameters(args), decay=decay, decay_rate=args.decay_rate,
            time_interval=args.time_interval, seed=args.seed, data=(X, Y),
            print_cost=args.verbose, progress=False if args.verbose else None)
    print()
    print(experiment.format_table(rows, markdown=args.markdown))
    if not args.no_plots:
        try:
            costs = plots.plot_costs({r.optimizer: r.result.costs for r in rows},
                                     args.out / "costs.png", learning_rate=lr)
            boundaries = plots.plot_decision_boundaries(
                {r.optimizer: r.result.parameters for r in rows}, X, Y,
                args.out / "decision_boundaries.png",
                accuracies={r.optimizer: r.accuracy for r in rows})
        except OSError as exc:  # the table is printed already
            raise Failure(f"cannot write the figures into {args.out}: {exc}", 1) from None
        print()
        print(f"figures: {costs}, {boundaries}")
    return divergence(rows)
