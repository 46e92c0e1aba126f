"""Splitting ratings for evaluation: hold-out, k-fold, predefined folds.

Every split returns :class:`~factorise.data.Ratings` subsets that share the
id maps of the input (so they can be joined again with
:func:`factorise.data.concatenate`) and keep the input's order within each
part.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from factorise._validation import check_random_state
from factorise.data import IdMap, Ratings

__all__ = ["train_test_split", "KFold", "PredefinedFolds", "movielens_folds"]


def as_ratings(data: Any, name: str = "ratings") -> Ratings:
    """Return ``data`` if it is a :class:`Ratings`, else read it with ``factorise.data.as_ratings``."""
    if isinstance(data, Ratings):
        return data
    try:
        from factorise.data import as_ratings as _read  # the readers; imported late
    except ImportError:
        raise TypeError(f"`{name}` must be a factorise.data.Ratings; got {type(data).__name__}") from None
    return _read(data)


def _is_integer(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _check_test_size(test_size: object) -> float | int:
    """A fraction in (0, 1) as float, or a count >= 1 as int."""
    rule = "`test_size` must be a fraction with 0 < test_size < 1 or an integer count >= 1"
    if _is_integer(test_size):
        if int(test_size) < 1:  # type: ignore[call-overload]
            raise ValueError(f"{rule}; got {test_size!r}")
        return int(test_size)  # type: ignore[call-overload]
    if not isinstance(test_size, numbers.Real) or isinstance(test_size, (bool, np.bool_)):
        raise TypeError(f"{rule}; got {test_size!r} of type {type(test_size).__name__}")
    value = float(test_size)
    if not (math.isfinite(value) and 0 < value < 1):
        raise ValueError(f"{rule}; got {test_size!r}")
    return value


def _round_half_up(x: np.ndarray | float) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def train_test_split(
    ratings: Any,
    test_size: float | int = 0.2,
    *,
    by_user: bool = False,
    random_state: Any = None,
) -> tuple[Ratings, Ratings]:
    """Split ratings at random into a training and a test part.

    Parameters
    ----------
    ratings : Ratings
        The ratings to split.
    test_size : float or int, default 0.2
        A fraction ``0 < test_size < 1`` of the ratings, or a number of
        ratings (an integer ``>= 1``). With ``by_user=True`` it applies to
        each user separately.
    by_user : bool, default False
        ``False``: draw the test ratings uniformly from all ratings (a user
        may then land wholly in the test part, as a cold-start user).
        ``True``: split every user's ratings in the given proportion (or
        count), rounding half up, and always keep at least one of a user's
        ratings in training; users with a single rating stay in training.
        ``test_size=1, by_user=True`` is leave-one-out.
    random_state : None, int or numpy.random.Generator
        Seed of the draw.

    Returns
    -------
    train, test : Ratings
        Disjoint subsets covering ``ratings``, in their original order,
        sharing its id maps.

    Raises
    ------
    ValueError
        If ``test_size`` is out of range, or would leave either part empty.
    """
    ratings = as_ratings(ratings)
    size = _check_test_size(test_size)
    if not isinstance(by_user, (bool, np.bool_)):
        raise TypeError(f"`by_user` must be True or False; got {by_user!r}")
    rng = check_random_state(random_state)
    n = len(ratings)
    is_test = np.zeros(n, dtype=bool)
    if not by_user:
        n_test = int(_round_half_up(size * n)) if isinstance(size, float) else size
        if not 1 <= n_test <= n - 1:
            raise ValueError(
                f"`test_size` must leave at least one rating in each part; test_size={test_size!r} "
                f"of {n} ratings gives {n_test} test ratings"
            )
        is_test[rng.choice(n, size=n_test, replace=False)] = True
    else:
        users = ratings.users
        counts = np.bincount(users, minlength=ratings.n_users)
        wanted = _round_half_up(size * counts) if isinstance(size, float) else np.full_like(counts, size)
        n_test_user = np.clip(wanted, 0, np.maximum(counts - 1, 0))
        # a random order of each user's ratings: shuffle, then group by user (stable)
        perm = rng.permutation(n)
        order = perm[np.argsort(users[perm], kind="stable")]
        starts = np.zeros(ratings.n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=starts[1:])
        sorted_users = users[order]
        rank_in_user = np.arange(n) - starts[sorted_users]
        is_test[order] = rank_in_user < n_test_user[sorted_users]
        if not is_test.any():
            raise ValueError(
                f"`test_size={test_size!r}` with by_user=True puts no rating in the test part "
                f"({n} ratings, at most {int(counts.max())} per user); use a larger test_size"
            )
    return ratings.subset(np.flatnonzero(~is_test)), ratings.subset(np.flatnonzero(is_test))


class KFold:
    """K-fold cross-validation over ratings: each rating is tested exactly once.

    The ratings are dealt into ``n_splits`` folds of sizes differing by at
    most one (the first ``n % n_splits`` folds get the extra rating); fold
    ``f`` is the test part of split ``f`` and the others its training part.

    Parameters
    ----------
    n_splits : int, default 5
        Number of folds, ``>= 2`` (and at most the number of ratings).
    shuffle : bool, default True
        Deal the ratings at random. ``False`` makes consecutive blocks in the
        input order (``random_state`` is then unused).
    random_state : None, int or numpy.random.Generator
        Seed of the shuffle, resolved once per :meth:`split` call: an integer
        gives the same folds on every call, a ``Generator`` advances.

    Examples
    --------
    >>> for train, test in KFold(5, random_state=0).split(ratings):  # doctest: +SKIP
    ...     model.clone().fit(train)
    """

    def __init__(self, n_splits: int = 5, *, shuffle: bool = True, random_state: Any = None) -> None:
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state

    def __repr__(self) -> str:
        return (
            f"KFold(n_splits={self.n_splits!r}, shuffle={self.shuffle!r}, "
            f"random_state={self.random_state!r})"
        )

    def get_n_splits(self) -> int:
        """The number of (train, test) pairs :meth:`split` yields."""
        return self._check_n_splits()

    def _check_n_splits(self) -> int:
        rule = "`n_splits` must be an integer >= 2"
        if not _is_integer(self.n_splits):
            raise TypeError(f"{rule}; got {self.n_splits!r} of type {type(self.n_splits).__name__}")
        if int(self.n_splits) < 2:
            raise ValueError(f"{rule}; got {self.n_splits!r}")
        return int(self.n_splits)

    def split(self, ratings: Any) -> Iterator[tuple[Ratings, Ratings]]:
        """Yield ``(train, test)`` for each fold, in fold order.

        Parameters
        ----------
        ratings : Ratings

        Yields
        ------
        train, test : Ratings
            Subsets in the input's order, sharing its id maps.

        Raises
        ------
        ValueError
            If there are fewer ratings than folds.
        """
        ratings = as_ratings(ratings)
        k = self._check_n_splits()
        if not isinstance(self.shuffle, (bool, np.bool_)):
            raise TypeError(f"`shuffle` must be True or False; got {self.shuffle!r}")
        n = len(ratings)
        if n < k:
            raise ValueError(f"`n_splits` must be at most the number of ratings ({n}); got {k}")
        order = check_random_state(self.random_state).permutation(n) if self.shuffle else np.arange(n)
        sizes = np.full(k, n // k, dtype=np.int64)
        sizes[: n % k] += 1
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        fold_of = np.empty(n, dtype=np.int64)
        for f in range(k):
            fold_of[order[bounds[f] : bounds[f + 1]]] = f
        for f in range(k):
            in_test = fold_of == f
            yield ratings.subset(np.flatnonzero(~in_test)), ratings.subset(np.flatnonzero(in_test))


class PredefinedFolds:
    """A fixed list of ``(train, test)`` pairs, such as MovieLens u1-u5.

    Iterating yields the pairs; :func:`factorise.evaluation.cross_validate`
    accepts it as ``cv`` (with ``data=None``).

    Parameters
    ----------
    folds : iterable of (Ratings, Ratings)
        The pairs, at least one. Train and test of a pair need not share id
        maps: models match them by raw id.
    """

    def __init__(self, folds: Iterable[tuple[Ratings, Ratings]]) -> None:
        pairs = []
        for f, pair in enumerate(folds):
            if not (
                isinstance(pair, tuple)
                and len(pair) == 2
                and isinstance(pair[0], Ratings)
                and isinstance(pair[1], Ratings)
            ):
                raise TypeError(
                    f"`folds` must hold (train, test) pairs of Ratings; fold {f} is {type(pair).__name__}"
                    + (f" of length {len(pair)}" if isinstance(pair, tuple) else "")
                )
            pairs.append(pair)
        if not pairs:
            raise ValueError("`folds` must hold at least one (train, test) pair; got none")
        self.folds: tuple[tuple[Ratings, Ratings], ...] = tuple(pairs)

    def __iter__(self) -> Iterator[tuple[Ratings, Ratings]]:
        return iter(self.folds)

    def __len__(self) -> int:
        return len(self.folds)

    def __getitem__(self, index: int) -> tuple[Ratings, Ratings]:
        return self.folds[index]

    def get_n_splits(self) -> int:
        """The number of pairs."""
        return len(self.folds)

    def __repr__(self) -> str:
        return f"PredefinedFolds({len(self.folds)} folds)"


def share_id_maps(train: Ratings, test: Ratings) -> tuple[Ratings, Ratings]:
    """Re-index ``train`` and ``test`` onto common id maps (the union of their ids)."""
    if train.user_ids is test.user_ids and train.item_ids is test.item_ids:
        return train, test
    maps = []
    for attr in ("user_ids", "item_ids"):
        a, b = getattr(train, attr), getattr(test, attr)
        if a == b:
            maps.append(a)
        else:
            maps.append(IdMap(np.unique(np.concatenate([a.ids, b.ids]))))
    user_map, item_map = maps

    def reindex(r: Ratings) -> Ratings:
        return Ratings(
            user_map.index(r.raw_users).astype(np.int32),
            item_map.index(r.raw_items).astype(np.int32),
            r.values,
            user_map,
            item_map,
            r.timestamps,
            r.source,
        )

    return reindex(train), reindex(test)


def movielens_folds(
    directory: str | Path,
    *,
    names: Sequence[str] = ("u1", "u2", "u3", "u4", "u5"),
) -> PredefinedFolds:
    """The predefined MovieLens 100K folds ``u1.base/u1.test`` ... ``u5.base/u5.test``.

    The five test sets of u1-u5 are disjoint and together hold every rating
    (a 5-fold cross-validation fixed by GroupLens, so results compare across
    papers). ``names=("ua", "ub")`` gives the two splits with exactly 10 test
    ratings per user instead.

    Parameters
    ----------
    directory : str or Path
        Folder holding the files (the unpacked ``ml-100k``).
    names : sequence of str, default ("u1", ..., "u5")
        File stems; fold ``name`` reads ``name.base`` (train) and
        ``name.test`` (test).

    Returns
    -------
    PredefinedFolds
        One pair per name; each pair shares its id maps.

    Raises
    ------
    FileNotFoundError
        If a file is missing (the message names it).
    """
    from factorise.data import read_ratings  # the reader; imported late

    directory = Path(directory)
    pairs = []
    for name in names:
        parts = []
        for suffix in ("base", "test"):
            path = directory / f"{name}.{suffix}"
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path}: no such file; `directory` must hold the MovieLens 100K files "
                    f"{', '.join(f'{n}.base/{n}.test' for n in names)}"
                )
            parts.append(read_ratings(path, sep="\t"))
        pairs.append(share_id_maps(parts[0], parts[1]))
    return PredefinedFolds(pairs)
