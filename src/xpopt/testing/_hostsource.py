"""C++ for the host from an ``ElementwiseKernel``'s text, with CuPy's binding.

As CuPy's generated kernel does, each non-raw parameter is a reference to its element at
index ``i`` (inputs ``const T&``, outputs ``T&``), ``raw`` parameters are the whole array
(``x[k]``, ``x.size()``), scalars are values, and ``i`` and ``_ind.size()`` exist. The
function sets flush-to-zero and denormals-are-zero (MXCSR) itself for float32 launches,
as CuPy's ``-ftz=true`` does on the GPU, and restores them before returning.
"""

from __future__ import annotations

import numpy

_CTYPES = {
    "float32": "float",
    "float64": "double",
    "int8": "signed char",
    "int16": "short",
    "int32": "int",
    "int64": "long long",
    "uint8": "unsigned char",
    "uint16": "unsigned short",
    "uint32": "unsigned int",
    "uint64": "unsigned long long",
    "bool": "bool",
}


def c_type(dtype) -> str:
    name = numpy.dtype(dtype).name
    if name not in _CTYPES:
        raise NotImplementedError(f"the stand-in's host kernels do not support {name}")
    return _CTYPES[name]


_HOST_PRELUDE = r"""
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <type_traits>
#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define XPOPT_X86 1
#endif
// CUDA's math functions live in the global namespace, overloaded for float and double.
using std::sqrt; using std::exp; using std::log; using std::abs; using std::fabs;
using std::pow; using std::fmin; using std::fmax; using std::floor; using std::ceil;
using std::tanh; using std::sinh; using std::cosh; using std::sin; using std::cos;
using std::tan; using std::isnan; using std::isinf; using std::isfinite; using std::log1p;
using std::expm1; using std::log2; using std::log10; using std::exp2; using std::copysign;
using std::round; using std::rint; using std::trunc; using std::hypot; using std::cbrt;
using std::signbit; using std::atan2; using std::erf;
// CUDA's min/max take mixed arguments; on floats they are fminf/fmaxf (NaN-ignoring).
template <class C> inline C xpopt_min2(C a, C b) { return b < a ? b : a; }
template <class C> inline C xpopt_max2(C a, C b) { return a < b ? b : a; }
inline float xpopt_min2(float a, float b) { return std::fmin(a, b); }
inline double xpopt_min2(double a, double b) { return std::fmin(a, b); }
inline float xpopt_max2(float a, float b) { return std::fmax(a, b); }
inline double xpopt_max2(double a, double b) { return std::fmax(a, b); }
template <class A, class B> inline typename std::common_type<A, B>::type min(A a, B b) {
  typedef typename std::common_type<A, B>::type C; return xpopt_min2(C(a), C(b)); }
template <class A, class B> inline typename std::common_type<A, B>::type max(A a, B b) {
  typedef typename std::common_type<A, B>::type C; return xpopt_max2(C(a), C(b)); }
template <class V> struct XpoptRaw {  // a `raw` parameter: the whole array, x[k], x.size()
  V* p; std::ptrdiff_t n;
  V& operator[](std::ptrdiff_t k) const { return p[k]; }
  std::ptrdiff_t size() const { return n; }
};
struct XpoptIndexer {  // `_ind`: _ind.size() elements, _ind.get() the current one
  std::ptrdiff_t n, k;
  std::ptrdiff_t size() const { return n; }
  std::ptrdiff_t get() const { return k; }
};
"""


def host_source(params, kinds, type_map, operation, preamble) -> str:
    """C++ for one launch configuration: ``kinds[k]`` is "array" or "scalar" per parameter."""
    lines = [_HOST_PRELUDE]
    lines += [f"typedef {c_type(dt)} {letter};" for letter, dt in type_map.items()]
    lines += [
        preamble,
        "",
        'extern "C" void xpopt_standin_kernel(void* const* xpopt_args, std::ptrdiff_t xpopt_n,',
        "                                     int xpopt_ftz, const std::ptrdiff_t* xpopt_sizes) {",
        "#ifdef XPOPT_X86",
        "  const unsigned xpopt_mxcsr = _mm_getcsr();",
        "  if (xpopt_ftz) _mm_setcsr(xpopt_mxcsr | 0x8040u);  // FTZ + DAZ, as -ftz=true",
        "#endif",
    ]
    per_element = []
    for k, (p, kind) in enumerate(zip(params, kinds, strict=True)):
        const = "const " if p.is_const else ""
        if kind == "scalar":
            lines.append(f"  const {p.ctype} {p.name} = *(const {p.ctype}*)xpopt_args[{k}];")
        elif p.raw:
            lines.append(
                f"  {const}XpoptRaw<{p.ctype}> {p.name} = "
                f"{{({p.ctype}*)xpopt_args[{k}], xpopt_sizes[{k}]}};"
            )
        else:
            lines.append(f"  {p.ctype}* _raw_{p.name} = ({p.ctype}*)xpopt_args[{k}];")
            per_element.append(f"    {const}{p.ctype} &{p.name} = _raw_{p.name}[i];")
    lines += [
        "  XpoptIndexer _ind; _ind.n = xpopt_n;",
        "  for (std::ptrdiff_t i = 0; i < xpopt_n; ++i) {",
        "    _ind.k = i;",
        *per_element,
        operation + ";",
        "  }",
        "#ifdef XPOPT_X86",
        "  _mm_setcsr(xpopt_mxcsr);",
        "#endif",
        "}",
        "",
    ]
    return "\n".join(lines)
