"""Planted low-rank rating data with a Netflix-like shape, for scale work.

:func:`synthetic_ratings` draws a rating data set whose best achievable
RMSE is known: every rating is

    r_ui = mean + bu[u] + bi[i] + P[u] . Q[i] + e_ui,    e_ui ~ N(0, noise^2),

independently, so on held-out ratings the true matrix scores an expected
squared error of ``noise**2`` and no predictor can do better in expectation
(the noise is independent of everything it could see). Ratings are
continuous: not rounded to stars and, unless ``clip`` is given, not clipped.

Which (user, item) pairs are observed follows Netflix's shape: a few heavy
users and blockbuster items, a long tail. Users and items get Zipf-Mandelbrot
popularity weights: the one of popularity rank ``r`` (1 = most popular; the
ranks are randomly assigned to the ids) weighs ``(r + c * n) ** -a``, a power
law with exponent ``a`` whose head is flattened over the first ``c * n``
ranks (``c = 0``: plain Zipf). The number of ratings of each user is
multinomial in those weights, capped at ``n_items`` (the overflow is drawn
again among users with room), so the counts sum to exactly ``n_ratings``. Each user's items are then a weighted
sample *without replacement* from the item weights (successive sampling: each
next item drawn in proportion to its weight among the items the user has not
rated yet), so every pair is distinct. Heavy users therefore flatten the item
popularity a little: a user who rates nearly every item rates the tail too.

The sampling is done by a compiled kernel, per user: rejection sampling
(draw by inverse CDF with a guide table, redraw an item already taken) while
the user's sample is small, and the Efraimidis-Spirakis method (keep the
smallest ``Exp(1) / weight`` keys among the items not yet taken) for heavy
users or when rejection stalls; both produce the same distribution. The
kernels draw from SplitMix64 streams seeded from the caller's generator, so
the same seed gives the same bytes.

:func:`write_ratings` writes any :class:`~factorise.data.Ratings` as Parquet
or CSV with the columns ``user,item,rating``, atomically, for
:func:`factorise.data.read_ratings` to read back.

Cost: linear in ``n_ratings``. The result takes 12 bytes per rating (int32
user, int32 item, float32 rating); the scratch of the split adds a little,
so the peak is about 14 bytes per rating: Netflix's size (480,189 users,
17,770 items, 100 million ratings) took 22 s on one core with a peak
resident size of 1.4 GB (1.5 GB for ``factorise synth``, which also writes
the Parquet files in 7 s).
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from factorise._validation import check_random_state, check_rank
from factorise.data import IdMap, Ratings
from factorise.io import atomic_write
from factorise.kernels.ratings import predict_pairs
from factorise.kernels.synthetic import inverse_cdf_tables, sample_items, select_positions

__all__ = ["SyntheticRatings", "held_out_path", "synthetic_ratings", "write_ratings"]

logger = logging.getLogger(__name__)

#: Ratings per block when computing values (bounds the scratch memory).
_CHUNK = 1 << 20
_INT32_MAX = int(np.iinfo(np.int32).max)
_MAX_EXPONENT = 10.0
_PARQUET_SUFFIXES = frozenset({".parquet", ".pq", ".parq"})
_CSV_SUFFIXES = frozenset({".csv", ".txt"})
_COMPRESSED_SUFFIXES = frozenset({".gz", ".bz2", ".zst", ".lz4", ".br", ".xz"})


# ---------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SyntheticRatings:
    """Planted rating data and the model that generated it.

    Attributes
    ----------
    train : Ratings
        The training ratings, sorted by user then item. Raw ids are the
        indices ``0 .. n - 1``.
    test : Ratings or None
        The held-out ratings (``test_fraction`` of the pairs, chosen uniformly
        at random), sharing the id maps of ``train``; ``None`` when
        ``test_fraction`` is 0. A held-out user or item may have no training
        rating.
    noise : float
        Standard deviation of the Gaussian noise: the best achievable
        expected RMSE on held-out ratings (with ``clip``, an upper bound on
        it; see :func:`synthetic_ratings`).
    test_truth_rmse : float or None
        The RMSE of the true matrix (:meth:`truth`, clipped when ``clip`` is
        set) on the held-out ratings: a sample estimate of the floor
        ``noise``. ``None`` without held-out ratings.
    mean : float
        The global mean.
    user_bias, item_bias : numpy.ndarray of float32
        The planted biases.
    user_factors, item_factors : numpy.ndarray of float32
        The planted factors, shapes ``(n_users, rank)`` and ``(n_items, rank)``.
    user_popularity, item_popularity : numpy.ndarray of float64
        The popularity weights the pairs were drawn with, each summing to 1.
    user_counts, item_counts : numpy.ndarray of int64
        Ratings per user and per item, training and held-out together.
    clip : tuple of float or None
        The range the ratings were clipped to, if any.
    """

    train: Ratings
    test: Ratings | None
    noise: float
    test_truth_rmse: float | None
    mean: float
    user_bias: np.ndarray
    item_bias: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    user_popularity: np.ndarray
    item_popularity: np.ndarray
    user_counts: np.ndarray
    item_counts: np.ndarray
    clip: tuple[float, float] | None = None

    @property
    def n_users(self) -> int:
        """Number of users (with or without ratings)."""
        return int(self.user_factors.shape[0])

    @property
    def n_items(self) -> int:
        """Number of items (with or without ratings)."""
        return int(self.item_factors.shape[0])

    @property
    def rank(self) -> int:
        """Rank of the planted factors."""
        return int(self.user_factors.shape[1])

    @property
    def n_ratings(self) -> int:
        """Training plus held-out ratings."""
        return len(self.train) + (0 if self.test is None else len(self.test))

    def truth(self, users: Any, items: Any) -> np.ndarray:
        """The noiseless ratings ``mean + bu[u] + bi[i] + P[u] . Q[i]`` (never clipped).

        Parameters
        ----------
        users, items : array_like of int
            User and item indices (equal to the raw ids), of one length.

        Returns
        -------
        numpy.ndarray of float64
        """
        users = np.asarray(users)
        items = np.asarray(items)
        if users.shape != items.shape or users.ndim != 1:
            raise ValueError(f"`users` and `items` must be 1-D of one length; got shapes {users.shape}, {items.shape}")
        for name, index, size in (
            ("users", users, self.n_users),
            ("items", items, self.n_items),
        ):
            if index.dtype.kind not in "iu":
                raise TypeError(f"`{name}` must hold integer indices; got dtype {index.dtype}")
            if index.size and (int(index.min()) < 0 or int(index.max()) >= size):
                raise ValueError(
                    f"`{name}` must hold indices in [0, {size}); got {int(index.min())}..{int(index.max())}"
                )
        out = np.empty(users.shape[0], dtype=np.float64)
        predict_pairs(
            users.astype(np.int32),
            items.astype(np.int32),
            float(self.mean),
            self.user_bias,
            self.item_bias,
            self.user_factors,
            self.item_factors,
            out,
        )
        return out

    def summary(self) -> dict[str, Any]:
        """Counts and floors for reports: a JSON-ready dict."""
        return {
            "n_users": self.n_users,
            "n_items": self.n_items,
            "rank": self.rank,
            "n_ratings": self.n_ratings,
            "n_train": len(self.train),
            "n_test": 0 if self.test is None else len(self.test),
            "noise": self.noise,
            "test_truth_rmse": self.test_truth_rmse,
            "users_with_ratings": int(np.count_nonzero(self.user_counts)),
            "items_with_ratings": int(np.count_nonzero(self.item_counts)),
            "max_user_ratings": int(self.user_counts.max()),
            "max_item_ratings": int(self.item_counts.max()),
            "clip": None if self.clip is None else list(self.clip),
        }

    def __repr__(self) -> str:
        return (
            f"SyntheticRatings({self.n_ratings} ratings, {self.n_users} users, {self.n_items} items, "
            f"rank {self.rank}, noise {self.noise:g})"
        )


# ---------------------------------------------------------------------------
# Validation (once, at the boundary)
# ---------------------------------------------------------------------------


def _check_count(value: object, name: str, low: int, high: int) -> int:
    rule = f"`{name}` must be an integer with {low} <= {name} <= {high}"
    if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{rule}; got {value!r} of type {type(value).__name__}")
    value = int(value)
    if not low <= value <= high:
        raise ValueError(f"{rule}; got {value}")
    return value


def _check_real(value: object, name: str, rule: str, ok: Any) -> float:
    message = f"`{name}` must be {rule}"
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{message}; got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and ok(value)):
        raise ValueError(f"{message}; got {value!r}")
    return value


def _check_pair(value: object, name: str, rule: str, ok: Any) -> tuple[float, float]:
    """A number, or a (users, items) pair of numbers."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"`{name}` must be a number or a (users, items) pair; got {value!r}")
        return (
            _check_real(value[0], f"{name}[0]", rule, ok),
            _check_real(value[1], f"{name}[1]", rule, ok),
        )
    number = _check_real(value, name, rule, ok)
    return number, number


def _check_clip(clip: object) -> tuple[float, float] | None:
    if clip is None:
        return None
    rule = "`clip` must be None or a (low, high) pair of finite numbers with low < high"
    if not isinstance(clip, (tuple, list)) or len(clip) != 2:
        raise TypeError(f"{rule}; got {clip!r}")
    low = _check_real(clip[0], "clip[0]", "a finite number", lambda v: True)
    high = _check_real(clip[1], "clip[1]", "a finite number", lambda v: True)
    if not low < high:
        raise ValueError(f"{rule}; got {clip!r}")
    return low, high


def _n_test(test_fraction: float, n_ratings: int) -> int:
    if test_fraction == 0:
        return 0
    n_test = round(test_fraction * n_ratings)
    if not 1 <= n_test <= n_ratings - 1:
        raise ValueError(
            f"`test_fraction` * n_ratings must round to between 1 and n_ratings - 1 = {n_ratings - 1} held-out "
            f"ratings (so that both parts are non-empty); got {test_fraction!r} * {n_ratings} = "
            f"{test_fraction * n_ratings:g}"
        )
    return n_test


# ---------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------


def synthetic_ratings(
    n_users: int,
    n_items: int,
    n_ratings: int,
    rank: int,
    noise: float,
    *,
    random_state: Any = None,
    popularity_exponent: float | tuple[float, float] = (0.7, 1.5),
    popularity_offset: float | tuple[float, float] = (0.0, 0.006),
    test_fraction: float = 0.0,
    mean: float = 3.5,
    signal_std: float = 1.0,
    bias_std: float | tuple[float, float] = (0.3, 0.4),
    clip: tuple[float, float] | None = None,
) -> SyntheticRatings:
    """Planted low-rank ratings with power-law popularity and a known RMSE floor.

    Each rating is ``mean + bu[u] + bi[i] + P[u] . Q[i] + e`` with
    ``e ~ N(0, noise**2)`` independent: continuous, never rounded. The
    factors have i.i.d. normal entries of mean 0 and variance
    ``signal_std / sqrt(rank)``, so the interaction ``P[u] . Q[i]`` has
    standard deviation ``signal_std`` at any rank; the biases are
    ``N(0, bias_std**2)``. The observed pairs are distinct, exactly
    ``n_ratings`` of them, drawn with power-law user and item popularity
    (see the module notes).

    Parameters
    ----------
    n_users, n_items : int
        Numbers of users and items, each in ``[1, 2**31 - 1]``. Some may end
        up with no rating (the tail of the popularity law).
    n_ratings : int
        Number of distinct (user, item) pairs, training plus held-out;
        ``1 <= n_ratings <= n_users * n_items``.
    rank : int
        Rank of the planted interaction, ``1 <= rank <= min(n_users, n_items)``.
    noise : float
        Standard deviation of the rating noise, ``>= 0``: the best achievable
        expected RMSE on held-out ratings.
    random_state : None, int or numpy.random.Generator, optional
        Seed; the same seed gives identical arrays (and files).
    popularity_exponent : float or (float, float), optional
        Exponent ``a`` of the popularity weights ``(rank + c * n) ** -a``,
        one for both or ``(users, items)``; each in ``[0, 10]``, 0 meaning
        uniform.
    popularity_offset : float or (float, float), optional
        Head flattening ``c >= 0`` of the popularity weights, as a fraction
        of the number of users or items; one for both or ``(users, items)``.
        0 gives plain Zipf, ``rank ** -a``. The defaults, exponents
        ``(0.7, 1.5)`` and offsets ``(0, 0.006)``, give Netflix-like shapes
        at Netflix's size and density (480,189 users, 17,770 items, 100M
        ratings): a median user with about 110 ratings and a mean of 208
        (Netflix: about 100 and 209), about 160 users who rate every item,
        and a most-rated item that about half the users rate, a quarter of
        a percent of the ratings (Netflix: 48 %, 0.23 %). The item tail is
        shorter than Netflix's, as the heavy users rate it.
    test_fraction : float, optional
        Fraction of the pairs held out, in ``[0, 1)``; the count is
        ``round(test_fraction * n_ratings)`` exactly, chosen uniformly at
        random among the pairs.
    mean : float, optional
        Global mean rating.
    signal_std : float, optional
        Standard deviation of ``P[u] . Q[i]``, ``> 0``.
    bias_std : float or (float, float), optional
        Standard deviation of the user and item biases, ``>= 0``; one for
        both or ``(users, items)``.
    clip : (float, float), optional
        Clip the ratings (not the truth) to ``[low, high]``. Off by default.
        Clipped ratings are no longer truth plus Gaussian noise. As clipping
        never lengthens a distance (``|clip(r) - clip(t)| <= |r - t|``), the
        clipped truth scores an expected RMSE of at most ``noise``: then
        ``noise`` is an upper bound on the best achievable RMSE, not its
        value.

    Returns
    -------
    SyntheticRatings
        Training and held-out :class:`~factorise.data.Ratings`, the planted
        model, the floor ``noise`` and its sample estimate ``test_truth_rmse``.

    Raises
    ------
    TypeError, ValueError
        If a parameter is out of range, naming it, the rule and the value; in
        particular if ``n_ratings > n_users * n_items`` (each pair can be
        rated only once).

    Notes
    -----
    Time and memory grow linearly with ``n_ratings``: 10 million ratings take
    about 2 s on one core; the result holds 12 bytes per rating and the peak
    about 14 (1.4 GB for 100 million ratings).
    """
    started = time.perf_counter()
    n_users = _check_count(n_users, "n_users", 1, _INT32_MAX)
    n_items = _check_count(n_items, "n_items", 1, _INT32_MAX)
    capacity = n_users * n_items
    is_integer = isinstance(n_ratings, numbers.Integral) and not isinstance(n_ratings, (bool, np.bool_))
    if is_integer and int(n_ratings) > capacity:
        raise ValueError(
            f"`n_ratings` must be <= n_users * n_items = {n_users} * {n_items} = {capacity}, as each (user, "
            f"item) pair is rated at most once; got {int(n_ratings)}"
        )
    n_ratings = _check_count(n_ratings, "n_ratings", 1, capacity)
    rank = check_rank(rank, (n_users, n_items))
    noise = _check_real(noise, "noise", "a finite number >= 0", lambda v: v >= 0)
    exp_users, exp_items = _check_pair(
        popularity_exponent,
        "popularity_exponent",
        f"a finite number with 0 <= exponent <= {_MAX_EXPONENT:g}",
        lambda v: 0 <= v <= _MAX_EXPONENT,
    )
    offset_users, offset_items = _check_pair(
        popularity_offset, "popularity_offset", "a finite number >= 0", lambda v: v >= 0
    )
    test_fraction = _check_real(
        test_fraction,
        "test_fraction",
        "a number with 0 <= test_fraction < 1",
        lambda v: 0 <= v < 1,
    )
    n_test = _n_test(test_fraction, n_ratings)
    mean = _check_real(mean, "mean", "a finite number", lambda v: True)
    signal_std = _check_real(signal_std, "signal_std", "a finite number > 0", lambda v: v > 0)
    bias_users, bias_items = _check_pair(bias_std, "bias_std", "a finite number >= 0", lambda v: v >= 0)
    clip = _check_clip(clip)
    rng = check_random_state(random_state)

    # the planted model
    scale = math.sqrt(signal_std) / rank**0.25
    user_factors = rng.standard_normal((n_users, rank), dtype=np.float32)
    user_factors *= np.float32(scale)
    item_factors = rng.standard_normal((n_items, rank), dtype=np.float32)
    item_factors *= np.float32(scale)
    user_bias = rng.standard_normal(n_users, dtype=np.float32)
    user_bias *= np.float32(bias_users)
    item_bias = rng.standard_normal(n_items, dtype=np.float32)
    item_bias *= np.float32(bias_items)

    # which pairs
    user_popularity = _popularity(n_users, exp_users, offset_users, rng)
    item_popularity = _popularity(n_items, exp_items, offset_items, rng)
    degrees = _user_degrees(n_ratings, user_popularity, n_items, rng)
    offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(degrees, out=offsets[1:])
    cdf, guide = inverse_cdf_tables(item_popularity)
    items = np.empty(n_ratings, dtype=np.int32)
    draws = sample_items(offsets, cdf, guide, item_popularity, _kernel_seed(rng), items)
    del cdf, guide
    item_counts = np.bincount(items, minlength=n_items).astype(np.int64)
    logger.info(
        "drew %d distinct pairs (%d rejection draws) in %.2f s",
        n_ratings,
        draws,
        time.perf_counter() - started,
    )

    # which pairs are held out
    split_seed = _kernel_seed(rng)
    if n_test:
        mask = np.zeros(n_ratings, dtype=bool)
        select_positions(n_test, split_seed, mask)
        test_positions = np.flatnonzero(mask)
        test_users = (np.searchsorted(offsets, test_positions, side="right") - 1).astype(np.int32)
        test_items = items[test_positions]
        del test_positions
        np.logical_not(mask, out=mask)
        train_items = items[mask]
        del items, mask
        train_counts = degrees - np.bincount(test_users, minlength=n_users)
        train_users = np.repeat(np.arange(n_users, dtype=np.int32), train_counts)
        del train_counts
    else:
        train_items = items
        train_users = np.repeat(np.arange(n_users, dtype=np.int32), degrees)
        del items

    # the ratings
    model = (float(mean), user_bias, item_bias, user_factors, item_factors)
    train_values, _ = _planted_values(train_users, train_items, model, noise, clip, rng, score=False)
    user_ids = IdMap(np.arange(n_users, dtype=np.int64))
    item_ids = IdMap(np.arange(n_items, dtype=np.int64))
    source = f"synthetic rank-{rank} ratings"
    train = Ratings(train_users, train_items, train_values, user_ids, item_ids, None, source)
    test = None
    test_truth_rmse = None
    if n_test:
        test_values, sse = _planted_values(test_users, test_items, model, noise, clip, rng, score=True)
        test = Ratings(test_users, test_items, test_values, user_ids, item_ids, None, source)
        test_truth_rmse = math.sqrt(sse / n_test)
    logger.info("generated %d ratings in %.2f s", n_ratings, time.perf_counter() - started)
    return SyntheticRatings(
        train=train,
        test=test,
        noise=noise,
        test_truth_rmse=test_truth_rmse,
        mean=float(mean),
        user_bias=user_bias,
        item_bias=item_bias,
        user_factors=user_factors,
        item_factors=item_factors,
        user_popularity=user_popularity,
        item_popularity=item_popularity,
        user_counts=degrees,
        item_counts=item_counts,
        clip=clip,
    )


def held_out_path(path: str | os.PathLike[str]) -> Path:
    """Where the held-out ratings of ``path`` go: ``.test`` before the suffix.

    ``ratings.parquet`` gives ``ratings.test.parquet``; ``ratings`` gives
    ``ratings.test``.
    """
    path = Path(path)
    return path.with_name(f"{path.stem}.test{path.suffix}")


def _file_format(path: Path, format: str | None) -> str:
    suffix = path.suffix.lower()
    if suffix in _COMPRESSED_SUFFIXES:
        raise ValueError(f"{path}: compressed output ({suffix}) is not supported; write .parquet (compressed) or .csv")
    implied = "parquet" if suffix in _PARQUET_SUFFIXES else "csv" if suffix in _CSV_SUFFIXES else None
    if format is None:
        return implied or "parquet"
    if format not in ("parquet", "csv"):
        raise ValueError(f"`format` must be 'parquet', 'csv' or None; got {format!r}")
    if implied is not None and implied != format:
        raise ValueError(f"`format` {format!r} contradicts the suffix of {path} ({suffix} means {implied})")
    return format


def write_ratings(
    ratings: Ratings,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
) -> Path:
    """Write ratings to a file with the columns ``user,item,rating`` (and ``timestamp``).

    The file appears complete or not at all (written to a temporary file
    beside it, then renamed). Raw ids are written (integers or strings);
    ratings as float32. :func:`factorise.data.read_ratings` reads the file
    back.

    Parameters
    ----------
    ratings : Ratings
        What to write.
    path : str or os.PathLike
        The destination.
    format : {"parquet", "csv"}, optional
        Parquet (Snappy-compressed, the default) or comma-separated text with
        a header line. When not given: from the suffix (``.parquet``,
        ``.pq``, ``.parq``; ``.csv``, ``.txt``), else Parquet. A format that
        contradicts the suffix is an error.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import pyarrow as pa

    if not isinstance(ratings, Ratings):
        raise TypeError(f"`ratings` must be a Ratings; got {type(ratings).__name__}")
    path = Path(path)
    chosen = _file_format(path, format)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory")
    if not path.resolve().parent.is_dir():
        raise ValueError(f"{path}: the directory {path.resolve().parent} does not exist")
    started = time.perf_counter()
    columns = {
        "user": pa.array(_raw_ids(ratings.user_ids, ratings.users)),
        "item": pa.array(_raw_ids(ratings.item_ids, ratings.items)),
        "rating": pa.array(np.asarray(ratings.values, dtype=np.float32)),
    }
    if ratings.timestamps is not None:
        columns["timestamp"] = pa.array(np.asarray(ratings.timestamps, dtype=np.int64))
    table = pa.table(columns)
    with atomic_write(path, "wb") as handle:
        if chosen == "parquet":
            from pyarrow import parquet as pq

            pq.write_table(table, handle, compression="snappy")
        else:
            from pyarrow import csv as pacsv

            handle.write((",".join(table.column_names) + "\n").encode())  # pyarrow would quote the names
            pacsv.write_csv(
                table,
                handle,
                write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"),
            )
    logger.info(
        "wrote %d ratings to %s (%s) in %.2f s",
        len(ratings),
        path,
        chosen,
        time.perf_counter() - started,
    )
    return path


def _raw_ids(id_map: IdMap, index: np.ndarray) -> np.ndarray:
    """Raw ids of ``index``; the index itself when the map is 0..n-1 (no copy)."""
    ids = id_map.ids
    n = len(id_map)
    # the ids are sorted and unique, so first 0 and last n-1 means exactly 0..n-1
    if n and ids.dtype.kind == "i" and int(ids[0]) == 0 and int(ids[-1]) == n - 1:
        return np.asarray(index)
    return id_map.raw(index)


# ---------------------------------------------------------------------------
# Host-side steps
# ---------------------------------------------------------------------------


def _kernel_seed(rng: np.random.Generator) -> np.uint64:
    """A 64-bit seed for a kernel's SplitMix64 stream, drawn from ``rng``."""
    return np.uint64(rng.integers(0, 2**64, dtype=np.uint64))


def _popularity(n: int, exponent: float, offset: float, rng: np.random.Generator) -> np.ndarray:
    """Probabilities ``∝ (rank + offset * n) ** -exponent``, ranks 1..n randomly assigned to 0..n-1."""
    ranks = rng.permutation(n).astype(np.float64)
    ranks += 1.0 + offset * n
    log_weights = np.log(ranks, out=ranks)
    log_weights *= -exponent
    log_weights -= log_weights.max()  # the largest weight is 1: no overflow, no underflow to 0 (exponent <= 10)
    weights = np.exp(log_weights, out=log_weights)
    weights /= weights.sum()
    return weights


def _user_degrees(n_ratings: int, p: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Multinomial counts summing to ``n_ratings``, each at most ``cap``.

    Counts over ``cap`` are cut to it and the overflow is drawn again,
    multinomially, among the users with room, until none overflows.
    """
    degrees = rng.multinomial(n_ratings, p).astype(np.int64)
    for _ in range(64):
        excess = int(np.maximum(degrees - cap, 0).sum())
        if excess == 0:
            return degrees
        np.minimum(degrees, cap, out=degrees)
        room = np.where(degrees < cap, p, 0.0)
        room /= room.sum()
        degrees += rng.multinomial(excess, room)
    # still overflowing after many rounds (only when nearly every pair is rated): fill in id order
    excess = int(np.maximum(degrees - cap, 0).sum())
    np.minimum(degrees, cap, out=degrees)
    space = cap - degrees
    before = np.cumsum(space) - space
    degrees += np.clip(excess - before, 0, space)
    return degrees


def _planted_values(
    users: np.ndarray,
    items: np.ndarray,
    model: tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    noise: float,
    clip: tuple[float, float] | None,
    rng: np.random.Generator,
    *,
    score: bool,
) -> tuple[np.ndarray, float]:
    """Float32 ratings truth + noise, in blocks; and (if ``score``) the sum of squared errors of the truth."""
    mean, user_bias, item_bias, user_factors, item_factors = model
    n = users.shape[0]
    values = np.empty(n, dtype=np.float32)
    truth = np.empty(min(n, _CHUNK), dtype=np.float64)
    rating = np.empty_like(truth)
    sse = 0.0
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        m = stop - start
        t, r = truth[:m], rating[:m]
        predict_pairs(
            users[start:stop],
            items[start:stop],
            mean,
            user_bias,
            item_bias,
            user_factors,
            item_factors,
            t,
        )
        eps = rng.standard_normal(m, dtype=np.float32)
        np.multiply(eps, noise, out=r)
        r += t
        if clip is not None:
            np.clip(r, clip[0], clip[1], out=r)
            np.clip(t, clip[0], clip[1], out=t)
        values[start:stop] = r
        if score:
            r[:] = values[start:stop]  # the stored float32 rating
            r -= t
            sse += float(np.dot(r, r))
    return values, sse
