"""One script for the GPU and the CPU: ask for CUDA, run wherever it can.

``xpopt.set_backend("cuda")`` puts new arrays (the data set, the initial weights) on the GPU
when CuPy finds one; without a GPU it warns once (``BackendFallbackWarning``, with the
reason and the fix) and everything runs on the CPU. The training code is the same: it runs
where its arrays are. ``XPOPT_STRICT=1`` (or ``set_backend("cuda", strict=True)``) makes a
missing GPU an error instead.

    python examples/gpu_or_cpu.py                 # 2000 epochs of Adam, float32
    python examples/gpu_or_cpu.py --epochs 100    # XPOPT_EXAMPLE_EPOCHS works too

``train_on_the_backend`` is the part a test can call: examples/test_cuda_script_on_standin.py
runs it under xpopt's CuPy stand-in and asserts what it costs a GPU.
"""

import argparse
import os
import sys

import numpy

import xpopt


def train_on_the_backend(epochs: int) -> xpopt.TrainResult:
    """Load the moons where the backend puts new arrays, and train Adam on them there."""
    X, Y = xpopt.load_moons(dtype=numpy.float32)  # float32: what a GPU is fast at
    return xpopt.train(X, Y, [2, 5, 2, 1], xpopt.Adam(0.0007), num_epochs=epochs)


def main() -> int:
    parser = argparse.ArgumentParser(description="Adam on the GPU, or on the CPU without one")
    parser.add_argument(
        "--epochs", type=int, default=int(os.environ.get("XPOPT_EXAMPLE_EPOCHS", 2000))
    )
    args = parser.parse_args()

    backend = xpopt.set_backend("cuda")  # "cuda" if usable, else "cpu" (after one warning)
    print(f"backend: {backend}")
    result = train_on_the_backend(args.epochs)

    module = xpopt.get_xp(result.parameters.flat).__name__  # "cupy" or "numpy"
    print(f"trained on {module}: {result.epochs} epochs in {result.wall_time:.2f} s")
    if module != ("cupy" if backend == "cuda" else "numpy"):
        print(f"the parameters are {module} arrays under backend {backend!r}", file=sys.stderr)
        return 1
    X, Y = xpopt.load_moons(dtype=numpy.float32)  # the same data, on the same backend
    AL, _ = xpopt.forward_propagation(X, result.parameters)
    final = float(xpopt.compute_cost(AL, Y)) / X.shape[1]  # one read from the device
    print(f"cost of the final parameters: {final:.6f} (epoch 0: {result.costs[0]:.6f})")
    if not final < result.costs[0]:
        print("training did not lower the cost", file=sys.stderr)
        return 1
    host = xpopt.to_host(result.parameters)  # NumPy copies, wherever training ran
    print("W1 on the host:", type(host["W1"]).__name__, host["W1"].shape)
    return 0


if __name__ == "__main__":
    sys.exit(main())
