"""The compiled SGD kernel against a plain C loop of the same arithmetic.

:func:`factorise.kernels.sgd_ratings.sgd_ratings_epoch` (numba) and
``benchmarks/sgd_loop.c`` (the same update written in C, compiled here with
``gcc -O3 -march=native -shared -fPIC`` into a temporary directory and called
through :mod:`ctypes`) run one SGD sweep each over the same float32 arrays, in
the same visiting order, from the same initial biases and factors.

Two builds of the C loop are timed:

* ``C -O3``: the flags above and nothing else. C's rules forbid summing the
  dot product ``P[u] . Q[i]`` in another order, so gcc cannot vectorise it.
* ``C -O3 +reassoc``: adds ``-fassociative-math -fno-signed-zeros
  -fno-trapping-math``, the permission the numba kernel has (its
  ``fastmath={"reassoc", "contract"}``; gcc contracts ``a * b + c`` by
  default in GNU C). This is the like-for-like build.

Agreement is checked after one sweep from the same start: the maximum
absolute difference of the biases and factors, relative to the largest
absolute factor, must stay at rounding level (:data:`AGREEMENT_TOLERANCE`).
The implementations sum the dot product in different orders, so they are
not bit-identical; a different update (a changed learning-rate detail, say)
shows up as a difference many orders of magnitude larger. If the kernel's
update changes, edit the marked lines of ``sgd_loop.c`` to match.

Run it alone, or through ``benchmarks/scale.py --only kernel``.
"""

from __future__ import annotations

import ctypes
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "AGREEMENT_TOLERANCE",
    "C_SOURCE",
    "C_VARIANTS",
    "KernelProblem",
    "KernelResult",
    "compare_kernels",
    "compile_c_loop",
    "gcc_version",
    "kernel_problem",
    "load_c_loop",
]

#: The C loop's source, beside this file.
C_SOURCE = Path(__file__).resolve().parent / "sgd_loop.c"

#: Builds of the C loop: label -> gcc flags (before ``-shared -fPIC``).
C_VARIANTS: dict[str, tuple[str, ...]] = {
    "C -O3": ("-O3", "-march=native"),
    "C -O3 +reassoc": ("-O3", "-march=native", "-fassociative-math", "-fno-signed-zeros", "-fno-trapping-math"),
}

#: Largest accepted ``max |difference| / max |factor|`` after one sweep.
#: Rounding differences (float32, dot products summed in different orders)
#: stay far below it; a different update does not.
AGREEMENT_TOLERANCE = 1e-4

#: A sweep: ``(users, items, values, order, mu, bu, bi, P, Q, lr, reg, lr_bias, reg_bias) -> sse``.
Sweep = Callable[..., float]


def gcc_version() -> str | None:
    """First line of ``gcc --version``, or ``None`` without gcc."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    out = subprocess.run([gcc, "--version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else gcc


def compile_c_loop(directory: Path, flags: Sequence[str], name: str = "sgd_loop") -> Path:
    """Compile :data:`C_SOURCE` into a shared library in ``directory``.

    Parameters
    ----------
    directory : pathlib.Path
        Where the ``.so`` goes (a temporary directory).
    flags : sequence of str
        Optimisation flags, e.g. ``C_VARIANTS["C -O3"]``.
    name : str
        File name stem of the library.

    Returns
    -------
    pathlib.Path
        The library.

    Raises
    ------
    FileNotFoundError
        If gcc is not on the ``PATH``.
    RuntimeError
        If gcc fails (its error output is in the message).
    """
    gcc = shutil.which("gcc")
    if gcc is None:
        raise FileNotFoundError("gcc is not on the PATH: the C reference loop cannot be built (install gcc)")
    target = Path(directory) / f"{name}.so"
    command = [gcc, *flags, "-shared", "-fPIC", str(C_SOURCE), "-o", str(target)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with status {result.returncode}:\n{result.stderr}")
    return target


def load_c_loop(library: Path) -> Sweep:
    """The C sweep of ``library`` as a function with the numba kernel's signature.

    Arrays are passed as pointers after checking dtype and layout (a wrong one
    would be read as garbage by C, so it is an error here).
    """
    lib = ctypes.CDLL(str(library))
    func = lib.sgd_epoch
    ptr, f32, i64 = ctypes.c_void_p, ctypes.c_float, ctypes.c_int64
    func.argtypes = [ptr, ptr, ptr, ptr, i64, f32, ptr, ptr, ptr, ptr, ctypes.c_int32, f32, f32, f32, f32]
    func.restype = ctypes.c_double

    def pointer(array: np.ndarray, dtype: type, name: str) -> int:
        if array.dtype != dtype or not array.flags.c_contiguous:
            raise TypeError(f"`{name}` must be a C-contiguous {np.dtype(dtype)} array; got {array.dtype}")
        return array.ctypes.data

    def sweep(
        users: np.ndarray,
        items: np.ndarray,
        values: np.ndarray,
        order: np.ndarray,
        mu: float,
        bu: np.ndarray,
        bi: np.ndarray,
        P: np.ndarray,
        Q: np.ndarray,
        lr: float,
        reg: float,
        lr_bias: float,
        reg_bias: float,
    ) -> float:
        if P.shape[1] != Q.shape[1]:
            raise ValueError(f"P and Q must have one rank; got {P.shape[1]} and {Q.shape[1]}")
        return func(
            pointer(users, np.int32, "users"),
            pointer(items, np.int32, "items"),
            pointer(values, np.float32, "values"),
            pointer(order, np.int64, "order"),
            order.shape[0],
            mu,
            pointer(bu, np.float32, "bu"),
            pointer(bi, np.float32, "bi"),
            pointer(P, np.float32, "P"),
            pointer(Q, np.float32, "Q"),
            P.shape[1],
            lr,
            reg,
            lr_bias,
            reg_bias,
        )

    return sweep


@dataclass(frozen=True, eq=False)
class KernelProblem:
    """One sweep's inputs: ratings, visiting order, initial model, rates (all as BiasedMF's epoch 1).

    Attributes
    ----------
    users, items : numpy.ndarray of int32
    values : numpy.ndarray of float32
    order : numpy.ndarray of int64
        A random permutation of the ratings.
    mu : numpy.float32
    bu, bi, P, Q : numpy.ndarray of float32
        Initial biases (zero) and factors; copied before every sweep.
    lr, reg, lr_bias, reg_bias : numpy.float32
    n_users, n_items, rank : int
    """

    users: np.ndarray
    items: np.ndarray
    values: np.ndarray
    order: np.ndarray
    mu: np.float32
    bu: np.ndarray
    bi: np.ndarray
    P: np.ndarray
    Q: np.ndarray
    lr: np.float32
    reg: np.float32
    lr_bias: np.float32
    reg_bias: np.float32

    @property
    def rank(self) -> int:
        """Number of factors."""
        return int(self.P.shape[1])

    def fresh_model(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Copies of the initial ``bu, bi, P, Q``."""
        return self.bu.copy(), self.bi.copy(), self.P.copy(), self.Q.copy()

    def run(self, sweep: Sweep) -> tuple[float, float, tuple[np.ndarray, ...]]:
        """One sweep from the initial model: ``(seconds, sse, (bu, bi, P, Q))``."""
        model = self.fresh_model()
        start = time.perf_counter()
        sse = sweep(self.users, self.items, self.values, self.order, self.mu, *model, *self.rates)
        return time.perf_counter() - start, float(sse), model

    @property
    def rates(self) -> tuple[np.float32, np.float32, np.float32, np.float32]:
        """``(lr, reg, lr_bias, reg_bias)``."""
        return self.lr, self.reg, self.lr_bias, self.reg_bias


def kernel_problem(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    n_users: int,
    n_items: int,
    rank: int,
    *,
    random_state: int = 0,
) -> KernelProblem:
    """The inputs BiasedMF's first epoch would give the kernel, for these ratings.

    The rates and the initial factors follow ``BiasedMF``'s defaults and its
    mapping to rating units (``learning_rate / sigma``, ``regularization *
    sigma``, factors ``N(0, sigma * init_std**2)``; see
    ``factorise.models.sgd``), read from ``BiasedMF().get_params()``.
    """
    from factorise.models.sgd import BiasedMF

    params = BiasedMF().get_params()
    rng = np.random.default_rng(random_state)
    values = np.ascontiguousarray(values, dtype=np.float32)
    sigma = float(np.std(values, dtype=np.float64)) or 1.0
    scale = np.float32(math.sqrt(sigma) * float(params["init_std"]))
    f32 = np.float32
    return KernelProblem(
        users=np.ascontiguousarray(users, dtype=np.int32),
        items=np.ascontiguousarray(items, dtype=np.int32),
        values=values,
        order=rng.permutation(values.shape[0]).astype(np.int64),
        mu=f32(np.mean(values, dtype=np.float64)),
        bu=np.zeros(n_users, dtype=np.float32),
        bi=np.zeros(n_items, dtype=np.float32),
        P=rng.standard_normal((n_users, rank), dtype=np.float32) * scale,
        Q=rng.standard_normal((n_items, rank), dtype=np.float32) * scale,
        lr=f32(float(params["learning_rate"]) / sigma),
        reg=f32(float(params["regularization"]) * sigma),
        lr_bias=f32(params["bias_learning_rate"]),
        reg_bias=f32(params["bias_regularization"]),
    )


@dataclass
class KernelResult:
    """Timings and agreement of the implementations on one :class:`KernelProblem`.

    Attributes
    ----------
    rank : int
    n_ratings : int
    seconds : dict of str to list of float
        Wall-clock seconds of each timed sweep, per implementation.
    sse : dict of str to float
        Sum of squared errors returned by the first sweep.
    max_abs_diff : dict of str to float
        Per C build: max |difference| of biases and factors from the numba
        kernel's after one sweep from the same start.
    factor_scale : float
        max |factor| after the numba kernel's sweep (what the differences are relative to).
    """

    rank: int
    n_ratings: int
    seconds: dict[str, list[float]] = field(default_factory=dict)
    sse: dict[str, float] = field(default_factory=dict)
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    factor_scale: float = math.nan

    def best(self, name: str) -> float:
        """Fastest sweep of ``name`` in seconds."""
        return min(self.seconds[name])

    def updates_per_second(self, name: str) -> float:
        """Ratings visited per second in ``name``'s fastest sweep."""
        return self.n_ratings / self.best(name)

    def relative_diff(self, name: str) -> float:
        """``max_abs_diff[name] / factor_scale``."""
        return self.max_abs_diff[name] / self.factor_scale

    @property
    def agrees(self) -> bool:
        """Every C build within :data:`AGREEMENT_TOLERANCE` of the kernel, and the same SSE to 1e-4."""
        numba_sse = self.sse["numba"]
        return all(
            self.relative_diff(name) <= AGREEMENT_TOLERANCE
            and abs(self.sse[name] - numba_sse) <= 1e-4 * max(1.0, numba_sse)
            for name in self.max_abs_diff
        )


def compare_kernels(problem: KernelProblem, c_loops: dict[str, Sweep], *, repeats: int = 3) -> KernelResult:
    """Time the numba kernel and each C loop on ``problem`` and check that they agree.

    The first sweep of each implementation (from the initial model) gives the
    agreement check (and compiles or loads the numba kernel, so it is not
    timed); then ``repeats`` timed sweeps each, from fresh copies of the
    initial model, interleaved across implementations so that a change in the
    machine's load hits them alike.

    Parameters
    ----------
    problem : KernelProblem
    c_loops : dict of str to callable
        Label -> C sweep (:func:`load_c_loop`).
    repeats : int, default 3

    Returns
    -------
    KernelResult
    """
    from factorise.kernels.sgd_ratings import sgd_ratings_epoch

    sweeps: dict[str, Sweep] = {"numba": sgd_ratings_epoch, **c_loops}
    result = KernelResult(rank=problem.rank, n_ratings=int(problem.order.shape[0]))
    _, sse, reference = problem.run(sgd_ratings_epoch)
    result.sse["numba"] = sse
    result.factor_scale = float(max(np.abs(reference[2]).max(), np.abs(reference[3]).max()))
    for name, sweep in c_loops.items():
        _, sse, model = problem.run(sweep)
        result.sse[name] = sse
        result.max_abs_diff[name] = max(float(np.abs(a - b).max()) for a, b in zip(model, reference))
    for name in sweeps:
        result.seconds[name] = []
    for _ in range(repeats):
        for name, sweep in sweeps.items():
            seconds, _, _ = problem.run(sweep)
            result.seconds[name].append(seconds)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison alone (``benchmarks/scale.py --only kernel`` prints the full table)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import scale

    return scale.main(["--only", "kernel", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
