"""What a training call is told and checks first: its counts, seed, schedule; its progress bar;
the ``XPOPT_*`` environment variables.

:func:`check_settings` validates the counts, the seed and the checkpoint path before anything
runs (the command line calls it too, before it loads data); :func:`check_environment` the
environment variables (the command line, before anything).
"""

from __future__ import annotations

import functools
import numbers
import os
import sys

__all__ = [
    "ENVIRONMENT",
    "SEED_MAX",
    "check_environment",
    "check_seed",
    "check_settings",
    "describe_schedule",
]


def describe_schedule(decay, decay_rate) -> dict | None:
    """A JSON-able description of a decay schedule, to refuse resuming under another one."""
    if decay is None:
        return None
    func, keywords = decay, {}
    if isinstance(decay, functools.partial):
        func, keywords = decay.func, {k: repr(v) for k, v in decay.keywords.items()}
    qualname = getattr(func, "__qualname__", type(func).__name__)
    name = f"{getattr(func, '__module__', '?')}.{qualname}"
    return {"decay": name, "keywords": keywords, "decay_rate": float(decay_rate)}


def _terminal_shape(stream) -> dict:
    """``ncols`` and ``nrows`` for a terminal that reports a zero size (a fresh
    pseudo-terminal: tqdm would trim or hide its bar), else nothing (tqdm asks)."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return {}
    return {"ncols": 80, "nrows": 24} if size.columns == 0 or size.lines == 0 else {}


class _Progress:
    """A tqdm progress bar on stderr (ETA, epochs per second, the cost in the postfix),
    redrawn only when told: at the epochs whose cost the caller reads anyway (recorded
    epochs), never per step.

    Parameters
    ----------
    total : int
        The epochs of the run.
    label : str
        Shown before the bar (a trailing ``": "`` is tqdm's own).
    stream : file, optional
        Default ``sys.stderr``.
    initial : int
        Epochs already done (a resumed run).
    """

    def __init__(self, total: int, label: str = "", stream=None, initial: int = 0):
        from tqdm import tqdm  # noqa: PLC0415 (only a run that shows a bar needs it)

        label = label[:-2] if label.endswith(": ") else label
        self.total, self.label = total, label
        self.stream = stream if stream is not None else sys.stderr
        self.bar = tqdm(
            total=total,
            initial=initial,
            desc=label or None,
            unit="epoch",
            file=self.stream,
            leave=True,
            **_terminal_shape(self.stream),
            mininterval=0.2,
            smoothing=0.3,
        )

    def resume_at(self, done: int) -> None:
        """Start counting from ``done`` epochs (a resumed run): the rate and the ETA count
        only the epochs this call runs."""
        self.bar.n = self.bar.last_print_n = self.bar.initial = done

    def show(self, done: int, cost: float) -> None:
        """``done`` epochs finished, the last with ``cost`` (a host float)."""
        self.bar.set_postfix_str(f"cost {cost:.6f}", refresh=False)
        self.bar.update(done - self.bar.n)

    def clear(self) -> None:
        """Erase the bar, so that a printed line starts at the left margin (the next
        :meth:`show` draws it again)."""
        self.bar.clear()

    def close(self) -> None:
        """Draw the final state and leave it on its own line."""
        self.bar.close()


# ------------------------------------------------------------------ environment
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _positive_integer(text: str) -> bool:
    return text.isdigit() and int(text) >= 1


#: The environment variables xpopt reads: ``name -> (test of the stripped, lower-cased
#: value, the allowed values in words)``. An empty value counts as unset.
ENVIRONMENT = {
    "XPOPT_BACKEND": (lambda v: v in ("cpu", "cuda", "auto"), "cpu, cuda or auto"),
    "XPOPT_STRICT": (lambda v: v in _TRUE + _FALSE, ", ".join(_TRUE + _FALSE)),
    "XPOPT_HOST_KERNELS": (lambda v: v in ("0", "1"), "1 (use the compiled CPU kernels) or 0"),
    "XPOPT_NUM_THREADS": (_positive_integer, "a positive integer"),
}


def check_environment(environ=None) -> None:
    """Refuse an ``XPOPT_*`` variable set to a value xpopt does not understand.

    The command line calls this before anything runs; the library reads each variable
    where it is used.

    Parameters
    ----------
    environ : mapping, optional
        Default ``os.environ``.

    Raises
    ------
    ValueError
        One line naming the first bad variable, its value and the allowed values.
    """
    environ = os.environ if environ is None else environ
    for name, (test, allowed) in ENVIRONMENT.items():
        value = environ.get(name, "").strip()
        if value and not test(value.lower()):
            raise ValueError(f"{name}={value!r} is not understood: use {allowed} (or unset it)")


SEED_MAX = 2**32 - 1  # numpy.random.RandomState accepts seeds in [0, 2**32 - 1]


def _count(name: str, value, minimum: int | None) -> int:
    """An integer argument: any ``numbers.Integral`` (NumPy integers too) but not a bool."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_seed(seed, num_epochs: int) -> int:
    """``seed`` such that every epoch's shuffle seed ``seed + i + 1`` (i < num_epochs) is
    one NumPy accepts; returns it as an int."""
    seed = _count("seed", seed, None)
    first, last = seed + 1, seed + max(int(num_epochs), 1)
    if first < 0 or last > SEED_MAX:
        raise ValueError(
            f"seed {seed} with {num_epochs} epochs shuffles with seeds {first}.."
            f"{last}, outside NumPy's range [0, 2**32 - 1]: use a seed in "
            f"[-1, {SEED_MAX - max(int(num_epochs), 1)}]"
        )
    return seed


def check_settings(
    *,
    num_epochs,
    mini_batch_size,
    seed,
    print_every=1000,
    record_every=100,
    checkpoint_every=1000,
    stop_after=None,
    checkpoint=None,
) -> dict:
    """Validate :func:`train`'s counts, seed and checkpoint path, before anything runs.

    The command line calls this too, before it loads any data. Returns the counts as ints.

    Raises
    ------
    TypeError, ValueError
        A count that is not an integer (bools refused) or out of range; a seed that leaves
        NumPy's range in some epoch.
    CheckpointError
        A checkpoint path that is a directory or where no file can be created.
    """
    from .checkpoint import check_writable  # noqa: PLC0415

    epochs = _count("num_epochs", num_epochs, 0)
    out: dict[str, int | None] = {
        "num_epochs": epochs,
        "mini_batch_size": _count("mini_batch_size", mini_batch_size, 1),
        "print_every": _count("print_every", print_every, 1),
        "record_every": _count("record_every", record_every, 1),
        "checkpoint_every": _count("checkpoint_every", checkpoint_every, 1),
        "stop_after": None if stop_after is None else _count("stop_after", stop_after, 0),
    }
    out["seed"] = check_seed(seed, epochs)
    if checkpoint is not None:
        check_writable(checkpoint)
    return out
