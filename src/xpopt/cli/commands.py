"""The command line's commands: ``info``, ``train``, ``compare``, each checked before it trains."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy

from .. import backend, experiment, plots
from ..checkpoint import CheckpointError, check_writable
from ..data import load_moons
from ..digits import load_digits
from ..params_io import save_parameters
from ..train import check_settings
from .output import (
    BOUNDARY_FIGURE,
    COST_FIGURE,
    decay_text,
    device_line,
    divergence,
    info_lines,
    print_summary,
    train_figures,
    write_figures,
)

COURSE_LR, DECAY_LR = 0.0007, 0.1  # the notebook's rate, and its decay section's
DATASETS = ("moons", "digits")
OUTPUTS = ("sigmoid", "softmax")


class Dataset(NamedTuple):
    """What a command trains on: the data, the network, its output layer, a held-out set."""

    X: Any
    Y: Any
    layers: list
    output: str
    validation: tuple | None
    description: str


def _output(args) -> str:
    """``--output``, defaulted per data set; the digits' ten classes need the softmax."""
    output = args.output or ("softmax" if args.data == "digits" else "sigmoid")
    if args.data == "digits" and output != "softmax":
        args.parser.error("--data digits has 10 classes: it needs --output softmax")
    return output


def _load(args, output: str) -> Dataset:
    """The data set of ``--data`` on the backend, with its network for ``output``."""
    dtype = numpy.dtype(args.dtype)
    if args.data == "digits":
        try:
            X, Y, X_test, Y_test = load_digits(dtype=dtype)
        except ImportError as exc:
            raise Failure(str(exc), 2) from None
        return Dataset(
            X,
            Y,
            [64, 64, 10],
            output,
            (X_test, Y_test),
            f"digits ({X.shape[1]} training, {X_test.shape[1]} held-out examples)",
        )
    X, Y = load_moons(dtype=dtype)
    layers = list(experiment.LAYERS_DIMS) if output == "sigmoid" else [2, 5, 2, 2]
    return Dataset(X, Y, layers, output, None, f"moons ({X.shape[1]} examples)")


def _figures(rows, folder: Path, data: Dataset, *, learning_rate, record_every: int = 100):
    """The figures of ``rows``: the course's two for the moons' sigmoid network; the cost
    curves, the validation curves and the held-out confusion matrices otherwise."""
    if data.X.shape[0] == 2 and data.output == "sigmoid":
        return write_figures(rows, folder, data.X, data.Y, learning_rate=learning_rate)
    from .. import class_plots  # noqa: PLC0415

    costs = {r.optimizer: r.result.costs for r in rows}
    rate = (
        learning_rate
        if not isinstance(learning_rate, dict) or len(set(learning_rate.values())) > 1
        else next(iter(learning_rate.values()))
    )
    written = [
        plots.plot_costs(
            costs,
            folder / COST_FIGURE,
            learning_rate=rate if not isinstance(rate, dict) else None,
            record_every=record_every,
        )
    ]
    if data.validation is not None:
        X_val, Y_val = data.validation
        written.append(
            class_plots.plot_validation(
                {r.optimizer: r.result for r in rows}, folder / "validation.png"
            )
        )
        matrices = {
            r.optimizer: class_plots.confusion_matrix(
                X_val, Y_val, r.result.parameters, output=data.output
            )
            for r in rows
        }
        written.append(class_plots.plot_confusion_matrices(matrices, folder / "confusion.png"))
    return tuple(written)


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
        check_settings(
            num_epochs=args.epochs,
            mini_batch_size=args.batch_size or 1,
            seed=args.seed,
            print_every=getattr(args, "print_every", 1000),
            checkpoint_every=getattr(args, "checkpoint_every", 1000),
            checkpoint=checkpoint,
        )
    except CheckpointError as exc:
        raise Failure(str(exc), 2) from None
    except (TypeError, ValueError) as exc:
        args.parser.error(str(exc))


def _check_figure_folder(folder: Path, option: str) -> None:
    """Create the figure folder and write a file there now, not after training; refuse a
    folder that is a file, and figure names taken by something other than a file."""
    if folder.exists() and not folder.is_dir():
        raise Failure(
            f"cannot write the figures into {folder} ({option}): it is a file, not a folder", 2
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise Failure(
            f"cannot write the figures into {folder} ({option}): {exc.strerror or exc}", 2
        ) from None
    for name in (COST_FIGURE, BOUNDARY_FIGURE):
        path = folder / name
        if path.exists() and (not path.is_file() or not os.access(path, os.W_OK)):
            raise Failure(
                f"cannot write the figures into {folder} ({option}): {path} "
                f"exists and is not a writable file",
                2,
            )


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
    """``xpopt info``: versions, backend, device, compiled kernels; each field once."""
    if args.backend:
        backend.set_backend(args.backend)
    for line in info_lines():
        print(line)
    from ..distributed import describe_line  # noqa: PLC0415  (mpi4py is not imported)

    print(f"{'distributed':<12} : {describe_line()}")
    return 0


def train(args) -> int:
    """``xpopt train``: one run as the course's model(), its lines, a summary, figures."""
    if args.resume and args.checkpoint is None:
        args.parser.error("--resume needs --checkpoint PATH")
    output = _output(args)
    if args.distributed and (args.data != "moons" or output != "sigmoid" or args.save):
        args.parser.error(
            "--distributed trains the course's moons network only (no --data "
            "digits, --output softmax or --save)"
        )
    if args.plot_dir is not None:
        _require_plots("or leave out --plot-dir")
    if args.save is not None:
        try:  # fail now, not after training
            if args.save.is_dir():
                raise CheckpointError(f"{args.save} is a directory")
            args.save.parent.mkdir(parents=True, exist_ok=True)
            check_writable(args.save)
        except (OSError, CheckpointError) as exc:
            raise Failure(f"cannot save the parameters there (--save): {exc}", 2) from None
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
        data = _load(args, output)
        X, Y = data.X, data.Y
        try:
            row = experiment.train_timed(
                X,
                Y,
                args.optimizer,
                layers_dims=data.layers,
                output=output,
                validation=data.validation,
                learning_rate=args.learning_rate,
                **_hyperparameters(args),
                num_epochs=args.epochs,
                mini_batch_size=X.shape[1] if args.batch_size is None else args.batch_size,
                seed=args.seed,
                decay=experiment.resolve_decay(args.decay, args.time_interval),
                decay_rate=args.decay_rate,
                print_cost=not args.quiet,
                print_every=args.print_every,
                progress=False if args.quiet or args.no_progress else None,
                progress_label=args.optimizer,
                checkpoint=args.checkpoint,
                checkpoint_every=args.checkpoint_every,
                resume=args.resume,
            )
        except CheckpointError as exc:
            raise Failure(str(exc), 1) from None
        device = device_line()
    figures = failed = None
    if args.save is not None:
        try:
            save_parameters(args.save, row.result.parameters)
        except OSError as exc:  # the summary is printed all the same
            failed = f"xpopt: cannot save the parameters to {args.save}: {exc}"
    if args.plot_dir is not None:
        try:
            figures = (
                train_figures(row, args, X, Y)
                if data.validation is None and output == "sigmoid"
                else _figures([row], args.plot_dir, data, learning_rate=args.learning_rate)
            )
        except OSError as exc:  # the summary is printed all the same
            failed = f"xpopt: cannot write the figures into {args.plot_dir}: {exc}"
    ran = row.result.epochs - row.result.start_epoch
    heldout = None if data.validation is None else data.validation[0].shape[1]
    print_summary(row, args, m=X.shape[1], ran=ran, device=device, figures=figures, heldout=heldout)
    if failed:
        print(failed, file=sys.stderr)
        return 1
    return divergence([row])


def _comparison_plan(args) -> tuple[list[str], dict[str, float]]:
    """The optimizers to compare and each one's learning_rate0.

    Without decay: every optimizer (or ``--optimizers``) at ``--learning-rate`` (the course's
    0.0007). With ``--decay``: the notebook's decay section, gd and momentum at 0.1 and adam
    at 0.01 (:data:`experiment.NOTEBOOK_DECAY_RATES`), unless ``--optimizers`` or
    ``--learning-rate`` say otherwise (an optimizer the notebook does not decay: 0.1).
    """
    decay = args.decay != "none"
    if args.optimizers is not None:
        names = list(dict.fromkeys(n for group in args.optimizers for n in group))
    else:
        names = list(experiment.NOTEBOOK_DECAY_RATES if decay else experiment.OPTIMIZERS)
    if args.learning_rate is not None:
        return names, dict.fromkeys(names, args.learning_rate)
    if decay:
        return names, {n: experiment.NOTEBOOK_DECAY_RATES.get(n, DECAY_LR) for n in names}
    return names, dict.fromkeys(names, COURSE_LR)


def _rates_text(rates: dict[str, float]) -> str:
    values = list(dict.fromkeys(rates.values()))
    if len(values) == 1:
        return f"learning rate {values[0]:g}"
    return "learning rates " + ", ".join(
        f"{v:g} ({', '.join(n for n in rates if rates[n] == v)})" for v in values
    )


def compare(args) -> int:
    """``xpopt compare``: the notebook's experiment, a table and two figures (with a decay,
    in the decay's own folder under ``--out``)."""
    names, rates = _comparison_plan(args)
    output = _output(args)
    # the moons: the course's record every 100 epochs; the digits' short runs: 50 points
    record_every = 100 if args.data == "moons" else max(1, args.epochs // 50)
    decay = None if args.decay == "none" else args.decay
    out = args.out / decay if decay else args.out
    if not args.no_plots:
        _require_plots("or pass --no-plots")
    _check_settings(args)
    if not args.no_plots:
        _check_figure_folder(out, "--out")
    with _backend_context(args):
        data = _load(args, output)
        X, Y = data.X, data.Y
        batch = "full batch" if args.batch_size is None else f"mini-batch {args.batch_size}"
        kind = "" if (args.data, output) == ("moons", "sigmoid") else f", {output}"
        print(
            f"{data.description}, layers {data.layers}{kind}, "
            f"{args.epochs} epochs, {batch}, {_rates_text(rates)}{decay_text(args)}, "
            f"{args.dtype}, backend {device_line()}"
        )
        rows = experiment.run_comparison(
            names,
            num_epochs=args.epochs,
            learning_rate=rates,
            mini_batch_size=args.batch_size,
            **_hyperparameters(args),
            decay=decay,
            decay_rate=args.decay_rate,
            time_interval=args.time_interval,
            seed=args.seed,
            data=(X, Y),
            print_cost=args.verbose,
            progress=False if args.verbose or args.no_progress else None,
            layers_dims=data.layers,
            output=output,
            validation=data.validation,
            record_every=record_every,
        )
    print()
    print(experiment.format_table(rows, markdown=args.markdown))
    if not args.no_plots:
        try:
            figures = _figures(rows, out, data, learning_rate=rates, record_every=record_every)
        except OSError as exc:  # the table is printed already
            raise Failure(f"cannot write the figures into {out}: {exc}", 1) from None
        print()
        print(f"figures: {', '.join(str(f) for f in figures)}")
    return divergence(rows)
