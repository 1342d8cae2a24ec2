"""Learning-rate decay: xpopt.update_lr and xpopt.schedule_lr_decay against the course."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import course_reference as course
import xpopt

LR0S = [0.0, 0.0007, 0.01, 0.1, 1.0, 3.5]
EPOCHS = [0, 1, 2, 3, 99, 100, 999, 1000, 1001, 1999, 2000, 4999, 5000, 123456]
RATES = [0.0, 0.3, 1, 1.0, 2.5, 100.0]
INTERVALS = [1, 3, 100, 1000, 1024]


@pytest.mark.parametrize("decay_rate", RATES)
@pytest.mark.parametrize("lr0", LR0S)
def test_update_lr_equals_course(lr0, decay_rate):
    """update_lr equals the course's lr0 / (1 + decay_rate * epoch_num) exactly, every epoch."""
    for epoch in EPOCHS:
        got = xpopt.update_lr(lr0, epoch, decay_rate)
        assert got == course.update_lr(lr0, epoch, decay_rate)
        assert got == lr0 / (1 + decay_rate * epoch)


@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize("decay_rate", RATES)
@pytest.mark.parametrize("lr0", LR0S)
def test_schedule_lr_decay_equals_course(lr0, decay_rate, interval):
    """schedule_lr_decay equals the course's lr0 / (1 + decay_rate * floor(epoch / interval))."""
    for epoch in EPOCHS:
        got = xpopt.schedule_lr_decay(lr0, epoch, decay_rate, interval)
        assert got == course.schedule_lr_decay(lr0, epoch, decay_rate, interval)
        assert got == lr0 / (1 + decay_rate * (epoch // interval))


def test_schedule_default_interval_is_1000():
    """The default time_interval is the course's 1000: constant within 1000-epoch blocks,
    dropping at multiples of 1000 (lr0 = 0.1, decay_rate = 1: 0.1, 0.05, 0.1/3, ...)."""
    for epoch in range(0, 5001, 7):
        assert xpopt.schedule_lr_decay(0.1, epoch, 1) == course.schedule_lr_decay(0.1, epoch, 1)
    assert xpopt.schedule_lr_decay(0.1, 999, 1) == 0.1
    assert xpopt.schedule_lr_decay(0.1, 1000, 1) == 0.1 / 2
    assert xpopt.schedule_lr_decay(0.1, 2999, 1) == 0.1 / 3


def test_update_lr_notebook_values():
    """Independent arithmetic: lr0 = 0.1, decay_rate = 1 gives 0.1 / (1 + epoch)."""
    assert xpopt.update_lr(0.1, 0, 1) == 0.1
    assert xpopt.update_lr(0.1, 1, 1) == 0.05
    assert xpopt.update_lr(0.1, 9, 1) == pytest.approx(0.01, rel=1e-15)
    assert xpopt.update_lr(0.5, 2, 0.5) == 0.25


def test_numpy_integer_epoch_accepted():
    """Epochs may be NumPy integers (from np.arange) and give the same values as ints."""
    for epoch in np.arange(0, 3001, 250):
        assert xpopt.update_lr(0.1, epoch, 0.3) == xpopt.update_lr(0.1, int(epoch), 0.3)
        assert xpopt.schedule_lr_decay(0.1, epoch, 0.3) == xpopt.schedule_lr_decay(
            0.1, int(epoch), 0.3
        )


finite = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(lr0=finite, epoch=st.integers(0, 10**7), rate=finite, interval=st.integers(1, 10**5))
def test_schedules_equal_course_for_arbitrary_inputs(lr0, epoch, rate, interval):
    """For arbitrary valid inputs both schedules equal the course's functions exactly, are at
    most lr0, and never increase from one epoch to the next."""
    u = xpopt.update_lr(lr0, epoch, rate)
    s = xpopt.schedule_lr_decay(lr0, epoch, rate, interval)
    assert u == course.update_lr(lr0, epoch, rate)
    assert s == course.schedule_lr_decay(lr0, epoch, rate, interval)
    assert u <= lr0 and s <= lr0
    assert xpopt.update_lr(lr0, epoch + 1, rate) <= u
    assert xpopt.schedule_lr_decay(lr0, epoch + 1, rate, interval) <= s


BAD = [
    # (learning_rate0, epoch_num, decay_rate), message regex
    ((-0.1, 0, 1), "learning_rate"),
    ((math.nan, 0, 1), "learning_rate"),
    ((math.inf, 0, 1), "learning_rate"),
    ((0.1, -1, 1), "epoch_num"),
    ((0.1, 1.5, 1), "epoch_num"),
    ((0.1, True, 1), "epoch_num"),
    ((0.1, 0, -0.5), "decay_rate"),
    ((0.1, 0, math.nan), "decay_rate"),
    ((0.1, 0, math.inf), "decay_rate"),
]


@pytest.mark.parametrize(
    "fn", [xpopt.update_lr, xpopt.schedule_lr_decay], ids=["update_lr", "schedule_lr_decay"]
)
@pytest.mark.parametrize("args,pattern", BAD, ids=[f"{a}" for a, _ in BAD])
def test_bad_inputs_raise_value_error(fn, args, pattern):
    """A negative / NaN / infinite learning rate or decay rate, or an epoch that is not an
    integer >= 0, raises ValueError naming the argument."""
    with pytest.raises(ValueError, match=pattern):
        fn(*args)


@pytest.mark.parametrize("interval", [0, -1000, 1.5, True])
def test_bad_time_interval(interval):
    """time_interval must be an integer >= 1 (not 0, negative, 1.5 or a bool)."""
    with pytest.raises(ValueError, match="time_interval"):
        xpopt.schedule_lr_decay(0.1, 10, 1, interval)
