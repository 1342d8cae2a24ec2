"""xpopt.sweep: every stacked model is bit for bit the model that xpopt.train trains alone.

Each identity test trains a grid with :func:`xpopt.sweep`, then every model again with
:func:`xpopt.train` from the same settings, and compares the final parameters and the
recorded costs bit for bit (float64, CPU). Epochs are few so the file runs in seconds; the
record interval is small so that several costs are compared. Timings belong to
bench/test_bench_sweep.py, not here.
"""

from __future__ import annotations

import functools
import importlib

import numpy
import pytest

import xpopt
from xpopt import stacked, stacked_parts

sweep_module = importlib.import_module("xpopt.sweep")  # xpopt.sweep is the function

DIMS = [2, 5, 2, 1]
EPOCHS = 6
RECORD = 2


@pytest.fixture(scope="module")
def moons():
    X, Y = xpopt.load_moons()
    return xpopt.to_host(X), xpopt.to_host(Y)


def bits(a) -> numpy.ndarray:
    a = numpy.ascontiguousarray(xpopt.to_host(a))
    return a.view(numpy.int64 if a.dtype == numpy.float64 else numpy.int32)


def train_alone(X, Y, s: dict, defaults: dict, record_every: int | None = None):
    """The model of settings ``s`` (the axes) over ``defaults`` (the sweep's scalars), by train."""
    c = {**sweep_module.AXES, **defaults, **s}
    decay = sweep_module.resolve_decay(c["decay"])
    opt = xpopt.make_optimizer(
        c["optimizer"],
        c["learning_rate"],
        beta=c["beta"],
        beta1=c["beta1"],
        beta2=c["beta2"],
        epsilon=c["epsilon"],
    )
    init = xpopt.initialize_parameters(DIMS, seed=c["init_seed"], dtype=X.dtype)
    return xpopt.train(
        X,
        Y,
        init,
        opt,
        seed=c["seed"],
        mini_batch_size=c["mini_batch_size"],
        num_epochs=c["num_epochs"],
        decay=decay,
        decay_rate=c["decay_rate"],
        record_every=record_every or RECORD,
    )


def assert_identical(X, Y, result, defaults: dict) -> None:
    for k, s in enumerate(result.settings):
        alone = train_alone(X, Y, s, defaults, result.record_every)
        assert numpy.array_equal(bits(result.parameters[k].flat), bits(alone.parameters.flat)), (
            f"model {k} {s}: parameters differ from train's"
        )
        assert result.costs[k] == alone.costs, f"model {k} {s}: recorded costs differ"


def run(X, Y, **kwargs):
    kwargs.setdefault("num_epochs", EPOCHS)
    kwargs.setdefault("record_every", RECORD)
    return xpopt.sweep(X, Y, DIMS, **kwargs)


# ------------------------------------------------------------------- identity with train
@pytest.mark.parametrize("optimizer", ["gd", "momentum", "rmsprop", "adam"])
def test_every_optimizer_own_shuffles(moons, optimizer):
    X, Y = moons
    axes = dict(learning_rate=[0.001, 0.01, 0.05], seed=[10, 13], init_seed=[3, 7])
    result = run(X, Y, optimizer=optimizer, **axes)
    assert len(result) == 12
    assert_identical(X, Y, result, {"optimizer": optimizer, "num_epochs": EPOCHS})


@pytest.mark.parametrize("optimizer", ["gd", "rmsprop", "adam"])
def test_saturating_learning_rates(moons, optimizer):
    """Learning rates that saturate the sigmoid (outputs exactly 0 or 1, zero gradients,
    clipped costs), small batches: zeros and their signs must come out as train's."""
    X, Y = moons
    result = run(
        X,
        Y,
        optimizer=optimizer,
        learning_rate=[2.0, 10.0],
        mini_batch_size=[8, 64],
        num_epochs=15,
        record_every=5,
    )
    assert max(result.final_cost) > 0.7
    assert_identical(X, Y, result, {"optimizer": optimizer, "num_epochs": 15})


@pytest.mark.parametrize("optimizer", ["momentum", "rmsprop", "adam"])
def test_betas_and_epsilon_as_axes(moons, optimizer):
    X, Y = moons
    result = run(
        X,
        Y,
        optimizer=optimizer,
        learning_rate=0.02,
        beta=[0.5, 0.9],
        beta1=(0.8, 0.9),
        beta2=[0.99, 0.999],
        epsilon=[1e-8, 1e-4],
    )
    assert len(result) == 16
    assert_identical(
        X, Y, result, {"optimizer": optimizer, "learning_rate": 0.02, "num_epochs": EPOCHS}
    )


@pytest.mark.parametrize("shuffle", ["own", "shared"])
def test_one_seed_shares_a_permutation(moons, shuffle):
    X, Y = moons
    result = run(
        X, Y, optimizer=["adam", "momentum"], learning_rate=[0.003, 0.03], seed=5, shuffle=shuffle
    )
    assert_identical(X, Y, result, {"seed": 5, "num_epochs": EPOCHS})


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_decay_schedules(moons, optimizer):
    X, Y = moons
    every3 = functools.partial(xpopt.schedule_lr_decay, time_interval=3)
    result = run(
        X,
        Y,
        optimizer=optimizer,
        learning_rate=[0.01, 0.1],
        decay=[None, xpopt.update_lr, every3, "schedule_lr_decay"],
        decay_rate=[1, 0.3],
        seed=[1, 2],
    )
    assert len(result) == 32
    assert_identical(X, Y, result, {"optimizer": optimizer, "num_epochs": EPOCHS})


def test_one_model(moons):
    X, Y = moons
    result = run(X, Y)
    assert len(result) == 1 and result.settings == [{}]
    assert_identical(X, Y, result, {"num_epochs": EPOCHS})


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_one_model_stacked(moons, optimizer):
    """A sweep hands a block of one to train; the stacked path at K = 1 is train's too."""
    X, Y = moons
    opt = xpopt.make_optimizer(optimizer, 0.02)
    trainer = stacked.StackedTrainer(X, Y, DIMS, [opt], [12], [5], [(xpopt.update_lr, 0.2)], 50)
    history = trainer.run(EPOCHS, RECORD)
    alone = train_alone(
        X,
        Y,
        {
            "optimizer": optimizer,
            "learning_rate": 0.02,
            "seed": 12,
            "init_seed": 5,
            "decay": xpopt.update_lr,
            "decay_rate": 0.2,
            "mini_batch_size": 50,
        },
        {"num_epochs": EPOCHS},
    )
    assert numpy.array_equal(bits(trainer.parameters(0).flat), bits(alone.parameters.flat))
    assert history[:, 0].tolist() == alone.costs


@pytest.mark.parametrize("axis", ["learning_rate", "seed", "init_seed"])
def test_three_models(moons, axis):
    X, Y = moons
    values = {"learning_rate": [0.001, 0.01, 0.1], "seed": [0, 7, 8], "init_seed": [1, 2, 3]}
    result = run(X, Y, optimizer="adam", **{axis: values[axis]})
    assert len(result) == 3 and [s[axis] for s in result.settings] == values[axis]
    assert_identical(X, Y, result, {"optimizer": "adam", "num_epochs": EPOCHS})


def test_sixty_four_models(moons):
    X, Y = moons
    result = run(
        X, Y, learning_rate=list(numpy.geomspace(1e-4, 1e-1, 16)), seed=range(4), num_epochs=4
    )
    assert len(result) == 64
    assert_identical(X, Y, result, {"num_epochs": 4})


def test_groups_of_batch_sizes_and_epochs(moons):
    """Several batch sizes (batch GD, a ragged last batch, stochastic-ish) and epoch counts:
    one stacked group each, each model still train's."""
    X, Y = moons
    result = run(
        X,
        Y,
        optimizer="adam",
        mini_batch_size=[300, 64, 50, 512],
        num_epochs=[1, 5],
        learning_rate=[0.01, 0.001],
    )
    assert_identical(X, Y, result, {"optimizer": "adam"})
    assert [len(c) for c in result.costs] == [
        1 if s["num_epochs"] == 1 else 3 for s in result.settings
    ]


def test_blocks_change_nothing(moons):
    X, Y = moons
    kwargs = dict(learning_rate=[0.001, 0.01, 0.1], seed=[3, 4])
    whole = run(X, Y, block_size=None, **kwargs)
    for size in (4, 1):  # blocks of 4 and 2; blocks of one (train's)
        blocks = run(X, Y, block_size=size, **kwargs)
        for p, q in zip(whole.parameters, blocks.parameters, strict=True):
            assert numpy.array_equal(bits(p.flat), bits(q.flat))
        assert whole.costs == blocks.costs


def test_float32_to_rounding(moons):
    """float32 to rounding: rtol 1e-4 on parameters and costs after a few epochs.

    The update and the elementwise passes round exactly as train's (the same IEEE
    operations, the same float32 scalars); what may differ by an ulp between machines is
    a float32 library routine called on a stacked array instead of one model's: sgemm's
    kernel for the batched call and the SIMD exp/log over (K, m) instead of (1, m). A few
    ulps (float32 eps 1.2e-7) through a handful of epochs stays far below 1e-4. (On the
    machine this was written on, float32 was bit for bit as well.)
    """
    X, Y = (a.astype(numpy.float32) for a in moons)
    result = run(X, Y, optimizer=["adam", "momentum"], learning_rate=[0.01, 0.1], seed=[10, 11])
    for k, s in enumerate(result.settings):
        alone = train_alone(X, Y, s, {"num_epochs": EPOCHS})
        got = result.parameters[k].flat
        assert got.dtype == numpy.float32
        numpy.testing.assert_allclose(got, alone.parameters.flat, rtol=1e-4, atol=1e-6)
        numpy.testing.assert_allclose(result.costs[k], alone.costs, rtol=1e-4)


@pytest.mark.parametrize("dims", [[2, 1], [2, 3, 7, 1], [2, 8, 8, 8, 1]])
def test_other_networks(moons, dims):
    """Other shapes of network: where matmul on the stacks would not give dot's bits (with
    OpenBLAS 0.3.31 logistic regression's dZ @ X_batch.T, shape (1, 2), does not), the
    trainer's probe falls back to dot per model for that product; every model stays train's."""
    X, Y = moons
    result = xpopt.sweep(
        X,
        Y,
        dims,
        ["adam", "momentum"],
        learning_rate=[0.01, 0.1],
        seed=[10, 11],
        num_epochs=EPOCHS,
        record_every=RECORD,
    )
    for k, s in enumerate(result.settings):
        c = {**sweep_module.AXES, **s}
        alone = xpopt.train(
            X,
            Y,
            xpopt.initialize_parameters(dims),
            xpopt.make_optimizer(c["optimizer"], c["learning_rate"]),
            seed=c["seed"],
            num_epochs=EPOCHS,
            record_every=RECORD,
        )
        assert numpy.array_equal(bits(result.parameters[k].flat), bits(alone.parameters.flat)), s
        assert result.costs[k] == alone.costs, s


def test_the_probe_is_needed(moons, monkeypatch):
    """Where the probe found matmul unlike dot, matmul everywhere would leave train's bits."""
    X, Y = moons

    def trained():
        opts = [xpopt.make_optimizer("adam", lr) for lr in (0.01, 0.1)]
        trainer = stacked.StackedTrainer(X, Y, [2, 1], opts, [10, 11], [3, 3], [(None, 1)] * 2, 64)
        trainer.run(EPOCHS, RECORD)
        return trainer

    probed = trained()
    if all(probed.exact_products.values()):
        pytest.skip("this BLAS gives dot's bits with matmul for every product of [2, 1]")
    alone = xpopt.train(
        X,
        Y,
        xpopt.initialize_parameters([2, 1]),
        xpopt.make_optimizer("adam", 0.1),
        seed=11,
        num_epochs=EPOCHS,
    )
    assert numpy.array_equal(bits(probed.params[1]), bits(alone.parameters.flat))
    monkeypatch.setattr(stacked_parts, "_probe", lambda trainer, triples: {})
    forced = trained()  # matmul for every product
    assert not numpy.array_equal(bits(forced.params[1]), bits(alone.parameters.flat))


# ------------------------------------------------------------------------ the grid
def test_grid_is_the_cartesian_product_last_axis_fastest():
    axes, models = sweep_module.grid(learning_rate=[1, 2], seed=range(3), beta1=(0.8,))
    assert list(axes) == ["learning_rate", "beta1", "seed"]  # AXES order
    assert axes["seed"] == [0, 1, 2]
    assert len(models) == 6
    assert [(m["learning_rate"], m["beta1"], m["seed"]) for m in models] == [
        (1, 0.8, 0),
        (1, 0.8, 1),
        (1, 0.8, 2),
        (2, 0.8, 0),
        (2, 0.8, 1),
        (2, 0.8, 2),
    ]
    assert all(m["optimizer"] == "adam" and m["init_seed"] == 3 for m in models)
    axes, models = sweep_module.grid(learning_rate=numpy.array([0.1, 0.2]), beta=[0.9])
    assert axes == {"learning_rate": [0.1, 0.2], "beta": [0.9]}  # a length-1 list is an axis
    assert [type(m["learning_rate"]) for m in models] == [float, float]


def test_result_settings_parameters_and_table(moons):
    X, Y = moons
    result = run(X, Y, optimizer=["gd", "adam"], learning_rate=[0.01, 0.1])
    assert result.settings == [
        {"optimizer": o, "learning_rate": lr} for o in ("gd", "adam") for lr in (0.01, 0.1)
    ]
    assert list(result.parameters[0]) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert result.parameters[1]["W1"].shape == (5, 2)
    assert isinstance(result.parameters[1]["W1"], numpy.ndarray)
    for k, p in enumerate(result.parameters):
        assert result.accuracy[k] == xpopt.accuracy(X, Y, p)
        assert 0 < result.final_cost[k] < 1
    table = result.table()
    assert "optimizer" in table and "learning_rate" in table and "train accuracy" in table
    assert len(table.splitlines()) == 2 + 4
    assert result.table(markdown=True).startswith("| ")
    best = result.best(2, "accuracy")
    assert result.accuracy[best[0]] == max(result.accuracy)
    xs, ys, mean, std = result.summary("learning_rate", "optimizer", "final_cost")
    assert mean.shape == std.shape == (2, 2)
    assert mean[1, 1] == result.final_cost[3] and std[1, 1] == 0


def test_summary_spreads_over_other_axes(moons):
    X, Y = moons
    result = run(X, Y, learning_rate=[0.01, 0.1], seed=[1, 2, 3], num_epochs=2)
    with pytest.raises(ValueError, match="not an axis"):
        result.summary("learning_rate", "beta1")
    xs, ys, mean, std = result.summary("learning_rate", "seed")
    assert mean.shape == (3, 2)


def test_figures(moons, tmp_path):
    pytest.importorskip("matplotlib", reason="figures need matplotlib (the plot extra)")
    X, Y = moons
    result = run(X, Y, learning_rate=[0.01, 0.1], seed=[1, 2], num_epochs=2)
    result.plot_heatmap("learning_rate", "seed", path=tmp_path / "heat.png")
    result.plot_best(2, path=tmp_path / "best.png")
    assert (tmp_path / "heat.png").stat().st_size > 0
    assert (tmp_path / "best.png").stat().st_size > 0


# ----------------------------------------------------------- bad inputs: before any work
@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if a sweep reaches training (validation must come first)."""

    def refuse(*args, **kwargs):
        raise AssertionError("training started before the inputs were validated")

    monkeypatch.setattr(sweep_module, "StackedTrainer", refuse)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"learning_rate": []}, ValueError, "learning_rate is an empty axis"),
        ({"seed": range(0)}, ValueError, "seed is an empty axis"),
        ({"optimizer": ["adam", "adamw"]}, ValueError, "optimizer must be one of"),
        ({"shuffle": "mine"}, ValueError, "shuffle must be one of"),
        ({"shuffle": "shared", "seed": [1, 2]}, ValueError, "one seed"),
        ({"learning_rate": [0.1, -1.0]}, ValueError, "learning_rate must be"),
        ({"beta1": [0.9, 1.0]}, ValueError, "beta1 must be in"),
        ({"mini_batch_size": [64, 0]}, ValueError, "mini_batch_size must be"),
        ({"num_epochs": 2.5}, ValueError, "num_epochs must be"),
        ({"decay": "cosine"}, ValueError, "decay must be"),
        ({"record_every": 0}, ValueError, "record_every must be"),
        ({"momentum": 0.9}, TypeError, "unexpected keyword argument"),
    ],
)
def test_bad_inputs_raise_before_any_work(moons, no_training, kwargs, error, match):
    X, Y = moons
    optimizer = kwargs.pop("optimizer", "adam")
    with pytest.raises(error, match=match):
        xpopt.sweep(X, Y, DIMS, optimizer, **kwargs)


def test_bad_shapes_raise_before_any_work(moons, no_training):
    X, Y = moons
    with pytest.raises(ValueError, match="features"):
        xpopt.sweep(X, Y, [3, 5, 1])
    with pytest.raises(ValueError, match="one output unit"):
        xpopt.sweep(X, Y, [2, 5, 2])
    with pytest.raises(ValueError, match="layer_dims"):
        xpopt.sweep(X, Y, [2])
    with pytest.raises(TypeError, match="dtype"):
        xpopt.sweep(X, Y.astype(numpy.float32), DIMS)


# ------------------------------------------------------------------ the GPU's launches
@pytest.mark.parametrize("seed", [10, [10, 11]], ids=["one-seed", "own-seeds"])
def test_gpu_update_is_one_launch_per_step_whatever_k(moons, seed):
    """Under the CuPy stand-in: the stacked update is one ElementwiseKernel launch per step,
    a step's launches do not grow with the number of models, and an epoch copies to the
    device a fixed number of times (the permutations, the bias corrections), never per step."""
    try:
        from xpopt.testing import cupy_standin  # noqa: PLC0415
    except ImportError as exc:
        pytest.skip(f"needs xpopt.testing (the CuPy stand-in): {exc}")
    X, Y = moons
    name = "xpopt_sweep_adam"
    per_step = {}
    with cupy_standin() as cp:
        Xd, Yd = cp.asarray(X), cp.asarray(Y)
        for K in (2, 16):
            counts = {}
            for epochs in (1, 2):
                cp.counters.reset()
                xpopt.sweep(
                    Xd,
                    Yd,
                    DIMS,
                    "adam",
                    learning_rate=list(numpy.linspace(1e-3, 1e-2, K)),
                    seed=seed,
                    num_epochs=epochs,
                )
                counts[epochs] = (
                    cp.counters.launches,
                    cp.counters.kernel_launches[name],
                    cp.counters.h2d,
                    cp.counters.d2h,
                )
            steps = 5  # 300 examples in batches of 64: 5 steps per epoch
            assert counts[1][1] == steps and counts[2][1] == 2 * steps
            # what one more epoch costs: launches per step, copies per epoch (none per step)
            per_step[K] = (
                (counts[2][0] - counts[1][0]) / steps,
                counts[2][2] - counts[1][2],
                counts[2][3] - counts[1][3],
            )
    assert per_step[16] == per_step[2], per_step
    assert per_step[2][1] <= 3 and per_step[2][2] == 0, per_step


def test_stacked_update_specs_share_the_rules_text():
    from xpopt import kernels, sweep_kernels  # noqa: PLC0415

    for rule in (kernels.GD, kernels.MOMENTUM, kernels.RMSPROP, kernels.ADAM):
        spec = sweep_kernels.SWEEP_SPECS[rule.name]
        assert spec.operation == rule.operation and spec.options == rule.options
        assert spec.scalars == () and spec.name.startswith("xpopt_sweep_")
    assert stacked.TIME_SCALARS == ("bias1", "bias2")


@pytest.mark.parametrize("optimizers", [["adam", "gd"], ["momentum", "rmsprop"]])
def test_gpu_sweep_is_train_under_the_standin(moons, optimizers):
    """The CuPy path (stand-in: NumPy arithmetic behind CuPy's interface) gives train's bits."""
    try:
        from xpopt.testing import cupy_standin  # noqa: PLC0415
    except ImportError as exc:
        pytest.skip(f"needs xpopt.testing (the CuPy stand-in): {exc}")
    X, Y = moons
    with cupy_standin() as cp:
        result = xpopt.sweep(
            cp.asarray(X),
            cp.asarray(Y),
            DIMS,
            optimizers,
            learning_rate=[0.01, 0.1],
            seed=[10, 12],
            decay=[None, "update_lr"],
            num_epochs=EPOCHS,
            record_every=RECORD,
        )
        assert type(result.parameters[0].flat) is cp.ndarray
        got = [cp.asnumpy(p.flat) for p in result.parameters]
    for k, s in enumerate(result.settings):
        alone = train_alone(X, Y, s, {"num_epochs": EPOCHS})
        assert numpy.array_equal(bits(got[k]), bits(alone.parameters.flat)), s
        assert result.costs[k] == alone.costs, s


def test_a_stacked_run_continues_where_it_stopped(moons):
    """StackedTrainer.run(stop_after=...) cuts a run in pieces without changing a bit (the
    ground a checkpointed sweep stands on)."""
    X, Y = moons
    opts = [xpopt.make_optimizer("adam", lr) for lr in (0.01, 0.05)]

    def trainer():
        return stacked.StackedTrainer(
            X, Y, DIMS, opts, [10, 11], [3, 3], [(xpopt.update_lr, 0.5)] * 2, 64
        )

    whole = trainer()
    full = whole.run(EPOCHS, RECORD)
    pieces = trainer()
    seen = []
    pieces.run(EPOCHS, RECORD, stop_after=2, on_record=lambda i, t: seen.append((i, t.epoch)))
    assert seen == [(0, 1)]
    assert pieces.epoch == 2 and pieces.learning_rates() != [0.01, 0.05]
    pieces.run(EPOCHS, RECORD, stop_after=1)
    rest = pieces.run(EPOCHS, RECORD)
    assert numpy.array_equal(bits(whole.params), bits(pieces.params))
    assert numpy.array_equal(full, rest) and pieces.t == whole.t == EPOCHS * 5
    with pytest.raises(ValueError, match="keeps its num_epochs"):
        pieces.run(EPOCHS + 1, RECORD)


def test_progress_line_on_stderr(moons, capsys):
    X, Y = moons
    run(X, Y, optimizer=["adam", "gd"], learning_rate=[0.01, 0.1], progress=True)
    err = capsys.readouterr().err  # train's bar, one per block, with the block's best cost
    assert "adam x2, best:" in err and "gd x2, best:" in err and err.endswith("\n")
    assert err.count("6/6") == 2 and "cost 0." in err
    run(X, Y, progress=False)
    assert capsys.readouterr().err == ""


# -------------------------------------------------------------- checkpoint and resume
CHECKPOINTED = dict(
    optimizer=["adam", "momentum"],
    learning_rate=[0.01, 0.05, 0.1],
    seed=[10, 11],
    decay="update_lr",
    decay_rate=0.3,
    num_epochs=7,
    record_every=2,
    block_size=4,
)


def interrupt_after(monkeypatch, pieces: int) -> None:
    """StackedTrainer.run raises KeyboardInterrupt at its call number ``pieces + 1``."""
    real, calls = stacked.StackedTrainer.run, []

    def run_piece(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > pieces:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(stacked.StackedTrainer, "run", run_piece)


@pytest.mark.parametrize("pieces", [1, 4, 7])  # inside the first block, a later one, the last
def test_a_resumed_sweep_is_the_uninterrupted_one(moons, tmp_path, monkeypatch, pieces):
    X, Y = moons
    whole = xpopt.sweep(X, Y, DIMS, **CHECKPOINTED)
    path = tmp_path / "sweep.npz"
    interrupt_after(monkeypatch, pieces)
    with pytest.raises(KeyboardInterrupt):
        xpopt.sweep(X, Y, DIMS, **CHECKPOINTED, checkpoint=path, checkpoint_every=3)
    monkeypatch.undo()
    with numpy.load(path, allow_pickle=False) as saved:  # arrays and one JSON string only
        assert all(saved[name].dtype != object for name in saved.files)
    resumed = xpopt.sweep(
        X, Y, DIMS, **CHECKPOINTED, checkpoint=path, checkpoint_every=3, resume=True
    )
    for p, q in zip(whole.parameters, resumed.parameters, strict=True):
        assert numpy.array_equal(bits(p.flat), bits(q.flat))
    assert resumed.costs == whole.costs and resumed.settings == whole.settings
    assert resumed.final_cost == whole.final_cost and resumed.accuracy == whole.accuracy


def test_resuming_a_finished_sweep_trains_nothing(moons, tmp_path, monkeypatch):
    X, Y = moons
    path = tmp_path / "sweep.npz"
    first = xpopt.sweep(X, Y, DIMS, **CHECKPOINTED, checkpoint=path)
    monkeypatch.setattr(sweep_module, "StackedTrainer", None)  # any training would fail
    again = xpopt.sweep(X, Y, DIMS, **CHECKPOINTED, checkpoint=path, resume=True)
    assert again.costs == first.costs
    assert all(
        numpy.array_equal(bits(p.flat), bits(q.flat))
        for p, q in zip(first.parameters, again.parameters, strict=True)
    )


@pytest.mark.parametrize(
    "change, match",
    [
        ({"learning_rate": [0.01, 0.05, 0.2]}, "models"),
        ({"record_every": 3}, "record_every"),
        ({"block_size": 2}, "blocks"),
        ({"data": "other"}, "data"),
        ({"dtype": "float32"}, "dtype"),
    ],
)
def test_a_resume_under_another_sweep_is_refused(moons, tmp_path, no_training, change, match):
    X, Y = moons
    path = tmp_path / "sweep.npz"
    with pytest.MonkeyPatch.context() as mp:  # write the file without the fixture's refusal
        mp.setattr(sweep_module, "StackedTrainer", stacked.StackedTrainer)
        xpopt.sweep(X, Y, DIMS, **CHECKPOINTED, checkpoint=path)
    kwargs = {**CHECKPOINTED, **{k: v for k, v in change.items() if k not in ("data", "dtype")}}
    if "data" in change:
        X = X.copy()
        X[0, 0] += 1.0
    if "dtype" in change:
        X, Y = X.astype(numpy.float32), Y.astype(numpy.float32)
    with pytest.raises(xpopt.checkpoint.CheckpointError, match=f"another sweep.*{match}"):
        xpopt.sweep(X, Y, DIMS, **kwargs, checkpoint=path, resume=True)


def test_a_corrupt_or_foreign_checkpoint_is_refused(moons, tmp_path, no_training):
    X, Y = moons
    path = tmp_path / "sweep.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(xpopt.checkpoint.CheckpointError, match="not a readable"):
        xpopt.sweep(X, Y, DIMS, **CHECKPOINTED, checkpoint=path, resume=True)
    numpy.savez(path, meta=numpy.array('{"format": "xpopt-checkpoint-3"}'))
    with pytest.raises(xpopt.checkpoint.CheckpointError, match="not an xpopt-sweep"):
        xpopt.sweep(X, Y, DIMS, **CHECKPOINTED, checkpoint=path, resume=True)
    with pytest.raises(xpopt.checkpoint.CheckpointError, match="directory"):
        xpopt.sweep(X, Y, DIMS, **CHECKPOINTED, checkpoint=tmp_path)


def test_a_resumed_sweep_under_the_cupy_standin(moons, tmp_path, monkeypatch):
    """The GPU path: the checkpoint reads the device buffers once per save, the resumed
    sweep's parameters are CuPy arrays again, with the uninterrupted sweep's bits."""
    try:
        from xpopt.testing import cupy_standin  # noqa: PLC0415
    except ImportError as exc:
        pytest.skip(f"needs xpopt.testing (the CuPy stand-in): {exc}")
    X, Y = moons
    path = tmp_path / "sweep.npz"
    with cupy_standin() as cp:
        Xd, Yd = cp.asarray(X), cp.asarray(Y)
        whole = xpopt.sweep(Xd, Yd, DIMS, **CHECKPOINTED)
        interrupt_after(monkeypatch, 2)
        with pytest.raises(KeyboardInterrupt):
            xpopt.sweep(Xd, Yd, DIMS, **CHECKPOINTED, checkpoint=path, checkpoint_every=3)
        monkeypatch.undo()
        resumed = xpopt.sweep(
            Xd, Yd, DIMS, **CHECKPOINTED, checkpoint=path, checkpoint_every=3, resume=True
        )
        assert all(type(p.flat) is cp.ndarray for p in resumed.parameters)
        for p, q in zip(whole.parameters, resumed.parameters, strict=True):
            assert numpy.array_equal(bits(cp.asnumpy(p.flat)), bits(cp.asnumpy(q.flat)))
    assert resumed.costs == whole.costs
