"""The stacked update on the GPU: one ``ElementwiseKernel`` launch per step for ALL models.

A sweep keeps each quantity of its ``K`` models in one ``(K, P)`` buffer. The kernels here
are the rules of :mod:`xpopt.kernels` with the same operation text (so the same arithmetic,
compiled with ``--fmad=false``), but every scalar is declared as an array: the sweep passes
each per-model scalar (``lr``, ``beta1``, the bias corrections, ...) as a ``(K, 1)`` column
that CuPy broadcasts against the ``(K, P)`` buffers, so the element of model ``k`` reads
model ``k``'s value. One launch updates every model; the launch count per step does not
depend on ``K``.

The columns live on the device: the constant ones are copied once, the learning rates once
per epoch when a schedule changes them, and the bias corrections of a whole epoch's steps in
one copy per epoch. A step copies nothing between host and device.
"""

from __future__ import annotations

import dataclasses

from . import kernels

__all__ = ["SWEEP_SPECS", "stacked_spec", "stacked_update"]


def stacked_spec(spec: kernels.KernelSpec) -> kernels.KernelSpec:
    """``spec`` with every scalar turned into a per-element (broadcast) array argument."""
    return dataclasses.replace(
        spec, name=spec.name.replace("xpopt_", "xpopt_sweep_", 1), scalars=()
    )


SWEEP_SPECS: dict[str, kernels.KernelSpec] = {
    spec.name: stacked_spec(spec)
    for spec in (kernels.GD, kernels.MOMENTUM, kernels.RMSPROP, kernels.ADAM)
}


def stacked_update(trainer):
    """The update function of a :class:`~xpopt.stacked.StackedTrainer` on CuPy: one launch.

    Returns
    -------
    callable
        ``update(params, grads, state, scalars)`` with the ``(K, P)`` buffers and a dict of
        ``(K, 1)`` device columns, one per scalar of the rule.
    """
    spec = SWEEP_SPECS[trainer.spec.name]
    kernel = kernels.get_kernel(spec)
    order = [(role, name) for role, _, name in spec.params]

    def update(params, grads, state, scalars) -> None:
        arrays = {"param": params, "grad": grads, **state}
        kernel(*[arrays[name] if name in arrays else scalars[name] for _, name in order])

    return update
