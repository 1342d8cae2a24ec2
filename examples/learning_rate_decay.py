"""Learning-rate decay, the notebook's section 7: decay every epoch, or at fixed intervals.

``update_lr`` divides the rate by ``1 + decay_rate * epoch``: at learning rate 0.1 it is
1e-4 by epoch 1000 and gradient descent stalls (cost 0.65, 65% accuracy after 5000 epochs).
``schedule_lr_decay`` divides it only every ``time_interval`` (1000) epochs: gradient
descent then reaches 94% accuracy, like Adam. ``model(..., decay=...)`` is the notebook's
call; ``train`` returns the learning rate of every epoch too.

    python examples/learning_rate_decay.py              # 5000 epochs, about 3 s
    python examples/learning_rate_decay.py --epochs 300 # XPOPT_EXAMPLE_EPOCHS works too
"""

import argparse
import os
import sys

import xpopt

parser = argparse.ArgumentParser(description="update_lr against schedule_lr_decay")
parser.add_argument("--epochs", type=int, default=int(os.environ.get("XPOPT_EXAMPLE_EPOCHS", 5000)))
args = parser.parse_args()

for epoch in (0, 1, 10, 999, 1000, 2500):
    print(
        f"epoch {epoch:4d}: update_lr {xpopt.update_lr(0.1, epoch, 1):.6f}, "
        f"schedule_lr_decay {xpopt.schedule_lr_decay(0.1, epoch, 1):.6f}"
    )

X, Y = xpopt.load_moons()


def final_cost(parameters) -> float:
    """The cost of the final parameters on all 300 examples (mean over the examples)."""
    AL, _ = xpopt.forward_propagation(X, parameters)
    return float(xpopt.compute_cost(AL, Y)) / X.shape[1]


final = {}
for decay in (xpopt.update_lr, xpopt.schedule_lr_decay):
    result = xpopt.train(
        X, Y, [2, 5, 2, 1], xpopt.GD(0.1), num_epochs=args.epochs, decay=decay, decay_rate=1
    )
    final[decay.__name__] = final_cost(result.parameters)
    acc = xpopt.accuracy(X, Y, result.parameters)
    print(
        f"gd, learning rate 0.1, {decay.__name__}: cost {final[decay.__name__]:.6f}, "
        f"accuracy {acc:.4f}, last learning rate {result.learning_rates[-1]:.6f}"
    )
    # the rate in force during epoch i is decay(0.1, i - 1, 1): the course updates it after
    # each epoch, so epoch 0 runs at learning_rate0
    want = [0.1] + [decay(0.1, i, 1) for i in range(args.epochs - 1)]
    if result.learning_rates != want:
        sys.exit(f"{decay.__name__}: the learning rates in force are not the schedule's")

# from a few epochs on, update_lr's rate is already too small to make progress
if args.epochs >= 10 and not final["schedule_lr_decay"] < final["update_lr"]:
    sys.exit(f"the fixed-interval schedule should end below the per-epoch decay: {final}")
print("ok")
