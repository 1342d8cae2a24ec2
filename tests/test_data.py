"""The moons data set and the mini-batch partitioner against the course and scikit-learn."""

from __future__ import annotations

import importlib

import numpy
import pytest

import course_reference as ref
import xpopt
from conftest import IN_CI
from xpopt import MiniBatcher, iterate_minibatches, load_moons, random_mini_batches, to_host

try:  # optional here, so that the GPU machines (no hypothesis there) still run the rest
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None


def need(module: str, why: str):
    """Import a test-only dependency; skip without it (fail under CI=true, which installs it)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if IN_CI:
            pytest.fail(f"{module} is required under CI=true ({why})")
        pytest.skip(f"{module} is not installed ({why})")


def global_state_fingerprint():
    """The global NumPy random state, comparable with ==."""
    name, keys, pos, has_gauss, cached = numpy.random.get_state()
    return name, keys.tobytes(), pos, has_gauss, cached


# --------------------------------------------------------------------------- moons
def test_load_moons_is_the_course_dataset_bit_for_bit():
    """load_moons() equals the course's load_dataset() exactly (Y as floats)."""
    need("sklearn", "the course's load_dataset() calls make_moons")
    X_ref, Y_ref = ref.load_dataset()
    X, Y = load_moons()
    assert isinstance(X, numpy.ndarray) and X.shape == (2, 300) and X.dtype == numpy.float64
    assert Y.shape == (1, 300) and Y.dtype == numpy.float64
    assert numpy.array_equal(X, X_ref)
    assert numpy.array_equal(Y, Y_ref.astype(numpy.float64))
    assert set(numpy.unique(Y)) == {0.0, 1.0}


@pytest.mark.parametrize(
    "n_samples, noise, seed",
    [
        (300, 0.2, 3),
        (100, 0.05, 0),
        (301, 0.3, 7),
        (2, 0.1, 1),
        (57, None, 12),
        (1000, 0.0, 2**31),
    ],
)
def test_load_moons_matches_sklearn_global_seed(n_samples, noise, seed):
    """load_moons(n, noise, seed) = seed(seed); make_moons(n, noise=noise), transposed."""
    sklearn_datasets = need("sklearn.datasets", "make_moons is the oracle of load_moons")
    numpy.random.seed(seed)
    X_sk, y_sk = sklearn_datasets.make_moons(n_samples=n_samples, noise=noise)
    X, Y = load_moons(n_samples, noise, seed)
    assert numpy.array_equal(X, X_sk.T)
    assert numpy.array_equal(Y, y_sk.reshape(1, n_samples).astype(numpy.float64))


def test_load_moons_leaves_global_random_state_alone():
    """The global NumPy stream is neither read nor advanced."""
    numpy.random.seed(1234)
    before = global_state_fingerprint()
    load_moons()
    load_moons(50, 0.1, seed=9)
    assert global_state_fingerprint() == before


def test_load_moons_float32():
    """dtype=float32 gives float32 arrays equal to the float64 data cast."""
    X64, Y64 = load_moons()
    X32, Y32 = load_moons(dtype=numpy.float32)
    assert X32.dtype == numpy.float32 and Y32.dtype == numpy.float32
    assert numpy.array_equal(X32, X64.astype(numpy.float32))
    assert numpy.array_equal(Y32, Y64.astype(numpy.float32))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_samples": 1}, ValueError, "n_samples"),
        ({"n_samples": 10.0}, ValueError, "n_samples"),
        ({"noise": -0.1}, ValueError, "noise"),
        ({"dtype": numpy.int64}, TypeError, "dtype"),
    ],
)
def test_load_moons_rejects_bad_arguments(kwargs, error, match):
    """Bad sizes, negative noise and integer dtypes are refused with the argument's name."""
    with pytest.raises(error, match=match):
        load_moons(**kwargs)


def test_load_moons_on_gpu_backend(xp):
    """Under the GPU backend the same data are born as CuPy arrays."""
    with xpopt.use_backend("cuda" if xp is not numpy else "cpu"):
        X, Y = load_moons()
    assert isinstance(X, xp.ndarray) and isinstance(Y, xp.ndarray)
    with xpopt.use_backend("cpu"):
        X_cpu, Y_cpu = load_moons()  # equal to scikit-learn's: test above
    assert numpy.array_equal(to_host(X), X_cpu) and numpy.array_equal(to_host(Y), Y_cpu)


# ------------------------------------------------------------- random_mini_batches
def data(n_x: int, m: int, y_dtype=numpy.float64, seed: int = 0):
    rng = numpy.random.RandomState(seed + 1000)
    X = rng.randn(n_x, m)
    Y = (rng.rand(1, m) > 0.5).astype(y_dtype)
    return X, Y


def assert_same_batches(ours, theirs):
    assert len(ours) == len(theirs)
    for (bx, by), (rx, ry) in zip(ours, theirs, strict=True):
        bx, by = to_host(bx), to_host(by)
        assert bx.dtype == rx.dtype and by.dtype == ry.dtype
        assert numpy.array_equal(bx, rx) and bx.shape == rx.shape
        assert numpy.array_equal(by, ry) and by.shape == ry.shape


CASES = [  # (m, mini_batch_size): divisible, not divisible, 1, m, > m
    (148, 64),
    (128, 64),
    (300, 64),
    (300, 1),
    (300, 300),
    (300, 1000),
    (7, 3),
    (7, 7),
    (1, 1),
    (1, 64),
    (10, 9),
    (65, 64),
    (63, 64),
    (12, 5),
]


@pytest.mark.parametrize("m, mbs", CASES)
@pytest.mark.parametrize("seed", [0, 1, 11, 4999])
def test_random_mini_batches_equals_course(m, mbs, seed):
    """Same batches, in the same order, as the course's random_mini_batches."""
    X, Y = data(3, m, seed=seed)
    assert_same_batches(
        random_mini_batches(X, Y, mbs, seed), ref.random_mini_batches(X, Y, mbs, seed)
    )


def test_random_mini_batches_course_test_case_shape():
    """The notebook's test case shape (12288 x 148, boolean labels), narrowed to 1024 rows."""
    rng = numpy.random.RandomState(1)
    X = rng.randn(1024, 148)
    Y = rng.randn(1, 148) < 0.5
    ours = random_mini_batches(X, Y, 64, seed=0)
    assert [b[0].shape for b in ours] == [(1024, 64), (1024, 64), (1024, 20)]
    assert_same_batches(ours, ref.random_mini_batches(X, Y, 64, 0))


def test_random_mini_batches_default_arguments():
    """Defaults are mini_batch_size=64, seed=0, as in the course."""
    X, Y = load_moons()
    assert_same_batches(random_mini_batches(X, Y), ref.random_mini_batches(X, Y))


def test_random_mini_batches_accepts_numpy_integer_size():
    """A NumPy integer batch size behaves like the Python int."""
    X, Y = data(2, 50)
    assert_same_batches(
        random_mini_batches(X, Y, numpy.int64(16), 3), ref.random_mini_batches(X, Y, 16, 3)
    )


def test_random_mini_batches_leaves_global_random_state_alone():
    """Shuffling uses a local RandomState: the global stream is unchanged."""
    X, Y = data(2, 100)
    numpy.random.seed(77)
    before = global_state_fingerprint()
    random_mini_batches(X, Y, 16, seed=5)
    list(iterate_minibatches(X, Y, 16, seed=6))
    assert global_state_fingerprint() == before


def test_random_mini_batches_float32_keeps_dtype():
    """float32 inputs give float32 batches (the course's permutation)."""
    X, Y = data(2, 30)
    X32, Y32 = X.astype(numpy.float32), Y.astype(numpy.float32)
    assert_same_batches(
        random_mini_batches(X32, Y32, 8, 2), ref.random_mini_batches(X32, Y32, 8, 2)
    )


@pytest.mark.parametrize(
    "X, Y, mbs, error, match",
    [
        (numpy.zeros((2, 5)), numpy.zeros((1, 4)), 2, ValueError, "different numbers of examples"),
        (numpy.zeros((2, 0)), numpy.zeros((1, 0)), 2, ValueError, "no examples"),
        (
            numpy.zeros((2, 5)),
            numpy.zeros((1, 5)),
            0,
            (ValueError, TypeError),
            "mini_batch_size.*positive integer",
        ),
        (
            numpy.zeros((2, 5)),
            numpy.zeros((1, 5)),
            -1,
            (ValueError, TypeError),
            "mini_batch_size.*positive integer",
        ),
        (
            numpy.zeros((2, 5)),
            numpy.zeros((1, 5)),
            2.5,
            (ValueError, TypeError),
            "mini_batch_size.*integer",
        ),
        (
            numpy.zeros((2, 5)),
            numpy.zeros((1, 5)),
            True,
            (ValueError, TypeError),
            "mini_batch_size.*integer",
        ),
        (numpy.zeros(5), numpy.zeros((1, 5)), 2, ValueError, "X must be 2-D"),
        (numpy.zeros((2, 5)), numpy.zeros(5), 2, ValueError, "Y must be 2-D"),
        ([[1.0, 2.0]], numpy.zeros((1, 2)), 1, TypeError, "list"),
    ],
    ids=["mismatch", "empty", "size0", "size-1", "size2.5", "sizeTrue", "X1d", "Y1d", "Xlist"],
)
def test_random_mini_batches_rejects_bad_input(X, Y, mbs, error, match):
    """Bad input is refused with a message that says what is wrong."""
    for fn in (random_mini_batches, lambda *a: MiniBatcher(*a)):
        with pytest.raises(error, match=match):
            fn(X, Y, mbs)


# ------------------------------------------------------------- properties
def check_partitioner_properties(m, mbs, seed, drop_last):
    """Each example once per epoch, X/Y paired, batch sizes as specified, iterator = list."""
    ids = numpy.arange(m, dtype=numpy.float64)
    X = numpy.vstack([ids, -ids, ids * 0.5])  # row 0 carries the column id
    Y = (2 * ids + 1).reshape(1, m)  # a label computable from the id
    batches = random_mini_batches(X, Y, mbs, seed)

    seen = numpy.concatenate([bx[0] for bx, _ in batches])
    assert sorted(seen.tolist()) == ids.tolist()  # every example exactly once
    assert numpy.array_equal(seen, numpy.random.RandomState(seed).permutation(m))
    for bx, by in batches:
        assert numpy.array_equal(by[0], 2 * bx[0] + 1)  # X and Y stay paired
        assert numpy.array_equal(bx[1], -bx[0]) and numpy.array_equal(bx[2], bx[0] * 0.5)
    sizes = [bx.shape[1] for bx, _ in batches]
    assert sizes == [mbs] * (m // mbs) + ([m % mbs] if m % mbs else [])

    # the iterator yields the same batches (copied: they are views of a reused buffer)
    iterated = [(bx.copy(), by.copy()) for bx, by in iterate_minibatches(X, Y, mbs, seed)]
    assert_same_batches(iterated, batches)

    # drop_last: only the full batches, the same ones
    dropped = [
        (bx.copy(), by.copy())
        for bx, by in iterate_minibatches(X, Y, mbs, seed, drop_last=drop_last)
    ]
    expect = batches[: m // mbs] if drop_last else batches
    assert_same_batches(dropped, expect)
    batcher = MiniBatcher(X, Y, mbs, drop_last=drop_last)
    assert len(batcher) == len(expect)
    assert_same_batches([(bx.copy(), by.copy()) for bx, by in batcher.epoch(seed)], expect)


if given is not None:

    @settings(max_examples=50, deadline=None)
    @given(
        m=st.integers(1, 60),
        mbs=st.integers(1, 70),
        seed=st.integers(0, 2**32 - 1),
        drop_last=st.booleans(),
    )
    def test_partitioner_properties(m, mbs, seed, drop_last):
        """Property test (hypothesis): see check_partitioner_properties."""
        check_partitioner_properties(m, mbs, seed, drop_last)
else:  # pragma: no cover

    def test_partitioner_properties():
        """Property test: needs hypothesis."""
        need("hypothesis", "the partitioner's property test")


@pytest.mark.parametrize(
    "m, mbs, seed, drop_last", [(1, 1, 0, False), (60, 7, 5, True), (13, 70, 2**32 - 1, True)]
)
def test_partitioner_properties_fixed_cases(m, mbs, seed, drop_last):
    """The same properties on fixed edge cases (m=1, m%mbs != 0 with drop_last, mbs > m)."""
    check_partitioner_properties(m, mbs, seed, drop_last)


def test_minibatcher_epochs_match_course_seeds():
    """One MiniBatcher over many epochs (seeds 11, 12, ...) gives the course's batches each time."""
    X, Y = data(4, 150)
    batcher = MiniBatcher(X, Y, 64)
    for seed in range(11, 16):
        got = [(bx.copy(), by.copy()) for bx, by in batcher.epoch(seed)]
        assert_same_batches(got, ref.random_mini_batches(X, Y, 64, seed))


def test_drop_last_when_divisible_and_smaller_than_batch():
    """drop_last drops nothing when m % size == 0, and everything when m < size."""
    X, Y = data(2, 12)
    assert len(list(iterate_minibatches(X, Y, 4, 0, drop_last=True))) == 3
    assert list(iterate_minibatches(X, Y, 20, 0, drop_last=True)) == []
    assert len(MiniBatcher(X, Y, 20, drop_last=True)) == 0


# ------------------------------------------------------------------- GPU parity
@pytest.mark.parametrize("m, mbs, seed", [(300, 64, 11), (148, 64, 0), (10, 1, 3), (17, 100, 5)])
def test_random_mini_batches_gpu_parity(xp, m, mbs, seed):
    """On CuPy arrays: CuPy batches, identical to the NumPy (course) batches."""
    X, Y = data(3, m, seed=seed)
    batches = random_mini_batches(xp.asarray(X), xp.asarray(Y), mbs, seed)
    for bx, by in batches:
        assert isinstance(bx, xp.ndarray) and isinstance(by, xp.ndarray)
    assert_same_batches(batches, ref.random_mini_batches(X, Y, mbs, seed))
    it = [
        (to_host(bx).copy(), to_host(by).copy())
        for bx, by in iterate_minibatches(xp.asarray(X), xp.asarray(Y), mbs, seed)
    ]
    assert_same_batches(it, ref.random_mini_batches(X, Y, mbs, seed))


# ------------------------------------------------------------- check_dataset (issue 11)
def _bad_datasets():
    """(id, X, Y, error type, message pattern): each fault the training data can have."""
    X, Y = data(2, 20)
    big = X.astype(X.dtype.newbyteorder(">"))
    nan_X = X.copy()
    nan_X[1, 7] = numpy.nan
    inf_X = X.copy()
    inf_X[0, 3] = -numpy.inf
    nan_Y = Y.copy()
    nan_Y[0, 4] = numpy.nan
    two = Y.copy()
    two[0, 5] = 2.0
    neg = Y.copy()
    neg[0, 0] = -1.0
    half = Y.copy()
    half[0, 9] = 0.5
    return [
        ("labels-2", X, two, ValueError, r"labels.*\{0, 1\}"),
        ("labels-minus1", X, neg, ValueError, r"labels.*\{0, 1\}"),
        ("labels-0.5", X, half, ValueError, r"labels.*\{0, 1\}"),
        ("nan-X", nan_X, Y, ValueError, r"X.*not finite"),
        ("inf-X", inf_X, Y, ValueError, r"X.*not finite"),
        ("nan-Y", X, nan_Y, ValueError, r"Y.*not finite|labels"),
        ("int-X", (X * 10).astype(numpy.int64), Y, TypeError, r"X.*floating"),
        ("complex-X", X.astype(numpy.complex128), Y, TypeError, r"X.*floating"),
        ("big-endian-X", big, Y, TypeError, r"X.*byte order"),
        ("big-endian-Y", X, Y.astype(Y.dtype.newbyteorder(">")), TypeError, r"Y.*byte order"),
        ("Y-two-rows", X, numpy.vstack([Y, Y]), ValueError, r"Y must have shape \(1, 20\)"),
        ("columns", X, Y[:, :19], ValueError, "different numbers of examples"),
        ("X-1d", X[0], Y, ValueError, "X must be 2-D"),
        ("X-list", X.tolist(), Y, TypeError, "X must be an array"),
        ("empty", X[:, :0], Y[:, :0], ValueError, "no examples"),
    ]


BAD_DATASETS = _bad_datasets()


@pytest.mark.parametrize(
    "X, Y, error, match", [b[1:] for b in BAD_DATASETS], ids=[b[0] for b in BAD_DATASETS]
)
def test_check_dataset_refuses_bad_training_data(X, Y, error, match):
    """Labels outside {0, 1}, NaN or inf, integer or complex X, foreign byte order, wrong
    shapes: a clear error naming the fault (not a negative cross-entropy or a NaN run)."""
    from xpopt.data import check_dataset

    with pytest.raises(error, match=match):
        check_dataset(X, Y)


@pytest.mark.parametrize("y_dtype", [numpy.float64, numpy.float32, numpy.int64, numpy.bool_])
def test_check_dataset_accepts_the_course_data(y_dtype):
    """The moons, and labels as the course's load_dataset gives them (integers) or as
    floats or booleans, pass and come back as they are (no copy)."""
    from xpopt.data import check_dataset

    X, Y = load_moons()
    Yc = Y.astype(y_dtype)
    assert check_dataset(X, Yc) == 300
    X32, Y32 = load_moons(dtype=numpy.float32)
    assert check_dataset(X32, Y32) == 300


def test_check_dataset_on_the_device(xp):
    """On CuPy the same verdicts (computed on the device)."""
    from xpopt.data import check_dataset

    X, Y = data(2, 20)
    assert check_dataset(xp.asarray(X), xp.asarray(Y)) == 20
    bad = Y.copy()
    bad[0, 1] = 3.0
    with pytest.raises(ValueError, match="labels"):
        check_dataset(xp.asarray(X), xp.asarray(bad))
    X[0, 0] = numpy.nan
    with pytest.raises(ValueError, match="not finite"):
        check_dataset(xp.asarray(X), xp.asarray(Y))


@pytest.mark.parametrize("noise", [float("nan"), float("inf"), -float("inf"), numpy.float64("nan")])
def test_load_moons_refuses_non_finite_noise(noise):
    """load_moons(noise=nan) used to return NaN data: now ValueError naming noise."""
    with pytest.raises(ValueError, match="noise"):
        load_moons(noise=noise)


def test_check_dataset_reads_one_boolean_from_the_device():
    """On CuPy the checks reduce on the device and read back ONE boolean (one byte),
    counted by xpopt.testing's CuPy stand-in; no copy of the data to the host."""
    testing = pytest.importorskip("xpopt.testing")
    from xpopt.data import check_dataset

    X, Y = load_moons()
    with testing.cupy_standin() as cp:
        Xd, Yd = cp.asarray(X), cp.asarray(Y)
        before = cp.counters.snapshot()
        assert check_dataset(Xd, Yd) == 300
        spent = cp.counters.snapshot() - before
    assert spent.d2h == 1 and spent.d2h_bytes == 1 and spent.h2d == 0


def test_shuffles_in_threads_are_each_the_seeds_own():
    """The shuffle's RandomState is kept per thread and seeded at each use: partitions drawn
    in several threads at once are the ones drawn alone."""
    from concurrent.futures import ThreadPoolExecutor

    X, Y = to_host(load_moons()[0]), to_host(load_moons()[1])
    alone = {seed: random_mini_batches(X, Y, 64, seed)[0][0].copy() for seed in range(40)}
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = dict(
            pool.map(
                lambda s: (s, random_mini_batches(X, Y, 64, s)[0][0].copy()), list(range(40)) * 3
            )
        )
    for seed, batch in got.items():
        assert numpy.array_equal(batch, alone[seed])
