"""What one training call carries from epoch to epoch: records, printed lines, checkpoints, resume.

:func:`~xpopt.train` builds a :class:`Run` once its arguments are checked, and calls its named
steps around each epoch: :meth:`Run.begin_epoch`, then :meth:`Run.end_epoch` (the schedule,
the recorded cost, the printed line and progress bar, the checkpoint). Resuming is two steps:
:meth:`Run.saved_checkpoint` reads and checks a checkpoint before anything is written, and
:meth:`Run.restore` copies it into the run's arrays.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field

from . import checkpoint as ckpt
from .backend import get_xp, to_host
from .flat import FlatDict
from .optim import Optimizer, OptimizerState
from .settings import _Progress, describe_schedule

__all__ = ["Run", "TrainResult"]


@dataclass
class TrainResult:
    """What :func:`~xpopt.train` returns.

    Attributes
    ----------
    parameters : FlatDict
        The trained parameters, on the data's device.
    costs : list of float
        ``cost_avg`` of every ``record_every``-th epoch (epoch 0, 100, ...), as the course.
    learning_rates : list of float
        The learning rate in force during each epoch run.
    wall_time : float
        Seconds spent in the loop, device work included (synchronised at the end).
    state : OptimizerState
        The optimizer's state (``t``, moments) after the last step.
    epochs : int
        The number of epochs completed (``num_epochs``, or fewer with ``stop_after``).
    record_epochs : list of int
        The epochs whose ``cost_avg`` is in ``costs``.
    learning_rate : float
        The learning rate after the last epoch (the schedule applied): the rate a continued
        run starts its next epoch with. The caller's optimizer is left as it was.
    start_epoch : int
        The epochs a resumed checkpoint had done (0 for a fresh run): this call ran
        ``epochs - start_epoch``.
    validation_epochs, validation_costs, validation_accuracies : list
        With ``train(..., validation=(X_val, Y_val))``: the recorded epochs of this call and,
        after each, the mean cost and the accuracy on the validation set (empty otherwise).
    """

    parameters: FlatDict
    costs: list
    learning_rates: list
    wall_time: float
    state: OptimizerState
    epochs: int
    record_epochs: list = field(default_factory=list)
    learning_rate: float | None = None
    start_epoch: int = 0
    validation_epochs: list = field(default_factory=list)
    validation_costs: list = field(default_factory=list)
    validation_accuracies: list = field(default_factory=list)


class Run:
    """One training call's state between epochs (see the module's docstring).

    Parameters
    ----------
    params : FlatDict
        The packed parameters the loop updates.
    optimizer : Optimizer
        The call's own copy (a schedule changes its learning rate).
    settings : dict
        :func:`~xpopt.settings.check_settings`'s checked counts and seed.
    decay, decay_rate, checkpoint, print_cost, progress, progress_label
        As :func:`~xpopt.train` takes them.
    data : (X, Y)
        Fingerprinted once when checkpointing, to refuse resuming on other data.
    """

    def __init__(
        self,
        params: FlatDict,
        optimizer: Optimizer,
        settings: dict,
        *,
        decay=None,
        decay_rate=1,
        checkpoint=None,
        data=None,
        print_cost=False,
        progress=False,
        progress_label="",
    ):
        self.params, self.optimizer, self.settings = params, optimizer, settings
        self.decay, self.decay_rate, self.checkpoint = decay, decay_rate, checkpoint
        self.print_cost = print_cost
        self.schedule = describe_schedule(decay, decay_rate)
        self.learning_rate0 = optimizer.learning_rate
        self.state = optimizer.init(params)
        self.xp = get_xp(params.flat)
        self.history = self.xp.zeros(
            math.ceil(settings["num_epochs"] / settings["record_every"]), dtype=params.flat.dtype
        )
        self.learning_rates: list[float] = []
        self.start = 0
        # Cheap next to training, once per call: refuses resuming on other data.
        self.fingerprint = ckpt.data_fingerprint(*data) if checkpoint is not None else None
        show = progress if progress is not None else sys.stderr.isatty()
        self.bar = _Progress(settings["num_epochs"], progress_label) if show else None

    # ------------------------------------------------------------------------ resume
    def _identity(self) -> dict:
        """What a checkpoint must share with this run (and what :meth:`save` writes)."""
        s = self.settings
        return dict(
            optimizer=self.optimizer,
            seed=s["seed"],
            mini_batch_size=s["mini_batch_size"],
            schedule=self.schedule,
            record_every=s["record_every"],
            data=self.fingerprint,
        )

    def saved_checkpoint(self, batches_per_epoch: int):
        """The checkpoint to resume from, read and checked against this run, or None when
        there is no file; nothing of the run is written yet (:class:`CheckpointError`)."""
        if self.checkpoint is None or not os.path.exists(self.checkpoint):
            return None
        saved = ckpt.load(self.checkpoint)
        saved.check_matches(self.params, self.state, **self._identity())
        saved.check_progress(
            num_epochs=self.settings["num_epochs"],
            learning_rate0=self.learning_rate0,
            batches_per_epoch=batches_per_epoch,
            path=self.checkpoint,
        )
        return saved

    def restore(self, saved) -> None:
        """Continue from ``saved``: its parameters, state, records and learning rate."""
        saved.restore_into(self.params, self.state, **self._identity())
        self.start = saved.epoch
        if self.bar is not None:
            self.bar.resume_at(self.start)
        self.learning_rates = list(saved.learning_rates)
        done = saved.costs[: len(self.history)]
        self.history[: len(done)] = self.xp.asarray(done, dtype=self.history.dtype)
        if self.learning_rates:
            self.optimizer.learning_rate = saved.learning_rate
        if self.print_cost:
            print(f"Resuming from {self.checkpoint} at epoch {self.start}")

    # ------------------------------------------------------------------------ epochs
    @property
    def end(self) -> int:
        """The epoch this call stops before (``num_epochs``, or earlier with ``stop_after``)."""
        num_epochs, stop_after = self.settings["num_epochs"], self.settings["stop_after"]
        return num_epochs if stop_after is None else min(num_epochs, self.start + stop_after)

    def begin_epoch(self) -> None:
        self.learning_rates.append(self.optimizer.learning_rate)

    def end_epoch(self, i: int, cost_avg) -> None:
        """After epoch ``i``: the schedule, the record, the printed line and bar, the checkpoint."""
        s, opt = self.settings, self.optimizer
        if self.decay is not None:
            opt.learning_rate = self.decay(self.learning_rate0, i, self.decay_rate)
        if i % s["record_every"] == 0:
            self.history[i // s["record_every"]] = cost_avg
        if self.print_cost and i % s["print_every"] == 0:
            if self.bar is not None:
                self.bar.clear()
            print(f"Cost after epoch {i}: {float(cost_avg):f}")
            if self.decay is not None:
                print(f"learning rate after epoch {i}: {opt.learning_rate:f}")
        last = i == self.end - 1
        if self.bar is not None and (i % s["record_every"] == 0 or last):
            self.bar.show(i + 1, float(cost_avg))
        if self.checkpoint is not None and ((i + 1) % s["checkpoint_every"] == 0 or last):
            self.save(i + 1)

    def costs(self, epochs: int) -> list:
        """The recorded costs of the first ``epochs`` epochs, read to the host."""
        return to_host(self.history[: -(-epochs // self.settings["record_every"])]).tolist()

    def save(self, epochs: int) -> None:
        """Checkpoint the run after ``epochs`` epochs (atomically)."""
        ckpt.save(
            self.checkpoint,
            parameters=self.params,
            state=self.state,
            epoch=epochs,
            learning_rate=self.optimizer.learning_rate,
            learning_rates=self.learning_rates,
            costs=self.costs(epochs),
            **self._identity(),
        )

    def result(self, t0: float) -> TrainResult:
        """What the call returns; its wall time from ``t0`` counts the final read (which
        waits for the device)."""
        end = self.end
        costs = self.costs(end)
        wall_time = time.perf_counter() - t0
        if self.bar is not None:
            self.bar.close()
        return TrainResult(
            self.params,
            costs,
            self.learning_rates,
            wall_time,
            self.state,
            end,
            list(range(0, end, self.settings["record_every"])),
            self.optimizer.learning_rate,
            self.start,
        )
