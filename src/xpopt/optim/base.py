"""What every update rule shares: validation before any write, and the dispatch.

Every update builds an :class:`UpdatePlan`, and every plan starts with
:mod:`xpopt.validation` (the arrays, and the scalars as cast to their dtype): what cannot be
updated correctly raises before any array is touched.

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

import itertools
import operator
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy

from .. import hostkernels, kernels
from ..backend import get_xp, is_cupy_array
from ..flat import EDITS, FlatDict
# The checks live in xpopt.validation, the one layer every entry point passes through;
# the names stay importable from here.
from ..validation import (_packed_together, check_beta, check_epsilon,  # noqa: F401
                          check_learning_rate, check_scalars, check_step, check_update)

CHUNK = 32768  # elements per NumPy pass: 2 scratch + 5 streams of float64 fit in a 2 MiB L2
# From this many elements on, the NumPy path splits its chunks among threads: NumPy
# releases the GIL inside each operation, and one core cannot saturate memory bandwidth.
THREADED_MIN = 1 << 22  # measured: below 4M elements two threads cost more than they save

Rule = Callable[..., None]
_END = object()  # closes the sequence of arrays a plan checks by identity


def _is_array(x) -> bool:
    return isinstance(x, numpy.ndarray) or is_cupy_array(x)


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

    Built once per set of dicts, after :func:`xpopt.validation.check_update` (and, given
    ``scalars``, :func:`~xpopt.validation.check_scalars`) passed; :meth:`run` then only
    launches (the kernel on CuPy; on NumPy the compiled CPU kernel, or the twin chunk by
    chunk). The plan remembers which arrays the dicts held: :meth:`unchanged` tells, in
    O(number of keys) identity checks, whether they still hold them (a course-style
    ``p["W1"] = p["W1"] - ...`` rebinding makes a new plan necessary).
    """

    def __init__(self, spec, rule, parameters, grads, state, *, fused=True, scratch=None,
                 scalars=None):
        self.seen_edits = EDITS[0]  # read before looking: a later rebinding changes it
        packed, dtype = check_update(parameters, grads, state)
        if scalars is not None:
            check_scalars(scalars, dtype)
        named = {"grads": grads, **state}
        roles = {"grads": "grad", **{r: r for r in state}}
        named = {roles[k]: d for k, d in named.items()}
        self.spec, self.rule, self.packed, self.dtype = spec, rule, packed, dtype
        self.dicts = (parameters, grads, *state.values())
        # What the dicts hold now, for unchanged(): live views of their values, the counts,
        # and the arrays themselves (kept alive here, so their identities cannot be reused).
        # (The end marker makes a removed or added key a mismatch too.)
        self._values = (*(dict.values(d) for d in self.dicts), (_END,))
        self._held = tuple(itertools.chain.from_iterable(self._values))
        # Only FlatDicts count their rebindings (flat.EDITS); plain dicts are looked at
        self.only_flatdicts = all(isinstance(d, FlatDict) for d in self.dicts)
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
                array = piece[name]
                # the last guard before a raw pointer (validation has checked all of it)
                if not (array.flags.c_contiguous and array.dtype.isnative
                        and (role == "in" or array.flags.writeable)):
                    raise ValueError(f"internal: {name} cannot go to the compiled kernel")
                template.append(array.ctypes.data)
        template.append(piece["param"].shape[0])
        function = self.host

        def call(scalars):
            args = template.copy()
            for position, name in slots:
                args[position] = scalars[name]
            function(*args)

        return call

    def unchanged(self) -> bool:
        """True while every dict holds the same keys and array objects as when the plan was
        made (checked by identity: no array is read, nothing is allocated but an iterator)."""
        return all(map(operator.is_, itertools.chain.from_iterable(self._values), self._held))

    def current(self) -> bool:
        """:meth:`unchanged`, in O(1) when the dicts are FlatDicts and no FlatDict anywhere
        was rebound since the last look (``flat.EDITS`` is the same)."""
        edits = EDITS[0]
        if edits == self.seen_edits and self.only_flatdicts:
            return True
        if not self.unchanged():
            return False
        self.seen_edits = edits
        return True

    def still_valid(self, parameters, grads, state_dicts) -> bool:
        """True for the same dicts the plan was made from, holding the same arrays."""
        key = (parameters, grads, *state_dicts)
        return (len(key) == len(self.dicts) and all(map(operator.is_, key, self.dicts))
                and self.current())

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
    """Apply one update rule in place to every parameter, after validating everything
    (the arrays, and the scalars as cast to their dtype: :mod:`xpopt.validation`).

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
    UpdatePlan(spec, rule, parameters, grads, state, fused=fused, scratch=scratch,
               scalars=scalars).run(scalars)


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


def _state_slot(name: str) -> property:
    """``OptimizerState.v`` / ``.s``: replacing the dict counts as a rebinding (flat.EDITS),
    so that a bound step looks again."""
    private = "_" + name

    def get(self):
        return getattr(self, private)

    def set(self, value):
        object.__setattr__(self, private, value)
        EDITS[0] += 1

    return property(get, set)


OptimizerState.v = _state_slot("v")  # after @dataclass: its __init__ assigns through these
OptimizerState.s = _state_slot("s")


class Optimizer:
    """An update rule with its hyperparameters, for training loops.

    ``state = opt.init(parameters)`` once, then ``opt.update(parameters, grads, state)`` per
    step, in place. ``opt.learning_rate`` (and the other hyperparameters) may change between
    steps (schedules); each is validated when set, and again as cast to the arrays' dtype
    before the next step uses it. Subclasses set ``spec``, ``rule``, ``slots`` and
    :meth:`scalars`, and declare their hyperparameters with :func:`hyperparameter`.
    """

    spec: kernels.KernelSpec
    rule: Rule
    slots: tuple[str, ...] = ()

    def __init__(self, learning_rate: float, *, fused: bool = True):
        self._version = 0  # bumped by every hyperparameter change
        self.learning_rate = learning_rate
        self.fused = bool(fused)

    @property
    def learning_rate(self) -> float:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate = check_learning_rate(value)
        self._version += 1

    def scalars(self, learning_rate: float, t: int) -> dict[str, float]:
        """The kernel's scalar arguments for step ``t`` (from 1)."""
        raise NotImplementedError

    def init(self, parameters: dict) -> OptimizerState:
        """Zero state for ``parameters`` (on their device, of their dtype)."""
        return OptimizerState(**{slot: zeros_state(parameters) for slot in self.slots})

    def _plan(self, parameters, grads, slots: dict, scratch) -> UpdatePlan:
        """A validated plan; the scalars are checked in the arrays' dtype at ``t = 1`` (the
        smallest bias corrections) with the current learning rate."""
        plan = UpdatePlan(self.spec, type(self).rule, parameters, grads, slots,
                          fused=self.fused, scratch=scratch,
                          scalars=self.scalars(self._learning_rate, 1))
        plan.checked_version = self._version
        return plan

    def _recheck(self, plan: UpdatePlan) -> None:
        """After a hyperparameter changed: the current ones, cast to the plan's dtype."""
        check_scalars(self.scalars(self._learning_rate, 1), plan.dtype)
        plan.checked_version = self._version

    def update(self, parameters: dict, grads: dict, state: OptimizerState,
               learning_rate: float | None = None) -> None:
        """One step, in place: ``parameters`` and ``state`` change, ``state.t`` grows by one.

        The plan is kept in ``state`` while the same dicts come back holding the same
        arrays (checked as in :meth:`bind`); a new one, validated, is made otherwise. A
        failing step changes nothing, ``state.t`` included.

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
        if learning_rate is None:
            lr = self._learning_rate
        else:
            lr = check_learning_rate(learning_rate)
        t = state.t + 1
        slots = [getattr(state, slot) for slot in self.slots]
        plan = state.plan
        if (plan is None or plan.requested_fused != self.fused
                or not plan.still_valid(parameters, grads, slots)):
            state.plan = None
            plan = self._plan(parameters, grads, dict(zip(self.slots, slots)), state.scratch)
            state.plan = plan
        elif plan.checked_version != self._version:
            self._recheck(plan)
        if learning_rate is not None:
            check_scalars({"lr": lr}, plan.dtype)
        plan.run(self.scalars(lr, t))
        state.t = t

    def bind(self, parameters: dict, grads: dict, state: OptimizerState) -> Callable[[], None]:
        """A step function for a loop that owns these dicts: ``step()`` is ``update(...)``.

        Everything is validated once, here. Each ``step()`` then makes sure the dicts (and
        ``state``'s slots) still hold the arrays they held: in O(1) while no FlatDict
        anywhere was rebound (``flat.EDITS``), else by identity, O(number of keys), no array
        work. It computes this step's scalars from the current ``learning_rate`` and
        ``state.t``, and launches. After a course-style rebinding
        (``parameters["W1"] = parameters["W1"] - ...``, a new gradient array, a replaced
        state dict) the step validates and plans again, so the update lands in the arrays
        the dicts hold; a changed hyperparameter is checked in the arrays' dtype before the
        step uses it. A failing step changes nothing, ``state.t`` included.
        """
        slot_names = self.slots
        current = [getattr(state, slot) for slot in slot_names]
        plan = self._plan(parameters, grads, dict(zip(slot_names, current)), state.scratch)
        # the plan's answers, kept in the closure: the common step reads no attribute of it
        run, fast, seen, checked = (plan.run, plan.only_flatdicts, plan.seen_edits,
                                    plan.checked_version)
        scalars = self.scalars
        is_, attribute = operator.is_, state.__getattribute__

        def step() -> None:
            nonlocal plan, current, run, fast, seen, checked
            # O(1) while nothing was rebound anywhere (flat.EDITS: FlatDict keys, state
            # slots); otherwise an identity check of every array, and a new plan if needed
            if EDITS[0] != seen or not fast:
                edits = EDITS[0]
                if not all(map(is_, map(attribute, slot_names), current)) or not plan.current():
                    now = [getattr(state, slot) for slot in slot_names]
                    plan = self._plan(parameters, grads, dict(zip(slot_names, now)),
                                      state.scratch)  # raises, changing nothing, if invalid
                    current, run, fast = now, plan.run, plan.only_flatdicts
                    seen, checked = plan.seen_edits, plan.checked_version
                else:
                    seen = edits
            if self._version != checked:  # a hyperparameter changed: check it in dtype
                self._recheck(plan)
                checked = plan.checked_version
            t = state.t + 1
            run(scalars(self._learning_rate, t))
            state.t = t

        return step

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({hyper})"

    def hyperparameters(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate}


def hyperparameter(name: str, check: Callable[[Any], float]) -> property:
    """A validated hyperparameter attribute: ``check(value)`` on every assignment (the
    previous value stays on error); a change makes the next step re-check the scalars in
    the arrays' dtype."""
    private = "_" + name

    def get(self):
        return getattr(self, private)

    def set(self, value):
        setattr(self, private, check(value))
        self._version += 1

    return property(get, set, doc=f"``{name}``, validated when set.")
