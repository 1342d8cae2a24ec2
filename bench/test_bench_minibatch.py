"""Group 1: the mini-batch partitioner on the seed's shape (X 12288 x 4096 float32, batch 64).

The work is one column gather of X and Y by the course's seeded permutation (the batches
are views). A plain copy of the same bytes on the same device is the reference: a gather
cannot beat a copy, and on the GPU the target is to stay within 2x of it.
"""

from __future__ import annotations

import numpy
import pytest

import course_code
import harness
import xpopt

N_X, M, MB = (64, 256, 64) if harness.QUICK else (12288, 4096, 64)
SEED = 11  # the course's first epoch
GROUP = f"mini-batch partition: X {N_X}x{M} float32, Y 1x{M}, batch {MB}"

CONTESTANTS = {
    "course-numpy": "course random_mini_batches (NumPy)",
    "xpopt-numpy": "xpopt.random_mini_batches (NumPy)",
    "xpopt-batcher-numpy": "xpopt.MiniBatcher.epoch, reused buffers (NumPy)",
    "copy-numpy": "copy of the same bytes (NumPy, reference)",
    "xpopt-cupy": "xpopt.random_mini_batches (CuPy)",
    "xpopt-batcher-cupy": "xpopt.MiniBatcher.epoch, reused buffers (CuPy)",
    "copy-cupy": "device-to-device copy of the same bytes (CuPy, reference)",
}


@pytest.fixture(scope="module")
def host_data():
    """X (n_x, m) float32 and 0/1 labels Y (1, m), fixed by a seed."""
    rng = numpy.random.default_rng(0)
    X = rng.standard_normal((N_X, M), dtype=numpy.float32)
    Y = (rng.random((1, M)) > 0.5).astype(numpy.float32)
    return X, Y


@pytest.mark.parametrize("contestant", list(CONTESTANTS))
def test_partition(benchmark, request, host_data, contestant):
    X, Y = host_data
    device = "gpu" if contestant.endswith("cupy") else "cpu"
    if device == "gpu":
        cupy = harness.require_cupy()
        X, Y = cupy.asarray(X), cupy.asarray(Y)
    harness.need_copy_bandwidth(request, device)
    sync = harness.sync_for(contestant)
    xp = xpopt.get_xp(X)

    if contestant == "course-numpy":

        def fn():
            return course_code.random_mini_batches(X, Y, MB, SEED)
    elif contestant.startswith("xpopt-batcher"):
        batcher = xpopt.MiniBatcher(X, Y, MB)

        def fn():
            batches = list(batcher.epoch(SEED))
            sync()
            return batches
    elif contestant.startswith("xpopt"):

        def fn():
            batches = xpopt.random_mini_batches(X, Y, MB, SEED)
            sync()
            return batches
    else:  # the reference: the same bytes, copied once into buffers that already exist
        dst_x, dst_y = xp.empty_like(X), xp.empty_like(Y)

        def fn():
            xp.copyto(dst_x, X)
            xp.copyto(dst_y, Y)
            sync()
            return dst_x, dst_y

    # The full-size gather takes ~0.1-1 s on the 2-core CPU; GPU calls take microseconds.
    rounds, warmup, iterations = (30, 3, 5) if device == "gpu" else (5, 1, 1)
    result = harness.measure(
        benchmark,
        fn,
        group=GROUP,
        contestant=CONTESTANTS[contestant],
        device=device,
        rounds=rounds,
        warmup=warmup,
        iterations=iterations,
        baseline=contestant == "course-numpy",
        reference="copy" if contestant.startswith("copy") else None,
    )
    harness.add_bandwidth(benchmark, 2 * (X.nbytes + Y.nbytes), device)
    if not contestant.startswith("copy"):  # a correctness guard outside timing, not a figure
        assert len(result) == -(-M // MB)
        assert result[0][0].shape == (N_X, min(MB, M))
