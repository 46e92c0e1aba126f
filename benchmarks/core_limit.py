"""What one core allows for one SGD update at rank ``k`` in float32: the physical-limit line of ``scale.py``.

The update (factorise's ``BiasedMF``; LibMF's is the same without the two
biases), for a rating ``r`` of user ``u`` and item ``i``::

    e   = r - (mu + b_u + b_i + p_u . q_i)
    p_u = p_u + lr * (e * q_i - reg * p_u)
    q_i = q_i + lr * (e * p_u - reg * q_i)          (both from the old rows)

**Compute bound.** With ``W`` float32 lanes per vector register (16 where
``/proc/cpuinfo`` lists ``avx512f``, 8 with ``avx2``, else 4: SSE) and
``V = ceil(k / W)`` vectors per row (2 at ``k = 32`` with AVX-512), one
update needs at least

* loads: ``2 V`` (``p_u`` and ``q_i`` once each; the updates reuse the registers);
* floating-point vector operations: ``V`` FMAs for the dot product, ``2 log2 W``
  for its horizontal sum (a shuffle and an add per halving), and ``4 V`` for
  the two row updates (per row and vector: a multiply by ``1 - lr * reg`` and an
  FMA of ``lr * e`` times the other row);
* stores: ``2 V`` (the two rows).

The scalar work (the rating's indices and value, the error, the biases) is
left out, so the bound is optimistic. One core is assumed to issue per cycle
2 vector floating-point operations (two FMA units: Intel since Haswell and
Skylake-SP's Gold/Platinum parts, AMD since Zen 2), 2 vector loads and 1
vector store (:data:`FP_PER_CYCLE`, :data:`LOADS_PER_CYCLE`,
:data:`STORES_PER_CYCLE`; newer cores can store two). Cycles per update =
``max(FP / 2, loads / 2, stores / 1)``; updates per second = clock / cycles,
the clock being the largest ``cpu MHz`` in ``/proc/cpuinfo`` (on a virtual
machine that is the nominal clock; turbo may run faster). At ``k = 32`` with
AVX-512: FP ``2 + 8 + 8 = 18`` operations, 9 cycles; loads 4, 2 cycles;
stores 4, 4 cycles: the FP units bind at 9 cycles, 289M updates/s at 2.6 GHz.

**Memory bound.** In a random visiting order the two rows of every update come
from wherever ``P`` and ``Q`` live, and once they do not fit in the core's own
caches every update reads and writes back two rows of ``4 k`` bytes and reads
the rating's 12 bytes (user, item, value): ``16 k + 12`` bytes (524 at
``k = 32``). The bandwidth is measured by a tiny timed loop: an in-place
multiply (numpy, one thread) over a float32 buffer as large as ``P`` and ``Q``
together, so that it is served by the same level of the memory hierarchy;
bytes read plus written over seconds, best of several passes. Streaming is
kinder than random 128-byte rows (the prefetcher helps it), so this bound too is
optimistic.

The limit for a random order is the smaller of the two bounds; the compute
bound is the ceiling for any order (an order that keeps the rows in L1, as
LibMF's sorted blocks keep the user's row, moves the memory bound away).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FP_PER_CYCLE",
    "LOADS_PER_CYCLE",
    "STORES_PER_CYCLE",
    "CoreLimit",
    "clock_hz",
    "core_limit",
    "cpu_flags",
    "measure_bandwidth",
    "update_counts",
    "vector_lanes",
]

#: Vector floating-point operations (FMA, multiply, add, shuffle) one core issues per cycle.
FP_PER_CYCLE = 2
#: Vector loads per cycle.
LOADS_PER_CYCLE = 2
#: Vector stores per cycle.
STORES_PER_CYCLE = 1

#: Bytes of one rating read in a sweep: int32 user, int32 item, float32 value.
RATING_BYTES = 12


def cpu_flags() -> set[str]:
    """The ``flags`` of the first processor in ``/proc/cpuinfo`` (empty off Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def vector_lanes(flags: set[str]) -> tuple[str, int]:
    """The widest float32 vector the flags allow: ``("AVX-512", 16)``, ``("AVX2", 8)`` or ``("SSE", 4)``."""
    if "avx512f" in flags:
        return "AVX-512", 16
    if "avx2" in flags:
        return "AVX2", 8
    return "SSE", 4


def clock_hz() -> float | None:
    """The largest ``cpu MHz`` in ``/proc/cpuinfo``, in Hz; ``None`` where it is not given."""
    best = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("cpu MHz"):
                    mhz = float(line.split(":", 1)[1])
                    best = mhz if best is None else max(best, mhz)
    except (OSError, ValueError):
        return None
    return None if best is None else best * 1e6


def update_counts(rank: int, lanes: int) -> tuple[int, int, int]:
    """``(loads, fp_ops, stores)`` of vector instructions in one update (see the module docstring)."""
    if rank < 1 or lanes < 1:
        raise ValueError(f"`rank` and `lanes` must be >= 1; got {rank} and {lanes}")
    vectors = math.ceil(rank / lanes)
    reduction = 2 * int(math.log2(lanes)) if lanes > 1 else 0
    return 2 * vectors, vectors + reduction + 4 * vectors, 2 * vectors


def measure_bandwidth(n_bytes: int, *, seconds: float = 0.3) -> float:
    """Bytes per second read plus written by an in-place multiply over ``n_bytes`` of float32, one thread.

    Passes are repeated for about ``seconds``; the fastest counts (its first
    pass also touches the pages, so it is not counted alone).
    """
    buffer = np.ones(max(1024, n_bytes // 4), dtype=np.float32)
    factor = np.float32(1.0)
    np.multiply(buffer, factor, out=buffer)
    best = math.inf
    deadline = time.perf_counter() + seconds
    passes = 0
    while passes < 3 or time.perf_counter() < deadline:
        start = time.perf_counter()
        np.multiply(buffer, factor, out=buffer)
        best = min(best, time.perf_counter() - start)
        passes += 1
    return 2 * buffer.nbytes / best


@dataclass(frozen=True)
class CoreLimit:
    """The bounds on one core's updates per second at one rank (see the module docstring).

    Attributes
    ----------
    rank : int
    isa : str
        ``"AVX-512"``, ``"AVX2"`` or ``"SSE"``.
    lanes : int
        float32 lanes per vector.
    loads, fp_ops, stores : int
        Vector instructions per update.
    clock_hz : float or None
        ``None`` where ``/proc/cpuinfo`` gives no clock (then no compute bound).
    factor_bytes : int
        Bytes of ``P`` and ``Q`` together (the bandwidth buffer's size).
    bandwidth : float
        Measured bytes per second (read plus written).
    """

    rank: int
    isa: str
    lanes: int
    loads: int
    fp_ops: int
    stores: int
    clock_hz: float | None
    factor_bytes: int
    bandwidth: float

    @property
    def cycles(self) -> float:
        """Cycles per update: the busiest of the FP units, the load ports and the store port."""
        return max(self.fp_ops / FP_PER_CYCLE, self.loads / LOADS_PER_CYCLE, self.stores / STORES_PER_CYCLE)

    @property
    def compute_bound(self) -> float:
        """Updates per second the core's units allow (NaN without a clock)."""
        return math.nan if self.clock_hz is None else self.clock_hz / self.cycles

    @property
    def bytes_per_update(self) -> int:
        """Two rows read and written back plus the rating: ``16 rank + 12``."""
        return 2 * 2 * 4 * self.rank + RATING_BYTES

    @property
    def memory_bound(self) -> float:
        """Updates per second the measured bandwidth allows in a random order."""
        return self.bandwidth / self.bytes_per_update

    @property
    def limit(self) -> float:
        """The smaller bound (the memory bound alone without a clock)."""
        return self.memory_bound if math.isnan(self.compute_bound) else min(self.compute_bound, self.memory_bound)

    @property
    def binding(self) -> str:
        """``"compute"`` or ``"memory"``: which bound is :attr:`limit`."""
        return "compute" if self.limit == self.compute_bound else "memory"

    def describe(self) -> str:
        """One paragraph: both bounds, how each is derived, which binds."""
        if self.clock_hz is None:
            compute = "compute bound: no clock in /proc/cpuinfo, not given"
        else:
            compute = (
                f"compute bound {self.compute_bound / 1e6:.0f}M updates/s ({self.isa}, {self.lanes} float32 lanes: "
                f"{self.fp_ops} vector FP operations (dot-product FMAs, its horizontal sum, two row updates) over "
                f"{FP_PER_CYCLE} per cycle, {self.loads} loads over {LOADS_PER_CYCLE}, {self.stores} stores over "
                f"{STORES_PER_CYCLE}: {self.cycles:g} cycles per update at {self.clock_hz / 1e9:.2f} GHz, "
                "the cpu MHz of /proc/cpuinfo)"
            )
        memory = (
            f"memory bound {self.memory_bound / 1e6:.0f}M updates/s (random order: {self.bytes_per_update} bytes "
            f"per update, two rows read and written back plus the rating, at {self.bandwidth / 1e9:.1f} GB/s "
            f"measured by an in-place pass over {self.factor_bytes / 2**20:.1f} MiB, the size of P and Q)"
        )
        return f"{compute}; {memory}; the {self.binding} bound binds: {self.limit / 1e6:.0f}M updates/s"


def core_limit(rank: int, n_users: int, n_items: int, *, flags: set[str] | None = None) -> CoreLimit:
    """Derive the bounds for ``rank`` and factor matrices of ``n_users`` and ``n_items`` rows (float32)."""
    isa, lanes = vector_lanes(cpu_flags() if flags is None else flags)
    loads, fp_ops, stores = update_counts(rank, lanes)
    factor_bytes = (n_users + n_items) * rank * 4
    return CoreLimit(
        rank=rank,
        isa=isa,
        lanes=lanes,
        loads=loads,
        fp_ops=fp_ops,
        stores=stores,
        clock_hz=clock_hz(),
        factor_bytes=factor_bytes,
        bandwidth=measure_bandwidth(factor_bytes),
    )
