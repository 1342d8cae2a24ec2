"""Python operators of the stand-in array: each one is a counted ufunc launch, as in CuPy."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy

from . import _ufuncs as U

if TYPE_CHECKING:
    from ._module import _State


def _binary(np_ufunc, reflected=False, inplace=False):
    def op(self, other):
        cls = type(self)
        if not (
            isinstance(other, (cls, numpy.ndarray, numpy.generic)) or type(other) in U._PY_SCALARS
        ):
            return NotImplemented  # let Python try the other operand (or raise TypeError)
        args = (other, self) if reflected else (self, other)
        return U.call_ufunc(cls, np_ufunc, args, out=self if inplace else None)

    return op


def _unary(np_ufunc):
    def op(self):
        return U.call_ufunc(type(self), np_ufunc, (self,))

    return op


class Operators:
    """``+ - * / // % ** @``, comparisons, bitwise and unary operators, in-place variants.

    An operand that is neither a stand-in array, a host array nor a scalar gives
    ``NotImplemented`` (Python then tries the other side); host arrays reach the ufunc,
    which refuses them as CuPy does.
    """

    __slots__ = ()
    _state: ClassVar[_State]  # the array class of each stand-in module sets it

    __add__, __radd__, __iadd__ = (
        _binary(numpy.add),
        _binary(numpy.add, True),
        _binary(numpy.add, inplace=True),
    )
    __sub__, __rsub__, __isub__ = (
        _binary(numpy.subtract),
        _binary(numpy.subtract, True),
        _binary(numpy.subtract, inplace=True),
    )
    __mul__, __rmul__, __imul__ = (
        _binary(numpy.multiply),
        _binary(numpy.multiply, True),
        _binary(numpy.multiply, inplace=True),
    )
    __truediv__, __rtruediv__, __itruediv__ = (
        _binary(numpy.true_divide),
        _binary(numpy.true_divide, True),
        _binary(numpy.true_divide, inplace=True),
    )
    __floordiv__, __rfloordiv__, __ifloordiv__ = (
        _binary(numpy.floor_divide),
        _binary(numpy.floor_divide, True),
        _binary(numpy.floor_divide, inplace=True),
    )
    __mod__, __rmod__ = _binary(numpy.remainder), _binary(numpy.remainder, True)
    __pow__, __rpow__, __ipow__ = (
        _binary(numpy.power),
        _binary(numpy.power, True),
        _binary(numpy.power, inplace=True),
    )
    __and__, __or__, __xor__ = (
        _binary(numpy.bitwise_and),
        _binary(numpy.bitwise_or),
        _binary(numpy.bitwise_xor),
    )
    __lt__, __le__, __gt__, __ge__ = (
        _binary(numpy.less),
        _binary(numpy.less_equal),
        _binary(numpy.greater),
        _binary(numpy.greater_equal),
    )
    __eq__, __ne__ = _binary(numpy.equal), _binary(numpy.not_equal)
    __neg__, __pos__, __abs__, __invert__ = (
        _unary(numpy.negative),
        _unary(numpy.positive),
        _unary(numpy.absolute),
        _unary(numpy.invert),
    )

    def __matmul__(self, other):
        return self._state.module.matmul(self, other)

    def __rmatmul__(self, other):
        return self._state.module.matmul(other, self)
