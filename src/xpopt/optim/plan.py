"""A validated update, ready to run again: :class:`UpdatePlan`, and the course functions' plans.

A plan is made once per set of dicts: :mod:`xpopt.validation` checks the arrays (and the
scalars as cast to their dtype), :func:`~xpopt.optim.placement.place` chooses where the
update runs, and the plan remembers which arrays the dicts held. Reusing it costs identity
checks only: O(1) while no FlatDict anywhere was rebound (``flat.EDITS``), O(number of keys)
otherwise. A new gradients dict of the same keys, shapes, dtype and kind of array as the
plan's (a backward pass returns a new one at each call) is checked in O(number of keys)
(:func:`xpopt.validation.check_new_grads`) and the plan rebinds to it; anything else makes a
new plan.

:data:`course_plans` keeps the latest plans of the course-named functions
(``update_parameters_with_*``), per thread, keyed on the identities of the parameters and
state dicts, so a notebook loop validates and plans once, not at every call.
"""

from __future__ import annotations

import operator
import threading

from ..flat import EDITS, FlatDict
from ..validation import (
    check_new_grads,
    check_scalars,
    check_update,
    still_writeable,
    written_roots,
)
from .placement import CupyRunner, Scratch, groups, place


class UpdatePlan:
    """One validated update of these dicts: ``plan.run(scalars)`` only launches.

    Parameters
    ----------
    spec, rule : the rule's kernel spec and NumPy twin
    parameters, grads : dict
    state : dict of str to dict
        The rule's state dicts by slot (``{"v": v, "s": s}``).
    fused : bool
        Run the kernel (CuPy) or the compiled CPU kernel (NumPy, where built); else the twin.
    scratch : Scratch, optional
        The twin's temporaries.
    scalars : dict, optional
        Checked as cast to the arrays' dtype (:func:`xpopt.validation.check_scalars`).
    """

    def __init__(
        self, spec, rule, parameters, grads, state, *, fused=True, scratch=None, scalars=None
    ):
        self.seen_edits = EDITS[0]  # read before looking: a later rebinding changes it
        self.packed, self.dtype = check_update(parameters, grads, state)
        if scalars is not None:
            check_scalars(scalars, self.dtype)
        named = {"grad": grads, **state}
        self.arrays = groups(parameters, named, self.packed)
        self.runner = place(
            spec,
            rule,
            self.arrays,
            fused=fused,
            scratch=scratch if scratch is not None else Scratch(),
        )
        self.requested_fused = bool(fused)
        self.parameters, self.grads, self.state = parameters, grads, tuple(state.values())
        self.written = written_roots(self.arrays)  # for check_new_grads
        self.written_arrays = [a for g in self.arrays for r, a in g.items() if r != "grad"]
        self.grad_keys = ["d" + k for k in parameters]
        self.checked: tuple | None = None  # hyperparameters last checked in dtype (course)
        self.checked_version = -1  # Optimizer._version last checked in dtype (objects)
        self._snapshot()

    def _snapshot(self) -> None:
        """Remember what the dicts hold now, for :meth:`unchanged`: a live view of each
        dict's values and the arrays themselves (kept alive here, so their identities
        cannot be reused)."""
        self.dicts = (self.parameters, self.grads, *self.state)
        self._held = [(dict.values(d), tuple(dict.values(d))) for d in self.dicts]
        # Only FlatDicts count their rebindings (flat.EDITS); plain dicts are looked at
        self.only_flatdicts = all(isinstance(d, FlatDict) for d in self.dicts)

    @property
    def run(self):
        """``run(scalars)``: the update, where :func:`~xpopt.optim.placement.place` put it."""
        return self.runner.run

    @property
    def fused(self) -> bool:  # the CuPy kernel runs it
        return isinstance(self.runner, CupyRunner)

    @property
    def host(self):  # the compiled CPU kernel, or None
        return getattr(self.runner, "function", None)

    @property
    def parts(self) -> list:  # the pieces of each thread's share (NumPy paths)
        return getattr(self.runner, "calls", [])

    def unchanged(self) -> bool:
        """True while every dict holds the same keys and array objects as when the plan was
        made (checked by identity: no array is read, nothing is allocated but an iterator)."""
        is_ = operator.is_
        return all(len(now) == len(then) and all(map(is_, now, then)) for now, then in self._held)

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
        return (
            len(key) == len(self.dicts)
            and all(map(operator.is_, key, self.dicts))
            and self.current()
        )

    def reuse(self, parameters, grads, state_dicts) -> bool:
        """:meth:`still_valid` with the arrays it writes still writeable; also true, after
        rebinding the plan to ``grads``, for a new gradients dict that
        :func:`~xpopt.validation.check_new_grads` accepts."""
        state_dicts = tuple(state_dicts)
        if not (
            parameters is self.parameters
            and len(state_dicts) == len(self.state)
            and all(map(operator.is_, state_dicts, self.state))
            and self.current()
            and still_writeable(self.written_arrays)
        ):
            return False
        if grads is self.grads:
            return True
        arrays = check_new_grads(grads, self)
        if arrays is None:
            return False
        self.runner.rebind_grads(arrays)
        self.grads, self.dicts = grads, (parameters, grads, *state_dicts)
        self._held[1] = (dict.values(grads), tuple(dict.values(grads)))
        return True


class CoursePlans(threading.local):
    """The course-named functions' latest plans, per thread, keyed on the rule and the
    identities of the parameters and state dicts (kept alive by their plans, so an identity
    cannot be reused while its plan is kept). At most :attr:`size` plans: each holds its
    arrays."""

    size = 4

    def __init__(self):
        self.plans: dict[tuple, UpdatePlan] = {}
        self.scratch = Scratch()

    def get(self, spec, rule, parameters, grads, state: dict) -> UpdatePlan:
        """A plan for these dicts: the kept one if :meth:`UpdatePlan.reuse` accepts it, else
        a new one (validated: raises, keeping nothing, if the arrays are not valid)."""
        key = (spec.name, id(parameters), *map(id, state.values()))
        plans = self.plans
        plan = plans.get(key)
        if plan is not None and plan.reuse(parameters, grads, state.values()):
            return plan
        plans.pop(key, None)
        plan = UpdatePlan(spec, rule, parameters, grads, state, scratch=self.scratch)
        if len(plans) >= self.size:
            del plans[next(iter(plans))]  # the oldest
        plans[key] = plan
        return plan

    def clear(self) -> None:
        """Forget every kept plan (and the arrays it holds) of this thread."""
        self.plans.clear()


course_plans = CoursePlans()
