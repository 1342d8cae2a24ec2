"""What a training call is told and checks first: its counts, seed, schedule; its progress bar.

:func:`check_settings` validates the counts, the seed and the checkpoint path before anything
runs (the command line calls it too, before it loads data).
"""

from __future__ import annotations

import functools
import numbers
import sys
import time

__all__ = ["SEED_MAX", "check_seed", "check_settings", "describe_schedule"]


def describe_schedule(decay, decay_rate) -> dict | None:
    """A JSON-able description of a decay schedule, to refuse resuming under another one."""
    if decay is None:
        return None
    func, keywords = decay, {}
    if isinstance(func, functools.partial):
        func, keywords = func.func, {k: repr(v) for k, v in func.keywords.items()}
    name = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', type(func).__name__)}"
    return {"decay": name, "keywords": keywords, "decay_rate": float(decay_rate)}


class _Progress:
    """A one-line progress bar on stderr, redrawn only when told (never per step)."""

    def __init__(self, total: int, label: str = "", stream=None):
        self.total, self.label = total, label
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.perf_counter()

    def show(self, done: int, cost: float) -> None:
        width = 30
        filled = int(width * done / max(self.total, 1))
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        self.stream.write(f"\r{self.label}[{'#' * filled}{'.' * (width - filled)}] "
                          f"{done}/{self.total} epochs  cost {cost:.6f}  {rate:,.0f} epochs/s ")
        self.stream.flush()

    def clear(self) -> None:
        """Erase the bar, so that a printed line starts at the left margin."""
        self.stream.write("\r\033[K")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


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
        raise ValueError(f"seed {seed} with {num_epochs} epochs shuffles with seeds {first}.."
                         f"{last}, outside NumPy's range [0, 2**32 - 1]: use a seed in "
                         f"[-1, {SEED_MAX - max(int(num_epochs), 1)}]")
    return seed


def check_settings(*, num_epochs, mini_batch_size, seed, print_every=1000, record_every=100,
                   checkpoint_every=1000, stop_after=None, checkpoint=None) -> dict:
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

    out = {"num_epochs": _count("num_epochs", num_epochs, 0),
           "mini_batch_size": _count("mini_batch_size", mini_batch_size, 1),
           "print_every": _count("print_every", print_every, 1),
           "record_every": _count("record_every", record_every, 1),
           "checkpoint_every": _count("checkpoint_every", checkpoint_every, 1),
           "stop_after": None if stop_after is None else _count("stop_after", stop_after, 0)}
    out["seed"] = check_seed(seed, out["num_epochs"])
    if checkpoint is not None:
        check_writable(checkpoint)
    return out
