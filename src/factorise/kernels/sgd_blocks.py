"""Block-parallel SGD for biased matrix factorisation (the schedule of FPSGD), compiled with numba.

Users are split into ``n_blocks`` row blocks and items into ``n_blocks``
column blocks, which cuts the rating matrix into ``n_blocks ** 2`` blocks
(Chin, Zhuang, Juan and Lin, "A fast parallel stochastic gradient method for
matrix factorization in shared memory systems", ACM TIST 2015). Two blocks
that share neither a row block nor a column block touch disjoint users and
disjoint items, so SGD can run on them at the same time without locks and
without changing the result. An epoch is a list of *rounds*; the blocks of one
round are pairwise disjoint in that sense and run in parallel, each one
sequentially by one thread, and a round starts when the previous one has
ended. The result is therefore the same for any number of threads, and equal
to running the blocks one after another in round order.

The ratings of a block lie next to each other in memory: the sweep works on
copies of ``users``/``items``/``values`` grouped by block (made once per fit by
:func:`scatter_by_block`), so that a block's 12 bytes a rating, like its users'
and items' rows, are in the core's own caches while it runs. Block ``b`` is
the slice ``block_ptr[b]:block_ptr[b + 1]`` of those arrays, and its visiting
order is the same slice of ``index``, which holds *offsets within the block*
(``0 .. size - 1``, in a small integer type). Reading the ratings through an
index into the caller's arrays instead, as before, cost a cache miss on each
of the three arrays for almost every rating: the block sweep ran at about
18M updates/s on one core at rank 32 (9M ratings, 8 x 8 blocks); on
contiguous blocks of the 32 x 32 grid the sweeps alone run at about 43M
(35M for the whole fit, ``benchmarks/scale.py --only 10m``).

Kernels:

* :func:`count_units` -- ratings per run of ``unit`` consecutive ids (once
  per fit, to balance the blocks);
* :func:`group_by_block` -- counting sort of the rating positions by block
  (once per fit);
* :func:`block_offsets` and :func:`scatter_by_block` -- the same grouping
  applied to the ratings: a copy of them in block order, each block's
  visiting order set to ``0 .. size - 1`` (once per fit);
* :func:`block_keys` and :func:`reset_index` -- the block id of each rating
  and a fresh visiting order, for the same block order made *in place*: the
  caller's own arrays reordered by the stable counting sort of
  :mod:`factorise.kernels.grouping`, one 4-byte column at a time through one
  scratch column, instead of copied (once per fit, where the caller gives
  its arrays up to the fit);
* :func:`shuffle_blocks` -- shuffle each block's slice of ``index`` in place
  with its own seed (once per epoch; the same result for any thread count);
* :func:`sgd_blocks_epoch` -- one SGD sweep, round by round;
* :func:`sgd_update` (from :mod:`factorise.kernels.sgd_ratings`) -- the
  update of one rating, shared with the serial sweep: identical arithmetic.

The per-rating update is that of :mod:`factorise.kernels.sgd_ratings`::

    e     = r - (mu + bu[u] + bi[i] + P[u] . Q[i])
    bu[u] += lr_bias * (e - reg_bias * bu[u])
    bi[i] += lr_bias * (e - reg_bias * bi[i])
    P[u]  += lr * (e * Q[i] - reg * P[u])      # P[u] and Q[i] updated
    Q[i]  += lr * (e * P[u] - reg * Q[i])      # simultaneously (old P[u])

with the same fast-math flags (``reassoc``, ``contract``) and arithmetic in
the dtype of the factors; squared errors are summed in float64, per block,
and the block sums are added in schedule order so that the returned number,
too, does not depend on the thread count.

The random numbers of the shuffle come from SplitMix64
(:mod:`factorise.kernels.rng`): a 64-bit counter advanced by the golden-ratio
constant and passed through a mixing function. A position in ``range(n)`` is
drawn from the 64-bit output ``z`` as ``floor(z * n / 2**64)`` (Lemire's
multiply-shift, without his rejection step: a relative bias below ``n / 2**64``),
the 128-bit product formed from two 64-bit multiplies of ``z``'s halves; it
replaced ``z % n``, whose 64-bit division made the shuffle 1.45x slower
(29 against 20 ms for 9M ratings in 1,024 blocks). Blocks of more than
``2**32`` ratings use ``z % n``.
"""

from __future__ import annotations

import numba
import numpy as np

from factorise.kernels.rng import splitmix64
from factorise.kernels.sgd_ratings import sgd_gathered, sgd_update

__all__ = [
    "block_keys",
    "count_units",
    "block_offsets",
    "reset_index",
    "group_by_block",
    "scatter_by_block",
    "scatter_chunks",
    "sgd_blocks_epoch",
    "sgd_update",
    "shuffle_blocks",
    "shuffle_sgd_block",
    "shuffle_sgd_blocks_epoch",
]

_FASTMATH = {"reassoc", "contract"}

@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _sgd_slice(
    users, items, values, index, start, stop, mu, bu, bi, P, Q, lr, reg, lr_bias, reg_bias, offsets
):  # pragma: no cover - compiled
    if not offsets:  # index holds positions into the caller's arrays
        return sgd_gathered(users, items, values, index, start, stop, mu, bu, bi, P, Q, lr, reg, lr_bias, reg_bias)
    # the block's ratings are users[start:stop] etc., visited in the order of its offsets index[start:stop]
    return sgd_gathered(
        users[start:stop], items[start:stop], values[start:stop], index[start:stop], 0, stop - start, mu, bu, bi,
        P, Q, lr, reg, lr_bias, reg_bias,
    )  # fmt: skip


@numba.njit(cache=True, nogil=True, parallel=True)
def sgd_blocks_epoch(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    index: np.ndarray,
    block_ptr: np.ndarray,
    rounds: np.ndarray,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    lr: float,
    reg: float,
    lr_bias: float,
    reg_bias: float,
    offsets: bool = True,
) -> float:  # pragma: no cover - compiled
    """One SGD sweep over the blocks listed in ``rounds``, updating the model in place.

    Parameters
    ----------
    users, items : ndarray of int32
        User and item index of each rating, grouped by block (from
        :func:`scatter_by_block`): block ``b`` is ``[block_ptr[b], block_ptr[b + 1])``.
    values : ndarray
        The ratings in the same order, of the factors' dtype.
    index : ndarray of uint16, uint32 or int64
        Visiting order: block ``b`` visits the ratings ``block_ptr[b] + o`` for
        the offsets ``o`` in ``index[block_ptr[b]:block_ptr[b + 1]]``, in turn.
    block_ptr : ndarray of int64, shape (n_blocks ** 2 + 1,)
        Offsets of the blocks in ``users``, ``items``, ``values`` and ``index``.
    rounds : ndarray of int64, shape (n_rounds, width)
        Block ids, one row per round. The blocks of a row must share no user
        and no item (no row block and no column block); they run in parallel.
        The kernel does not check this.
    mu : float
        Global mean (fixed), of the factors' dtype.
    bu, bi : ndarray
        User and item biases, updated in place.
    P, Q : ndarray of shape (n_users, k) and (n_items, k)
        User and item factors, updated in place; ``k >= 1``.
    lr, reg : float
        Learning rate and regularization of the factors, of their dtype.
    lr_bias, reg_bias : float
        Learning rate and regularization of the biases, of the same dtype.
    offsets : bool, default True
        ``index`` holds offsets within each block of ratings grouped by block
        (above); with False it holds positions into ``users``, ``items`` and
        ``values`` in any order (block ``b`` visits ``index[block_ptr[b]:block_ptr[b + 1]]``):
        the lean layout, 4 bytes a rating and no copy, read with a cache miss
        per rating. The same visiting order gives the same result either way.

    Returns
    -------
    float
        Sum of squared pre-update errors over the sweep (block sums added in
        the order of ``rounds``).
    """
    n_rounds, width = rounds.shape
    block_sse = np.zeros((n_rounds, width))
    for r in range(n_rounds):
        for s in numba.prange(width):
            b = rounds[r, s]
            block_sse[r, s] = _sgd_slice(
                users, items, values, index, block_ptr[b], block_ptr[b + 1], mu, bu, bi, P, Q, lr, reg,
                lr_bias, reg_bias, offsets,
            )  # fmt: skip
    sse = 0.0
    for r in range(n_rounds):
        for s in range(width):
            sse += block_sse[r, s]
    return sse


@numba.njit(cache=True, nogil=True)
def _shuffle_slice(index, start, stop, seed):  # pragma: no cover - compiled
    state = np.uint64(seed)
    low, half = np.uint64(0xFFFFFFFF), np.uint64(32)
    wide = stop - start > 2**32
    for t in range(stop - start - 1, 0, -1):
        state, z = splitmix64(state)
        n = np.uint64(t + 1)
        if wide:
            j = start + np.int64(z % n)
        else:  # floor(z * n / 2**64): no overflow since n <= 2**32
            j = start + np.int64(((z >> half) * n + (((z & low) * n) >> half)) >> half)
        tmp = index[start + t]
        index[start + t] = index[j]
        index[j] = tmp


@numba.njit(cache=True, nogil=True, parallel=True)
def shuffle_blocks(index: np.ndarray, block_ptr: np.ndarray, seeds: np.ndarray) -> int:  # pragma: no cover
    """Shuffle each block's slice of ``index`` in place (Fisher-Yates, SplitMix64).

    Parameters
    ----------
    index : ndarray of int32 or int64
        Rating positions grouped by block; shuffled in place within each block.
    block_ptr : ndarray of int64, shape (n_blocks + 1,)
        Block ``b`` is ``index[block_ptr[b]:block_ptr[b + 1]]``.
    seeds : ndarray of uint64, shape (n_blocks,)
        Seed of each block's shuffle; the result depends on nothing else.

    Returns
    -------
    int
        Number of positions shuffled (``block_ptr[-1] - block_ptr[0]``).
    """
    n_blocks = block_ptr.shape[0] - 1
    for b in numba.prange(n_blocks):
        _shuffle_slice(index, block_ptr[b], block_ptr[b + 1], seeds[b])
    return block_ptr[n_blocks] - block_ptr[0]


@numba.njit(cache=True, nogil=True)
def group_by_block(
    users: np.ndarray,
    items: np.ndarray,
    row_block: np.ndarray,
    col_block: np.ndarray,
    n_blocks: int,
    index: np.ndarray,
    block_ptr: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """Counting sort of the rating positions by block ``row_block[u] * n_blocks + col_block[i]``.

    Parameters
    ----------
    users, items : ndarray of int32
        User and item index of each rating.
    row_block : ndarray of int32, shape (n_users,)
        Row block of each user, in ``[0, n_blocks)``.
    col_block : ndarray of int32, shape (n_items,)
        Column block of each item, in ``[0, n_blocks)``.
    n_blocks : int
        Blocks per side.
    index : ndarray of int32 or int64, shape (n_ratings,)
        Output: the positions ``0..n_ratings-1`` grouped by block, ascending
        within a block (a stable sort).
    block_ptr : ndarray of int64, shape (n_blocks ** 2 + 1,)
        Output: block ``b`` is ``index[block_ptr[b]:block_ptr[b + 1]]``.

    Returns
    -------
    int
        The number of non-empty blocks.
    """
    n_cells = n_blocks * n_blocks
    block_offsets(users, items, row_block, col_block, n_blocks, block_ptr)
    non_empty = 0
    for b in range(n_cells):
        if block_ptr[b + 1] > block_ptr[b]:
            non_empty += 1
    fill = block_ptr[:n_cells].copy()  # each block's next free slot
    for t in range(users.shape[0]):
        b = row_block[users[t]] * n_blocks + col_block[items[t]]
        index[fill[b]] = t
        fill[b] += 1
    return non_empty


@numba.njit(cache=True, nogil=True)
def block_offsets(
    users: np.ndarray,
    items: np.ndarray,
    row_block: np.ndarray,
    col_block: np.ndarray,
    n_blocks: int,
    block_ptr: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """Count the ratings of each block ``row_block[u] * n_blocks + col_block[i]`` into offsets.

    Parameters
    ----------
    users, items : ndarray of int32
        User and item index of each rating.
    row_block, col_block : ndarray of int32
        Row block of each user, column block of each item, in ``[0, n_blocks)``.
    n_blocks : int
        Blocks per side.
    block_ptr : ndarray of int64, shape (n_blocks ** 2 + 1,)
        Output: block ``b`` will be ``[block_ptr[b], block_ptr[b + 1])``.

    Returns
    -------
    int
        The number of ratings in the largest block.
    """
    n_cells = n_blocks * n_blocks
    for b in range(n_cells + 1):
        block_ptr[b] = 0
    for t in range(users.shape[0]):
        block_ptr[row_block[users[t]] * n_blocks + col_block[items[t]] + 1] += 1
    largest = 0
    for b in range(n_cells):
        largest = max(largest, block_ptr[b + 1])
        block_ptr[b + 1] += block_ptr[b]
    return largest


@numba.njit(cache=True, nogil=True)
def scatter_chunks(n_ratings: int, n_cells: int) -> int:  # pragma: no cover - compiled
    """Chunks of :func:`scatter_by_block`: up to 64, at least 16 ratings a block and chunk on average.

    Its ``n_chunks x n_cells`` int64 counts thus take at most half a byte a rating.
    """
    return max(1, min(64, n_ratings // (16 * max(1, n_cells))))


@numba.njit(cache=True, nogil=True, parallel=True)
def scatter_by_block(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    row_block: np.ndarray,
    col_block: np.ndarray,
    n_blocks: int,
    block_ptr: np.ndarray,
    out_users: np.ndarray,
    out_items: np.ndarray,
    out_values: np.ndarray,
    index: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """Copy the ratings into block order (a stable counting sort) and reset each block's visiting order.

    The grouping of :func:`group_by_block` applied to the ratings themselves:
    no array of positions is made. Parallel and deterministic: the ratings
    are cut into :func:`scatter_chunks` chunks (a number that depends on the
    sizes only), each chunk's ratings are counted per block, and each chunk
    then writes its own stretch of every block, after those of the chunks
    before it, so the result is the serial stable sort's for any thread count.

    Parameters
    ----------
    users, items, values : ndarray
        The ratings (int32 user and item index, the value).
    row_block, col_block : ndarray of int32
        Row block of each user, column block of each item, in ``[0, n_blocks)``.
    n_blocks : int
        Blocks per side.
    block_ptr : ndarray of int64, shape (n_blocks ** 2 + 1,)
        The offsets from :func:`block_offsets` (left as they are).
    out_users, out_items, out_values : ndarray, shape (n_ratings,)
        Output: the ratings grouped by block, in their original order within
        a block (``out_values`` may have another float dtype: the values are cast).
    index : ndarray of an integer type, shape (n_ratings,)
        Output: ``0 .. size - 1`` within each block; its type must hold the
        largest block's size minus one.

    Returns
    -------
    int
        The number of ratings copied.
    """
    n_cells = n_blocks * n_blocks
    n = users.shape[0]
    n_chunks = scatter_chunks(n, n_cells)
    fill = np.zeros((n_chunks, n_cells), dtype=np.int64)
    for c in numba.prange(n_chunks):
        for t in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            fill[c, row_block[users[t]] * n_blocks + col_block[items[t]]] += 1
    for b in range(n_cells):  # counts -> where each chunk starts writing in each block
        start = block_ptr[b]
        for c in range(n_chunks):
            count = fill[c, b]
            fill[c, b] = start
            start += count
    for c in numba.prange(n_chunks):
        for t in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            u = users[t]
            i = items[t]
            b = row_block[u] * n_blocks + col_block[i]
            d = fill[c, b]
            out_users[d] = u
            out_items[d] = i
            out_values[d] = values[t]
            fill[c, b] = d + 1
    for b in numba.prange(n_cells):
        start = block_ptr[b]
        for t in range(block_ptr[b + 1] - start):
            index[start + t] = t
    return users.shape[0]


@numba.njit(cache=True, nogil=True, parallel=True)
def block_keys(
    users: np.ndarray,
    items: np.ndarray,
    row_block: np.ndarray,
    col_block: np.ndarray,
    n_blocks: int,
    keys: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """Block id ``row_block[u] * n_blocks + col_block[i]`` of each rating, into ``keys``.

    Parameters
    ----------
    users, items : ndarray of int32
        The ratings' user and item index.
    row_block, col_block : ndarray of int32
        Row block of each user, column block of each item, in ``[0, n_blocks)``.
    n_blocks : int
        Blocks per side.
    keys : ndarray of an unsigned integer type, shape (n_ratings,)
        Output; its type must hold ``n_blocks ** 2 - 1``.

    Returns
    -------
    int
        The number of ratings.
    """
    for t in numba.prange(users.shape[0]):
        keys[t] = row_block[users[t]] * n_blocks + col_block[items[t]]
    return users.shape[0]


@numba.njit(cache=True, nogil=True, parallel=True)
def reset_index(block_ptr: np.ndarray, index: np.ndarray) -> int:  # pragma: no cover - compiled
    """Set each block's visiting order to ``0 .. size - 1`` (offsets within the block).

    Parameters
    ----------
    block_ptr : ndarray of int64, shape (n_cells + 1,)
        Offsets of the blocks.
    index : ndarray of an integer type, shape (n_ratings,)
        Output; its type must hold the largest block's size minus one.

    Returns
    -------
    int
        The number of entries set.
    """
    n_cells = block_ptr.shape[0] - 1
    for b in numba.prange(n_cells):
        start = block_ptr[b]
        for t in range(block_ptr[b + 1] - start):
            index[start + t] = t
    return index.shape[0]


@numba.njit(cache=True, nogil=True)
def count_units(keys: np.ndarray, unit: int, counts: np.ndarray) -> int:  # pragma: no cover - compiled
    """Count the ratings of each unit of ``unit`` consecutive ids, without a temporary per rating.

    Parameters
    ----------
    keys : ndarray of int32
        User (or item) index of each rating.
    unit : int
        Ids per unit (>= 1); id ``u`` is in unit ``u // unit``.
    counts : ndarray of int64, shape (n_units,)
        Output: ratings per unit.

    Returns
    -------
    int
        The number of ratings counted.
    """
    for j in range(counts.shape[0]):
        counts[j] = 0
    if unit & (unit - 1) == 0:  # a power of two (UNIT or 1): a shift, not a division per rating
        shift = 0
        while (1 << shift) < unit:
            shift += 1
        for t in range(keys.shape[0]):
            counts[keys[t] >> shift] += 1
    else:
        for t in range(keys.shape[0]):
            counts[keys[t] // unit] += 1
    return keys.shape[0]


@numba.njit(cache=True, nogil=True, parallel=True)
def shuffle_sgd_blocks_epoch(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    index: np.ndarray,
    block_ptr: np.ndarray,
    rounds: np.ndarray,
    seeds: np.ndarray,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    lr: float,
    reg: float,
    lr_bias: float,
    reg_bias: float,
    offsets: bool = True,
) -> float:  # pragma: no cover - compiled
    """:func:`shuffle_blocks` then :func:`sgd_blocks_epoch`, fused: each block is shuffled by the
    thread that runs it, just before it runs (one parallel pass fewer, and the block's slice of
    ``index`` is still in cache). The result is identical to the two calls in turn.

    Parameters are those of :func:`sgd_blocks_epoch` (``offsets`` included), with ``seeds`` (one
    per block) as for :func:`shuffle_blocks`.
    """
    n_rounds, width = rounds.shape
    block_sse = np.zeros((n_rounds, width))
    for r in range(n_rounds):
        for s in numba.prange(width):
            b = rounds[r, s]
            _shuffle_slice(index, block_ptr[b], block_ptr[b + 1], seeds[b])
            block_sse[r, s] = _sgd_slice(
                users, items, values, index, block_ptr[b], block_ptr[b + 1], mu, bu, bi, P, Q, lr, reg,
                lr_bias, reg_bias, offsets,
            )  # fmt: skip
    sse = 0.0
    for r in range(n_rounds):
        for s in range(width):
            sse += block_sse[r, s]
    return sse


@numba.njit(cache=True, nogil=True)
def shuffle_sgd_block(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    index: np.ndarray,
    seeds: np.ndarray,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    lr: float,
    reg: float,
    lr_bias: float,
    reg_bias: float,
) -> float:  # pragma: no cover - compiled
    """One block of :func:`shuffle_sgd_blocks_epoch` on its own arrays (a DSGD task of the Spark engine).

    ``users``, ``items`` and ``values`` are one block's ratings in the grid's
    order (ascending position), with indices into the block's own rows ``bu``,
    ``P`` (its row block) and ``bi``, ``Q`` (its column block). A block's
    visiting order persists from epoch to epoch in the shared-memory sweep
    (each epoch shuffles the previous one), so here ``index`` is reset to
    ``0 .. n - 1`` and shuffled with the block's seed of every epoch so far,
    ``seeds[0]`` first: the order of epoch ``len(seeds)``. The SGD sweep is
    the same compiled slice as the shared-memory sweep's, so the updates are
    the same arithmetic.

    Returns
    -------
    float
        Sum of squared pre-update errors.
    """
    n = users.shape[0]
    for t in range(n):
        index[t] = t
    for e in range(seeds.shape[0]):
        _shuffle_slice(index, 0, n, seeds[e])
    return _sgd_slice(users, items, values, index, 0, n, mu, bu, bi, P, Q, lr, reg, lr_bias, reg_bias, True)
