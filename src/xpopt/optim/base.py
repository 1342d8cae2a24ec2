"""What every update rule shares: validation before any write, and the dispatch.

An update rule is given twice, side by side in its module: a :class:`~xpopt.kernels.KernelSpec`
(the fused GPU kernel) and its NumPy twin, a function that performs the same expressions in
the same order, in place, with ``out=`` arguments. The twin runs on NumPy, and on CuPy as the
unfused path (``fused=False``). :func:`apply_update` picks between them:

- all dicts packed :class:`~xpopt.flat.FlatDict` of one layout -> one group: the whole model;
  otherwise one group per parameter array;
- CuPy and ``fused`` -> one kernel launch per group;
- NumPy and ``fused`` with the compiled CPU kernels built (:mod:`xpopt.hostkernels`, the same
  operation text compiled for the host) -> one call per group: a single pass over memory;
- otherwise the twin per group; on NumPy in chunks of :data:`CHUNK` elements, so the
  temporaries stay in the CPU cache and each step streams the arrays through memory once.

On the CPU the work is shared among threads for models of :data:`THREADED_MIN` elements or
more (the compiled kernels and NumPy both release the GIL).

:class:`UpdatePlan` does that work once for a set of dicts; :class:`Optimizer` keeps it
between steps and :meth:`Optimizer.bind` hands a training loop a step that only launches.
"""

from __future__ import annotations

import functools
import math
import numbers
import operator
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy

from .. import hostkernels, kernels
from ..backend import get_xp, is_cupy_array
from ..flat import FlatDict

CHUNK = 32768  # elements per NumPy pass: 2 scratch + 5 streams of float64 fit in a 2 MiB L2
# From this many elements on, the NumPy path splits its chunks among threads: NumPy
# releases the GIL inside each operation, and one core cannot saturate memory bandwidth.
THREADED_MIN = 1 << 22  # measured: below 4M elements two threads cost more than they save

Rule = Callable[..., None]


# ------------------------------------------------------------------------- validation
def check_learning_rate(learning_rate: Any) -> float:
    if not isinstance(learning_rate, numbers.Real) or not math.isfinite(learning_rate) or learning_rate < 0:
        raise ValueError(f"learning_rate must be a finite number >= 0, got {learning_rate!r}")
    return float(learning_rate)


def check_beta(value: Any, name: str) -> float:
    if not isinstance(value, numbers.Real) or not (0.0 <= value < 1.0):
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def check_epsilon(value: Any) -> float:
    if not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"epsilon must be a finite number > 0, got {value!r}")
    return float(value)


def check_step(t: Any) -> int:
    if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 1:
        raise ValueError(f"t (the Adam step count, from 1) must be an integer >= 1, got {t!r}")
    return int(t)


@functools.lru_cache(maxsize=64)
def _grad_layout(layout: tuple) -> tuple:
    return tuple(("d" + k, s) for k, s in layout)


def _is_array(x) -> bool:
    return isinstance(x, numpy.ndarray) or is_cupy_array(x)


def _validate_dicts(parameters: dict, named: dict[str, dict]) -> None:
    """Same keys (``W1`` <-> ``dW1``), shapes, dtype and device everywhere, or raise."""
    if not isinstance(parameters, dict) or not parameters:
        raise TypeError("parameters must be a non-empty dict of arrays (W1, b1, ...)")
    expected = {"d" + k for k in parameters}
    for what, d in named.items():
        if not isinstance(d, dict):
            raise TypeError(f"{what} must be a dict of arrays, got {type(d).__name__}")
        if set(d) != expected:
            missing, extra = sorted(expected - set(d)), sorted(set(d) - expected)
            raise KeyError(
                f"{what} must have the keys of parameters with a 'd' prefix: "
                f"missing {missing}, unexpected {extra}"
            )
    arrays = []
    for k, p in parameters.items():
        if not _is_array(p):
            raise TypeError(f"parameters[{k!r}] must be a NumPy or CuPy array, got {type(p).__name__}")
        arrays.append(p)
        for what, d in named.items():
            a = d["d" + k]
            if not _is_array(a):
                raise TypeError(f"{what}['d{k}'] must be a NumPy or CuPy array, got {type(a).__name__}")
            if a.shape != p.shape:
                raise ValueError(f"{what}['d{k}'] has shape {a.shape}, parameters[{k!r}] {p.shape}")
            arrays.append(a)
    get_xp(*arrays)  # TypeError when NumPy and CuPy arrays are mixed
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) != 1:
        raise TypeError(f"all arrays must share one dtype, got {sorted(map(str, dtypes))}")
    dtype = dtypes.pop()
    if dtype.kind != "f":
        raise TypeError(f"arrays must be floating point, got {dtype}")


def _packed_together(parameters: dict, named: dict[str, dict]) -> bool:
    """True when every dict is a packed FlatDict of the parameters' layout (checked in O(1)
    array work: the buffers' devices and dtypes, the layouts' keys and shapes)."""
    if not (isinstance(parameters, FlatDict) and parameters.packed):
        return False
    want = _grad_layout(parameters.layout)
    flats = [parameters.flat]
    for d in named.values():
        if not (isinstance(d, FlatDict) and d.packed and d.layout == want):
            return False
        flats.append(d.flat)
    get_xp(*flats)
    if any(f.dtype != parameters.flat.dtype for f in flats):
        return False  # let the full validation name the culprit
    return parameters.flat.dtype.kind == "f"


# --------------------------------------------------------------------------- dispatch
@dataclass
class Scratch:
    """Reusable temporaries of the NumPy twin: two 1-D buffers per (module, dtype)."""

    buffers: dict = field(default_factory=dict)

    def get(self, xp, dtype, n: int, worker: int = 0):
        key = (xp.__name__, numpy.dtype(dtype).str, worker)
        buf = self.buffers.get(key)
        if buf is None or buf.shape[1] < n:
            buf = xp.empty((2, n), dtype=dtype)
            self.buffers[key] = buf
        return buf[0, :n], buf[1, :n]


def _groups(parameters: dict, named: dict[str, dict], packed: bool) -> list[dict[str, Any]]:
    """The arrays updated together: ``{"param": ..., "grad": ..., "v": ..., ...}`` each."""
    if packed:
        group = {"param": parameters.flat}
        group.update((role, d.flat) for role, d in named.items())
        return [group]
    groups = []
    for k, p in parameters.items():
        group = {"param": p}
        group.update((role, d["d" + k]) for role, d in named.items())
        groups.append(group)
    return groups


class UpdatePlan:
    """One validated update: the groups of arrays, their chunks and scratch, ready to run.

    Built once per set of dicts; :meth:`run` then only launches (the kernel on CuPy; on NumPy
    the compiled CPU kernel, or the twin chunk by chunk). :class:`Optimizer` keeps the plan between steps while the
    same packed FlatDicts come back, so a training step does no validation work.
    """

    def __init__(self, spec, rule, parameters, grads, state, *, fused=True, scratch=None):
        named = {"grads": grads, **state}
        packed = _packed_together(parameters, named)
        if not packed:
            _validate_dicts(parameters, named)
        roles = {"grads": "grad", **{r: r for r in state}}
        named = {roles[k]: d for k, d in named.items()}
        self.spec, self.rule, self.packed = spec, rule, packed
        self.key = (parameters, grads, *state.values())
        groups = _groups(parameters, named, packed)
        first = groups[0]["param"]
        self.xp = get_xp(first)
        self.requested_fused = bool(fused)
        self.fused = self.requested_fused and is_cupy_array(first)
        if self.fused:
            self.kernel_groups = groups
            return
        scratch = scratch if scratch is not None else Scratch()
        on_cpu = self.xp is numpy
        # On the CPU, "fused" means the compiled kernel (one pass, no temporaries) when it
        # was built; otherwise, and for fused=False, the NumPy twin.
        self.host = hostkernels.host_function(spec, first.dtype) if on_cpu and fused else None
        self.groups = groups  # the host kernels hold raw pointers into these arrays
        order = ["param", "grad", *state]
        flat, strided = [], []
        for group in groups:
            if all(group[r].flags.c_contiguous for r in order):
                flat.append({r: group[r].reshape(-1) for r in order})
            else:  # a strided user array: no flat view of it exists, so update it whole
                strided.append(group)
        total = sum(g["param"].shape[0] for g in flat)
        workers = num_threads() if on_cpu and total >= THREADED_MIN else 1
        # Pieces: cache-sized chunks for the twin (its temporaries then stay in cache), one
        # share per worker for the compiled kernel (a single streaming pass).
        pieces = []
        for g in flat:
            n = g["param"].shape[0]
            size = -(-n // workers) if self.host else (min(n, CHUNK) if on_cpu else n)
            size = max(size, 1)  # an empty array: no piece, and no zero range step
            pieces += [{r: x[lo:lo + size] for r, x in g.items()} for lo in range(0, n, size)]
        workers = max(1, min(workers, len(pieces)))
        self.parts = []
        for w in range(workers):
            part = pieces[w * len(pieces) // workers:(w + 1) * len(pieces) // workers]
            if self.host:
                self.parts.append([self._host_call(piece) for piece in part])
            else:
                width = max((p["param"].shape[0] for p in part), default=0)
                a, b = scratch.get(self.xp, first.dtype, width, worker=w)
                self.parts.append([self._twin_call([p[r] for r in order], a, b) for p in part])
        for group in strided:
            arrays = [group[r] for r in order]
            self.parts[0].append(self._twin_call(arrays, self.xp.empty_like(arrays[0]),
                                                 self.xp.empty_like(arrays[0])))

    def _twin_call(self, arrays, a, b) -> Callable[[dict], None]:
        rule, xp = self.rule, self.xp
        n = arrays[0].shape[0] if arrays[0].ndim == 1 else None
        if n is not None:  # 1-D pieces use the leading part of the scratch
            a, b = a[:n], b[:n]

        def call(scalars):
            rule(xp, *arrays, a, b, **scalars)

        return call

    def _host_call(self, piece) -> Callable[[dict], None]:
        template, slots = [], []
        for position, (role, _, name) in enumerate(self.spec.params):
            if role == "scalar":
                template.append(None)
                slots.append((position, name))
            else:
                template.append(piece[name].ctypes.data)
        template.append(piece["param"].shape[0])
        function = self.host

        def call(scalars):
            args = template.copy()
            for position, name in slots:
                args[position] = scalars[name]
            function(*args)

        return call

    def still_valid(self, parameters, grads, state_dicts) -> bool:
        """True for the same packed dicts the plan was built from."""
        key = (parameters, grads, *state_dicts)
        return (self.packed and len(key) == len(self.key)
                and all(map(operator.is_, key, self.key))
                and all([d.packed for d in key]))

    def run(self, scalars: dict[str, float]) -> None:
        if self.fused:
            for group in self.kernel_groups:
                kernels.launch(self.spec, group, scalars)
            return
        if len(self.parts) == 1:
            for call in self.parts[0]:
                call(scalars)
            return

        def run_part(part):
            for call in part:
                call(scalars)

        list(_pool().map(run_part, self.parts))  # list(): re-raise a worker's exception


_thread_scratch = threading.local()
_pool_lock = threading.Lock()
_pool_executor: ThreadPoolExecutor | None = None


def num_threads() -> int:
    """Threads for large NumPy updates: ``XPOPT_NUM_THREADS``, else up to 4 cores."""
    value = os.environ.get("XPOPT_NUM_THREADS", "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"XPOPT_NUM_THREADS must be a positive integer, got {value!r}")
        return int(value)
    return max(1, min(4, os.cpu_count() or 1))


def _pool() -> ThreadPoolExecutor:
    global _pool_executor
    with _pool_lock:
        if _pool_executor is None:
            _pool_executor = ThreadPoolExecutor(max_workers=num_threads(),
                                                thread_name_prefix="xpopt-update")
        return _pool_executor


def apply_update(
    spec: kernels.KernelSpec,
    rule: Rule,
    parameters: dict,
    grads: dict,
    state: dict[str, dict],
    scalars: dict[str, float],
    *,
    fused: bool = True,
    scratch: Scratch | None = None,
) -> None:
    """Apply one update rule in place to every parameter, after validating everything.

    Parameters
    ----------
    spec : KernelSpec
        The fused kernel (used on CuPy when ``fused``).
    rule : callable
        The NumPy twin: ``rule(xp, param, grad, *state, a, b, **scalars)``.
    parameters : dict of str to ndarray
        ``W1, b1, ...``; updated in place.
    grads : dict of str to ndarray
        ``dW1, db1, ...``, shapes as the parameters'.
    state : dict of str to dict
        The rule's state dicts by role (``{"v": v, "s": s}``), keyed like ``grads``;
        updated in place.
    scalars : dict of str to float
        Host values of the spec's scalar parameters.
    fused : bool
        Use the kernel on CuPy arrays; ``False`` runs the twin there (one launch per
        operation), the unfused baseline. Ignored on NumPy.
    scratch : Scratch, optional
        Reused temporaries; by default the calling thread's own (kept between calls, so
        repeated calls allocate nothing).
    """
    if scratch is None:  # the course-named functions: reuse this thread's temporaries
        scratch = getattr(_thread_scratch, "scratch", None)
        if scratch is None:
            scratch = _thread_scratch.scratch = Scratch()
    UpdatePlan(spec, rule, parameters, grads, state, fused=fused, scratch=scratch).run(scalars)


# ----------------------------------------------------------------- state and objects
def zeros_state(parameters: dict) -> dict:
    """Zeros keyed ``dW1, db1, ...`` like the parameters (a packed FlatDict when they are)."""
    if isinstance(parameters, FlatDict) and parameters.packed:
        return parameters.zeros_like(prefix="d")
    if not isinstance(parameters, dict) or not parameters:
        raise TypeError("parameters must be a non-empty dict of arrays (W1, b1, ...)")
    for k, p in parameters.items():
        if not _is_array(p):
            raise TypeError(f"parameters[{k!r}] must be a NumPy or CuPy array, got {type(p).__name__}")
    return {"d" + k: get_xp(p).zeros_like(p) for k, p in parameters.items()}


@dataclass
class OptimizerState:
    """What an optimizer carries between steps.

    Attributes
    ----------
    t : int
        Steps taken so far (Adam's bias correction uses ``t + 1`` for the next one).
    v, s : dict or None
        First and second moment estimates keyed ``dW1, db1, ...`` (None where unused).
    scratch : Scratch
        Reused temporaries of the NumPy path.
    """

    t: int = 0
    v: dict | None = None
    s: dict | None = None
    scratch: Scratch = field(default_factory=Scratch, repr=False)
    plan: UpdatePlan | None = field(default=None, repr=False, compare=False)


class Optimizer:
    """An update rule with its hyperparameters, for training loops.

    ``state = opt.init(parameters)`` once, then ``opt.update(parameters, grads, state)`` per
    step, in place. ``opt.learning_rate`` may change between steps (schedules); nothing is
    rebuilt. Subclasses set ``spec``, ``rule``, ``slots`` and :meth:`scalars`.
    """

    spec: kernels.KernelSpec
    rule: Rule
    slots: tuple[str, ...] = ()

    def __init__(self, learning_rate: float, *, fused: bool = True):
        self.learning_rate = learning_rate
        self.fused = bool(fused)

    @property
    def learning_rate(self) -> float:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate = check_learning_rate(value)

    def scalars(self, learning_rate: float, t: int) -> dict[str, float]:
        """The kernel's scalar arguments for step ``t`` (from 1)."""
        raise NotImplementedError

    def init(self, parameters: dict) -> OptimizerState:
        """Zero state for ``parameters`` (on their device, of their dtype)."""
        return OptimizerState(**{slot: zeros_state(parameters) for slot in self.slots})

    def update(self, parameters: dict, grads: dict, state: OptimizerState,
               learning_rate: float | None = None) -> None:
        """One step, in place: ``parameters`` and ``state`` change, ``state.t`` grows by one.

        Parameters
        ----------
        parameters : dict of str to ndarray
        grads : dict of str to ndarray
            ``dW1, db1, ...`` of the parameters' shapes, dtype and device.
        state : OptimizerState
            From :meth:`init`.
        learning_rate : float, optional
            This step's learning rate; defaults to ``self.learning_rate``.
        """
        lr = self._learning_rate if learning_rate is None else check_learning_rate(learning_rate)
        t = state.t + 1
        slots = [getattr(state, slot) for slot in self.slots]
        plan = state.plan
        if plan is None or plan.requested_fused != self.fused or not plan.still_valid(parameters, grads, slots):
            plan = UpdatePlan(self.spec, type(self).rule, parameters, grads,
                              dict(zip(self.slots, slots)), fused=self.fused, scratch=state.scratch)
            state.plan = plan if plan.packed else None
        plan.run(self.scalars(lr, t))
        state.t = t

    def bind(self, parameters: dict, grads: dict, state: OptimizerState) -> Callable[[], None]:
        """A step function for a loop that owns these dicts: ``step()`` is ``update(...)``.

        Everything is validated once, here; each ``step()`` then only computes this step's
        scalars (from the current ``learning_rate`` and ``state.t``) and launches. The
        caller must not rebind keys of the dicts while it uses the step (training loops
        don't: they write gradients into the same buffers every step).
        """
        slots = {slot: getattr(state, slot) for slot in self.slots}
        plan = UpdatePlan(self.spec, type(self).rule, parameters, grads, slots,
                          fused=self.fused, scratch=state.scratch)
        run, scalars = plan.run, self.scalars

        def step() -> None:
            t = state.t + 1
            run(scalars(self._learning_rate, t))
            state.t = t

        return step

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({hyper})"

    def hyperparameters(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate}
