"""The GPU code path, run end to end: training, the CLI and the optimizers on CuPy arrays.

Every test here is marked ``gpu``: it runs on real CuPy where a GPU is usable and on the
strict stand-in of :mod:`xpopt.testing` elsewhere (``--cupy``). The stand-in refuses what
CuPy refuses (implicit conversion to NumPy, NumPy arrays mixed into device calls, scalars
of the wrong type in a kernel launch) and counts what a GPU pays for; the ``standin``
fixture's tests assert those counts:

- one launch of the optimizer's kernel per training step, for the whole model;
- no device-to-host read and no synchronisation per step or per epoch unless the loop
  prints, shows progress or checkpoints;
- one host-to-device copy per epoch (the shuffle's permutation, drawn on the host as the
  course draws it) and no allocation per step.
"""

from __future__ import annotations

import numpy
import pytest

import xpopt
from conftest import assert_close
from xpopt import kernels

pytestmark = pytest.mark.gpu

LAYERS = [2, 5, 2, 1]
OPTIMIZERS = ("gd", "momentum", "rmsprop", "adam")
KERNEL_OF = {
    "gd": "xpopt_gd",
    "momentum": "xpopt_momentum",
    "rmsprop": "xpopt_rmsprop",
    "adam": "xpopt_adam",
}


def _moons(cupy, dtype=numpy.float64):
    X, Y = xpopt.load_moons(dtype=dtype)  # born on the host (the default backend)
    return X, Y, cupy.asarray(X), cupy.asarray(Y)


def _train(X, Y, name="adam", **kw):
    kw.setdefault("num_epochs", 3)
    lr = kw.pop("learning_rate", 0.01)
    return xpopt.train(X, Y, LAYERS, xpopt.make_optimizer(name, lr), **kw)


def _assert_same_run(got, want):
    assert_close(got.parameters.flat, want.parameters.flat, exact=True)
    assert got.costs == want.costs
    assert got.learning_rates == want.learning_rates
    assert got.state.t == want.state.t


# ------------------------------------------------------------------------ training
def test_cuda_backend_with_numpy_data_trains_where_the_data_is(cupy):
    """The configured backend decides where NEW arrays are born, not where given data
    trains: NumPy data under backend "cuda" trains on the host and equals a CPU run (it
    used to reach ``numpy.asarray`` of a device array and raise)."""
    X, Y, _, _ = _moons(cupy)
    want = _train(X, Y)
    assert xpopt.set_backend("cuda", strict=True) == "cuda"
    got = _train(X, Y)
    assert isinstance(got.parameters.flat, numpy.ndarray)
    _assert_same_run(got, want)


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("decay", [None, xpopt.update_lr], ids=["constant", "update_lr"])
def test_training_on_the_device_equals_numpy_bit_for_bit(cupy, name, decay):
    """float64: the whole loop (shuffle, passes, cost, fused update) gives the NumPy bits."""
    X, Y, dX, dY = _moons(cupy)
    kw = dict(num_epochs=4, decay=decay, decay_rate=0.5, record_every=2)
    want = _train(X, Y, name, **kw)
    got = _train(dX, dY, name, **kw)
    assert isinstance(got.parameters.flat, cupy.ndarray)
    _assert_same_run(got, want)


def test_float32_training_on_the_device_equals_numpy(cupy):
    """float32 on the course's data: no subnormal arises, so flushing them (as every CuPy
    kernel does) changes nothing and the runs agree bit for bit."""
    X, Y, dX, dY = _moons(cupy, numpy.float32)
    want = _train(X, Y, num_epochs=5)
    got = _train(dX, dY, num_epochs=5)
    assert got.parameters.flat.dtype == numpy.float32
    _assert_same_run(got, want)


def test_unfused_training_on_the_device_is_close_to_numpy(cupy):
    """``fused=False`` runs the NumPy twin's ufuncs on the device: one launch each."""
    X, Y, dX, dY = _moons(cupy)
    want = xpopt.train(X, Y, LAYERS, xpopt.Adam(0.01, fused=False), num_epochs=3)
    got = xpopt.train(dX, dY, LAYERS, xpopt.Adam(0.01, fused=False), num_epochs=3)
    assert_close(got.parameters.flat, want.parameters.flat)


def test_saturated_float32_sigmoid_costs_a_finite_amount_on_the_device(cupy):
    """``compute_cost`` clips ``a`` away from 0 and 1. On the GPU every float32 subnormal is
    flushed to zero, so a clip at the least subnormal would clip to 0 there and the cost
    of a saturated output would be inf (and NaN where the label is 0)."""
    AL = numpy.array([[0.0, 1.0, 0.0, 1.0]], dtype=numpy.float32)
    Y = numpy.array([[1.0, 0.0, 0.0, 1.0]], dtype=numpy.float32)
    got = float(xpopt.compute_cost(cupy.asarray(AL), cupy.asarray(Y)))
    want = float(xpopt.compute_cost(AL, Y))
    f32 = numpy.finfo(numpy.float32)
    wrong_one = -numpy.log(1 - (1 - float(f32.epsneg)))  # a = 1 clipped below 1, label 0
    # a = 0 clipped to the least positive value there is: normal on the GPU, subnormal here
    assert got == pytest.approx(-numpy.log(float(f32.tiny)) + wrong_one, rel=1e-6)
    assert want == pytest.approx(-numpy.log(float(f32.smallest_subnormal)) + wrong_one, rel=1e-6)


# --------------------------------------------------------------------- what it costs
def _counted_run(standin, dX, dY, **kw):
    with standin.counting() as counts:
        result = _train(dX, dY, **kw)
    return counts, result


def test_one_fused_launch_per_step_for_the_whole_model(standin):
    X, Y, dX, dY = _moons(standin)
    for name in OPTIMIZERS:
        counts, _ = _counted_run(standin, dX, dY, name=name, num_epochs=3)
        steps = 3 * -(-300 // 64)
        launched = counts.kernel_launches
        assert launched.get(KERNEL_OF[name], 0) == steps, (name, launched)
        others = {k for k in KERNEL_OF.values() if k != KERNEL_OF[name]}
        assert not any(launched.get(k, 0) for k in others), launched


def test_the_kernel_is_built_with_fmad_false(standin):
    """The kernel CuPy would compile gets ``--fmad=false``: without it NVRTC contracts
    ``a * b + c`` into FMA and the GPU no longer rounds as NumPy does."""
    X, Y, dX, dY = _moons(standin)
    _counted_run(standin, dX, dY, num_epochs=1)
    built = [k for k in standin.kernels_built if k.name == "xpopt_adam"]
    assert built, "training on the device built no Adam kernel"
    for kernel in built:
        assert "--fmad=false" in tuple(kernel.options)
        assert kernel.operation == kernels.ADAM.operation and kernel.no_return


def test_no_device_reads_or_syncs_per_epoch(standin):
    """Reading a device value (``float(cost)``, ``.get()``, ``numpy.asarray``) and
    synchronising happen a fixed number of times per call, never per step or epoch."""
    X, Y, dX, dY = _moons(standin)
    short, _ = _counted_run(standin, dX, dY, num_epochs=2)
    long, _ = _counted_run(standin, dX, dY, num_epochs=7)
    assert long.d2h == short.d2h, (short.d2h, long.d2h)
    assert long.syncs == short.syncs, (short.syncs, long.syncs)
    # one host-to-device copy per epoch: the permutation, drawn on the host like the course
    assert long.h2d - short.h2d == 5


def test_printing_reads_one_value_per_printed_epoch(standin):
    """The counters see the reads a loop does make: printing reads the cost once."""
    X, Y, dX, dY = _moons(standin)
    quiet, _ = _counted_run(standin, dX, dY, num_epochs=4)
    loud, _ = _counted_run(standin, dX, dY, num_epochs=4, print_cost=True, print_every=1)
    assert loud.d2h - quiet.d2h == 4


def test_no_allocation_per_step(standin):
    """Halving the mini-batch doubles the steps but not the allocations: a step writes into
    buffers allocated once per call."""
    X, Y, dX, dY = _moons(standin)
    few, _ = _counted_run(standin, dX, dY, num_epochs=3, mini_batch_size=100)
    many, _ = _counted_run(standin, dX, dY, num_epochs=3, mini_batch_size=50)
    more_epochs, _ = _counted_run(standin, dX, dY, num_epochs=6, mini_batch_size=100)
    assert many.allocations == few.allocations, (few.allocations, many.allocations)
    per_epoch = (more_epochs.allocations - few.allocations) / 3
    # the epoch's cost (clip, logs, batch sums) allocates its temporaries once an epoch
    assert per_epoch <= 16, per_epoch


def test_packed_parameters_update_in_one_launch_plain_dicts_in_one_per_array(standin):
    X, Y, dX, dY = _moons(standin)
    params = xpopt.to_device(xpopt.initialize_parameters(LAYERS), "cuda")
    opt = xpopt.Adam(0.01)
    state = opt.init(params)
    grads = params.zeros_like(prefix="d")
    with standin.counting() as counts:
        opt.update(params, grads, state)
    assert counts.kernel_launches["xpopt_adam"] == 1
    plain = {k: v.copy() for k, v in params.items()}
    v, s = xpopt.initialize_adam(plain)
    plain_grads = {"d" + k: standin.zeros_like(a) for k, a in plain.items()}
    with standin.counting() as counts:
        xpopt.update_parameters_with_adam(plain, plain_grads, v, s, 1)
    assert counts.kernel_launches["xpopt_adam"] == len(plain)


# ------------------------------------------------------------------------------ CLI
def test_cli_compare_on_the_device_prints_the_cpu_figures(cupy, capsys):
    from xpopt import cli

    args = ["compare", "--epochs", "200", "--no-plots", "--optimizers", "gd,adam"]
    assert cli.main(args + ["--backend", "cpu"]) == 0
    cpu = capsys.readouterr().out
    assert cli.main(args + ["--backend", "cuda", "--strict"]) == 0
    gpu = capsys.readouterr().out
    assert "backend cuda (" in gpu

    def rows(text):  # optimizer, accuracy and cost columns; the time column differs
        return [
            line.split()[:3]
            for line in text.splitlines()
            if line.split() and line.split()[0] in ("gd", "adam")
        ]

    assert rows(gpu) == rows(cpu) and len(rows(cpu)) == 2


def test_cli_train_on_the_device_checkpoints_and_resumes(cupy, tmp_path, capsys):
    from xpopt import cli

    ckpt = tmp_path / "run.npz"
    base = [
        "train",
        "--optimizer",
        "adam",
        "--backend",
        "cuda",
        "--strict",
        "--checkpoint",
        str(ckpt),
    ]
    assert cli.main(base + ["--epochs", "300"]) == 0
    straight = capsys.readouterr().out
    ckpt.unlink()
    assert cli.main(base + ["--epochs", "120"]) == 0  # a run cut short, then extended
    capsys.readouterr()
    saved = xpopt.checkpoint.load(ckpt)
    assert saved.epoch == 120
    assert cli.main(base + ["--epochs", "300", "--resume"]) == 0
    resumed = capsys.readouterr().out

    def final(text):
        return [line for line in text.splitlines() if line.startswith("final cost")]

    assert final(resumed) == final(straight) and final(straight)
