"""Learning-rate decay, as in the course."""

from __future__ import annotations

import math
import numbers

from ..validation import check_learning_rate


def _check(learning_rate0, epoch_num, decay_rate):
    check_learning_rate(learning_rate0)
    if isinstance(epoch_num, bool) or not isinstance(epoch_num, numbers.Integral) or epoch_num < 0:
        raise ValueError(f"epoch_num must be an integer >= 0, got {epoch_num!r}")
    if not isinstance(decay_rate, numbers.Real) or not math.isfinite(decay_rate) or decay_rate < 0:
        raise ValueError(f"decay_rate must be a finite number >= 0, got {decay_rate!r}")


def _check_interval(time_interval):
    # whatever was passed (an int annotation would make mypy call the Integral test dead)
    if (
        isinstance(time_interval, bool)
        or not isinstance(time_interval, numbers.Integral)
        or time_interval < 1
    ):
        raise ValueError(f"time_interval must be an integer >= 1, got {time_interval!r}")


def update_lr(learning_rate0: float, epoch_num: int, decay_rate: float) -> float:
    """``learning_rate0 / (1 + decay_rate * epoch_num)``: decay every epoch."""
    _check(learning_rate0, epoch_num, decay_rate)
    return learning_rate0 / (1 + decay_rate * epoch_num)


def schedule_lr_decay(
    learning_rate0: float, epoch_num: int, decay_rate: float, time_interval: int = 1000
) -> float:
    """``learning_rate0 / (1 + decay_rate * floor(epoch_num / time_interval))``: decay in steps."""
    _check(learning_rate0, epoch_num, decay_rate)
    _check_interval(time_interval)
    return learning_rate0 / (1 + decay_rate * math.floor(epoch_num / time_interval))
