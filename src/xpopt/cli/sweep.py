"""``xpopt sweep``: a grid of models on the moons, trained at once (:func:`xpopt.sweep`).

Each option takes one value (fixed), a comma list (an axis: ``--learning-rate 1e-4,1e-3``)
or, for integer options, a range ``a-b`` (an axis of ``a..b`` inclusive: ``--seeds 0-7``).
The table of ``SweepResult.table()`` is printed; ``heatmap.png`` (final accuracy or cost over
two axes, mean ± spread over the others) and ``costs.png`` (the cost curves of the best
models) are written into ``--out``, named as ``compare``'s figures are (what they show, plural
for several runs). Every value is checked before any training (exit 2, argparse's message).

Under ``mpiexec -n N python -m mpi4py -m xpopt sweep ...`` the grid's models are split over
the ranks (:mod:`xpopt.distributed.sweep`); rank 0 alone prints and writes the figures.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Any

import numpy

from .. import backend, experiment
from ..checkpoint import CheckpointError
from ..data import load_moons
from ..sweep import AXES, check_sweep
from ..sweep_result import SweepResult
from ..train import OPTIMIZERS

__all__ = ["add_parser", "sweep"]

LAYERS = list(experiment.LAYERS_DIMS)
M = 300  # the moons' examples: --batch-size full
FIGURES = ("heatmap.png", "costs.png")
_RANGE = re.compile(r"\A(\d+)-(\d+)\Z")
# --heatmap names: the sweep's axes, or the options that set them
_AXIS_NAMES = {
    "seeds": "seed",
    "init_seeds": "init_seed",
    "epochs": "num_epochs",
    "batch_size": "mini_batch_size",
}


# ------------------------------------------------------------------ argument types
def _values(parse, *, ranges: bool = False):
    """An argparse type: one value, or a list for ``a,b,c`` (and ``a-b`` when ``ranges``)."""

    def convert(text: str):
        pieces = [p.strip() for p in text.split(",")]
        if "" in pieces:
            raise argparse.ArgumentTypeError(f"empty value in {text!r}")
        out: list[Any] = []
        axis = len(pieces) > 1
        for piece in pieces:
            found = _RANGE.match(piece) if ranges else None
            if found:
                lo, hi = int(found[1]), int(found[2])
                if hi < lo:
                    raise argparse.ArgumentTypeError(f"empty range {piece!r} (a-b needs a <= b)")
                out.extend(parse(str(v)) for v in range(lo, hi + 1))
                axis = True
            else:
                out.append(parse(piece))
        return out if axis else out[0]

    return convert


def _check(kind, test, what: str):
    """An argparse type: ``kind(text)`` passing ``test``, as the other commands check theirs."""

    def parse(text: str):
        from .arguments import _number  # noqa: PLC0415  (arguments imports this module)

        return _number(text, kind, test, what)

    return parse


_positive = _check(float, lambda v: math.isfinite(v) and v > 0, "expected numbers > 0")
_non_negative = _check(float, lambda v: math.isfinite(v) and v >= 0, "expected numbers >= 0")
_beta = _check(float, lambda v: 0 <= v < 1, "expected numbers in [0, 1)")
_count = _check(int, lambda v: v >= 0, "expected integers >= 0")
_seed = _check(int, lambda v: 0 <= v < 2**32 - 1, "expected integers in [0, 2**32 - 2]")
_one = _check(int, lambda v: v >= 1, "expected an integer >= 1")


def _batch(text: str) -> int:
    if text.lower() in ("full", "all", "m"):
        return M
    return _check(int, lambda v: v >= 1, "expected integers >= 1 or 'full'")(text)


def _choice(names, what: str):
    def parse(text: str) -> str:
        if text.lower() not in names:
            raise argparse.ArgumentTypeError(
                f"invalid {what} {text!r} (choose from {', '.join(names)})"
            )
        return text.lower()

    return parse


def _axis_pair(text: str) -> tuple[str, str]:
    names = [_AXIS_NAMES.get(n, n) for n in (p.strip().replace("-", "_") for p in text.split(","))]
    if len(names) != 2 or len(set(names)) != 2 or not all(n in AXES for n in names):
        raise argparse.ArgumentTypeError(
            f"expected two different axes such as learning_rate,seed, got {text!r}"
        )
    return names[0], names[1]


# -------------------------------------------------------------------------- parser
def add_parser(sub) -> None:
    """Add ``xpopt sweep`` to the command line's subparsers."""
    from .arguments import EXIT_CODES  # noqa: PLC0415  (arguments imports this module)

    p = sub.add_parser(
        "sweep",
        help="a grid of models (optimizers, learning rates, betas, seeds) at once",
        description="Train every combination of the values given on the moons, stacked (each\n"
        "model bit for bit what 'xpopt train' trains alone), and print one row per\n"
        "model. A comma list is an axis (--learning-rate 1e-4,1e-3), a-b an integer\n"
        "range (--seeds 0-7), a single value stays fixed. Writes heatmap.png and\n"
        "costs.png into --out. Under 'mpiexec -n N python -m mpi4py -m xpopt sweep'\n"
        "the models are split over the ranks; rank 0 prints and draws.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("the grid (defaults: the course's)")
    g.add_argument(
        "--optimizer",
        type=_values(_choice(OPTIMIZERS, "optimizer")),
        default="adam",
        metavar="NAMES",
        help=f"of {', '.join(OPTIMIZERS)} (default: %(default)s)",
    )
    g.add_argument(
        "--learning-rate",
        type=_values(_positive),
        default=0.0007,
        metavar="LRS",
        help="learning_rate0 (default: %(default)s)",
    )
    g.add_argument(
        "--beta",
        type=_values(_beta),
        default=0.9,
        metavar="B",
        help="momentum (default: %(default)s)",
    )
    g.add_argument(
        "--beta1",
        type=_values(_beta),
        default=0.9,
        metavar="B",
        help="Adam's first moment (default: %(default)s)",
    )
    g.add_argument(
        "--beta2",
        type=_values(_beta),
        default=0.999,
        metavar="B",
        help="Adam's and RMSprop's second moment (default: %(default)s)",
    )
    g.add_argument(
        "--epsilon",
        type=_values(_positive),
        default=1e-8,
        metavar="E",
        help="(default: %(default)s)",
    )
    g.add_argument(
        "--seeds",
        type=_values(_seed, ranges=True),
        default=10,
        metavar="SEEDS",
        help="train's shuffle seed; epoch i shuffles with seed + i + 1 (default: %(default)s)",
    )
    g.add_argument(
        "--init-seeds",
        type=_values(_seed, ranges=True),
        default=3,
        metavar="SEEDS",
        help="initialize_parameters' seed (default: %(default)s)",
    )
    g.add_argument(
        "--epochs",
        type=_values(_count, ranges=True),
        default=5000,
        metavar="N",
        help="(default: %(default)s)",
    )
    g.add_argument(
        "--batch-size",
        type=_values(_batch),
        default=64,
        metavar="SIZE",
        help="examples per mini-batch, 'full' for all 300 (default: %(default)s)",
    )
    g.add_argument(
        "--decay",
        type=_values(_choice(("none", *experiment.DECAYS), "decay")),
        default="none",
        metavar="NAMES",
        help="none, update_lr, schedule_lr_decay (default: %(default)s)",
    )
    g.add_argument(
        "--decay-rate",
        type=_values(_non_negative),
        default=1.0,
        metavar="RATE",
        help="(default: %(default)s)",
    )
    r = p.add_argument_group("how")
    r.add_argument(
        "--shuffle",
        choices=("own", "shared"),
        default="own",
        help="own: each model its seed's shuffle; shared: one for all (one seed)",
    )
    r.add_argument(
        "--record-every",
        type=_one,
        default=100,
        metavar="N",
        help="record the cost every N epochs (default: %(default)s)",
    )
    r.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    r.add_argument(
        "--backend",
        choices=backend.BACKENDS,
        default=None,
        help="where to train (default: $XPOPT_BACKEND, else cpu)",
    )
    r.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 2 instead of falling back to the CPU",
    )
    bars = r.add_mutually_exclusive_group()
    bars.add_argument(
        "--progress",
        action="store_true",
        help="a progress bar per block on stderr (default: when it is a terminal)",
    )
    bars.add_argument("--no-progress", action="store_true", help="no progress bar")
    o = p.add_argument_group("output")
    o.add_argument(
        "--sort",
        choices=("accuracy", "final_cost"),
        default=None,
        help="best first by this metric (default: grid order)",
    )
    o.add_argument("--markdown", action="store_true", help="print the table in markdown")
    o.add_argument(
        "--heatmap",
        type=_axis_pair,
        default=None,
        metavar="X,Y",
        help="the heatmap's two axes (default: the first two axes of the grid)",
    )
    o.add_argument(
        "--best",
        type=_one,
        default=5,
        metavar="N",
        help="cost curves of the N best models (default: %(default)s)",
    )
    o.add_argument(
        "--out",
        type=Path,
        default=Path("xpopt-out"),
        metavar="DIR",
        help="folder for the figures (default: %(default)s)",
    )
    o.add_argument("--no-plots", action="store_true", help="write no figures")
    ck = p.add_argument_group("checkpoints")
    ck.add_argument(
        "--checkpoint",
        type=Path,
        metavar="PATH",
        help="save the whole sweep there (.npz), atomically",
    )
    ck.add_argument(
        "--resume", action="store_true", help="continue from --checkpoint when that file exists"
    )
    ck.add_argument(
        "--checkpoint-every",
        type=_one,
        default=1000,
        metavar="N",
        help="save every N epochs and after each block (default: %(default)s)",
    )
    p.set_defaults(func=sweep, parser=p)


# ------------------------------------------------------------------------- command
def sweep_arguments(args) -> dict:
    """:func:`xpopt.sweep`'s keyword arguments from the parsed options."""
    return dict(
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        beta=args.beta,
        beta1=args.beta1,
        beta2=args.beta2,
        epsilon=args.epsilon,
        seed=args.seeds,
        init_seed=args.init_seeds,
        num_epochs=args.epochs,
        mini_batch_size=args.batch_size,
        decay=args.decay,
        decay_rate=args.decay_rate,
        shuffle=args.shuffle,
        record_every=args.record_every,
    )


def _checked(args):
    """Every refusal before any data is loaded or model trained: argparse's exit 2."""
    from .commands import Failure, _check_figure_folder, _require_plots  # noqa: PLC0415

    if args.resume and args.checkpoint is None:
        args.parser.error("--resume needs --checkpoint PATH")
    kwargs = sweep_arguments(args)
    shuffle, record_every = kwargs.pop("shuffle"), kwargs.pop("record_every")
    try:
        plan = check_sweep(LAYERS, shuffle=shuffle, record_every=record_every, **kwargs)
    except (TypeError, ValueError) as exc:
        args.parser.error(str(exc))
    axes = list(plan.axes)
    heatmap = args.heatmap
    if heatmap is not None and not set(heatmap) <= set(axes):
        missing = [a for a in heatmap if a not in axes]
        args.parser.error(
            f"--heatmap: {', '.join(missing)} is not an axis of this sweep "
            f"(axes: {', '.join(axes) or 'none'})"
        )
    if heatmap is None and len(axes) >= 2:
        heatmap = (axes[0], axes[1])
    if args.checkpoint is not None:
        try:
            from ..checkpoint import check_writable  # noqa: PLC0415

            args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
            check_writable(args.checkpoint)
        except (OSError, CheckpointError) as exc:
            raise Failure(f"cannot write the checkpoint there: {exc}", 2) from None
    if not args.no_plots:
        _require_plots("or pass --no-plots")
        _check_figure_folder(args.out, "--out")
    return plan, heatmap


def sweep(args) -> int:
    """``xpopt sweep``: the grid trained at once, its table and two figures."""
    from .commands import Failure, _backend_context  # noqa: PLC0415
    from .output import device_line  # noqa: PLC0415

    plan, heatmap = _checked(args)
    from ..distributed.sweep import job_world  # noqa: PLC0415

    comm = job_world()
    root = comm is None or comm.Get_rank() == 0
    progress = True if args.progress else (False if args.no_progress else None)
    with _backend_context(args):
        X, Y = load_moons(dtype=numpy.dtype(args.dtype))
        if root:
            ranks = "" if comm is None else f", split over {comm.Get_size()} ranks"
            print(
                f"moons ({X.shape[1]} examples), layers {LAYERS}, {len(plan.models)} models "
                f"(axes: {', '.join(plan.axes) or 'none'}){ranks}, {args.dtype}, backend "
                f"{device_line()}"
            )
            sys.stdout.flush()
        result: SweepResult | None  # None on the ranks other than 0
        try:
            if comm is None:
                from ..sweep import _check_data, result_of, train_models  # noqa: PLC0415

                _check_data(X, Y, plan)
                found = train_models(
                    X,
                    Y,
                    plan,
                    progress=progress,
                    checkpoint=args.checkpoint,
                    checkpoint_every=args.checkpoint_every,
                    resume=args.resume,
                )
                result = result_of(X, Y, plan, range(len(plan.models)), *found)
            else:
                from ..distributed.sweep import split_sweep  # noqa: PLC0415

                result = split_sweep(
                    X,
                    Y,
                    plan,
                    comm,
                    progress=progress if root else False,
                    checkpoint=args.checkpoint,
                    checkpoint_every=args.checkpoint_every,
                    resume=args.resume,
                )
        except CheckpointError as exc:
            raise Failure(str(exc), 1) from None
    if not root:
        return 0
    assert result is not None  # rank 0 holds the whole result
    print()
    print(result.table(sort=args.sort, markdown=args.markdown))
    print()
    print(f"{len(result)} models in {result.seconds:.2f} s")
    status = 0
    bad = [k for k, c in enumerate(result.final_cost) if not math.isfinite(c)]
    if not args.no_plots:
        metric = args.sort or "accuracy"  # the heatmap's colour and the best curves' order
        heat, best = (args.out / name for name in FIGURES)
        figures = [best] if heatmap is None else [heat, best]
        try:
            if heatmap is not None:
                x_axis, y_axis = heatmap
                result.plot_heatmap(x_axis, y_axis, metric=metric, path=heat)
            result.plot_best(min(args.best, len(result)), metric, path=best)
        except OSError as exc:  # the table is printed already
            print(f"xpopt: cannot write the figures into {args.out}: {exc}", file=sys.stderr)
            status = 1
        else:
            print(f"figures: {', '.join(map(str, figures))}")
    if bad:
        print(
            f"xpopt: training diverged: {len(bad)} model(s) (first: model {bad[0]}, final "
            f"cost {result.final_cost[bad[0]]}); try smaller learning rates or --dtype "
            f"float64",
            file=sys.stderr,
        )
        status = 1
    return status
