"""Testing helpers for xpopt: a strict CuPy stand-in that runs the GPU code path on the CPU.

``with xpopt.testing.cupy_standin() as cp:`` puts a NumPy-backed module named ``cupy`` into
``sys.modules``. xpopt then takes its CuPy path (``set_backend("cuda")``, ``to_device``,
fused ``ElementwiseKernel`` updates) and the test sees what that path would cost a GPU.

Where CuPy is stricter than NumPy, the stand-in is as strict:

- ``numpy.asarray(x)`` of a device array raises ``TypeError`` (use ``x.get()``); NumPy
  ufuncs and functions on device arrays run on the device only when every array argument
  is a device array; host arrays given to a device function raise
  ``TypeError: Unsupported type <class 'numpy.ndarray'>``; ``out=`` must be a device array;
- ``ElementwiseKernel`` deduces its types as CuPy 14 does (see ``_kernel``) and its
  ``operation`` text is compiled as C++ (g++ on PATH) and run on the host with CuPy's
  binding, so the kernel's arithmetic really runs;
- float32 work flushes subnormals to zero, as CuPy's kernels do (they are compiled with
  ``-ftz=true``): ufuncs, reductions, casts to float32 and ElementwiseKernels run with the
  FTZ and DAZ bits of MXCSR set (x86-64 only; elsewhere float32 work raises
  NotImplementedError). float64 is not flushed. Matrix products (cuBLAS on a GPU) are not
  flushed either.

``cp.counters`` counts launches (by name in ``kernel_launches``), allocations, host<->device
copies and synchronisations; ``cp.counting()`` gives the deltas of a block.

Limits: the stand-in proves what runs and what it costs in launches, transfers, syncs and
allocations, not how fast a GPU is. CUDA's ``exp``/``log``/``pow`` differ from NumPy's by
a few ulps, and CuPy's reductions add in another order than NumPy's, so float results of
a real GPU can differ in the last bits where the stand-in equals NumPy exactly. Compilers
fold some operations (``x * 1``) both on the GPU and on the host, so such an operation
flushes nothing. One device; no streams or events beyond counting synchronisations; no
memory pool (each new array is one counted allocation); ``ElementwiseKernel`` text using
CUDA-only functions (``__expf``, ``atomicAdd``, ...) does not compile on the host.
"""

from ._counters import Counters, CounterSnapshot
from ._hostbuild import flush_subnormals, ftz_mode
from ._module import cupy_standin, is_standin

__all__ = [
    "CounterSnapshot",
    "Counters",
    "cupy_standin",
    "flush_subnormals",
    "ftz_mode",
    "is_standin",
]
