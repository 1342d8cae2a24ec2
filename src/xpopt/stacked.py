"""K networks of one shape trained together: stacked parameters, one pass per operation.

:class:`StackedTrainer` is the engine of :func:`xpopt.sweep`. It runs ``K`` copies of the
course's loop (:func:`xpopt.train`) side by side on a leading model axis:

- parameters, gradients and optimizer moments are each ONE flat buffer of ``K * P``
  elements (``P`` per model, in :func:`~xpopt.network.parameter_layout` order), seen as
  ``(K, P)``; ``W_l`` and ``b_l`` are ``(K, n_l, n_{l-1})`` and ``(K, n_l, 1)`` views of it;
- the passes are the course's, one operation per step for all models: ``matmul`` on the
  stacks (NumPy runs one BLAS call per model; a probe at set-up checks, product by product,
  that it gives the bits of the ``dot`` that :func:`~xpopt.forward_propagation` calls,
  and falls back to that ``dot`` per model where not), elementwise operations over the
  stacks, row sums over the last axis;
- the update is the rule's NumPy twin from :mod:`xpopt.optim` over the ``(K, P)`` buffers with
  each per-model scalar a ``(K, 1)`` array (every element sees its model's value, the same
  IEEE operations in the same order); on CuPy one ``ElementwiseKernel`` launch for all
  models (:mod:`xpopt.sweep_kernels`);
- every model shuffles with its own seed (``seed_k + i + 1`` in epoch ``i``), gathered into
  preallocated ``(K, n_x, m)`` buffers; with one seed for all, one permutation is shared.

The work buffers are allocated once. Model ``k`` ends bit for bit where ``train`` ends it
(NumPy; see :mod:`xpopt.sweep` for what holds on CuPy).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy

from .backend import get_xp, to_host
from .flat import FlatDict
from .network import _clip_bounds, host_initial_parameters, parameter_layout
from .optim import Optimizer
from .optim.base import check_learning_rate
from .stacked_parts import StackedShuffler, plan_products

__all__ = ["StackedTrainer", "TIME_SCALARS"]

TIME_SCALARS = ("bias1", "bias2")  # scalars that change with the step count t (Adam's)


class StackedTrainer:
    """``K`` models of one architecture, one optimizer rule, one batch size, trained together.

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m)
        NumPy or CuPy; everything lives there.
    layer_dims : sequence of int
        ``[n_x, ..., 1]``.
    optimizers : sequence of Optimizer
        One per model, all of one class (validated already); their ``learning_rate`` is
        ``learning_rate0``.
    seeds, init_seeds : sequence of int
        Per model: ``train``'s shuffle seed and ``initialize_parameters``' seed.
    decays : sequence of (callable or None, float)
        Per model: the schedule and its ``decay_rate``.
    mini_batch_size : int
    shared : bool
        One permutation per epoch for all models (all seeds must be equal).
    """

    def __init__(
        self,
        X,
        Y,
        layer_dims: Sequence[int],
        optimizers: Sequence[Optimizer],
        seeds: Sequence[int],
        init_seeds: Sequence[int],
        decays: Sequence[tuple[Callable | None, float]],
        mini_batch_size: int,
        shared: bool = False,
    ):
        xp = self.xp = get_xp(X, Y)
        dtype = self.dtype = X.dtype
        self.X, self.Y = X, Y
        K = self.K = len(optimizers)
        n_x, m = X.shape
        self.m, self.mbs = m, min(int(mini_batch_size), m)
        self.layout = parameter_layout(layer_dims)
        P = self.P = sum(math.prod(s) for _, s in self.layout)
        self.rule = type(optimizers[0]).rule
        self.slots = type(optimizers[0]).slots
        self.spec = type(optimizers[0]).spec

        # --- parameters: each model's course initialisation, one draw per distinct seed
        host = numpy.empty((K, P), dtype=dtype)
        drawn: dict[int, numpy.ndarray] = {}
        for k, s in enumerate(init_seeds):
            if s not in drawn:
                drawn[s] = host_initial_parameters(layer_dims, s, dtype=dtype).flat
            host[k] = drawn[s]
        self.params = xp.asarray(host) if xp is not numpy else host  # (K, P), one buffer
        self.grads = xp.zeros((K, P), dtype)
        self.state = {slot: xp.zeros((K, P), dtype) for slot in self.slots}
        self.scratch = (xp.empty((K, P), dtype), xp.empty((K, P), dtype))
        # (K, *shape) views of each layer's weights and biases, and of their gradients
        self.W: list[Any] = []
        self.b: list[Any] = []
        self.gW: list[Any] = []
        self.gb: list[Any] = []
        off = 0
        for key, shape in self.layout:
            n = math.prod(shape)
            target = (self.W, self.gW) if key[0] == "W" else (self.b, self.gb)
            target[0].append(self.params[:, off : off + n].reshape((K, *shape)))
            target[1].append(self.grads[:, off : off + n].reshape((K, *shape)))
            off += n
        self.WT = [W.transpose(0, 2, 1) for W in self.W]

        # --- per-model scalars, as (K, 1) arrays of the data's dtype
        self.optimizers = list(optimizers)
        self.lr0 = [opt.learning_rate for opt in optimizers]
        first = [opt.scalars(opt.learning_rate, 1) for opt in optimizers]
        self.constant = {
            name: self._column([f[name] for f in first])
            for name in first[0]
            if name not in TIME_SCALARS
        }
        self.time_names = [name for name in first[0] if name in TIME_SCALARS]
        # Distinct time-dependent configurations (Adam: distinct beta1, beta2): their
        # scalars are computed once per step each, with the rule's own expression.
        reps: dict[tuple, int] = {}
        self.rep_index = numpy.empty(K, numpy.intp)
        for k, opt in enumerate(optimizers):
            key = tuple(
                sorted((n, v) for n, v in opt.hyperparameters().items() if n != "learning_rate")
            )
            self.rep_index[k] = reps.setdefault(key, len(reps))
        leader: dict[int, Optimizer] = {}  # each configuration's first optimizer
        for k, opt in enumerate(optimizers):
            leader.setdefault(int(self.rep_index[k]), opt)
        self.reps = [leader[r] for r in range(len(reps))]
        # Learning-rate schedules, one call per distinct (schedule, lr0, decay_rate) per epoch
        self.decaying = any(d is not None for d, _ in decays)
        configs: dict[tuple, int] = {}
        self.decay_index = numpy.empty(K, numpy.intp)
        for k, ((decay, rate), lr0) in enumerate(zip(decays, self.lr0, strict=True)):
            key = (decay, float(rate), lr0, id(decay))
            self.decay_index[k] = configs.setdefault(key, len(configs))
        self.decay_configs = list(configs)

        # --- shuffles: each model's permutation gathered into (K, n_x, m) buffers
        self.shuffler = StackedShuffler(X, Y, K, seeds, shared)
        self.shared, self.Xs, self.Ys = self.shuffler.shared, self.shuffler.Xs, self.shuffler.Ys

        # --- per-batch views and workspaces (one per batch width), allocated once
        self.L = len(self.W)
        self.AL = xp.empty((K, 1, m), dtype)  # the epoch's outputs, batch after batch
        self._cost_buffers = tuple(xp.empty((K, m), dtype) for _ in range(3))
        spaces = {}
        self.batches = []
        for lo in range(0, m, self.mbs):
            w = min(self.mbs, m - lo)
            if w not in spaces:
                A = [xp.empty((K, W.shape[1], w), dtype) for W in self.W[:-1]]
                spaces[w] = (
                    A,
                    [a.transpose(0, 2, 1) for a in A],
                    [xp.empty((K, W.shape[1], w), dtype) for W in self.W],
                    [xp.empty((K, W.shape[1], w), dtype) for W in self.W[:-1]],
                )
            A, AT, dZ, slopes = spaces[w]
            Xb = self.Xs[:, :, lo : lo + w]
            self.batches.append(
                (
                    Xb,
                    Xb.transpose(0, 2, 1),
                    self.Ys[:, :, lo : lo + w],
                    self.AL[:, :, lo : lo + w],
                    A,
                    AT,
                    dZ,
                    slopes,
                    float(w),
                )
            )
        self.t = 0  # steps taken (Adam's t), the same for every model of the group
        self.epoch = 0  # epochs done
        self.history: Any = None  # the recorded costs, (records, K) on the device, once run
        self.record_every: int | None = None
        self._lr_host = list(self.lr0)  # each model's learning rate for the coming epoch
        self._lr = self._column(self._lr_host)
        # On the CPU the constant scalars are expanded to (K, P) arrays once: a (K, 1) column
        # broadcast over rows costs one inner loop per model and operation (same values).
        self.expand = xp is numpy
        self.constant_full = (
            {n: numpy.repeat(c, P, axis=1) for n, c in self.constant.items() if n != "lr"}
            if self.expand
            else {}
        )
        self._lr_full: Any = None
        self.products, self.exact_products = plan_products(self)

    # ------------------------------------------------------------------------ helpers
    def _column(self, values) -> Any:
        """Host floats as a (K, 1) array of the data's dtype on its device (cast as a
        Python float is cast when NumPy or the kernels meet it: round to nearest)."""
        col = numpy.asarray(values, dtype=numpy.float64).astype(self.dtype).reshape(-1, 1)
        return col if self.xp is numpy else self.xp.asarray(col)

    def learning_rates(self) -> list[float]:
        """The learning rate of each model for the coming epoch (the schedules')."""
        return list(self._lr_host)

    def _epoch_scalars(self, nb: int) -> list[dict]:
        """Each step's scalars for the coming epoch: the per-model columns, with the
        step-dependent ones (bias corrections) from the rule's own ``scalars``."""
        if self.expand:  # each scalar as a whole (K, P) array: one contiguous loop per operation
            if self._lr_full is None:
                self._lr_full = numpy.repeat(self._lr, self.P, axis=1)
            constant = dict(self.constant_full, lr=self._lr_full)
        else:
            constant = dict(self.constant, lr=self._lr)
        steps = [dict(constant) for _ in range(nb)]
        if self.time_names:
            host = numpy.empty((len(self.time_names), nb, len(self.reps)))
            for r, opt in enumerate(self.reps):
                for j in range(nb):
                    s = opt.scalars(opt.learning_rate, self.t + j + 1)
                    for n, name in enumerate(self.time_names):
                        host[n, j, r] = s[name]
            # (names, nb, K, 1)
            per_model = host[:, :, self.rep_index].astype(self.dtype)[..., None]
            if self.xp is not numpy:
                per_model = self.xp.asarray(per_model)  # one copy per epoch
            for j in range(nb):
                for n, name in enumerate(self.time_names):
                    steps[j][name] = per_model[n, j]
        return steps

    # ----------------------------------------------------------------------- training
    def run(
        self,
        num_epochs: int,
        record_every: int = 100,
        *,
        stop_after: int | None = None,
        update: Callable | None = None,
        on_record: Callable | None = None,
    ):
        """Train up to epoch ``num_epochs`` (from where the last call stopped); returns the
        recorded costs so far, shape (ceil(num_epochs / record_every), K), on the host.

        Parameters
        ----------
        num_epochs : int
            The run's length, as ``train``'s: a later call continues the same run (the
            shuffles, ``t`` and the schedules go on), so ``stop_after`` can cut it in pieces.
        record_every : int
            Record each model's ``cost_avg`` every this many epochs (fixed for the run).
        stop_after : int, optional
            Stop after this many epochs of this call.
        update : callable, optional
            ``update(params, grads, state, scalars)`` in place of the rule's NumPy twin over
            the ``(K, P)`` buffers (the GPU's one-launch kernel).
        on_record : callable, optional
            ``on_record(epoch, trainer)`` after each recorded epoch (a progress bar, a
            checkpoint); ``trainer.history[epoch // record_every]`` holds its costs, on the
            device (reading them synchronises).
        """
        xp, L = self.xp, self.L
        n_records = math.ceil(num_epochs / record_every)
        if self.history is None:
            self.history = xp.zeros((n_records, self.K), dtype=self.dtype)
            self.record_every = record_every
        elif self.history.shape[0] != n_records or self.record_every != record_every:
            raise ValueError("a continued run keeps its num_epochs and record_every")
        history = self.history
        start = self.epoch
        end = num_epochs if stop_after is None else min(num_epochs, start + stop_after)
        rule, slots = self.rule, [self.state[s] for s in self.slots]
        a, b = self.scratch
        params, grads = self.params, self.grads
        row_sum = numpy.add.reduce if xp is numpy else xp.sum
        bias, gb = self.b, self.gb
        nb = len(self.batches)
        with numpy.errstate(over="ignore"):  # exp(-z) = inf in the sigmoid gives 0, correctly
            for i in range(start, end):
                self.shuffler.shuffle(i)
                scalars = self._epoch_scalars(nb)
                for (_, _, Yb, ALb, A, _, dZs, slopes, w), (fwd, dW, dA_), sc in zip(
                    self.batches, self.products, scalars, strict=True
                ):
                    # forward: LINEAR -> RELU (L-1 times) -> LINEAR -> SIGMOID, as network.py
                    for l in range(L):
                        Z = fwd[l]()  # W_l A_{l-1} into A_l (the last: into the epoch's outputs)
                        xp.add(Z, bias[l], out=Z)
                        if l < L - 1:
                            xp.maximum(Z, 0.0, out=Z)
                        else:
                            xp.negative(Z, out=Z)
                            xp.exp(Z, out=Z)
                            xp.add(Z, 1.0, out=Z)
                            xp.divide(1.0, Z, out=Z)
                    # backward, as network.backward_propagation
                    dZ = xp.subtract(ALb, Yb, out=dZs[L - 1])
                    xp.divide(dZ, w, out=dZ)
                    for l in range(L - 1, -1, -1):
                        dW[l]()  # dZ_l A_{l-1}^T into dW_l
                        row_sum(dZ, axis=2, keepdims=True, out=gb[l])
                        if l > 0:
                            dA = dA_[l]()  # W_l^T dZ_l into dZ_{l-1}
                            slope = xp.sign(A[l - 1], out=slopes[l - 1])
                            dZ = xp.multiply(dA, slope, out=dA)
                    self.t += 1
                    if update is None:
                        rule(xp, params, grads, *slots, a, b, **sc)
                    else:
                        update(params, grads, self.state, sc)
                cost_avg = self._epoch_cost() / self.m
                if self.decaying:
                    self._decay(i)
                self.epoch += 1
                if i % record_every == 0:
                    history[i // record_every] = cost_avg
                    if on_record is not None:
                        on_record(i, self)
        return to_host(history)

    def _decay(self, i: int) -> None:
        values = [
            lr0 if decay is None else check_learning_rate(decay(lr0, i, rate))
            for decay, rate, lr0, _ in self.decay_configs
        ]
        self._set_learning_rates([values[c] for c in self.decay_index])

    def _set_learning_rates(self, rates: list[float]) -> None:
        self._lr_host = list(rates)
        new = self._column(self._lr_host)
        if self.xp is numpy:
            self._lr[...] = new
            self._lr_full = None
        else:
            self._lr = new

    def _epoch_cost(self):
        """Each model's epoch total, as :func:`~xpopt.network.epoch_cost` sums it: per
        mini-batch sums, then a running sum in batch order; shape (K,)."""
        xp = self.xp
        # network._logprobs, operation for operation, into buffers kept between epochs
        # (fresh temporaries of K * m elements cost more in page faults than the logs)
        low, high = _clip_bounds(self.dtype)
        a, t1, t2 = self._cost_buffers
        Ys = self.Ys.reshape(self.K, self.m)
        xp.maximum(self.AL.reshape(self.K, self.m), low, out=a)
        xp.minimum(a, high, out=a)
        xp.log(a, out=t1)
        xp.negative(t1, out=t1)
        xp.multiply(t1, Ys, out=t1)  # -log(a) * Y
        xp.subtract(1, a, out=t2)
        xp.log(t2, out=t2)
        xp.negative(t2, out=t2)
        xp.subtract(1, Ys, out=a)
        xp.multiply(t2, a, out=t2)  # -log(1 - a) * (1 - Y)
        logprobs = xp.add(t1, t2, out=t1)
        size, m = self.mbs, self.m
        full = m // size
        batch_sum = numpy.add.reduce if xp is numpy else xp.sum
        tail = batch_sum(logprobs[:, full * size :], axis=1) if m % size else None
        if full == 0:
            return tail
        sums = batch_sum(logprobs[:, : full * size].reshape(self.K, full, size), axis=2)
        total = xp.cumsum(sums, axis=1)[:, -1]
        return total if tail is None else total + tail

    def nbytes(self) -> int:
        """Bytes of the buffers this trainer owns (parameters, gradients, moments, scratch,
        shuffled data, the passes' work buffers), not counting ``X`` and ``Y``."""

        def root(a):
            while getattr(a, "base", None) is not None:
                a = a.base
            return a

        seen = {id(root(self.X)), id(root(self.Y))}
        todo, total = [*vars(self).values(), *vars(self.shuffler).values()], 0
        while todo:
            item = todo.pop()
            if isinstance(item, (list, tuple)):
                todo.extend(item)
            elif isinstance(item, dict):
                todo.extend(item.values())
            elif hasattr(item, "nbytes") and hasattr(item, "shape"):
                owner = root(item)
                if id(owner) not in seen:
                    seen.add(id(owner))
                    total += int(owner.nbytes)
        return total

    # ------------------------------------------------------------- checkpoint support
    def snapshot(self) -> tuple[dict, dict]:
        """What a checkpoint keeps to continue this run bit for bit: host copies of the
        ``(K, P)`` parameters, each optimizer slot and the recorded costs so far, and the
        counters (``epoch``, ``t``, each model's learning rate for the coming epoch)."""
        arrays = {
            "parameters": numpy.array(to_host(self.params)),
            **{slot: numpy.array(to_host(self.state[slot])) for slot in self.slots},
        }
        if self.history is not None:
            arrays["history"] = numpy.array(to_host(self.history))
        return arrays, {
            "epoch": int(self.epoch),
            "t": int(self.t),
            "learning_rates": [float(x) for x in self._lr_host],
        }

    def restore(self, arrays: dict, counters: dict, record_every: int) -> None:
        """Continue from a :meth:`snapshot` (checked by the caller: shapes, dtype, counts);
        the next :meth:`run` with the same ``num_epochs`` and ``record_every`` goes on."""
        xp = self.xp
        self.params[...] = xp.asarray(arrays["parameters"])
        for slot in self.slots:
            self.state[slot][...] = xp.asarray(arrays[slot])
        self.history = xp.asarray(numpy.array(arrays["history"], dtype=self.dtype))
        self.record_every = int(record_every)
        self.epoch, self.t = int(counters["epoch"]), int(counters["t"])
        self._set_learning_rates([float(x) for x in counters["learning_rates"]])

    def parameters(self, k: int) -> FlatDict:
        """Model ``k``'s parameters ``W1, b1, ...``: views into the stacked buffer."""
        return FlatDict(self.params[k], self.layout)
