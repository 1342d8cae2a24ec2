"""A whole sweep's checkpoint: one ``.npz`` that :func:`xpopt.sweep` writes and resumes from.

A sweep trains its blocks one after another (:meth:`~xpopt.sweep.SweepPlan.blocks`). The
file holds the finished blocks' parameters and recorded costs, and the running block's
buffers (:meth:`~xpopt.stacked.StackedTrainer.snapshot`: parameters, optimizer state,
recorded costs; its epoch, step count ``t`` and learning rates in the metadata), so that a
resumed sweep ends bit for bit where the uninterrupted one ends. It is written atomically
(:func:`xpopt.checkpoint.files.write_npz_atomically`) and read with ``allow_pickle=False``;
the metadata is one JSON string that describes the sweep (grid, network, data, dtype, record
interval, blocks): a checkpoint of another sweep is refused with
:class:`~xpopt.checkpoint.CheckpointError` before anything is trained.
"""

from __future__ import annotations

import json
import math
import os

import numpy

from .checkpoint import CheckpointError, check_writable, data_fingerprint
from .checkpoint.files import write_npz_atomically
from .flat import FlatDict
from .network import parameter_layout
from .settings import describe_schedule

__all__ = ["FORMAT", "SweepCheckpoint"]

FORMAT = "xpopt-sweep-checkpoint-1"
_SETTINGS = (
    "optimizer",
    "learning_rate",
    "beta",
    "beta1",
    "beta2",
    "epsilon",
    "seed",
    "init_seed",
    "num_epochs",
    "mini_batch_size",
    "decay_rate",
)


def _describe(plan, indices, blocks, X, Y) -> dict:
    """The sweep as JSON: what must be equal for a checkpoint to be resumed."""
    models = []
    for k in indices:
        s = plan.models[k]
        row = {name: s[name] if isinstance(s[name], str) else float(s[name]) for name in _SETTINGS}
        row["decay"] = describe_schedule(s["_decay"], s["decay_rate"])
        models.append(row)
    run = {
        "layer_dims": plan.dims,
        "dtype": str(X.dtype),
        "shuffle": plan.shuffle,
        "record_every": plan.record_every,
        "indices": list(indices),
        "models": models,
        "blocks": [members for _, members in blocks],
        "data": data_fingerprint(X, Y),
    }
    return json.loads(json.dumps(run))  # as it reads back: lists, not tuples


class SweepCheckpoint:
    """The checkpoint file of one sweep (a plan's models ``indices`` cut into ``blocks``).

    Parameters
    ----------
    path : path-like
        Checked writable now (:class:`CheckpointError` otherwise), before any training.
    X, Y, plan, indices, blocks
        The sweep, as :func:`xpopt.sweep.train_models` runs it.
    """

    def __init__(self, path, X, Y, plan, indices, blocks):
        self.path = check_writable(path)
        self.run = _describe(plan, indices, blocks, X, Y)
        self.blocks = blocks
        self.dtype = numpy.dtype(X.dtype)
        self.layout = parameter_layout(plan.dims)
        self.P = sum(math.prod(shape) for _, shape in self.layout)
        self.record_every = plan.record_every
        self.slots = {
            b: type(plan.models[members[0]]["_opt"]).slots for b, (_, members) in enumerate(blocks)
        }
        self.done = 0  # blocks finished
        self.finished_arrays: dict[str, numpy.ndarray] = {}
        self.current = None  # (arrays, counters) of the block running at the last save

    # ---------------------------------------------------------------------- reading
    def load(self) -> None:
        """Read the file if there is one and check it against this sweep (or raise
        :class:`CheckpointError`); nothing is trained or changed before it passes."""
        if not os.path.exists(self.path):
            return
        try:
            with numpy.load(self.path, allow_pickle=False) as data:
                if not hasattr(data, "files") or "meta" not in data.files:
                    raise CheckpointError(f"{self.path} is not an xpopt sweep checkpoint")
                meta = json.loads(str(data["meta"][()]))
                arrays = {name: data[name] for name in data.files if name != "meta"}
        except CheckpointError:
            raise
        except Exception as exc:  # zipfile, zlib, numpy.lib.format, json: any reader's failure
            raise CheckpointError(
                f"{self.path} is not a readable sweep checkpoint (truncated "
                f"or corrupt?): {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CheckpointError(f"{self.path} is not an {FORMAT} file")
        if meta.get("run") != self.run:
            run = meta.get("run")
            saved = run if isinstance(run, dict) else {}
            differ = sorted(k for k in self.run if saved.get(k) != self.run[k])
            raise CheckpointError(
                f"{self.path} is the checkpoint of another sweep "
                f"({', '.join(differ) or 'its description'} differ); "
                f"start again without --resume or use another path"
            )
        done = meta.get("done")
        if not (isinstance(done, int) and 0 <= done <= len(self.blocks)):
            raise CheckpointError(f"{self.path}: its count of finished blocks is wrong")
        for b in range(done):
            self._check(arrays, f"block{b}_parameters", (len(self.blocks[b][1]), self.P))
            self._check(arrays, f"block{b}_costs", (self._records(b), len(self.blocks[b][1])))
        current = meta.get("current")
        if current is not None:
            self.current = (self._check_current(arrays, done, current), current)
        self.done = done
        self.finished_arrays = {k: v for k, v in arrays.items() if k.startswith("block")}

    def _records(self, b: int) -> int:
        return math.ceil(self.blocks[b][0][2] / self.record_every)

    def _check(self, arrays, name, shape):
        a = arrays.get(name)
        if a is None or a.shape != tuple(shape) or a.dtype != self.dtype:
            found = None if a is None else f"{a.dtype}{a.shape}"
            raise CheckpointError(
                f"{self.path}: {name} should be {self.dtype}{tuple(shape)}, found {found}"
            )
        return a

    def _check_current(self, arrays, b, counters) -> dict:
        if b >= len(self.blocks):
            raise CheckpointError(f"{self.path}: a running block after the last one")
        (_, batch, epochs), members = self.blocks[b]
        K = len(members)
        out = {
            "parameters": self._check(arrays, "current_parameters", (K, self.P)),
            "history": self._check(arrays, "current_history", (self._records(b), K)),
        }
        for slot in self.slots[b]:
            out[slot] = self._check(arrays, f"current_{slot}", (K, self.P))
        epoch, t, rates = counters.get("epoch"), counters.get("t"), counters.get("learning_rates")
        m = self.run["data"]["shapes"][0][1]
        per_epoch = math.ceil(m / min(batch, m))
        if not (
            isinstance(epoch, int)
            and 0 < epoch < epochs
            and t == epoch * per_epoch
            and isinstance(rates, list)
            and len(rates) == K
            and all(isinstance(r, float) and math.isfinite(r) and r > 0 for r in rates)
        ):
            raise CheckpointError(
                f"{self.path}: the running block's counters do not add up "
                f"(epoch {epoch!r}, t {t!r})"
            )
        return out

    def finished(self, b: int) -> dict:
        """``{model: (parameters, costs)}`` of finished block ``b``, on the host."""
        params = self.finished_arrays[f"block{b}_parameters"]
        costs = self.finished_arrays[f"block{b}_costs"]
        return {
            k: (FlatDict(params[j].copy(), self.layout), costs[:, j].tolist())
            for j, k in enumerate(self.blocks[b][1])
        }

    def restore_current(self, b: int, trainer) -> None:
        """Continue block ``b``'s trainer from the file, when the file stopped inside it."""
        if self.current is not None and b == self.done:
            arrays, counters = self.current
            trainer.restore(arrays, counters, self.record_every)

    # ---------------------------------------------------------------------- writing
    def _write(self, current: dict | None, current_arrays: dict) -> None:
        meta = {"format": FORMAT, "run": self.run, "done": self.done, "current": current}
        arrays = {**self.finished_arrays, **current_arrays, "meta": numpy.array(json.dumps(meta))}
        write_npz_atomically(self.path, arrays)

    def save_current(self, b: int, trainer) -> None:
        """Block ``b`` stopped at ``trainer.epoch``: save it with the finished ones."""
        arrays, counters = trainer.snapshot()
        self._write(counters, {f"current_{k}": v for k, v in arrays.items()})

    def save_finished(self, b: int, trainer, history) -> None:
        """Block ``b`` is done: keep its parameters and costs, drop the running state."""
        self.finished_arrays[f"block{b}_parameters"] = numpy.array(
            trainer.snapshot()[0]["parameters"]
        )
        self.finished_arrays[f"block{b}_costs"] = numpy.array(history, dtype=self.dtype)
        self.done = b + 1
        self.current = None
        self._write(None, {})
