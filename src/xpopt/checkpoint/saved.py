"""A loaded checkpoint: its counters, and the checks and copies that resume a run from it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy

from ..backend import get_xp
from .format import CheckpointError, data_problem
from .keys import _by_key, _is_array, _packed_as, _run_layout


@dataclass
class Checkpoint:
    """A loaded checkpoint (host arrays)."""

    meta: dict
    parameters: numpy.ndarray
    slots: dict

    @property
    def epoch(self) -> int:
        return self.meta["epoch"]

    @property
    def t(self) -> int:
        return self.meta["t"]

    @property
    def costs(self) -> list:
        return self.meta["costs"]

    @property
    def learning_rates(self) -> list:
        return self.meta["learning_rates"]

    @property
    def learning_rate(self) -> float:
        return self.meta["learning_rate"]

    @property
    def record_every(self) -> int | None:
        return self.meta["record_every"]

    def layout(self) -> tuple:
        return tuple((k, tuple(s)) for k, s in self.meta["layout"])

    def check_progress(
        self, *, num_epochs: int, learning_rate0: float, batches_per_epoch: int, path="checkpoint"
    ) -> None:
        """Refuse resuming a :func:`~xpopt.train` run whose counters do not add up: more
        epochs than ``num_epochs``, another initial learning rate, a learning rate per epoch
        and a cost per ``record_every`` epochs missing or extra, or ``t`` other than one
        step per mini-batch of each epoch done."""
        meta, epoch = self.meta, self.epoch
        if epoch > num_epochs:
            raise CheckpointError(
                f"{path} has done {epoch} epochs, more than num_epochs={num_epochs}"
            )
        if self.learning_rates and self.learning_rates[0] != learning_rate0:
            raise CheckpointError(
                f"{path} was trained from learning rate "
                f"{self.learning_rates[0]!r}, this run starts from {learning_rate0!r}"
            )
        problems = []
        if len(self.learning_rates) != epoch:
            problems.append(f"{len(self.learning_rates)} learning rates for {epoch} epochs")
        every = meta["record_every"]
        if every is None or len(self.costs) != -(-epoch // every):
            problems.append(f"{len(self.costs)} costs for {epoch} epochs recorded every {every}")
        if self.t != epoch * batches_per_epoch:
            problems.append(f"t={self.t} after {epoch} epochs of {batches_per_epoch} mini-batches")
        if problems:
            raise CheckpointError(
                f"{path}: the run's counters do not add up: " + "; ".join(problems)
            )

    def check_matches(
        self,
        parameters: dict,
        state,
        *,
        optimizer,
        seed: int,
        mini_batch_size: int,
        schedule: dict | None = None,
        record_every: int | None = None,
        data: dict | None = None,
    ) -> dict:
        """Raise :class:`CheckpointError` naming every way this checkpoint differs from the
        run (see :meth:`restore_into`); returns the arrays to restore into, by name."""
        meta = self.meta
        problems = []
        try:
            layout = _run_layout(parameters)
        except TypeError as exc:
            raise CheckpointError(f"cannot restore into these parameters: {exc}") from None
        saved_layout = self.layout()
        if dict(saved_layout) != dict(layout):
            problems.append(f"network layout {saved_layout} != {layout}")
            layout = ()
        targets = {}
        if layout:
            targets["parameters"], more = _by_key(parameters, layout, "", "parameters")
            problems += more
            dtypes = sorted({str(a.dtype) for a in targets["parameters"] if _is_array(a)})
            if dtypes and dtypes != [meta["dtype"]]:
                problems.append(f"dtype {meta['dtype']} != {', '.join(dtypes)}")
        if meta["optimizer"] != type(optimizer).__name__:
            problems.append(f"optimizer {meta['optimizer']} != {type(optimizer).__name__}")
        hyper = {k: v for k, v in optimizer.hyperparameters().items() if k != "learning_rate"}
        if meta["hyperparameters"] != hyper:
            problems.append(f"hyperparameters {meta['hyperparameters']} != {hyper}")
        if meta["seed"] != seed:
            problems.append(f"seed {meta['seed']} != {seed}")
        if meta["schedule"] != schedule:
            problems.append(f"learning-rate schedule {meta['schedule']} != {schedule}")
        if meta["mini_batch_size"] != mini_batch_size:
            problems.append(f"mini_batch_size {meta['mini_batch_size']} != {mini_batch_size}")
        if meta["record_every"] != record_every:
            problems.append(
                f"record_every {meta['record_every']} != {record_every} (the "
                f"recorded costs would be of other epochs)"
            )
        if meta["data"] != data:
            problems.append(data_problem(meta["data"], data))
        for slot in ("v", "s"):
            value = getattr(state, slot, None)
            if (value is None) != (slot not in self.slots):
                problems.append(f"optimizer state {slot!r} present in only one of them")
            elif value is not None and layout:
                targets[slot], more = _by_key(value, layout, "d", f"state.{slot}")
                problems += more
        if not problems:
            every = [a for arrays in targets.values() for a in arrays]
            if {str(a.dtype) for a in every} != {meta["dtype"]}:
                problems.append(
                    f"dtype {meta['dtype']} != the state's {sorted({str(a.dtype) for a in every})}"
                )
            try:
                get_xp(*every)
            except TypeError as exc:
                problems.append(str(exc))
            if any(isinstance(a, numpy.ndarray) and not a.flags.writeable for a in every):
                problems.append("some of the arrays to restore into are read-only")
        if problems:
            raise CheckpointError("checkpoint does not match this run: " + "; ".join(problems))
        return targets

    def restore_into(
        self,
        parameters: dict,
        state,
        *,
        optimizer,
        seed: int,
        mini_batch_size: int,
        schedule: dict | None = None,
        record_every: int | None = None,
        data: dict | None = None,
    ) -> None:
        """Copy the saved parameters and state into a run's own arrays, by key, after
        checking that everything matches (:meth:`check_matches`); a refused restore
        changes nothing.

        ``parameters`` is a packed or rebound FlatDict or a plain dict; the state's ``v`` and
        ``s`` are keyed ``dW1, ...`` (FlatDicts or plain dicts, in any key order). The
        arrays the dicts hold now are the ones written into.
        """
        targets = self.check_matches(
            parameters,
            state,
            optimizer=optimizer,
            seed=seed,
            mini_batch_size=mini_batch_size,
            schedule=schedule,
            record_every=record_every,
            data=data,
        )
        saved_layout, layout = self.layout(), _run_layout(parameters)
        offsets, at = {}, 0
        for key, shape in saved_layout:
            n = math.prod(shape)
            offsets[key] = (at, at + n)
            at += n
        sources = {
            "parameters": ("", parameters, self.parameters),
            **{
                slot: ("d", getattr(state, slot), self.slots[slot])
                for slot in targets
                if slot != "parameters"
            },
        }
        for name, (prefix, d, saved) in sources.items():
            xp = get_xp(*targets[name])
            if _packed_as(d, saved_layout, prefix):
                d.flat[...] = xp.asarray(saved)
                continue
            for (key, shape), target in zip(layout, targets[name], strict=True):
                lo, hi = offsets[key]
                target[...] = xp.asarray(saved[lo:hi].reshape(shape))
        state.t = self.t
