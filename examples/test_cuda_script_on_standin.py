"""Test a ``backend="cuda"`` script in CI without a GPU: xpopt's CuPy stand-in.

``xpopt.testing.cupy_standin()`` puts a NumPy-backed module named ``cupy`` in place for a
``with`` block: the script's CUDA path runs for real (device arrays, the fused update
kernels compiled for the host, CuPy's refusals and float32 flush-to-zero), and
``cp.counting()`` tells what it would cost a GPU: kernel launches by name, allocations,
host/device copies and synchronisations. It proves what runs and what it costs, not how
fast a GPU is. It needs a C++ compiler (g++) for the kernels.

Run it as a script, or collect it with pytest:

    python examples/test_cuda_script_on_standin.py
    python -m pytest examples/test_cuda_script_on_standin.py

The script under test is ``train_on_the_backend`` of examples/gpu_or_cpu.py.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # gpu_or_cpu.py, beside this file

from gpu_or_cpu import train_on_the_backend  # noqa: E402

import xpopt  # noqa: E402
from xpopt.testing import cupy_standin, is_standin  # noqa: E402

EPOCHS = 3
STEPS = EPOCHS * 5  # 300 examples in mini-batches of 64: 4 full batches and one of 44


def test_the_cuda_path_runs_on_the_device_with_one_launch_per_step():
    with cupy_standin() as cp:
        assert xpopt.set_backend("cuda", strict=True) == "cuda"  # the stand-in is a "GPU"
        with cp.counting() as counts:
            result = train_on_the_backend(EPOCHS)
        assert isinstance(result.parameters.flat, cp.ndarray)  # trained on the device
        # the whole model's Adam update is one fused kernel launch per step
        assert counts.kernel_launches["xpopt_adam"] == STEPS, counts.kernel_launches
        # no device-to-host read per step: only a few per call (the recorded costs at the end)
        assert counts.d2h < STEPS, counts.d2h


def test_reads_and_syncs_do_not_grow_with_the_epochs():
    with cupy_standin() as cp:
        xpopt.set_backend("cuda", strict=True)
        with cp.counting() as short:
            train_on_the_backend(2)
        with cp.counting() as long:
            train_on_the_backend(6)
        assert (long.d2h, long.syncs) == (short.d2h, short.syncs)
        # one host-to-device copy per epoch: the shuffle's permutation, drawn on the host
        assert long.h2d - short.h2d == 4


def test_nothing_of_the_standin_outlives_the_block():
    before = xpopt.backend.requested()  # the backend asked for outside: set_backend or the env
    with cupy_standin():
        xpopt.set_backend("cuda", strict=True)
    assert not is_standin(sys.modules.get("cupy"))  # the real CuPy again, or none
    assert xpopt.backend.requested() == before


if __name__ == "__main__":
    for name, test in list(globals().items()):
        if name.startswith("test_") and callable(test):
            test()
            print(f"{name}: passed")
    print("ok")
