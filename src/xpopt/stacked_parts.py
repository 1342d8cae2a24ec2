"""Two parts of :class:`~xpopt.stacked.StackedTrainer`: the models' shuffles and the plan of
its matrix products (stacked ``matmul`` where it gives ``dot``'s bits, else ``dot`` per model).
"""

from __future__ import annotations

import functools

import numpy

from .backend import get_xp
from .data import _permutation

__all__ = ["StackedShuffler", "plan_products"]


class StackedShuffler:
    """Each model's epoch shuffle, as :class:`~xpopt.data.MiniBatcher` draws it for ``train``.

    Model ``k`` shuffles epoch ``i`` with ``seed_k + i + 1`` (the permutation drawn on the
    host, as for ``train``), gathered into preallocated ``(K, n_x, m)`` and ``(K, 1, m)``
    buffers, ``Xs`` and ``Ys``. With one seed for all (or ``shared``) on NumPy, one shuffled
    copy is made and ``Xs``, ``Ys`` are broadcast views of it; on CuPy the models' buffers
    are gathered all the same (one launch, whatever ``K``).

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m)
    K : int
    seeds : sequence of int
        ``train``'s seed of each model.
    shared : bool
        One permutation for all (the caller checked that the seeds are equal).
    """

    def __init__(self, X, Y, K: int, seeds, shared: bool = False):
        xp = self.xp = get_xp(X, Y)
        n_x, m = X.shape
        dtype = X.dtype
        self.X, self.Y, self.K, self.m = X, Y, K, m
        self.seeds = [int(s) for s in seeds]
        self.distinct_seeds = sorted(set(self.seeds))
        self._seed_index = numpy.searchsorted(self.distinct_seeds, self.seeds)
        self.shared = (bool(shared) or len(self.distinct_seeds) == 1) and xp is numpy
        self._rng = numpy.random.RandomState()
        if self.shared:
            self.sx = xp.empty((n_x, m), dtype)
            self.sy = xp.empty((1, m), dtype)
            self.Xs = xp.broadcast_to(self.sx, (K, n_x, m))
            self.Ys = xp.broadcast_to(self.sy, (K, 1, m))
        else:
            self.sx = self.sy = None
            self.Xs = xp.empty((K, n_x, m), dtype)
            self.Ys = xp.empty((K, 1, m), dtype)
            self._rows = (numpy.arange(n_x, dtype=numpy.intp) * m)[None, :, None]
            self._perm_host = numpy.empty((K, m), numpy.intp)
            self._perm_cache: dict[int, numpy.ndarray] = {}
            self._index = xp.empty((K, n_x, m), numpy.intp)
            if xp is not numpy:
                self._rows = xp.asarray(self._rows)
            self._Xflat, self._Yflat = X.reshape(-1), Y.reshape(-1)

    @property
    def buffer(self):
        """The array the shuffles write ``X`` into (``Xs``, or its one shared copy)."""
        return self.sx if self.shared else self.Xs

    def shuffle(self, i: int) -> None:
        """Fill ``Xs`` and ``Ys`` with epoch ``i``'s shuffles."""
        xp = self.xp
        if self.shared:
            perm = _permutation(self.m, self.distinct_seeds[0] + i + 1, self._rng)
            if xp is numpy:
                numpy.take(self.X, perm, axis=1, out=self.sx, mode="clip")
                numpy.take(self.Y, perm, axis=1, out=self.sy, mode="clip")
            else:
                perm = xp.asarray(perm)
                xp.take(self.X, perm, axis=1, out=self.sx)
                xp.take(self.Y, perm, axis=1, out=self.sy)
            return
        # Model k shuffles with seed_k + i + 1: with consecutive seeds most of this epoch's
        # permutations were drawn last epoch by a neighbour; keep them, draw the rest.
        cache, fresh = self._perm_cache, {}
        for s in self.distinct_seeds:  # drawn in this order, as before
            key = s + i + 1
            kept = cache.get(key)
            fresh[key] = kept if kept is not None else _permutation(self.m, key, self._rng)
        self._perm_cache = fresh
        distinct = numpy.stack([self._perm_cache[s + i + 1] for s in self.distinct_seeds])
        numpy.take(distinct, self._seed_index, axis=0, out=self._perm_host)
        if xp is numpy:
            numpy.add(self._perm_host[:, None, :], self._rows, out=self._index)
            numpy.take(self._Xflat, self._index, out=self.Xs, mode="clip")
            numpy.take(
                self._Yflat, self._perm_host, out=self.Ys.reshape(self.K, self.m), mode="clip"
            )
        else:  # one host-to-device copy of K*m indices per epoch
            perm = xp.asarray(self._perm_host)
            xp.add(perm[:, None, :], self._rows, out=self._index)
            xp.take(self._Xflat, self._index, out=self.Xs)
            xp.take(self._Yflat, perm, out=self.Ys.reshape(self.K, self.m))


def plan_products(trainer) -> tuple[list, dict]:
    """Each batch's matrix products as calls: ``(forward, dW, dA)``, one per layer.

    A product is ``matmul`` on the stacks where that gives, model for model, the bits of the
    ``dot`` that ``train`` calls with the same operands, else a loop of those ``dot`` calls
    (exact by construction, slower). NumPy's ``matmul`` and ``dot`` call BLAS with the same
    arguments for most shapes of these passes, but not all: with OpenBLAS 0.3.31,
    ``dZ @ X_batch.T`` with ``X_batch`` columns of a wider buffer differs in the last bits
    for (n_out, n_in) = (2, 5), (1, 2), (3, 7), ... (``dot`` copies that operand, ``matmul``
    passes it transposed: another kernel). So each product is probed, once, on random
    contents of the trainer's real buffers and layouts. On CuPy every product is ``matmul``
    (one batched launch).

    Returns
    -------
    products : list of (list, list, list)
        Per batch: the forward, dW and dA calls by layer (dA of layer 1: None).
    exact : dict
        ``{id(operands): matmul gives dot's bits}`` as probed (empty on CuPy).
    """
    t = trainer
    xp, K, L = t.xp, t.K, t.L
    triples = []
    for Xb, XbT, _, ALb, A, AT, dZs, _, _ in t.batches:
        fwd = [(t.W[l], Xb if l == 0 else A[l - 1], A[l] if l < L - 1 else ALb) for l in range(L)]
        dW = [(dZs[l], XbT if l == 0 else AT[l - 1], t.gW[l]) for l in range(L)]
        dA = [None] + [(t.WT[l], dZs[l], dZs[l - 1]) for l in range(1, L)]
        triples.append((fwd, dW, dA))
    exact = _probe(t, triples) if xp is numpy else {}

    def call(triple):
        if triple is None:
            return None
        a, b, out = triple
        if exact.get(id(triple), True):
            return functools.partial(xp.matmul, a, b, out=out)
        pairs = [(a[k], b[k], out[k]) for k in range(K)]

        def per_model(dot=numpy.dot, pairs=pairs, out=out):
            for x, y, o in pairs:
                dot(x, y, out=o)
            return out

        return per_model

    return [tuple([call(tr) for tr in kind] for kind in batch) for batch in triples], exact


def _probe(t, triples) -> dict:
    """``{id(triple): matmul is dot, model for model}`` on random buffer contents (the
    parameters are restored; the other buffers are overwritten by training anyway)."""
    saved = t.params.copy()
    rng = numpy.random.RandomState(0)
    targets = {id(a): a for a in [t.params, t.AL, t.shuffler.buffer]}
    for _, _, _, _, A, _, dZs, _, _ in t.batches:
        targets.update((id(a), a) for a in [*A, *dZs])
    for a in targets.values():
        a[...] = rng.uniform(-4.0, 4.0, a.shape)
    # every model's call is of one kind (shapes, strides; only the addresses differ):
    # a few models, first and last included, show which BLAS path matmul takes
    sample = sorted({0, 1, t.K // 2, t.K - 1} & set(range(t.K)))
    exact = {}
    for batch in triples:
        for kind in batch:
            for triple in kind:
                if triple is None:
                    continue
                a, b, out = triple
                numpy.matmul(a, b, out=out)
                same = True
                for k in sample:
                    ref = numpy.empty(out[k].shape, out.dtype)
                    numpy.dot(a[k], b[k], out=ref)
                    same &= ref.tobytes() == numpy.ascontiguousarray(out[k]).tobytes()
                exact[id(triple)] = same
    t.params[...] = saved
    t.grads[...] = 0
    return exact
