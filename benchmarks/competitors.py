"""Competitor libraries for the MovieLens benchmark, and how each method is measured.

The competitors are Surprise's ``SVD`` and ``SVDpp`` (``pip install
scikit-surprise``) and LibMF through its Python binding (``pip install
libmf``); ``pip install -e '.[bench]'`` installs both. Each method is a
:class:`Job` made by a plain factory function ``factory(fold, params)``:
building it turns a :class:`Fold`'s training ratings into the library's own
training structure, ``job.fit()`` is the library's fit call alone (the only
step timed and measured), ``job.predict()`` predicts the fold's test pairs.

:func:`run_isolated` runs one method over all folds in a fresh child process
(``spawn``), so that nothing compiled or allocated by another method is in
its memory, and measures there:

* **fit seconds**: wall clock around ``job.fit()``, with BLAS pinned to
  one thread (``threadpoolctl``), after one untimed warm-up fit on a strided
  sample of the first fold (it compiles or loads numba kernels and touches
  the library's code pages);
* **peak RSS**: the child's resident-set high-water mark (``VmHWM`` in
  ``/proc/self/status``) at the end of each ``job.fit()``, after resetting it just
  before the fit (``echo 5 > /proc/self/clear_refs``). It covers memory
  allocated in C, C++ and numba code, which ``tracemalloc`` does not see. It
  is reported as the whole process's peak (interpreter, imported libraries,
  the fold's arrays, the library's training structure and the model) and as
  the increase during the fit over the RSS just before it. That increase is
  a lower bound on what the fit allocates: memory freed earlier in the
  process (building the training structure, a previous fold) stays resident
  with the allocator and is reused without growing the RSS. Where the reset
  is not possible (not Linux), the peak is ``ru_maxrss`` since the child
  started and no increase is given.

Settings (each stated in the benchmark's table):

* ``Surprise SVD``: ``SVD(random_state=0)``, i.e. Surprise 1.1.5's defaults
  ``n_factors=100, n_epochs=20, lr_all=0.005, reg_all=0.02`` (biased).
* ``Surprise SVD, tuned``: :data:`SURPRISE_SVD_TUNED`
  (``n_factors=100, n_epochs=40, lr_all=0.01, reg_all=0.1``), chosen by
  :func:`select_svd_params` on a random 80/20 split of each fold's
  *training* ratings (``python benchmarks/competitors.py tune-svd``), never
  on a test file.
* ``Surprise SVD++``: ``SVDpp(random_state=0)``, the defaults
  ``n_factors=20, n_epochs=20, lr_all=0.007, reg_all=0.02`` (slow).
* ``LibMF``: :data:`LIBMF_PARAMS`: squared loss, ``k=100``, L2 penalty 0.1 on
  both factor matrices and no L1 (the LibMF command-line tool's defaults,
  which the binding's own defaults, L1 0.04 and no L2, are not), 20
  iterations, learning rate ``eta=0.1``, one thread. LibMF has no bias terms;
  it predicts the training mean for unknown users or items. Its predictions
  are clipped to the training rating range, as Surprise's and factorise's
  are.

Ratings in a :class:`Fold` keep their raw ids; every job maps them itself,
and test pairs whose user or item is not in the training ratings get that
library's fallback prediction.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import io
import itertools
import math
import multiprocessing
import os
import re
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = [
    "BENCH_INSTALL",
    "LIBMF_BINDING_LABEL",
    "LIBMF_PARAMS",
    "SURPRISE_SVDPP_DEFAULTS",
    "SURPRISE_SVD_DEFAULTS",
    "SURPRISE_SVD_GRID",
    "SURPRISE_SVD_TUNED",
    "Fold",
    "Job",
    "LibMFJob",
    "LibMFNativeJob",
    "Measurement",
    "MethodRun",
    "MethodSpec",
    "SurpriseJob",
    "competitor_specs",
    "is_installed",
    "libmf_job",
    "libmf_native_job",
    "measure",
    "read_movielens_fold",
    "run_isolated",
    "select_svd_params",
    "surprise_svd_job",
    "surprise_svdpp_job",
]

#: How to install every competitor (the project's ``bench`` extra).
BENCH_INSTALL = "pip install -e '.[bench]'"

#: Surprise 1.1.5's ``SVD`` defaults, spelled out so that the table can state them.
SURPRISE_SVD_DEFAULTS: dict[str, Any] = {"n_factors": 100, "n_epochs": 20, "lr_all": 0.005, "reg_all": 0.02}

#: The grid :func:`select_svd_params` searches for the tuned Surprise SVD.
SURPRISE_SVD_GRID: dict[str, list[Any]] = {
    "n_factors": [50, 100, 200],
    "n_epochs": [20, 40],
    "lr_all": [0.005, 0.01],
    "reg_all": [0.05, 0.1, 0.15, 0.2],
}

#: Tuned Surprise SVD. ``python benchmarks/competitors.py tune-svd`` fits every
#: point of :data:`SURPRISE_SVD_GRID` on 80% of u{i}.base and scores it on the
#: other 20% (seed 0; u{i}.test is never read), for i = 1..5. Every fold chose
#: n_epochs=40, lr_all=0.01, reg_all=0.1; n_factors=100 and 200 came within
#: 0.0011 RMSE of each other (100 best on u2 and u4, 200 on u1, u3, u5), so
#: the cheaper 100 is used: validation RMSE 0.9207, 0.9268, 0.9272, 0.9235,
#: 0.9308, ranked 3, 1, 2, 1, 2 of 48 (Surprise 1.1.5).
SURPRISE_SVD_TUNED: dict[str, Any] = {"n_factors": 100, "n_epochs": 40, "lr_all": 0.01, "reg_all": 0.1}

#: Surprise 1.1.5's ``SVDpp`` defaults.
SURPRISE_SVDPP_DEFAULTS: dict[str, Any] = {"n_factors": 20, "n_epochs": 20, "lr_all": 0.007, "reg_all": 0.02}

#: LibMF through the ``libmf`` binding: the command-line tool's regularisation
#: (L2 0.1, no L1), k=100, 20 iterations, eta 0.1, one thread, quiet.
LIBMF_PARAMS: dict[str, Any] = {
    "fun": 0,  # P_L2_MFR: real-valued matrix factorisation, squared loss
    "k": 100,
    "nr_threads": 1,
    "nr_bins": 26,
    "nr_iters": 20,
    "lambda_p1": 0.0,
    "lambda_q1": 0.0,
    "lambda_p2": 0.1,
    "lambda_q2": 0.1,
    "eta": 0.1,
    "do_nmf": False,
    "quiet": True,
    "copy_data": True,
}

_SEED = 0

#: The binding's row: LibMF's code as setuptools compiles it (``benchmarks/libmf_native.py`` builds it at full speed).
LIBMF_BINDING_LABEL = "LibMF Python binding (no SIMD, no OpenMP)"

#: Training ratings in the untimed warm-up fit.
#: Seconds a child may take to exit once its run is in hand, before it is killed.
_EXIT_GRACE_SECONDS = 60.0
_WARMUP_RATINGS = 300_000  # past the block engine's threshold, so every kernel the timed fit runs is loaded


# --------------------------------------------------------------------------- data
@dataclass(frozen=True, eq=False)
class Fold:
    """One train/test split as parallel arrays of raw user id, raw item id, rating.

    Attributes
    ----------
    name : str
        For messages, e.g. ``"u1"``.
    train_users, train_items : numpy.ndarray
        Raw ids (integers or strings) of the training ratings.
    train_ratings : numpy.ndarray of float64
    test_users, test_items : numpy.ndarray
        Raw ids of the test pairs.
    test_ratings : numpy.ndarray of float64
    """

    name: str
    train_users: np.ndarray
    train_items: np.ndarray
    train_ratings: np.ndarray
    test_users: np.ndarray
    test_items: np.ndarray
    test_ratings: np.ndarray

    def sample(self, n: int) -> Fold:
        """About ``n`` training ratings and test pairs, evenly strided (a warm-up problem).

        Striding, rather than taking the first ``n``, keeps many users and
        items (the files are sorted by user), so a model of the full rank fits.
        """
        train_step = max(1, self.train_ratings.shape[0] // n)
        test_step = max(1, self.test_ratings.shape[0] // n)
        return replace(
            self,
            name=f"{self.name}-sample",
            train_users=self.train_users[::train_step],
            train_items=self.train_items[::train_step],
            train_ratings=self.train_ratings[::train_step],
            test_users=self.test_users[::test_step],
            test_items=self.test_items[::test_step],
            test_ratings=self.test_ratings[::test_step],
        )

    @property
    def rating_range(self) -> tuple[float, float]:
        """The smallest and largest training rating."""
        return float(self.train_ratings.min()), float(self.train_ratings.max())


def _read_ratings_file(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a MovieLens ``user<TAB>item<TAB>rating<TAB>timestamp`` file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ratings file")
    try:
        table = np.loadtxt(path, dtype=np.float64, usecols=(0, 1, 2), ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{path}: not a tab-separated 'user item rating timestamp' file ({exc})") from None
    if table.shape[0] == 0:
        raise ValueError(f"{path}: no ratings")
    ids = table[:, :2]
    if not np.array_equal(ids, np.round(ids)):
        raise ValueError(f"{path}: user and item ids must be integers")
    if not np.isfinite(table[:, 2]).all():
        raise ValueError(f"{path}: ratings must be finite numbers")
    return ids[:, 0].astype(np.int64), ids[:, 1].astype(np.int64), table[:, 2].copy()


def read_movielens_fold(directory: str | os.PathLike[str], name: str) -> Fold:
    """Read ``{name}.base`` (training) and ``{name}.test`` from a MovieLens 100K directory.

    Parameters
    ----------
    directory : path
        Holds ``u1.base``, ``u1.test``, ... (tab-separated ``user item rating timestamp``).
    name : str
        The split, e.g. ``"u1"``.

    Returns
    -------
    Fold

    Raises
    ------
    FileNotFoundError
        If a file is missing.
    ValueError
        If a file is not in the MovieLens layout.
    """
    directory = Path(directory)
    train = _read_ratings_file(directory / f"{name}.base")
    test = _read_ratings_file(directory / f"{name}.test")
    return Fold(name, *train, *test)


# -------------------------------------------------------------------------- jobs
class Job(Protocol):
    """One method on one fold: built from the training ratings, then fitted, then predicting."""

    def fit(self) -> None:
        """Fit the model (the only timed and memory-measured step)."""

    def predict(self) -> np.ndarray:
        """Predictions for the fold's test pairs, float64, in order."""


#: A module-level ``factory(fold, params) -> Job``; building the job (the
#: library's training structure) is not timed.
JobFactory = Callable[[Fold, dict[str, Any]], Job]


class SurpriseJob:
    """A Surprise algorithm on one fold.

    Parameters
    ----------
    algo : surprise.AlgoBase
        An unfitted algorithm, e.g. ``surprise.SVD()``.
    fold : Fold
        Its training ratings become a ``surprise.Trainset`` whose rating
        scale is the training rating range.
    """

    def __init__(self, algo: Any, fold: Fold) -> None:
        from surprise import Dataset, Reader

        self.algo = algo
        self.fold = fold
        triples = zip(
            fold.train_users.tolist(), fold.train_items.tolist(), fold.train_ratings.tolist(), itertools.repeat(None)
        )
        self.trainset = Dataset(Reader(rating_scale=fold.rating_range)).construct_trainset(list(triples))

    def fit(self) -> None:
        """``algo.fit(trainset)``."""
        self.algo.fit(self.trainset)

    def predict(self) -> np.ndarray:
        """``algo.predict(user, item).est`` per test pair.

        Surprise maps the raw ids, falls back to the known biases (or the
        mean) for unknown users and items, and clips to the rating scale.
        """
        pairs = zip(self.fold.test_users.tolist(), self.fold.test_items.tolist())
        return np.fromiter((self.algo.predict(u, i).est for u, i in pairs), dtype=np.float64)


def surprise_svd_job(fold: Fold, params: dict[str, Any]) -> SurpriseJob:
    """Surprise's ``SVD(**params)`` on ``fold``."""
    from surprise import SVD

    return SurpriseJob(SVD(**params), fold)


def surprise_svdpp_job(fold: Fold, params: dict[str, Any]) -> SurpriseJob:
    """Surprise's ``SVDpp(**params)`` on ``fold``."""
    from surprise import SVDpp

    return SurpriseJob(SVDpp(**params), fold)


class MyFMJob:
    """myFM's Gibbs-sampled factorisation machine on one-hot user and item columns (the plain setting).

    ``MyFMRegressor(rank).fit(X, y, n_iter, n_kept_samples, grouping=[0] * n_users + [1] * n_items)``:
    each rating's row holds a 1 in its user's column and in its item's, the two groups with their own
    hyperparameters; test pairs of a user or item not in training get all-zero columns (the biases'
    and factors' prior mean). Predictions are clipped to the rating range, as the other methods'.
    """

    def __init__(self, fold: Fold, params: dict[str, Any]) -> None:
        from scipy import sparse

        self.fold, self.params = fold, params
        self.users, self.items = np.unique(fold.train_users), np.unique(fold.train_items)
        self.n_users = self.users.shape[0]
        self.implicit = bool(params.get("implicit", False))
        self.X = self._design(fold.train_users, fold.train_items, sparse)
        self.X_test = self._design(fold.test_users, fold.test_items, sparse)

    def _index(self, ids: np.ndarray, known: np.ndarray) -> np.ndarray:
        """Positions of ``ids`` in the sorted ``known``; -1 where absent."""
        at = np.searchsorted(known, ids)
        hit = (at < known.shape[0]) & (known[np.minimum(at, known.shape[0] - 1)] == ids)
        return np.where(hit, at, -1)

    def _design(self, users: np.ndarray, items: np.ndarray, sparse: Any) -> Any:
        n_items = self.items.shape[0]
        cols, rows = [], []
        for ids, offset, known in ((users, 0, self.users), (items, self.n_users, self.items)):
            at = self._index(ids, known)
            rows.append(np.flatnonzero(at >= 0))
            cols.append(at[at >= 0] + offset)
        r, c = np.concatenate(rows), np.concatenate(cols)
        X = sparse.csr_matrix((np.ones(r.shape[0]), (r, c)), shape=(users.shape[0], self.n_users + n_items))
        if not self.implicit:
            return X
        # each user's rated items in the training file, weighted 1 / sqrt(count): a row per user, then per rating
        tu, ti = self._index(self.fold.train_users, self.users), self._index(self.fold.train_items, self.items)
        rated = sparse.csr_matrix((np.ones(tu.shape[0]), (tu, ti)), shape=(self.n_users, n_items))
        rated.data[:] = 1.0  # a pair rated twice counts once
        counts = np.asarray(rated.sum(axis=1)).ravel()
        rated = sparse.diags(1.0 / np.sqrt(np.maximum(counts, 1))) @ rated
        at = self._index(users, self.users)
        implicit = rated[np.maximum(at, 0)].multiply((at >= 0)[:, None]).tocsr()
        return sparse.hstack([X, implicit], format="csr")

    def fit(self) -> None:
        """``MyFMRegressor(rank, random_seed).fit(X, y, n_iter, n_kept_samples, grouping)``."""
        import myfm

        p = self.params
        self.model = myfm.MyFMRegressor(rank=p["rank"], random_seed=p["random_seed"])
        grouping = [0] * self.n_users + [1] * self.items.shape[0] + ([2] * self.items.shape[0] if self.implicit else [])
        self.model.fit(self.X, self.fold.train_ratings.astype(np.float64), n_iter=p["n_iter"],
                       n_kept_samples=p["n_kept_samples"], grouping=grouping)  # fmt: skip

    def predict(self) -> np.ndarray:
        """The posterior mean of the kept samples, clipped to the training range."""
        return np.clip(self.model.predict(self.X_test), *self.fold.rating_range)


def myfm_job(fold: Fold, params: dict[str, Any]) -> MyFMJob:
    """myFM on ``fold`` (see :class:`MyFMJob`)."""
    return MyFMJob(fold, params)


#: myFM's plain Bayesian FM: the setting factorise's BayesianMF is measured against (issue 11).
MYFM_PARAMS = {"rank": 10, "n_iter": 200, "n_kept_samples": 195, "random_seed": 0}
#: myFM with implicit features (the setting issue 11 quotes beside BayesianMF(implicit=True)): about 190 s a fold.
MYFM_IMPLICIT_PARAMS = {**MYFM_PARAMS, "implicit": True}


def _import_libmf() -> Any:
    """The binding's ``mf`` module, imported quietly (it prints the path of its library)."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        # its source compares strings with ``is`` (a SyntaxWarning when compiled)
        warnings.simplefilter("ignore", SyntaxWarning)
        from libmf import mf
    return mf


class LibMFJob:
    """LibMF (``libmf.mf.MF(**params)``) on one fold.

    Raw ids are mapped to 0-based indices of the ids seen in training; test
    pairs with an unknown user or item get index -1, for which LibMF predicts
    the training mean. Predictions are clipped to the training rating range.

    The binding (0.9.2) reads the training array row by row, so it gets a
    C-ordered ``(n, 3)`` float32 array of ``(user, item, rating)``, but reads
    the prediction array column by column (pair ``j`` is ``(X[j], X[j + n])``
    in memory), so it gets a Fortran-ordered ``(n, 2)`` array; a C-ordered one
    gives garbage predictions. Indices pass through float32, so at most
    2**24 users and items.

    Parameters
    ----------
    fold : Fold
    params : dict
        Keyword arguments of ``libmf.mf.MF`` (see :data:`LIBMF_PARAMS`).
    """

    def __init__(self, fold: Fold, params: dict[str, Any]) -> None:
        mf = _import_libmf()
        self.fold = fold
        self.user_ids, train_u = np.unique(fold.train_users, return_inverse=True)
        self.item_ids, train_i = np.unique(fold.train_items, return_inverse=True)
        if max(len(self.user_ids), len(self.item_ids)) > 2**24:
            raise ValueError("the libmf binding passes indices as float32: at most 2**24 users and items")
        self.train = np.ascontiguousarray(
            np.column_stack([train_u.reshape(-1), train_i.reshape(-1), fold.train_ratings]), dtype=np.float32
        )
        self.model = mf.MF(**params)

    def fit(self) -> None:
        """``MF.fit`` (LibMF copies the triples into its own structure, then trains)."""
        self.model.fit(self.train)

    def predict(self) -> np.ndarray:
        """``MF.predict`` on the test pairs, clipped to the training rating range."""
        users = _index_of(self.user_ids, self.fold.test_users)
        items = _index_of(self.item_ids, self.fold.test_items)
        pairs = np.asfortranarray(np.column_stack([users, items]), dtype=np.float32)
        predictions = np.asarray(self.model.predict(pairs), dtype=np.float64)
        if predictions.shape != self.fold.test_ratings.shape or not np.isfinite(predictions).all():
            raise RuntimeError("libmf returned predictions of the wrong shape or non-finite values")
        return np.clip(predictions, *self.fold.rating_range)


def libmf_job(fold: Fold, params: dict[str, Any]) -> LibMFJob:
    """LibMF with ``params`` on ``fold``."""
    return LibMFJob(fold, params)


class LibMFNativeJob:
    """LibMF's own ``mf_train`` as its Makefile builds it, through ``benchmarks/libmf_driver.cpp``, on one fold.

    The same LibMF code and settings as :class:`LibMFJob` (the driver starts
    from ``mf_get_default_param()``: squared loss, L2 0.1 on P and Q, no L1,
    eta 0.1, 26 bins; ``k``, iterations and threads from ``params``), compiled
    with LibMF's SSE code and OpenMP and ``-march=native``. The fold is written
    to a temporary folder (:func:`libmf_native.write_ratings`: the same id
    mapping as the binding's job); :meth:`fit` runs the driver, and the fit's
    time and peak memory are the driver's own measurement of the
    ``mf_train`` call (a C++ process with no interpreter), not the wall clock
    of starting it (see :func:`measure`).

    Parameters
    ----------
    fold : Fold
    params : dict
        ``binary`` (the built driver), ``k``, ``iters``, ``threads``.
    """

    def __init__(self, fold: Fold, params: dict[str, Any]) -> None:
        import tempfile

        import libmf_native

        self._native = libmf_native
        self.fold = fold
        self.params = dict(params)
        self._folder = tempfile.TemporaryDirectory(prefix="libmf-native-")
        self.data = libmf_native.write_ratings(Path(self._folder.name), fold)
        self.own_measurement: tuple[float, int, int | None] | None = None

    def fit(self) -> None:
        """Run the driver: ``mf_train`` timed by itself, then its clipped predictions written beside the data."""
        run = self._native.run_driver(
            Path(self.params["binary"]), self.data, int(self.params["threads"]),
            k=int(self.params["k"]), iters=int(self.params["iters"]),
        )  # fmt: skip
        self.own_measurement = (run.seconds, run.peak_rss_bytes, run.fit_increase_bytes)

    def predict(self) -> np.ndarray:
        """The driver's predictions (clipped to the training range, LibMF's mean for unknown ids)."""
        predictions = np.fromfile(self.data / "predictions.f32", dtype="<f4").astype(np.float64)
        if predictions.shape != self.fold.test_ratings.shape or not np.isfinite(predictions).all():
            raise RuntimeError("libmf_driver wrote predictions of the wrong shape or non-finite values")
        self._folder.cleanup()
        return predictions


def libmf_native_job(fold: Fold, params: dict[str, Any]) -> LibMFNativeJob:
    """LibMF's ``mf_train`` (Makefile build) with ``params`` on ``fold``."""
    return LibMFNativeJob(fold, params)


def _index_of(sorted_ids: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Position of each raw id in ``sorted_ids``; -1 where it is absent."""
    pos = np.searchsorted(sorted_ids, raw)
    clipped = np.minimum(pos, len(sorted_ids) - 1)
    return np.where(sorted_ids[clipped] == raw, clipped, -1)


# ------------------------------------------------------------- isolated measuring
@dataclass(frozen=True)
class MethodSpec:
    """One row of the benchmark: what to run and how to describe it.

    Attributes
    ----------
    label : str
        The table's method column.
    factory : callable
        A module-level ``factory(fold, params) -> Job`` (it is pickled by
        reference into a child process).
    params : dict
        Passed to the factory.
    settings : str
        The settings, for the table's legend.
    module : str or None
        The import name of the library the factory needs; ``None`` if none.
    install : str or None
        The command that installs that library.
    is_reference : bool
        Whether fit times are given as a ratio to this method's.
    """

    label: str
    factory: JobFactory
    params: dict[str, Any]
    settings: str
    module: str | None = None
    install: str | None = None
    is_reference: bool = False


@dataclass
class MethodRun:
    """What :func:`run_isolated` measured for one method.

    Attributes
    ----------
    label : str
    predictions : list of numpy.ndarray
        One array per fold, in the folds' order.
    fit_seconds : list of float
        One per fold.
    peak_rss_bytes : int or None
        The child process's largest resident-set high-water mark over the fits.
    fit_increase_bytes : int or None
        The largest increase of that high-water mark during one fit over the
        RSS just before it; ``None`` where the mark cannot be reset.
    error : str or None
        Why the method did not run (``None`` when it did).
    """

    label: str
    predictions: list[np.ndarray] = field(default_factory=list)
    fit_seconds: list[float] = field(default_factory=list)
    peak_rss_bytes: int | None = None
    fit_increase_bytes: int | None = None
    error: str | None = None

    @property
    def median_fit_seconds(self) -> float:
        """Median fit time over the folds (NaN if the method did not run)."""
        return statistics.median(self.fit_seconds) if self.fit_seconds else math.nan


def is_installed(module: str | None) -> bool:
    """Whether ``module`` can be found (without importing it)."""
    if module is None:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _status_bytes(key: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` in bytes (``None`` off Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            match = re.search(rf"^{key}:\s+(\d+)\s+kB", handle.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


def _reset_peak_rss() -> bool:
    """Reset the process's RSS high-water mark to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def _max_rss_since_start() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


@dataclass(frozen=True)
class Measurement:
    """One fit, measured by :func:`measure`.

    Attributes
    ----------
    predictions : numpy.ndarray of float64
    fit_seconds : float
        Wall-clock seconds of ``job.fit()``.
    peak_rss_bytes : int
        The process's resident-set high-water mark at the end of the fit:
        since just before the fit where it can be reset, else since the
        process started.
    fit_increase_bytes : int or None
        That mark minus the RSS just before the fit; ``None`` where the
        mark cannot be reset.
    """

    predictions: np.ndarray
    fit_seconds: float
    peak_rss_bytes: int
    fit_increase_bytes: int | None


def measure(job: Job) -> Measurement:
    """Fit ``job`` timing the fit and measuring peak RSS, then predict.

    Run it in a fresh process (:func:`run_isolated` does) for the peak to
    mean anything, with BLAS pinned as wanted. A job whose fit runs in a
    process of its own (:class:`LibMFNativeJob`) sets ``own_measurement``
    to that process's ``(seconds, peak RSS, fit increase)``, which is used
    instead.
    """
    gc.collect()
    can_reset = _reset_peak_rss()
    before = _status_bytes("VmRSS")
    start = time.perf_counter()
    job.fit()
    seconds = time.perf_counter() - start
    peak = _status_bytes("VmHWM") if can_reset else None
    increase = None
    if peak is None:
        peak = _max_rss_since_start()
    elif before is not None:
        increase = max(0, peak - before)
    own = getattr(job, "own_measurement", None)
    if own is not None:  # a job whose fit runs in another process measures that fit itself
        seconds, peak, increase = own
    predictions = np.asarray(job.predict(), dtype=np.float64)
    return Measurement(predictions, seconds, peak, increase)


def _run_in_child(spec: MethodSpec, folds: Sequence[Fold], warmup: bool) -> MethodRun:
    """Body of the child process: warm up, then fit every fold, measuring each fit."""
    from threadpoolctl import threadpool_limits

    run = MethodRun(spec.label)
    increases: list[int | None] = []
    peaks: list[int] = []
    with threadpool_limits(limits=1):
        if warmup:
            job = spec.factory(folds[0].sample(_WARMUP_RATINGS), spec.params)
            job.fit()
            job.predict()
            del job
        for fold in folds:
            result = measure(spec.factory(fold, spec.params))
            run.predictions.append(result.predictions)
            run.fit_seconds.append(result.fit_seconds)
            peaks.append(result.peak_rss_bytes)
            increases.append(result.fit_increase_bytes)
    run.peak_rss_bytes = max(peaks)
    run.fit_increase_bytes = None if None in increases else max(i for i in increases if i is not None)
    return run


def _child_main(connection: Any, spec: MethodSpec, folds: list[Fold], warmup: bool) -> None:
    """Entry point of :func:`run_isolated`'s child: run, and send back the run or the failure."""
    try:
        message: tuple[str, Any] = ("run", _run_in_child(spec, folds, warmup))
    except Exception as exc:  # noqa: BLE001  (a library's failure is a row of the table, not a crash)
        message = ("error", f"failed: {type(exc).__name__}: {exc}")
    connection.send(message)
    connection.close()


def run_isolated(
    spec: MethodSpec, folds: Sequence[Fold], *, warmup: bool = True, timeout: float | None = None
) -> MethodRun:
    """Run one method over ``folds`` in a fresh (spawned) child process.

    Parameters
    ----------
    spec : MethodSpec
    folds : sequence of Fold
    warmup : bool, default True
        Fit once, untimed, on an evenly strided sample of about 4000
        training ratings of the first fold before measuring.
    timeout : float or None, default None
        Seconds the child may take (warm-up and every fold); past them it is
        killed and the run reports the time-out. None waits for as long as it
        takes.

    Returns
    -------
    MethodRun
        With ``error`` set (and nothing measured) if the library is not
        installed, or the job raised, or the child process died or timed out
        (the error then starts with "timed out").
    """
    if not folds:
        raise ValueError("`folds` must hold at least one fold; got none")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"`timeout` must be None or a number of seconds > 0; got {timeout!r}")
    if not is_installed(spec.module):
        return MethodRun(spec.label, error=f"unavailable: {spec.module} is not installed ({spec.install})")
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, args=(sender, spec, list(folds), warmup), daemon=True)
    child.start()
    sender.close()  # the child holds the only writing end: its death ends the pipe
    try:
        if not receiver.poll(timeout):
            child.kill()
            return MethodRun(spec.label, error=f"timed out after {timeout:g} s (the child process was killed)")
        kind, payload = receiver.recv()
    except (EOFError, OSError):
        return MethodRun(spec.label, error="failed: the child process died")
    finally:
        receiver.close()
        # the run is in hand (or lost): a child that does not then exit (a library's threads held at interpreter
        # shutdown) is killed rather than waited for
        child.join(_EXIT_GRACE_SECONDS)
        if child.is_alive():
            print(f"{spec.label}: the child process did not exit {_EXIT_GRACE_SECONDS:g} s after its run; killed",
                  file=sys.stderr)  # fmt: skip
            child.kill()
            child.join()
    if kind == "error":
        return MethodRun(spec.label, error=payload)
    return payload


def _format_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in params.items())


def competitor_specs(*, svd_tuned: bool = True, svdpp: bool = True, myfm_implicit: bool = False) -> list[MethodSpec]:
    """The competitor rows of the benchmark, in table order.

    Parameters
    ----------
    svd_tuned : bool, default True
        Include the tuned Surprise SVD.
    svdpp : bool, default True
        Include Surprise's SVD++ (about 15 s per MovieLens 100K fold).
    myfm_implicit : bool, default False
        Include myFM with implicit features (about 190 s per fold).

    Returns
    -------
    list of MethodSpec
    """
    surprise_install = f"{BENCH_INSTALL}, or pip install scikit-surprise"
    specs = [
        MethodSpec(
            "Surprise SVD",
            surprise_svd_job,
            {"random_state": _SEED},
            f"`SVD()` defaults: {_format_params(SURPRISE_SVD_DEFAULTS)}",
            "surprise",
            surprise_install,
        )
    ]
    if svd_tuned:
        specs.append(
            MethodSpec(
                "Surprise SVD, tuned",
                surprise_svd_job,
                {**SURPRISE_SVD_TUNED, "random_state": _SEED},
                f"`SVD({_format_params(SURPRISE_SVD_TUNED)})`, chosen on a validation split of training ratings",
                "surprise",
                surprise_install,
            )
        )
    if svdpp:
        specs.append(
            MethodSpec(
                "Surprise SVD++",
                surprise_svdpp_job,
                {"random_state": _SEED},
                f"`SVDpp()` defaults: {_format_params(SURPRISE_SVDPP_DEFAULTS)}",
                "surprise",
                surprise_install,
            )
        )
    specs.append(
        MethodSpec(
            "myFM (Bayesian FM, Gibbs)",
            myfm_job,
            dict(MYFM_PARAMS),
            "`MyFMRegressor(rank=10).fit(X, y, n_iter=200, n_kept_samples=195, grouping=...)`, one-hot user "
            "and item columns",
            "myfm",
            f"{BENCH_INSTALL}, or pip install myfm 'setuptools<81'",
        )
    )
    if myfm_implicit:
        specs.append(
            MethodSpec(
                "myFM (Bayesian FM, Gibbs), implicit",
                myfm_job,
                dict(MYFM_IMPLICIT_PARAMS),
                "as myFM's row, each rating's row also holding the user's rated items of the training file "
                "weighted 1/sqrt(count), a third group",
                "myfm",
                f"{BENCH_INSTALL}, or pip install myfm 'setuptools<81'",
            )
        )
    specs.append(
        MethodSpec(
            LIBMF_BINDING_LABEL,
            libmf_job,
            dict(LIBMF_PARAMS),
            "k=100, L2 0.1 on P and Q, no L1, 20 iterations, eta=0.1, 1 thread, no biases; "
            "predictions clipped to the rating range",
            "libmf",
            f"{BENCH_INSTALL}, or pip install libmf",
            is_reference=True,
        )
    )
    return specs


# ------------------------------------------------------------------------ tuning
def select_svd_params(
    fold: Fold,
    grid: dict[str, list[Any]] | None = None,
    *,
    validation_fraction: float = 0.2,
    random_state: int = _SEED,
) -> tuple[dict[str, Any], list[tuple[dict[str, Any], float]]]:
    """Choose Surprise SVD settings on a validation split of the *training* ratings.

    The fold's test ratings are never read: its training ratings are split at
    random into a part to fit and a validation part, every grid point is
    fitted on the first and scored (RMSE) on the second.

    Parameters
    ----------
    fold : Fold
        Only ``train_*`` is used.
    grid : dict of lists, optional
        Values to try per ``SVD`` parameter; default :data:`SURPRISE_SVD_GRID`.
    validation_fraction : float, default 0.2
    random_state : int, default 0
        Seeds the split and every SVD fit.

    Returns
    -------
    best : dict
        The grid point with the lowest validation RMSE.
    scores : list of (dict, float)
        Every grid point with its validation RMSE, best first.
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(f"`validation_fraction` must be in (0, 1); got {validation_fraction!r}")
    grid = SURPRISE_SVD_GRID if grid is None else grid
    rng = np.random.default_rng(random_state)
    order = rng.permutation(fold.train_ratings.shape[0])
    n_valid = round(validation_fraction * order.shape[0])
    valid, fit = order[:n_valid], order[n_valid:]
    split = Fold(
        f"{fold.name}-validation",
        fold.train_users[fit],
        fold.train_items[fit],
        fold.train_ratings[fit],
        fold.train_users[valid],
        fold.train_items[valid],
        fold.train_ratings[valid],
    )
    scores = []
    keys = list(grid)
    for values in itertools.product(*(grid[key] for key in keys)):
        params = dict(zip(keys, values))
        job = surprise_svd_job(split, {**params, "random_state": random_state})
        job.fit()
        predictions = job.predict()
        rmse = float(np.sqrt(np.mean((predictions - split.test_ratings) ** 2)))
        scores.append((params, rmse))
    scores.sort(key=lambda item: item[1])
    return scores[0][0], scores


def _tune_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="competitors.py tune-svd",
        description="Choose the tuned Surprise SVD settings on validation splits of u{i}.base (never u{i}.test).",
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/ml-100k")
    parser.add_argument("--folds", default="1,2,3,4,5", help="comma-separated split numbers (default 1,2,3,4,5)")
    parser.add_argument("--top", type=int, default=5, help="grid points to print per fold")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        for number in args.folds.split(","):
            base = read_movielens_fold(args.data, f"u{number.strip()}")
            # the test file is read by the helper but dropped here: tuning sees training ratings only
            empty = base.test_ratings[:0]
            fold = replace(base, test_users=base.test_users[:0], test_items=base.test_items[:0], test_ratings=empty)
            best, scores = select_svd_params(fold)
            print(f"## {fold.name}.base: best {_format_params(best)}")
            print("| n_factors | n_epochs | lr_all | reg_all | validation RMSE |")
            print("|---|---|---|---|---|")
            for params, rmse in scores[: args.top]:
                print(f"| {' | '.join(str(params[k]) for k in SURPRISE_SVD_GRID)} | {rmse:.4f} |")
            ranked = [params for params, _ in scores]
            if SURPRISE_SVD_TUNED in ranked:
                rank = ranked.index(SURPRISE_SVD_TUNED)
                print(f"SURPRISE_SVD_TUNED: validation RMSE {scores[rank][1]:.4f}, rank {rank + 1} of {len(scores)}")
            print()
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["tune-svd"]:
        sys.exit("usage: python benchmarks/competitors.py tune-svd [--data DIR] [--folds 1,2,3,4,5]")
    sys.exit(_tune_main(sys.argv[2:]))
