"""Software prefetch for the compiled kernels: ask for a factor row before it is needed.

An SGD update reads and writes the rows ``P[u]`` and ``Q[i]`` of a rating
drawn at random; in a block of the block sweep (a few thousand users and a
few hundred items) most first touches of a row miss the core's caches. The
update's loads depend on nothing earlier, but each update is long enough
that the processor's out-of-order window holds only a few of them, so the
misses of later ratings wait for the earlier updates to finish. Asking for
the rows of the rating :data:`DISTANCE` updates ahead (the ratings are
already gathered into a buffer, so their ids are known) overlaps those
misses with the arithmetic: measured on 9M ratings, rank 32, one thread,
32 x 32 blocks, a sweep took 0.214 s without it and 0.195, 0.178 and 0.175 s
with distances 4, 16 and 32. In whole fits (ten sweeps; alternating runs, a
noisy machine) 8 was slower than 16 (median 2.46 against 2.36 s) and 24, 32
and 48 were within the noise of each other (2.32-2.38 s; 64: 2.51 s), so the
default is 32 (``benchmarks/scale.py`` times the whole fit).

:func:`prefetch_row` issues LLVM's ``llvm.prefetch`` (a ``prefetchw`` or
``prefetcht0`` instruction on x86-64) for every 64-byte line of a row: a
hint only, which never faults and never changes a result.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["CACHE_LINE", "DISTANCE", "prefetch_row"]

CACHE_LINE = 64
"""Bytes of a cache line (x86-64, most ARM cores)."""

DISTANCE = 32
"""How many updates ahead the rows are asked for (see the module docstring)."""


@intrinsic
def _prefetch(typingctx, array, row, col):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """``llvm.prefetch`` of the address of ``array[row, col]``: for writing, kept in all cache levels."""
    if not (isinstance(array, types.Array) and array.ndim == 2):
        return None
    sig = types.void(array, row, col)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        array_type, row_type, col_type = signature.args
        view = context.make_array(array_type)(context, builder, args[0])
        indices = [
            context.cast(builder, args[1], row_type, types.intp),
            context.cast(builder, args[2], col_type, types.intp),
        ]
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, indices, wraparound=False)
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        function_type = ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32])
        function = cgutils.get_or_insert_function(builder.module, function_type, "llvm.prefetch.p0i8")
        # rw = 1 (the row will be written), locality = 3 (keep it in every level), cache type = 1 (data)
        builder.call(
            function, [builder.bitcast(pointer, byte_pointer), ir.Constant(i32, 1), ir.Constant(i32, 3), ir.Constant(i32, 1)]
        )
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, nogil=True, inline="always")
def prefetch_row(array: np.ndarray, row: int) -> None:  # pragma: no cover - compiled
    """Ask for every cache line of ``array[row]`` (a C-contiguous 2-D array), for writing.

    One address every 64 bytes from the row's start (a row that does not
    start on a line boundary may leave its last line to the hardware
    prefetcher, which follows the access to the line before it; asking for
    it too measured slower). A hint: it changes no value, and nothing waits
    for it. The row must exist (``0 <= row < array.shape[0]``, ``shape[1] >= 1``).
    """
    n = array.shape[1]
    step = max(1, CACHE_LINE // array.itemsize)
    _prefetch(array, row, 0)
    col = step
    while col < n:  # (a plain loop, so that the compiler does not unroll it into many copies)
        _prefetch(array, row, col)
        col += step
