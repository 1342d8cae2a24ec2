"""A validation set watched during training: ``xpopt.train(..., validation=(X_val, Y_val))``.

At each recorded epoch (every ``record_every``, as the training cost) the network's mean
cost and accuracy on the held-out examples are computed on the data's device and kept there;
they are read back once, at the end of the call (no per-epoch synchronisation on a GPU).
"""

from __future__ import annotations

import numpy

from .backend import get_xp, to_host

__all__ = ["HeldOut"]


class HeldOut:
    """The validation examples of one training call, checked before any training work.

    Parameters
    ----------
    validation : (X_val, Y_val)
        ``X_val`` (n_x, m_val) of the training data's module, dtype and ``n_x``; ``Y_val``
        labels as the output takes them (sigmoid: 0 / 1 of shape (1, m_val); softmax:
        class labels (1, m_val) or (m_val,), or one-hot (C, m_val)).
    X : ndarray
        The training features (the module, dtype and rows the validation set must share).
    output : {"sigmoid", "softmax"}
    num_classes : int
        The network's output units.

    Raises
    ------
    TypeError, ValueError
        A validation set that is not a pair of arrays, of another module, dtype or number
        of features than ``X``, with NaN or infinity, or with labels the output cannot take.
    """

    def __init__(self, validation, X, output: str, num_classes: int):
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise TypeError(
                f"validation must be a pair (X_val, Y_val), got {type(validation).__name__}"
            )
        X_val, Y_val = validation
        from .softmax import check_dataset as check_softmax  # noqa: PLC0415
        from .softmax import class_labels, one_hot  # noqa: PLC0415

        try:
            if output == "softmax":
                self.m = check_softmax(X_val, Y_val, num_classes)
            else:
                from .data import check_dataset  # noqa: PLC0415

                check_dataset(X_val, Y_val)
                self.m = X_val.shape[1]
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"validation set: {exc}") from None
        get_xp(X, X_val)  # TypeError naming both when the training data lives elsewhere
        if X_val.dtype != X.dtype:
            raise TypeError(f"validation set: X_val is {X_val.dtype}, the training data {X.dtype}")
        if X_val.shape[0] != X.shape[0]:
            raise ValueError(
                f"validation set: X_val has {X_val.shape[0]} features (rows), "
                f"the training data {X.shape[0]}"
            )
        self.X, self.output = X_val, output
        if output == "softmax":
            self.Y = one_hot(Y_val, num_classes, X.dtype, checked=True)
            self.truth = (
                class_labels(Y_val)
                if Y_val.ndim == 1 or Y_val.shape[0] == 1
                else class_labels(self.Y)
            )
        else:
            self.Y, self.truth = Y_val, Y_val
        self.epochs: list[int] = []
        self._costs: list = []
        self._accuracies: list = []

    def record(self, epoch: int, parameters: dict) -> None:
        """The mean cost and the accuracy of ``parameters`` on the validation set, kept on
        the device (nothing is read back)."""
        from .network import compute_cost, forward_propagation  # noqa: PLC0415
        from .softmax import predict_classes, softmax_cost  # noqa: PLC0415

        AL, _ = forward_propagation(self.X, parameters, output=self.output)
        xp = get_xp(AL)
        if self.output == "softmax":
            cost = softmax_cost(AL, self.Y, checked=True)
            right = predict_classes(AL) == self.truth
        else:
            cost = compute_cost(AL, self.Y)
            right = (AL > 0.5) == self.truth
        self.epochs.append(int(epoch))
        self._costs.append(cost / self.m)
        self._accuracies.append(xp.mean(right))

    def results(self) -> tuple[list, list, list]:
        """``(epochs, costs, accuracies)`` as host lists (one read of each series)."""
        if not self._costs:
            return [], [], []
        xp = get_xp(self._costs[0])
        costs = numpy.asarray(to_host(xp.stack(self._costs))).tolist()
        accuracies = numpy.asarray(to_host(xp.stack(self._accuracies))).tolist()
        return list(self.epochs), costs, accuracies
