"""Grid and schedule of block-parallel SGD (FPSGD), on the Python side.

The compiled sweeps are in :mod:`factorise.kernels.sgd_blocks`; this module
decides what they run on:

* :func:`make_grid` (once per fit) assigns users to ``n_blocks`` row blocks
  and items to ``n_blocks`` column blocks at random, balanced so that the
  popular users and items spread evenly over the blocks (and in runs of
  consecutive ids that share a cache line), and copies the ratings into
  block order (12 bytes a rating in float32, plus a visiting order of 2
  bytes a rating while blocks hold at most 65,536 ratings, and
  ``n_blocks ** 2 + 1`` offsets), so that each block is contiguous;
* :func:`draw_epoch` (once per epoch) draws the seeds of the per-block
  shuffles and the schedule, a random Latin square: round ``r`` runs block
  ``(i, sigma((tau(i) + rho(r)) mod n_blocks))`` for every row block ``i``, so
  the blocks of a round share no row block and no column block, and every
  block runs exactly once an epoch;
* :func:`sgd_blocks_sweep` runs one epoch (shuffle, then the rounds) on
  ``n_threads`` threads.

The result depends on the random generator and on ``n_blocks``, never on the
number of threads: the blocks of a round touch disjoint users and items, and
every random draw is made here, on the host, in a fixed order (see
:func:`make_grid` and :func:`draw_epoch`).

:func:`resolve_n_blocks` and :func:`use_blocks` hold the rules for the number
of blocks and for falling back to the serial sweep on small data.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import numpy as np

from factorise._pages import empty_streamed
from factorise._threads import parallel_section
from factorise.kernels.grouping import group_chunk_starts, group_fill_chunked
from factorise.kernels.sgd_blocks import (
    block_keys,
    block_offsets,
    count_units,
    group_by_block,
    reset_index,
    scatter_by_block,
    scatter_chunks,
    shuffle_sgd_blocks_epoch,
)

__all__ = [
    "DEFAULT_N_BLOCKS",
    "MAX_N_BLOCKS",
    "MIN_BLOCK_RATINGS",
    "UNIT",
    "UNIT_MIN_PER_BLOCK",
    "BlockGrid",
    "assign_blocks",
    "assign_from_counts",
    "block_unit",
    "build_grid",
    "draw_epoch",
    "latin_schedule",
    "make_grid",
    "resolve_n_blocks",
    "sgd_blocks_sweep",
    "use_blocks",
]

DEFAULT_N_BLOCKS = 8
"""Fewest blocks per side when ``n_blocks`` is not given (see :func:`resolve_n_blocks`)."""

DATA_N_BLOCKS = 32
"""Most blocks per side that the data alone asks for when ``n_blocks`` is not given."""

BLOCK_TARGET_RATINGS = 8192
"""Ratings per block the default ``n_blocks`` aims at: about 100 KB of ratings, with its rows, in a core's L2."""

BLOCK_ROW_BYTES = 512 * 1024
"""Bytes of factor rows (a row block's users plus a column block's items) the default ``n_blocks`` aims at."""

MAX_N_BLOCKS = 1024
"""Largest ``n_blocks``: an epoch runs ``n_blocks`` rounds and keeps ``n_blocks ** 2`` offsets and seeds."""

UNIT = 16
"""Users (items) with consecutive ids that share a block: 64 bytes of float32 biases, a cache line."""

UNIT_MIN_PER_BLOCK = 2
"""Units of :data:`UNIT` ids per block needed before ids are grouped into units at all."""

MIN_BLOCK_RATINGS = 2_000
"""Fewest ratings per block, on average, for which the block sweep is used (see :func:`use_blocks`)."""


@dataclasses.dataclass(frozen=True)
class BlockGrid:
    """Users and items cut into blocks, and a copy of the ratings grouped by block.

    Attributes
    ----------
    n_blocks : int
        Blocks per side; block ``(I, J)`` has id ``I * n_blocks + J``.
    row_block : numpy.ndarray of int32, shape (n_users,)
        Row block of each user.
    col_block : numpy.ndarray of int32, shape (n_items,)
        Column block of each item.
    users, items : numpy.ndarray of int32, shape (n_ratings,)
        User and item index of the ratings, grouped by block: block ``b`` is
        ``[block_ptr[b], block_ptr[b + 1])`` (ascending positions within a block).
    values : numpy.ndarray, shape (n_ratings,)
        The ratings in the same order, in the dtype asked of :func:`make_grid`.
    index : numpy.ndarray of uint16 (uint32 or int64 for blocks beyond 65,536 or 2**32 ratings)
        Visiting order: offsets within each block; block ``b`` visits
        ``block_ptr[b] + index[block_ptr[b]:block_ptr[b + 1]]``. Shuffled in
        place within each block by every :func:`sgd_blocks_sweep`.
    block_ptr : numpy.ndarray of int64, shape (n_blocks ** 2 + 1,)
        Offsets of the blocks.
    copied : bool, default True
        False for the lean layout of ``make_grid(copy=False)``: ``users``,
        ``items`` and ``values`` are the caller's arrays, in the caller's
        order, and ``index`` holds positions into them (int32, int64 beyond
        ``2**31 - 1`` ratings) grouped by block: block ``b`` visits
        ``index[block_ptr[b]:block_ptr[b + 1]]``.
    """

    n_blocks: int
    row_block: np.ndarray
    col_block: np.ndarray
    users: np.ndarray
    items: np.ndarray
    values: np.ndarray
    index: np.ndarray
    block_ptr: np.ndarray
    copied: bool = True

    @property
    def block_sizes(self) -> np.ndarray:
        """Ratings per block, shape ``(n_blocks, n_blocks)``."""
        return np.diff(self.block_ptr).reshape(self.n_blocks, self.n_blocks)


def resolve_n_blocks(
    n_blocks: object, n_threads: int, n_ratings: int | None = None, row_bytes: int | None = None
) -> int:
    """Check ``n_blocks`` against ``n_threads``; ``None`` picks a number from the data and the threads.

    ``None`` gives ``max(DEFAULT_N_BLOCKS, 2 * n_threads, min(DATA_N_BLOCKS,
    isqrt(n_ratings // BLOCK_TARGET_RATINGS)))`` (at most
    :data:`MAX_N_BLOCKS`; without ``n_ratings`` the data term is left out):
    8 blocks a side up to about 0.5M ratings, then more, up to 32 from 8.4M
    ratings on. With ``row_bytes`` (the bytes of all user and item factor
    rows) the data term is at least ``ceil(row_bytes / BLOCK_ROW_BYTES)``,
    so that the rows one block touches fit in 512 KiB, but never more than
    ``isqrt(n_ratings // MIN_BLOCK_RATINGS)`` (the block sweep's threshold):
    on the Netflix shape at rank 32 that is 122 blocks a side, where 32 left
    a block's rows at 1.9 MB and the copy of the ratings bought nothing (the
    fit took 11.9 s with 32 blocks, 9.2 s with 128; the README's scale section). Since the sweep reads each block's ratings from a contiguous
    copy, smaller blocks keep the block's ratings and its users' and items'
    rows in the core's L2 cache: on 9M ratings, rank 32, 10 epochs, one
    thread, a fit took 3.79 s with 8 blocks, 2.61 s with 16 and 2.58 s with 32
    (held-out RMSE 0.6186, 0.6171, 0.6170).

    A round runs ``n_blocks`` blocks on ``n_threads`` threads and ends when
    its slowest thread ends. With about two blocks a thread, a thread that
    drew a large block is evened out by its other one, and smaller blocks keep
    the factor rows they touch in cache; more blocks cost one parallel loop
    start per round (``n_blocks`` rounds an epoch) and make each block's
    share of the heaviest users and items larger. (LibMF, whose scheduler
    hands a free block to each thread that finishes one, asks for more than
    ``2 * n_threads`` blocks so that a free one exists; rounds need no
    spare.) On 2 threads, 5M ratings, rank 32, 2, 4, 8 and 16 blocks ran an
    epoch in 314, 308, 295 and 347 ms. The default is the same for up to
    ``DEFAULT_N_BLOCKS // 2`` threads (16 from 8.4M ratings on), so that a
    fit gives the same model with any such ``n_threads``.

    Parameters
    ----------
    n_blocks : int or None
        The caller's value: an integer with
        ``n_threads <= n_blocks <= MAX_N_BLOCKS``, or ``None``.
    n_threads : int
        Threads the sweep will run on (already checked).
    n_ratings : int, optional
        Training ratings, for the default.
    row_bytes : int, optional
        Bytes of the user and item factors, for the default (with ``n_ratings``).

    Returns
    -------
    int
        Blocks per side.

    Raises
    ------
    TypeError
        If ``n_blocks`` is not an integer or ``None``.
    ValueError
        If ``n_blocks`` is out of range, in particular smaller than ``n_threads``.
    """
    if n_blocks is None:
        data = 0
        if n_ratings is not None:
            data = min(DATA_N_BLOCKS, math.isqrt(int(n_ratings) // BLOCK_TARGET_RATINGS))
            if row_bytes is not None:
                rows = -(-int(row_bytes) // BLOCK_ROW_BYTES)
                data = max(data, min(rows, math.isqrt(int(n_ratings) // MIN_BLOCK_RATINGS)))
        return min(MAX_N_BLOCKS, max(DEFAULT_N_BLOCKS, 2 * int(n_threads), data))
    rule = f"`n_blocks` must be None or an integer with 1 <= n_blocks <= {MAX_N_BLOCKS}"
    if not isinstance(n_blocks, numbers.Integral) or isinstance(n_blocks, (bool, np.bool_)):
        raise TypeError(f"{rule}; got {n_blocks!r} of type {type(n_blocks).__name__}")
    n_blocks = int(n_blocks)
    if not 1 <= n_blocks <= MAX_N_BLOCKS:
        raise ValueError(f"{rule}; got {n_blocks}")
    if n_threads > n_blocks:
        raise ValueError(
            f"more threads than blocks: `n_threads` ({n_threads}) must be <= `n_blocks` ({n_blocks}), "
            f"since a round runs n_blocks blocks at once and extra threads would idle; pass "
            f"n_blocks >= {n_threads} (or None for {resolve_n_blocks(None, n_threads)}) or n_threads <= {n_blocks}"
        )
    return n_blocks


def use_blocks(n_ratings: int, n_blocks: int) -> bool:
    """Whether the block sweep should replace the serial one.

    The block sweep pays about 1 ms an epoch on more than one thread
    (entering :func:`factorise._threads.parallel_section` and starting
    ``n_blocks`` parallel loops) and needs enough ratings per block for the
    threads to have work. Measured on 2 cores at rank 32, 8 blocks, 2 threads
    (epoch time, serial sweep with its permutation vs block sweep): 10 000
    ratings 0.3 vs 1.5 ms, 30 000 0.8 vs 2.0 ms, 100 000 3.4 vs 3.0 ms,
    300 000 17.6 vs 8.9 ms, 1M 85 vs 33 ms, 5M 872 vs 295 ms. On one
    thread the block sweep was never slower from 30 000 ratings on (it
    shuffles an int32 index in place instead of drawing an int64
    permutation). The rule: blocks hold at least :data:`MIN_BLOCK_RATINGS`
    ratings on average, ``n_ratings >= MIN_BLOCK_RATINGS * n_blocks ** 2``
    (128 000 ratings at the default 8 blocks). It depends on the data and
    ``n_blocks`` only, not on the thread count, so that a fit gives the same
    model with any ``n_threads``.

    Parameters
    ----------
    n_ratings : int
        Training ratings.
    n_blocks : int
        Blocks per side (from :func:`resolve_n_blocks`).

    Returns
    -------
    bool
    """
    return n_ratings >= MIN_BLOCK_RATINGS * n_blocks * n_blocks


def make_grid(
    users: np.ndarray,
    items: np.ndarray,
    n_users: int,
    n_items: int,
    n_blocks: int,
    rng: np.random.Generator,
    *,
    values: np.ndarray | None = None,
    dtype: Any = np.float32,
    balance: bool = True,
    n_threads: int = 1,
    copy: bool | str = True,
    also: tuple[np.ndarray, ...] = (),
) -> BlockGrid:
    """Cut users and items into ``n_blocks`` random blocks each and copy the ratings into block order.

    The copy (12 bytes a rating in float32, and 2 for the visiting order) is
    what makes the sweep fast: a block's ratings are contiguous, so reading
    them streams instead of missing the cache three times a rating.

    Users are assigned in *units* of :data:`UNIT` consecutive ids (one unit
    per user when there are fewer than ``UNIT * UNIT_MIN_PER_BLOCK *
    n_blocks`` users): the biases of a unit share a 64-byte cache line, and
    two threads that write to one line slow each other down many times over
    (false sharing) although they never touch the same user.

    With ``balance=False`` unit ``perm[j]`` goes to row block ``j * n_blocks
    // n_units``, ``perm = rng.permutation(n_units)``: blocks of equal size in
    units up to one, whose rating counts vary with the popularity of the few
    heaviest units they happen to get. With ``balance=True`` (default) the
    units are ranked by rating count (ties in the random order ``perm``) and
    each run of ``n_blocks`` consecutive units in that ranking, units of
    similar counts, is dealt to the ``n_blocks`` row blocks in a random order,
    so every block gets one unit of each such stratum and the blocks' rating
    counts come out nearly equal. The same for items, after the users.

    Draws, in this order: ``rng.permutation(n_units)``, with ``balance`` one
    ``rng.permuted`` of a ``(ceil(n_units / n_blocks), n_blocks)`` array
    along its rows; then the same for the items.

    Parameters
    ----------
    users, items : numpy.ndarray of int32
        User and item index of each rating, in ``[0, n_users)`` and ``[0, n_items)``.
    n_users, n_items : int
        Number of users and items.
    n_blocks : int
        Blocks per side (from :func:`resolve_n_blocks`).
    rng : numpy.random.Generator
        Source of the permutations.
    values : numpy.ndarray, optional
        The ratings; zeros when not given (a grid for its layout only).
    dtype : numpy dtype, default float32
        Dtype of the grid's copy of ``values`` (the factors' dtype).
    balance : bool, default True
        Balance the blocks' rating counts (see above).
    n_threads : int, default 1
        Threads for the copy (the result does not depend on it).
    copy : bool or "in-place", default True
        False: no copy; the grid keeps int32 positions into the caller's
        arrays, 4 bytes a rating (``values`` is cast to ``dtype`` if it is
        not of it). ``"in-place"``: the caller's ``users``, ``items`` and
        ``values`` (and the arrays of ``also``) are themselves reordered
        into block order and become the grid's: 2 bytes a rating stay (the
        visiting order) and 6 more are needed while it is made, where the
        copy needs 14 beside the caller's 12 (see :func:`build_grid`). A sweep
        visits the same ratings in the same order every way, so the fitted
        model is the same; the lean layout is the slowest.
    also : tuple of numpy.ndarray, default ()
        With ``copy="in-place"``: more arrays of one entry per rating
        (timestamps, say) reordered with the ratings, so that they stay paired.

    Returns
    -------
    BlockGrid
        With the ratings in ascending position within each block and
        ``index`` ``0 .. size - 1`` within each block.
    """
    row_block, col_block = assign_blocks(users, items, n_users, n_items, n_blocks, rng, balance=balance)
    return build_grid(
        users, items, row_block, col_block, n_blocks, values=values, dtype=dtype, n_threads=n_threads, copy=copy,
        also=also,
    )  # fmt: skip


def assign_blocks(
    users: np.ndarray,
    items: np.ndarray,
    n_users: int,
    n_items: int,
    n_blocks: int,
    rng: np.random.Generator,
    *,
    balance: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The first half of :func:`make_grid`: the row block of each user and the column block of each item.

    Every random draw of :func:`make_grid` is made here (in the order its
    docstring gives); :func:`build_grid` draws nothing.

    Returns
    -------
    row_block : numpy.ndarray of int32, shape (n_users,)
    col_block : numpy.ndarray of int32, shape (n_items,)
    """
    return _assign(users, n_users, n_blocks, rng, balance), _assign(items, n_items, n_blocks, rng, balance)


def build_grid(
    users: np.ndarray,
    items: np.ndarray,
    row_block: np.ndarray,
    col_block: np.ndarray,
    n_blocks: int,
    *,
    values: np.ndarray | None = None,
    dtype: Any = np.float32,
    n_threads: int = 1,
    copy: bool | str = True,
    also: tuple[np.ndarray, ...] = (),
) -> BlockGrid:
    """The second half of :func:`make_grid`: the ratings in block order, for blocks from :func:`assign_blocks`.

    With ``copy="in-place"`` the block id of every rating is kept (2 bytes,
    4 past 65,536 blocks), each 4-byte column (``users``, ``items``, the
    float32 ``values``, each half of an 8-byte array of ``also``) is
    scattered into one scratch column (4 bytes a rating) by the chunked
    stable counting sort of :mod:`factorise.kernels.grouping` and copied back,
    and the block ids' array then becomes the visiting order where their
    types agree: the same order as the copy's, stable within each block, for
    any ``n_threads``.

    Raises
    ------
    ValueError
        With ``copy="in-place"``, if an array is not writeable, not
        C-contiguous or not of its type (int32 ``users`` and ``items``,
        ``values`` of ``dtype``, float32, an array of ``also`` of 4 or 8 bytes an
        entry), or of another length: nothing is then changed.
    """
    n_ratings = users.shape[0]
    if copy == "in-place":
        return _grid_in_place(users, items, values, row_block, col_block, n_blocks, dtype, n_threads, also)
    if values is None:
        values = np.zeros(n_ratings, dtype=dtype)
    if not copy:
        positions = empty_streamed(n_ratings, np.int32 if n_ratings <= np.iinfo(np.int32).max else np.int64)
        block_ptr = np.empty(n_blocks * n_blocks + 1, dtype=np.int64)
        group_by_block(users, items, row_block, col_block, n_blocks, positions, block_ptr)
        values = values if values.dtype == np.dtype(dtype) else values.astype(dtype)
        return BlockGrid(n_blocks, row_block, col_block, users, items, values, positions, block_ptr, copied=False)
    block_ptr = np.empty(n_blocks * n_blocks + 1, dtype=np.int64)
    largest = block_offsets(users, items, row_block, col_block, n_blocks, block_ptr)
    index_dtype = np.uint16 if largest <= 2**16 else np.uint32 if largest <= 2**32 else np.int64
    # filled once, then streamed block by block: on small pages (see factorise._pages)
    out_users = empty_streamed(n_ratings, users.dtype)
    out_items = empty_streamed(n_ratings, items.dtype)
    out_values = empty_streamed(n_ratings, dtype)
    index = empty_streamed(n_ratings, index_dtype)
    with parallel_section(n_threads):
        scatter_by_block(
            users, items, values, row_block, col_block, n_blocks, block_ptr, out_users, out_items, out_values, index
        )
    return BlockGrid(n_blocks, row_block, col_block, out_users, out_items, out_values, index, block_ptr)


def _grid_in_place(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray | None,
    row_block: np.ndarray,
    col_block: np.ndarray,
    n_blocks: int,
    dtype: Any,
    n_threads: int,
    also: tuple[np.ndarray, ...],
) -> BlockGrid:
    """:func:`build_grid` with ``copy="in-place"``."""
    n = users.shape[0]
    if values is None:
        raise ValueError('make_grid(copy="in-place") needs the values to reorder; got none')
    columns: list[np.ndarray] = []
    named = [("users", users, np.int32), ("items", items, np.int32), ("values", values, np.float32)]
    named += [(f"also[{j}]", a, None) for j, a in enumerate(also)]
    if np.dtype(dtype) != np.float32:
        raise ValueError(f'make_grid(copy="in-place") keeps the values as they are, float32; got dtype {np.dtype(dtype)}')
    for name, array, kind in named:
        if array.ndim != 1 or array.shape[0] != n:
            raise ValueError(f"{name} must be 1-D with {n} entries (one per rating); got shape {array.shape}")
        if not (array.flags.c_contiguous and array.flags.writeable):
            raise ValueError(f'make_grid(copy="in-place") reorders {name} itself: it must be C-contiguous and writeable')
        if kind is not None and array.dtype != kind:
            raise ValueError(f"{name} must be of dtype {np.dtype(kind)}; got {array.dtype}")
        if array.dtype.itemsize not in (4, 8):
            raise ValueError(f"{name} must have 4 or 8 bytes an entry; got {array.dtype} ({array.dtype.itemsize})")
        words = array.view(np.int32).reshape(n, array.dtype.itemsize // 4)
        columns += [words[:, w] if words.shape[1] > 1 else array.view(np.int32) for w in range(words.shape[1])]
    n_cells = n_blocks * n_blocks
    keys = empty_streamed(n, np.uint16 if n_cells <= 2**16 else np.uint32)
    block_ptr = np.empty(n_cells + 1, dtype=np.int64)
    with parallel_section(n_threads):
        block_keys(users, items, row_block, col_block, n_blocks, keys)
        # the stable counting sort by block id of factorise.kernels.grouping: the block offsets and
        # where each chunk writes, then each column scattered into the scratch and copied back
        starts = group_chunk_starts(keys, n_cells, scatter_chunks(n, n_cells), block_ptr)
        largest = int(np.diff(block_ptr).max(initial=0))
        scratch = empty_streamed(n, np.int32)
        for column in columns:
            group_fill_chunked(keys, column, starts, scratch)
            column[:] = scratch
        del scratch, starts, columns
        index_dtype = np.uint16 if largest <= 2**16 else np.uint32 if largest <= 2**32 else np.int64
        if keys.dtype != index_dtype:
            del keys
            index = empty_streamed(n, index_dtype)
        else:
            index = keys  # the block ids are no longer needed: their array becomes the visiting order
        reset_index(block_ptr, index)
    return BlockGrid(n_blocks, row_block, col_block, users, items, values, index, block_ptr)


def _assign(keys: np.ndarray, n: int, n_blocks: int, rng: np.random.Generator, balance: bool) -> np.ndarray:
    """Block of each of ``n`` users (or items) whose ratings are ``keys``; see :func:`make_grid`."""
    unit = block_unit(n, n_blocks)
    counts = np.empty(-(-n // unit), dtype=np.int64)
    if balance:
        count_units(keys, unit, counts)
    return assign_from_counts(counts, n, n_blocks, rng, balance=balance)


def assign_from_counts(
    counts: np.ndarray, n: int, n_blocks: int, rng: np.random.Generator, *, balance: bool = True
) -> np.ndarray:
    """The blocks of :func:`assign_blocks` for one side, from the ratings of each unit of ids.

    The draws and the result are those of :func:`assign_blocks` for that side
    (users, then items, each in its turn), so an engine that counts the
    ratings elsewhere (Spark) deals the same blocks.

    Parameters
    ----------
    counts : numpy.ndarray of int64, shape (ceil(n / block_unit(n, n_blocks)),)
        Ratings of each unit of :func:`block_unit` consecutive ids (ignored
        without ``balance``).
    n : int
        Users (or items).
    n_blocks : int
        Blocks per side.
    rng : numpy.random.Generator
        Source of the draws.
    balance : bool, default True
        As for :func:`make_grid`.

    Returns
    -------
    numpy.ndarray of int32, shape (n,)
        Block of each id.
    """
    unit = block_unit(n, n_blocks)
    n_units = -(-n // unit)
    if counts.shape != (n_units,):
        raise ValueError(f"`counts` must hold one count per unit of {unit} ids ({n_units}); got shape {counts.shape}")
    perm = rng.permutation(n_units)
    unit_block = np.empty(n_units, dtype=np.int32)
    if not balance:
        unit_block[perm] = (np.arange(n_units, dtype=np.int64) * n_blocks // max(n_units, 1)).astype(np.int32)
    else:
        ranked = perm[np.argsort(-counts[perm], kind="stable")]
        n_strata = -(-n_units // n_blocks)
        deal = rng.permuted(np.broadcast_to(np.arange(n_blocks, dtype=np.int32), (n_strata, n_blocks)), axis=1)
        unit_block[ranked] = deal.ravel()[:n_units]
    return np.repeat(unit_block, unit)[:n]


def block_unit(n: int, n_blocks: int) -> int:
    """Consecutive ids kept in one block: a cache line of float32 biases, where there are enough of them."""
    return UNIT if n >= UNIT * UNIT_MIN_PER_BLOCK * n_blocks else 1


def latin_schedule(n_blocks: int, rng: np.random.Generator) -> np.ndarray:
    """A random schedule of one epoch: ``n_blocks`` rounds of ``n_blocks`` disjoint blocks.

    Draws, in this order, permutations ``tau`` (row blocks), ``sigma``
    (column blocks) and ``rho`` (rounds) of ``range(n_blocks)``; round ``r``
    holds the blocks ``(i, sigma[(tau[i] + rho[r]) % n_blocks])`` for
    ``i = 0..n_blocks-1``.

    Parameters
    ----------
    n_blocks : int
        Blocks per side.
    rng : numpy.random.Generator
        Source of the permutations.

    Returns
    -------
    numpy.ndarray of int64, shape (n_blocks, n_blocks)
        ``rounds[r, i]``: id ``I * n_blocks + J`` of the block that row block
        ``i`` runs in round ``r``.
    """
    tau = rng.permutation(n_blocks)
    sigma = rng.permutation(n_blocks)
    rho = rng.permutation(n_blocks)
    rows = np.arange(n_blocks, dtype=np.int64)
    cols = sigma[(tau[None, :] + rho[:, None]) % n_blocks]
    return rows[None, :] * n_blocks + cols.astype(np.int64)


def draw_epoch(n_blocks: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw one epoch's randomness: the shuffle seed of every block, then the schedule.

    Parameters
    ----------
    n_blocks : int
        Blocks per side.
    rng : numpy.random.Generator
        Source of the draws.

    Returns
    -------
    seeds : numpy.ndarray of uint64, shape (n_blocks ** 2,)
        Seed of each block's shuffle.
    rounds : numpy.ndarray of int64, shape (n_blocks, n_blocks)
        From :func:`latin_schedule`.
    """
    seeds = rng.integers(0, np.iinfo(np.uint64).max, size=n_blocks * n_blocks, dtype=np.uint64, endpoint=True)
    return seeds, latin_schedule(n_blocks, rng)


def sgd_blocks_sweep(
    grid: BlockGrid,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    lr: float,
    reg: float,
    lr_bias: float,
    reg_bias: float,
    *,
    rng: np.random.Generator,
    n_threads: int,
) -> float:
    """One epoch of block-parallel SGD: draw, shuffle every block, run the rounds.

    The arguments from ``mu`` to ``reg_bias`` are those of
    :func:`factorise.kernels.sgd_ratings.sgd_ratings_epoch` (scalars already
    cast to the factors' dtype); the model arrays are updated in place.

    Parameters
    ----------
    grid : BlockGrid
        From :func:`make_grid`: the ratings; its ``index`` is reshuffled in place.
    mu, bu, bi, P, Q, lr, reg, lr_bias, reg_bias
        As for the serial sweep.
    rng : numpy.random.Generator
        Source of this epoch's draws (:func:`draw_epoch`).
    n_threads : int
        Threads to run on (already checked, ``<= grid.n_blocks``).

    Returns
    -------
    float
        Sum of squared pre-update errors over the sweep.
    """
    seeds, rounds = draw_epoch(grid.n_blocks, rng)
    with parallel_section(n_threads):
        return float(
            shuffle_sgd_blocks_epoch(
                grid.users, grid.items, grid.values, grid.index, grid.block_ptr, rounds, seeds, mu, bu, bi, P, Q, lr, reg,
                lr_bias, reg_bias, grid.copied,
            )
        )  # fmt: skip
