"""The course's experiment in a few lines: gd, momentum and Adam on the moons.

The notebook's section 6 (``model()`` at learning rate 0.0007, mini-batches of 64, 5000
epochs) with xpopt's course-named functions, on the CPU in float64: the accuracies are the
notebook's (71.7% for gradient descent and momentum, 94.3% for Adam).

    python examples/course_experiment.py              # 5000 epochs, about 3 s
    python examples/course_experiment.py --epochs 300 # a quick run (XPOPT_EXAMPLE_EPOCHS too)

Exits with status 1 if a result is not what the course gives.
"""

import argparse
import os
import sys

import xpopt

parser = argparse.ArgumentParser(description="gd, momentum and Adam on the moons")
parser.add_argument("--epochs", type=int, default=int(os.environ.get("XPOPT_EXAMPLE_EPOCHS", 5000)))
args = parser.parse_args()

X, Y = xpopt.load_moons()  # the course's load_dataset(): (2, 300) and (1, 300)
layers_dims = [X.shape[0], 5, 2, 1]

accuracy = {}
for optimizer in ("gd", "momentum", "adam"):
    print(f"--- {optimizer}")
    parameters = xpopt.model(
        X, Y, layers_dims, optimizer, learning_rate=0.0007, num_epochs=args.epochs, print_cost=True
    )
    accuracy[optimizer] = xpopt.accuracy(X, Y, parameters)
    print(f"Accuracy: {accuracy[optimizer]:.4f}")

if args.epochs == 5000:
    # the notebook's summary: 71.7% for gd and momentum, 94.3% for Adam (the same bits)
    expected = {"gd": 215 / 300, "momentum": 215 / 300, "adam": 283 / 300}
    wrong = {k: (accuracy[k], v) for k, v in expected.items() if abs(accuracy[k] - v) > 1e-12}
    if wrong:
        sys.exit(f"accuracies differ from the course's (got, expected): {wrong}")
elif not all(0.0 <= a <= 1.0 for a in accuracy.values()):
    sys.exit(f"accuracies out of range: {accuracy}")
print("ok")
