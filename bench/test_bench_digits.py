"""Group "digits": xpopt's Adam against scikit-learn's ``MLPClassifier(solver="adam")``.

The data: :func:`xpopt.digits.load_digits` (scikit-learn's 8x8 digits, 1347 training and
450 held-out examples, the documented stratified split, seed 0), float64, CPU. The network:
64 inputs, one hidden layer of 64 ReLU units, 10 softmax outputs, for every contestant.

- ``xpopt-adam``: ``xpopt.train(X, Y, [64, 64, 10], xpopt.Adam(0.001), output="softmax",
  mini_batch_size=64, num_epochs=EPOCHS)`` (NumPy).
- ``sklearn-same``: ``MLPClassifier(hidden_layer_sizes=(64,), solver="adam",
  learning_rate_init=0.001, batch_size=64, max_iter=EPOCHS, alpha=0.0, tol=0,
  n_iter_no_change=EPOCHS + 1)``: the same learning rate, batch size, epochs and loss (no L2
  penalty, no early stop), so the two do the same number of the same kind of steps.
- ``sklearn-default``: ``MLPClassifier(hidden_layer_sizes=(64,), solver="adam")`` with
  scikit-learn's other defaults (batches of 200, L2 ``alpha=1e-4``, at most 200 epochs,
  stopping when the training loss stalls): what a user of scikit-learn gets.

Each contestant's held-out accuracy (and training accuracy) is recorded beside its time in
the run's JSON; :func:`test_digits_summary` prints the side-by-side table of the run.
``python bench/test_bench_digits.py`` measures the three once each and prints the same table.
No timing is asserted; the guards check that each contestant learned (held-out accuracy
above 0.9).
"""

from __future__ import annotations

import os
import time
import warnings

import numpy
import pytest

import xpopt
from xpopt.digits import load_digits

try:
    import harness  # noqa: E402  (bench/conftest.py puts bench/ on sys.path)

    QUICK = harness.QUICK
except ImportError:  # run as a script
    harness = None
    QUICK = os.environ.get("XPOPT_BENCH_QUICK", "").strip().lower() in ("1", "true", "yes", "on")

EPOCHS = 5 if QUICK else 100
LAYERS = [64, 64, 10]
LR, BATCH = 0.001, 64
GROUP = "digits: [64, 64, 10] softmax, Adam, held-out 450 of 1797, float64, CPU"

CONTESTANTS = {
    "xpopt-adam": f"xpopt.train Adam(0.001), batches of 64, {EPOCHS} epochs (NumPy)",
    "sklearn-same": f"MLPClassifier(solver='adam'), batches of 64, {EPOCHS} epochs, alpha=0",
    "sklearn-default": "MLPClassifier(solver='adam'), scikit-learn's defaults",
}

_results: dict[str, dict] = {}


def _data():
    with xpopt.use_backend("cpu"):
        return tuple(xpopt.to_host(a) for a in load_digits())


def run_xpopt(X, Y):
    result = xpopt.train(
        X,
        Y,
        LAYERS,
        xpopt.Adam(LR),
        output="softmax",
        mini_batch_size=BATCH,
        num_epochs=EPOCHS,
        record_every=EPOCHS,
    )
    return result.parameters


def _sklearn(same: bool):
    from sklearn.neural_network import MLPClassifier  # noqa: PLC0415

    if same:
        return MLPClassifier(
            hidden_layer_sizes=(64,),
            solver="adam",
            learning_rate_init=LR,
            batch_size=BATCH,
            max_iter=EPOCHS,
            alpha=0.0,
            tol=0,
            n_iter_no_change=EPOCHS + 1,
            random_state=0,
        )
    return MLPClassifier(hidden_layer_sizes=(64,), solver="adam", random_state=0)


def run_sklearn(X, Y, same: bool):
    from sklearn.exceptions import ConvergenceWarning  # noqa: PLC0415

    clf = _sklearn(same)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X.T, Y[0])
    return clf


def _accuracies(contestant, fitted, data):
    X_train, Y_train, X_test, Y_test = data
    if contestant == "xpopt-adam":
        return (
            xpopt.accuracy(X_train, Y_train, fitted, output="softmax"),
            xpopt.accuracy(X_test, Y_test, fitted, output="softmax"),
        )
    return float(fitted.score(X_train.T, Y_train[0])), float(fitted.score(X_test.T, Y_test[0]))


def _runner(contestant, data):
    X_train, Y_train = data[0], data[1]
    if contestant == "xpopt-adam":
        return lambda: run_xpopt(X_train, Y_train)
    return lambda: run_sklearn(X_train, Y_train, same=contestant == "sklearn-same")


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    return _data()


@pytest.mark.parametrize("contestant", list(CONTESTANTS))
def test_digits(benchmark, digits, contestant):
    fitted = harness.measure(
        benchmark,
        _runner(contestant, digits),
        group=GROUP,
        contestant=CONTESTANTS[contestant],
        device="cpu",
        rounds=3,
        warmup=1,
        baseline=contestant == "sklearn-default",
        epochs=EPOCHS,
    )
    train_acc, test_acc = _accuracies(contestant, fitted, digits)
    benchmark.extra_info.update(train_accuracy=train_acc, test_accuracy=test_acc)
    _results[contestant] = {
        "train": train_acc,
        "test": test_acc,
        "seconds": harness.median_seconds(benchmark),
    }
    if not QUICK:
        assert test_acc > 0.9, f"{contestant} did not learn: held-out accuracy {test_acc}"


def table(results: dict) -> str:
    lines = [
        f"{'contestant':<16} {'train acc':>9} {'held-out acc':>12} {'time (s)':>9}  "
        f"{'time / xpopt':>12}",
        f"{'-' * 16} {'-' * 9} {'-' * 12} {'-' * 9}  {'-' * 12}",
    ]
    base = (results.get("xpopt-adam") or {}).get("seconds")
    for name, r in results.items():
        ratio = f"{r['seconds'] / base:12.2f}" if base and r["seconds"] else f"{'':>12}"
        secs = f"{r['seconds']:9.3f}" if r["seconds"] is not None else f"{'':>9}"
        lines.append(f"{name:<16} {r['train']:9.4f} {r['test']:12.4f} {secs}  {ratio}")
    return "\n".join(lines)


def test_digits_summary(digits, capsys):
    """The side-by-side table of this run (after the three contestants)."""
    if len(_results) < len(CONTESTANTS):
        pytest.skip("run with the three digits contestants (bench/test_bench_digits.py)")
    with capsys.disabled():
        print(f"\n{GROUP}\n{table(_results)}")


def main() -> None:
    """One measurement of each contestant (best of 3 after a warm-up), side by side."""
    data = _data()
    results = {}
    for contestant in CONTESTANTS:
        fn = _runner(contestant, data)
        fn()  # warm-up
        times, fitted = [], None
        for _ in range(1 if QUICK else 3):
            t0 = time.perf_counter()
            fitted = fn()
            times.append(time.perf_counter() - t0)
        train_acc, test_acc = _accuracies(contestant, fitted, data)
        results[contestant] = {
            "train": train_acc,
            "test": test_acc,
            "seconds": float(numpy.median(times)),
        }
    print(GROUP)
    for name, label in CONTESTANTS.items():
        print(f"  {name}: {label}")
    print(table(results))


if __name__ == "__main__":
    main()
