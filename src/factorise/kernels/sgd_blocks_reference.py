"""Slow, obvious reference for :mod:`factorise.kernels.sgd_blocks`, used by the tests.

Everything runs serially: the blocks one after another in round order, each
one with the serial reference sweep
:func:`factorise.kernels.sgd_ratings_reference.sgd_ratings_epoch` over its
slice of ``index``; the grouping is a stable ``argsort`` of the block ids; the
shuffle is Fisher-Yates with SplitMix64 written on Python integers (a position
in ``range(n)`` is ``z * n >> 64``, exact on Python integers). Same
signatures as the compiled kernels; the grouping and the shuffle give
identical results, the SGD sweep the same up to rounding.
"""

from __future__ import annotations

import numpy as np

from factorise.kernels import sgd_ratings_reference
from factorise.kernels.rng_reference import splitmix64

__all__ = [
    "block_keys",
    "block_offsets",
    "count_units",
    "group_by_block",
    "reset_index",
    "scatter_by_block",
    "sgd_blocks_epoch",
    "shuffle_blocks",
]


def shuffle_blocks(index: np.ndarray, block_ptr: np.ndarray, seeds: np.ndarray) -> int:
    """Reference for :func:`factorise.kernels.sgd_blocks.shuffle_blocks`."""
    for b in range(block_ptr.shape[0] - 1):
        start, stop = int(block_ptr[b]), int(block_ptr[b + 1])
        state = int(seeds[b])
        for t in range(stop - start - 1, 0, -1):
            state, z = splitmix64(state)
            j = z * (t + 1) >> 64 if t + 1 <= 2**32 else z % (t + 1)
            index[start + t], index[start + j] = index[start + j], index[start + t]
    return int(block_ptr[-1] - block_ptr[0])


def count_units(keys: np.ndarray, unit: int, counts: np.ndarray) -> int:
    """Reference for :func:`factorise.kernels.sgd_blocks.count_units`."""
    counts[:] = np.bincount(keys // unit, minlength=counts.shape[0])
    return int(keys.shape[0])


def group_by_block(
    users: np.ndarray,
    items: np.ndarray,
    row_block: np.ndarray,
    col_block: np.ndarray,
    n_blocks: int,
    index: np.ndarray,
    block_ptr: np.ndarray,
) -> int:
    """Reference for :func:`factorise.kernels.sgd_blocks.group_by_block`."""
    block = row_block[users].astype(np.int64) * n_blocks + col_block[items]
    index[:] = np.argsort(block, kind="stable")
    counts = np.bincount(block, minlength=n_blocks * n_blocks)
    block_ptr[0] = 0
    np.cumsum(counts, out=block_ptr[1:])
    return int(np.count_nonzero(counts))


def block_offsets(
    users: np.ndarray,
    items: np.ndarray,
    row_block: np.ndarray,
    col_block: np.ndarray,
    n_blocks: int,
    block_ptr: np.ndarray,
) -> int:
    """Reference for :func:`factorise.kernels.sgd_blocks.block_offsets`."""
    block = row_block[users].astype(np.int64) * n_blocks + col_block[items]
    counts = np.bincount(block, minlength=n_blocks * n_blocks)
    block_ptr[0] = 0
    np.cumsum(counts, out=block_ptr[1:])
    return int(counts.max(initial=0))


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
) -> int:
    """Reference for :func:`factorise.kernels.sgd_blocks.scatter_by_block`."""
    positions = np.argsort(row_block[users].astype(np.int64) * n_blocks + col_block[items], kind="stable")
    out_users[:] = users[positions]
    out_items[:] = items[positions]
    out_values[:] = values[positions]
    index[:] = np.arange(users.shape[0]) - np.repeat(block_ptr[:-1], np.diff(block_ptr))
    return int(users.shape[0])


def block_keys(
    users: np.ndarray,
    items: np.ndarray,
    row_block: np.ndarray,
    col_block: np.ndarray,
    n_blocks: int,
    keys: np.ndarray,
) -> int:
    """Reference for :func:`factorise.kernels.sgd_blocks.block_keys`."""
    keys[:] = row_block[users].astype(np.int64) * n_blocks + col_block[items]
    return int(users.shape[0])


def reset_index(block_ptr: np.ndarray, index: np.ndarray) -> int:
    """Reference for :func:`factorise.kernels.sgd_blocks.reset_index`."""
    index[:] = np.arange(index.shape[0]) - np.repeat(block_ptr[:-1], np.diff(block_ptr))
    return int(index.shape[0])


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
) -> float:
    """Reference for :func:`factorise.kernels.sgd_blocks.sgd_blocks_epoch`."""
    sse = 0.0
    for round_ in rounds:
        for b in round_:
            block = index[block_ptr[b] : block_ptr[b + 1]].astype(np.int64)
            if offsets:
                block = block + block_ptr[b]
            sse += sgd_ratings_reference.sgd_ratings_epoch(
                users, items, values, block, mu, bu, bi, P, Q, lr, reg, lr_bias, reg_bias
            )
    return sse
