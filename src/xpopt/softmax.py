"""The softmax output layer with the categorical cross-entropy, in the course's conventions.

For ``C >= 2`` classes the last layer is LINEAR -> SOFTMAX (the hidden layers stay
LINEAR -> RELU), its output ``AL`` of shape (C, m) holds one probability column per example.
The conventions are the sigmoid's (see ``../shared/COURSE.md``):

- :func:`softmax_cost` SUMS the cross-entropy over the batch (the training loop divides the
  epoch's total by ``m``): ``-sum_i log(AL[y_i, i])``.
- The backward pass starts from ``dZ_L = (AL - Y_onehot) / m_batch``, exactly the sigmoid's
  ``(a_L - Y) / m`` with the labels one-hot: :func:`backward_propagation` is
  :func:`xpopt.backward_propagation` given :func:`one_hot` labels.

Labels are integer classes, of shape (1, m) or (m,), or one-hot columns of shape (C, m).
:func:`check_labels` refuses anything else (non-integers, classes outside ``0..C-1``, NaN,
one-hot columns that are not a single 1) with one pass on the labels' device and ONE
boolean read back; the details of a fault are computed only to name it.

Everything runs on the arrays' own module (NumPy or CuPy) and keeps their dtype.
"""

from __future__ import annotations

from typing import Any

import numpy

from .backend import get_xp, to_host

__all__ = [
    "backward_propagation",
    "check_dataset",
    "check_labels",
    "class_labels",
    "forward_propagation",
    "one_hot",
    "predict_classes",
    "softmax",
    "softmax_cost",
    "softmax_output_gradient",
]


# ------------------------------------------------------------------------ the activation
def softmax(Z, out=None):
    """Column-wise softmax, numerically stable: ``exp(z - max z) / sum(exp(z - max z))``.

    Subtracting each column's maximum leaves the result unchanged and keeps ``exp`` at or
    below 1, so no logit, however large, overflows; the largest entry of each column gives
    ``exp(0) = 1`` and the sum is at least 1 (no division by zero).

    Parameters
    ----------
    Z : ndarray of shape (C, m)
        Logits, floating point.
    out : ndarray of shape (C, m), optional
        Where to write (may be ``Z`` itself: computed in place).

    Returns
    -------
    ndarray of shape (C, m)
        Each column sums to 1 (to rounding).
    """
    xp = get_xp(Z)
    if Z.ndim != 2:
        raise ValueError(f"softmax expects logits of shape (C, m), got {Z.shape}")
    if Z.dtype.kind != "f":
        raise TypeError(f"softmax expects floating-point logits, got {Z.dtype}")
    shift = xp.max(Z, axis=0, keepdims=True)
    A = xp.subtract(Z, shift, out=out)
    xp.exp(A, out=A)
    total = xp.sum(A, axis=0, keepdims=True)
    return xp.divide(A, total, out=A)


# ------------------------------------------------------------------------------- labels
def _label_form(Y, C: int, m: int | None) -> str:
    """``"classes"`` ((1, m) or (m,) integers) or ``"onehot"`` ((C, m)); shape errors here."""
    if Y is None or not hasattr(Y, "ndim") or not hasattr(Y, "dtype"):
        raise TypeError(f"Y must be an array of class labels, got {type(Y).__name__}")
    if isinstance(C, bool) or not isinstance(C, (int, numpy.integer)) or C < 2:
        raise ValueError(
            f"a softmax output needs at least 2 classes (output units), got {C!r}; "
            f"for one output unit use the sigmoid (output='sigmoid')"
        )
    if Y.dtype.kind not in "fiub":
        raise TypeError(f"Y must hold numeric class labels, got dtype {Y.dtype}")
    if Y.ndim == 1 or (Y.ndim == 2 and Y.shape[0] == 1):
        form = "classes"
    elif Y.ndim == 2 and Y.shape[0] == C:
        form = "onehot"
    else:
        raise ValueError(
            f"Y must be class labels of shape (1, m) or (m,), or one-hot labels of "
            f"shape ({C}, m) for {C} classes; got shape {Y.shape}"
        )
    if form == "classes" and Y.dtype.kind == "b":
        raise TypeError("Y holds booleans: give integer class labels 0..C-1 or one-hot columns")
    width = Y.shape[-1]
    if m is not None and width != m:
        raise ValueError(f"Y has {width} examples but the data has {m} (columns)")
    if width == 0:
        raise ValueError("Y has no examples")
    return form


def check_labels(Y, num_classes: int, m: int | None = None) -> str:
    """Refuse labels that a softmax over ``num_classes`` outputs cannot be trained on.

    Accepted: integer class labels ``0..C-1`` of shape (1, m) or (m,) (an integer dtype, or
    floating point holding whole numbers), or one-hot labels of shape (C, m) (every entry 0
    or 1, every column summing to 1).

    One pass on the labels' device and one boolean read back.

    Parameters
    ----------
    Y : ndarray
    num_classes : int
        ``C``, the number of output units (at least 2).
    m : int, optional
        The number of examples the labels must have.

    Returns
    -------
    str
        ``"classes"`` or ``"onehot"``: the form found.

    Raises
    ------
    TypeError
        Not an array, a non-numeric dtype, boolean class labels.
    ValueError
        A shape that is neither form, another number of examples, NaN or infinity, a
        non-integer or out-of-range class, a one-hot column that is not a single 1.
    """
    form = _label_form(Y, num_classes, m)
    if bool(_labels_ok(Y, num_classes, form)):  # the one read
        return form
    _explain_labels(Y, num_classes, form)
    return form  # not reached: _explain_labels raises


def _labels_ok(Y, C: int, form: str):
    """A device boolean: the labels of this form are valid (nothing is read)."""
    xp = get_xp(Y)
    if form == "classes":
        ok = (Y >= 0) & (Y < C)
        if Y.dtype.kind == "f":
            ok &= xp.floor(Y) == Y  # NaN compares False: refused here too
        return ok.all()
    return ((Y == 0) | (Y == 1)).all() & (xp.sum(Y, axis=0) == 1).all()


def _explain_labels(Y, C: int, form: str) -> None:
    """Raise the ValueError naming what is wrong with labels that failed :func:`_labels_ok`."""
    xp = get_xp(Y)
    if form == "classes":
        ok = (Y >= 0) & (Y < C)
        if Y.dtype.kind == "f":
            ok &= xp.floor(Y) == Y
        if Y.dtype.kind == "f" and not bool(xp.isfinite(Y).all()):
            raise ValueError(
                "Y is not finite: class labels must be integers 0..C-1, got NaN or infinity"
            )
        bad = to_host(Y.reshape(-1)[~ok.reshape(-1)])
        shown = bad[:5].tolist()
        if Y.dtype.kind == "f" and bool((xp.floor(Y) != Y).any()):
            raise ValueError(
                f"Y holds non-integer class labels, e.g. {shown}: class labels "
                f"must be whole numbers 0..{C - 1}"
            )
        raise ValueError(
            f"class labels must be in 0..{C - 1} for {C} output units, got "
            f"{bad.size} outside, e.g. {shown}"
        )
    binary = (Y == 0) | (Y == 1)
    if Y.dtype.kind == "f" and not bool(xp.isfinite(Y).all()):
        raise ValueError("Y is not finite: one-hot labels must be 0 or 1, got NaN or infinity")
    if not bool(binary.all()):
        raise ValueError(
            f"one-hot labels of shape {Y.shape} must be 0 or 1; got other values "
            f"(for class indices give shape (1, m))"
        )
    columns = to_host(xp.sum(Y, axis=0)).reshape(-1)
    bad = numpy.flatnonzero(columns != 1)
    raise ValueError(
        f"one-hot labels must have exactly one 1 per column (example); "
        f"{bad.size} column(s) do not, e.g. columns {bad[:5].tolist()} sum to "
        f"{columns[bad[:5]].tolist()}"
    )


def check_dataset(X, Y, num_classes: int) -> int:
    """Refuse training data for a softmax over ``num_classes`` outputs; returns ``m``.

    ``X`` (n_x, m) floating point, native byte order, finite; ``Y`` class labels (1, m) or
    (m,) or one-hot labels (C, m) as :func:`check_labels` accepts them; one module (NumPy or
    CuPy). One pass on the data's device and ONE boolean read back (the details of a fault
    are computed only to name it). :func:`xpopt.train` calls this before it touches an array.
    """
    for name, a in (("X", X), ("Y", Y)):
        if a is None or not hasattr(a, "ndim") or not hasattr(a, "dtype"):
            raise TypeError(f"{name} must be an array, got {type(a).__name__}")
    xp = get_xp(X, Y)  # TypeError naming both when NumPy and CuPy are mixed
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D with examples as columns, got shape {X.shape}")
    m = X.shape[1]
    if m == 0:
        raise ValueError("X has no examples (zero columns)")
    form = _label_form(Y, num_classes, m)
    if X.dtype.kind != "f":
        raise TypeError(f"X must be floating point (float64 or float32), got {X.dtype}")
    for name, a in (("X", X), ("Y", Y)):
        if not a.dtype.isnative:
            raise TypeError(
                f"{name} has a non-native byte order ({a.dtype.str}); convert it "
                f"with {name}.astype({name}.dtype.newbyteorder('='))"
            )
    finite_X = xp.isfinite(X).all()
    labels_ok = _labels_ok(Y, num_classes, form)
    if bool(finite_X & labels_ok):  # the one read
        return m
    if not bool(finite_X):
        bad = int(xp.count_nonzero(~xp.isfinite(X)))
        raise ValueError(f"X is not finite: {bad} NaN or infinite value(s)")
    _explain_labels(Y, num_classes, form)
    return m  # not reached


def one_hot(Y, num_classes: int, dtype=None, *, checked: bool = False):
    """Labels as one-hot columns of shape (C, m), on the labels' device.

    Integer class labels (1, m) or (m,) are expanded (``onehot[c, i] = (y_i == c)``);
    one-hot labels are returned as they are (cast to ``dtype`` if another).

    Parameters
    ----------
    Y : ndarray
        Class labels or one-hot labels (see :func:`check_labels`).
    num_classes : int
    dtype : dtype, optional
        Of the result: the output's floating type (default float64 for class labels, the
        labels' own dtype for one-hot labels).
    checked : bool
        The labels passed :func:`check_labels` already: skip the check (and its one read).

    Returns
    -------
    ndarray of shape (C, m)
    """
    form = _label_form(Y, num_classes, None) if checked else check_labels(Y, num_classes)
    xp = get_xp(Y)
    if form == "onehot":
        return Y if dtype is None or Y.dtype == dtype else Y.astype(dtype)
    classes = xp.arange(num_classes, dtype=Y.dtype).reshape(num_classes, 1)
    return (classes == Y.reshape(1, -1)).astype(numpy.float64 if dtype is None else dtype)


def class_labels(Y, num_classes: int | None = None):
    """Integer class indices of shape (1, m): class labels as they are, one-hot by argmax.

    With ``num_classes`` given, the labels are checked (:func:`check_labels`); without,
    a (1, m) or (m,) array is taken as class labels and a (C, m) one (C >= 2) as one-hot.
    """
    if num_classes is not None:
        form = check_labels(Y, num_classes)
    else:
        form = "classes" if Y.ndim == 1 or Y.shape[0] == 1 else "onehot"
    xp = get_xp(Y)
    if form == "onehot":
        return xp.argmax(Y, axis=0).reshape(1, -1).astype(numpy.int64)
    return Y.reshape(1, -1).astype(numpy.int64)


# ---------------------------------------------------------------------------------- cost
def softmax_cost(AL, Y, *, checked: bool = False):
    """The categorical cross-entropy, SUMMED over the batch (the loop divides by ``m``).

    ``-sum_i log(AL[y_i, i])``: the one-hot sum ``-sum(Y * log(AL))`` computed from the
    probability of each example's own class only, so that a probability that underflowed
    to 0 in another row costs nothing (``0 * log(0)`` would be NaN). That probability is
    clipped below at the least positive value of its dtype (the least NORMAL float32 on the
    GPU, whose kernels flush subnormals to zero, as :func:`xpopt.compute_cost` does), so a
    confident wrong answer costs a large finite amount instead of inf.

    Parameters
    ----------
    AL : ndarray of shape (C, m)
        Probabilities from a softmax.
    Y : ndarray
        Class labels (1, m) or (m,), or one-hot labels (C, m); checked unless ``checked``.

    Returns
    -------
    ndarray of shape ()
        On the arrays' device.
    """
    from .cost import _clip_bounds  # noqa: PLC0415 (cost is light; kept local for clarity)

    xp = get_xp(AL, Y)
    if AL.ndim != 2:
        raise ValueError(f"AL must have shape (C, m), got {AL.shape}")
    C, m = AL.shape
    if not checked:
        check_labels(Y, C, m)
    Yh = one_hot(Y, C, AL.dtype, checked=True)
    low, _ = _clip_bounds(AL.dtype, xp is not numpy)
    p = xp.sum(Yh * AL, axis=0)  # each example's probability of its own class
    xp.maximum(p, low, out=p)
    xp.log(p, out=p)
    return xp.asarray(-xp.sum(p))


def softmax_output_gradient(AL, Y_onehot, m: float, out=None):
    """``dZ_L = (AL - Y_onehot) / m``: the gradient of the MEAN cross-entropy with respect to
    the logits (``m`` the batch width, or a global batch's width for a shard of it)."""
    xp = get_xp(AL, Y_onehot)
    dZ = xp.subtract(AL, Y_onehot, out=out)
    return xp.divide(dZ, float(m), out=dZ)


# ------------------------------------------------------------------------ the network
def _weights(parameters: dict) -> tuple[list, list]:
    L = 0
    while f"W{L + 1}" in parameters:
        L += 1
    if (
        L == 0
        or len(parameters) != 2 * L
        or any(f"b{l}" not in parameters for l in range(1, L + 1))
    ):
        raise ValueError(f"parameters must be W1, b1, ..., WL, bL; got keys {sorted(parameters)}")
    return (
        [parameters[f"W{l}"] for l in range(1, L + 1)],
        [parameters[f"b{l}"] for l in range(1, L + 1)],
    )


def forward_propagation(X, parameters: dict) -> tuple[Any, Any]:
    """LINEAR -> RELU for layers 1..L-1, LINEAR -> SOFTMAX for layer L.

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    parameters : dict
        ``W_l`` (n_l, n_{l-1}) and ``b_l`` (n_l, 1); ``n_L = C >= 2``; the module and dtype
        of X.

    Returns
    -------
    AL : ndarray of shape (C, m)
        Class probabilities, one column per example.
    caches : xpopt.network.Caches
        What :func:`backward_propagation` (and :func:`xpopt.backward_propagation`) needs.
    """
    from .network import Caches  # noqa: PLC0415 (network imports this module when integrated)

    Ws, bs = _weights(parameters)
    xp = get_xp(X, *Ws, *bs)
    if X.dtype != Ws[0].dtype:
        raise TypeError(
            f"X is {X.dtype} but the parameters are {Ws[0].dtype}; "
            "convert one of them (no silent promotion)"
        )
    if X.ndim != 2 or X.shape[0] != Ws[0].shape[1]:
        raise ValueError(f"X must have shape ({Ws[0].shape[1]}, m), got {X.shape}")
    if Ws[-1].shape[0] < 2:
        raise ValueError(
            "a softmax output needs at least 2 output units; for one output unit use the sigmoid"
        )
    A, activations = X, [X]
    for l, (W, b) in enumerate(zip(Ws, bs, strict=True)):
        Z = xp.dot(W, A)
        xp.add(Z, b, out=Z)
        if l < len(Ws) - 1:
            xp.maximum(Z, 0.0, out=Z)
        else:
            softmax(Z, out=Z)
        A = Z
        activations.append(A)
    return A, Caches(tuple(activations), parameters, None)


def backward_propagation(X, Y, caches, grads=None):
    """Gradients of the MEAN cross-entropy over the batch: the course's backward pass from
    ``dZ_L = (AL - Y_onehot) / m`` (:func:`xpopt.backward_propagation` on one-hot labels).

    Parameters
    ----------
    X : ndarray of shape (n_x, m)
    Y : ndarray
        Class labels (1, m) or (m,), or one-hot (C, m); checked (one read).
    caches : Caches
        From :func:`forward_propagation`.
    grads : FlatDict, optional
        A gradient buffer to write into.
    """
    from . import network  # noqa: PLC0415

    AL = caches.activations[-1]
    C, m = AL.shape
    check_labels(Y, C, m)
    return network.backward_propagation(X, one_hot(Y, C, AL.dtype, checked=True), caches, grads)


def predict_classes(AL):
    """The most probable class of each column: integer indices of shape (1, m)."""
    xp = get_xp(AL)
    return xp.argmax(AL, axis=0).reshape(1, -1).astype(numpy.int64)
