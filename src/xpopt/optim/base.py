"""The optimizer front: :class:`Optimizer` and its state, and the course functions' shared call.

A rule's module (``gd.py``, ``momentum.py``, ``rmsprop.py``, ``adam.py``) holds its kernel
spec beside its NumPy twin, its scalars, its optimizer class and its course-named function.
Every update runs an :class:`~xpopt.optim.plan.UpdatePlan` (validated once, placed once),
reused while the same dicts come back: kept in the state by :class:`Optimizer`, in a bound
step by :meth:`Optimizer.bind`, in :data:`~xpopt.optim.plan.course_plans` by the course-named
functions (:func:`course_update`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import kernels
from ..backend import get_xp
from ..flat import EDITS, FlatDict

# Names importable from here before validation and placement had modules of their own.
# isort: off
from ..validation import _packed_together, check_learning_rate, check_scalars  # noqa: F401
from ..validation import check_beta, check_epsilon, check_step, check_update  # noqa: F401
from ..validation import check_parameters
from .placement import CHUNK, THREADED_MIN, Scratch, num_threads  # noqa: F401
from .placement import groups as _groups  # noqa: F401

# isort: on
from .plan import UpdatePlan, course_plans

Rule = Callable[..., None]


def course_update(
    spec: kernels.KernelSpec,
    rule: Rule,
    parameters: dict,
    grads: dict,
    state: dict[str, dict],
    scalars_of: Callable[..., dict],
    hyper: tuple,
    t: int = 1,
) -> None:
    """The course-named functions' shared call: one step of ``rule``, in place.

    The plan is the one :data:`~xpopt.optim.plan.course_plans` keeps for these dicts
    (validated when made; reused while they hold the same arrays, a new gradients dict
    of the same kind rebound in O(number of keys)). ``hyper``, the hyperparameters already
    checked in double, are checked in the arrays' dtype when they differ from the ones the
    plan last checked, at ``t = 1`` (the smallest bias corrections: that covers every
    ``t``). ``scalars_of(*hyper, t)`` gives the kernel's scalars.
    """
    plan = course_plans.get(spec, rule, parameters, grads, state)
    if plan.checked != hyper:
        check_scalars(scalars_of(*hyper, 1), plan.dtype)
        plan.checked = hyper
    plan.run(scalars_of(*hyper, t))


# ----------------------------------------------------------------- state and objects
def zeros_state(parameters: dict) -> dict:
    """Zeros keyed ``dW1, db1, ...`` like the parameters (a packed FlatDict when they are)."""
    if isinstance(parameters, FlatDict) and parameters.packed:
        return parameters.zeros_like(prefix="d")
    check_parameters(parameters)
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


def _watched(
    name: str, check: Callable[[Any], Any], changed: Callable[[Any], None], doc: str | None = None
) -> property:
    """An attribute stored as ``_name``: ``check(value)`` on every assignment (the previous
    value stays on error), then ``changed(owner)``."""
    private = "_" + name

    def set(self, value):
        setattr(self, private, check(value))
        changed(self)

    return property(operator.attrgetter(private), set, doc=doc)


def _rebound(state) -> None:
    EDITS[0] += 1


# OptimizerState.v / .s: replacing the dict counts as a rebinding (flat.EDITS), so that a
# bound step looks again. Set after @dataclass: its __init__ assigns through these (the
# ignores: to mypy the class attributes are the fields' dict | None, not properties).
OptimizerState.v = _watched("v", lambda d: d, _rebound)  # type: ignore[assignment]
OptimizerState.s = _watched("s", lambda d: d, _rebound)  # type: ignore[assignment]


def _new_version(optimizer) -> None:
    optimizer._version += 1


def hyperparameter(name: str, check: Callable[[Any], float]) -> property:
    """A validated hyperparameter attribute: ``check(value)`` on every assignment (the
    previous value stays on error); a change makes the next step re-check the scalars in
    the arrays' dtype."""
    return _watched(name, check, _new_version, doc=f"``{name}``, validated when set.")


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
    _learning_rate: float
    _version: int
    learning_rate = hyperparameter("learning_rate", check_learning_rate)

    def __init__(self, learning_rate: float, *, fused: bool = True):
        self._version = 0  # bumped by every hyperparameter change
        self.learning_rate = learning_rate
        self.fused = bool(fused)

    def scalars(self, learning_rate: float, t: int) -> dict[str, float]:
        """The kernel's scalar arguments for step ``t`` (from 1)."""
        raise NotImplementedError

    def init(self, parameters: dict) -> OptimizerState:
        """Zero state for ``parameters`` (on their device, of their dtype)."""
        zeros = {slot: zeros_state(parameters) for slot in self.slots}  # v and/or s
        return OptimizerState(v=zeros.get("v"), s=zeros.get("s"))

    def _plan(self, parameters, grads, state: OptimizerState) -> UpdatePlan:
        """A validated plan of ``state``'s slots now; the scalars are checked in the arrays'
        dtype at ``t = 1`` (the smallest bias corrections) with the current learning rate."""
        slots = {slot: getattr(state, slot) for slot in self.slots}
        plan = UpdatePlan(
            self.spec,
            type(self).rule,
            parameters,
            grads,
            slots,
            fused=self.fused,
            scratch=state.scratch,
            scalars=self.scalars(self._learning_rate, 1),
        )
        plan.checked_version = self._version
        return plan

    def _recheck(self, plan: UpdatePlan) -> None:
        """After a hyperparameter changed: the current ones, cast to the plan's dtype."""
        check_scalars(self.scalars(self._learning_rate, 1), plan.dtype)
        plan.checked_version = self._version

    def update(
        self,
        parameters: dict,
        grads: dict,
        state: OptimizerState,
        learning_rate: float | None = None,
    ) -> None:
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
        lr = self._learning_rate if learning_rate is None else check_learning_rate(learning_rate)
        t = state.t + 1
        plan = state.plan
        if (
            plan is None
            or plan.requested_fused != self.fused
            or not plan.reuse(parameters, grads, map(state.__getattribute__, self.slots))
        ):
            state.plan = None
            state.plan = plan = self._plan(parameters, grads, state)
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
        plan = self._plan(parameters, grads, state)
        # the plan's answers, kept in the closure: the common step reads no attribute of it
        current, run, fast, seen, checked = (
            plan.state,
            plan.run,
            plan.only_flatdicts,
            plan.seen_edits,
            plan.checked_version,
        )
        scalars = self.scalars
        is_, attribute = operator.is_, state.__getattribute__

        def step() -> None:
            nonlocal plan, current, run, fast, seen, checked
            # O(1) while nothing was rebound anywhere (flat.EDITS: FlatDict keys, state
            # slots); otherwise an identity check of every array, and a new plan if needed
            if EDITS[0] != seen or not fast:
                edits = EDITS[0]
                if not all(map(is_, map(attribute, slot_names), current)) or not plan.current():
                    plan = self._plan(parameters, grads, state)  # raises if invalid: no change
                    current, run, fast = plan.state, plan.run, plan.only_flatdicts
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
