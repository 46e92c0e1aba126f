"""Block-parallel SGD (FPSGD schedule): kernels against references, schedule and grid properties, determinism."""

from __future__ import annotations

import itertools
import math
import tracemalloc

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factorise._threads import available_threads
from factorise.kernels import grouping, sgd_blocks, sgd_blocks_reference, sgd_ratings
from factorise.models import _blocks
from factorise.models._blocks import (
    MAX_N_BLOCKS,
    MIN_BLOCK_RATINGS,
    draw_epoch,
    latin_schedule,
    make_grid,
    resolve_n_blocks,
    sgd_blocks_sweep,
    use_blocks,
)

# ------------------------------------------------------------------ helpers


def random_problem(rng: np.random.Generator, dtype: type, n_users: int, n_items: int, n: int, k: int) -> dict:
    users = rng.integers(0, n_users, n).astype(np.int32)
    items = rng.integers(0, n_items, n).astype(np.int32)
    values = rng.uniform(1, 5, n).astype(dtype)
    return {
        "users": users,
        "items": items,
        "values": values,
        "mu": dtype(values.mean() if n else 3.0),
        "model": [
            rng.normal(0, 0.1, n_users).astype(dtype),
            rng.normal(0, 0.1, n_items).astype(dtype),
            rng.normal(0, 0.3, (n_users, k)).astype(dtype),
            rng.normal(0, 0.3, (n_items, k)).astype(dtype),
        ],
        "rates": tuple(dtype(x) for x in (0.05, 0.1, 0.03, 0.02)),
    }


def planted(seed: int, n_users: int = 300, n_items: int = 200, rank: int = 3, noise: float = 0.3) -> tuple:
    """Known biases + rank-``rank`` factors + Gaussian noise on a random 30% mask; 80/20 split."""
    rng = np.random.default_rng(seed)
    P = rng.normal(0.0, rank**-0.25, (n_users, rank))
    Q = rng.normal(0.0, rank**-0.25, (n_items, rank))
    bu, bi = rng.normal(0.0, 0.3, n_users), rng.normal(0.0, 0.3, n_items)
    users, items = np.nonzero(rng.random((n_users, n_items)) < 0.3)
    values = 3.0 + bu[users] + bi[items] + np.einsum("ij,ij->i", P[users], Q[items])
    values += rng.normal(0.0, noise, values.shape[0])
    test = rng.random(values.shape[0]) < 0.2
    train = (users[~test].astype(np.int32), items[~test].astype(np.int32), values[~test].astype(np.float32))
    held = (users[test], items[test], values[test])
    return train, held


def block_of(grid: _blocks.BlockGrid, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    return grid.row_block[users].astype(np.int64) * grid.n_blocks + grid.col_block[items]


# ------------------------------------------------------------------ shuffle and its generator


@pytest.mark.parametrize("seed", range(20))
def test_shuffle_matches_reference_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_cells = int(rng.integers(1, 12))
    sizes = rng.integers(0, 30, n_cells) * (rng.random(n_cells) < 0.8)  # some empty blocks
    block_ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    dtype = np.int32 if seed % 2 else np.int64
    index = rng.permutation(int(block_ptr[-1])).astype(dtype)
    seeds = rng.integers(0, np.iinfo(np.uint64).max, n_cells, dtype=np.uint64, endpoint=True)
    seeds[0] = np.iinfo(np.uint64).max  # the state wraps around at once
    fast, slow = index.copy(), index.copy()
    assert sgd_blocks.shuffle_blocks(fast, block_ptr, seeds) == block_ptr[-1]
    assert sgd_blocks_reference.shuffle_blocks(slow, block_ptr, seeds) == block_ptr[-1]
    np.testing.assert_array_equal(fast, slow)
    assert fast.dtype == dtype
    for b in range(n_cells):  # each block keeps its own positions
        part = slice(block_ptr[b], block_ptr[b + 1])
        np.testing.assert_array_equal(np.sort(fast[part]), np.sort(index[part]))


def test_shuffle_draws_every_permutation_equally_often() -> None:
    """Fisher-Yates is uniform: each of the 24 orders of 4 elements about 1/24 of the time."""
    n_draws = 24_000
    block_ptr = np.arange(0, 4 * n_draws + 1, 4, dtype=np.int64)
    index = np.tile(np.arange(4, dtype=np.int32), n_draws)
    seeds = np.random.default_rng(0).integers(0, 2**63, n_draws, dtype=np.uint64) * np.uint64(2)
    sgd_blocks.shuffle_blocks(index, block_ptr, seeds)
    codes = index.reshape(-1, 4) @ np.array([64, 16, 4, 1])
    counts = {perm: 0 for perm in itertools.permutations(range(4))}
    for code, count in zip(*np.unique(codes, return_counts=True), strict=True):
        counts[tuple(int(code) >> s & 3 for s in (6, 4, 2, 0))] += int(count)
    assert sum(counts.values()) == n_draws
    expected, sd = n_draws / 24, math.sqrt(n_draws / 24 * 23 / 24)
    assert all(abs(c - expected) < 5 * sd for c in counts.values()), counts


# ------------------------------------------------------------------ grouping


@pytest.mark.parametrize("seed", range(20))
def test_group_by_block_matches_reference_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_users, n_items, n_blocks = (int(x) for x in rng.integers(1, 10, 3))
    n = int(rng.integers(0, 80))
    users = rng.integers(0, n_users, n).astype(np.int32)
    items = rng.integers(0, n_items, n).astype(np.int32)
    row_block = rng.integers(0, n_blocks, n_users).astype(np.int32)
    col_block = rng.integers(0, n_blocks, n_items).astype(np.int32)
    out = [(np.full(n, -1, np.int32), np.full(n_blocks**2 + 1, -1, np.int64)) for _ in range(2)]
    fast = sgd_blocks.group_by_block(users, items, row_block, col_block, n_blocks, *out[0])
    slow = sgd_blocks_reference.group_by_block(users, items, row_block, col_block, n_blocks, *out[1])
    assert fast == slow
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])


@settings(max_examples=60, deadline=None)
@given(
    n_users=st.integers(1, 300),
    n_items=st.integers(1, 300),
    n_ratings=st.integers(0, 300),
    n_blocks=st.integers(1, 12),
    balance=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_grid_groups_every_rating_once_by_its_block(
    n_users: int, n_items: int, n_ratings: int, n_blocks: int, balance: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n_ratings).astype(np.int32)
    items = rng.integers(0, n_items, n_ratings).astype(np.int32)
    values = rng.uniform(1, 5, n_ratings).astype(np.float32)
    grid = make_grid(users, items, n_users, n_items, n_blocks, rng, values=values, dtype=np.float64, balance=balance)
    assert grid.block_ptr.shape == (n_blocks**2 + 1,)
    assert grid.block_ptr[0] == 0 and grid.block_ptr[-1] == n_ratings
    assert np.all(np.diff(grid.block_ptr) >= 0)
    blocks = block_of(grid, users, items)
    positions = np.argsort(blocks, kind="stable")  # grouped by block, ascending within one
    np.testing.assert_array_equal(np.diff(grid.block_ptr), np.bincount(blocks, minlength=n_blocks**2))
    assert grid.users.dtype == np.int32 and grid.items.dtype == np.int32 and grid.values.dtype == np.float64
    np.testing.assert_array_equal(grid.users, users[positions])
    np.testing.assert_array_equal(grid.items, items[positions])
    np.testing.assert_array_equal(grid.values, values[positions].astype(np.float64))
    assert grid.index.dtype == np.uint16 and grid.index.shape == (n_ratings,)
    for b in range(n_blocks**2):
        part = grid.index[grid.block_ptr[b] : grid.block_ptr[b + 1]]
        np.testing.assert_array_equal(part, np.arange(part.shape[0]))  # offsets, in order before a shuffle
    for assignment, n in ((grid.row_block, n_users), (grid.col_block, n_items)):
        assert assignment.dtype == np.int32 and assignment.shape == (n,)
        assert assignment.min() >= 0 and assignment.max() < n_blocks
        unit = _blocks.UNIT if n >= _blocks.UNIT * _blocks.UNIT_MIN_PER_BLOCK * n_blocks else 1
        ids = np.arange(n)
        np.testing.assert_array_equal(assignment, assignment[ids // unit * unit])  # a unit stays together
        units_per_block = np.bincount(assignment[::unit], minlength=n_blocks)
        assert units_per_block.max() - units_per_block.min() <= 1  # equal sizes up to one unit


@settings(max_examples=40, deadline=None)
@given(
    n_users=st.integers(1, 600), n_blocks=st.integers(1, 10), alpha=st.floats(0.0, 2.0), seed=st.integers(0, 2**32 - 1)
)
def test_balanced_blocks_differ_by_at_most_the_largest_count(
    n_users: int, n_blocks: int, alpha: float, seed: int
) -> None:
    """One unit of each stratum of ``n_blocks`` units per block: totals differ by <= max count - min count.

    (Strata are runs of units ranked by rating count; a partial last stratum counts as padded with zeros.)
    """
    rng = np.random.default_rng(seed)
    weights = (np.arange(n_users) + 1.0) ** -alpha
    users = rng.choice(n_users, 2000, p=weights / weights.sum()).astype(np.int32)
    grid = make_grid(users, np.zeros(2000, np.int32), n_users, 1, n_blocks, rng, balance=True)
    unit = _blocks.UNIT if n_users >= _blocks.UNIT * _blocks.UNIT_MIN_PER_BLOCK * n_blocks else 1
    n_units = -(-n_users // unit)
    counts = np.bincount(users // unit, minlength=n_units)
    totals = np.bincount(grid.row_block[users], minlength=n_blocks)
    smallest = counts.min() if n_units % n_blocks == 0 else 0
    assert totals.max() - totals.min() <= counts.max() - smallest


def test_ids_sharing_a_cache_line_share_a_block() -> None:
    rng = np.random.default_rng(0)
    users = rng.integers(0, 1024, 5000).astype(np.int32)
    items = rng.integers(0, 50, 5000).astype(np.int32)
    grid = make_grid(users, items, 1024, 50, 4, rng)
    runs = grid.row_block.reshape(-1, _blocks.UNIT)  # 1024 users >= 16 * 2 * 4: grouped in runs of 16
    assert np.all(runs == runs[:, :1])
    np.testing.assert_array_equal(np.bincount(runs[:, 0], minlength=4), [16, 16, 16, 16])
    assert not np.all(grid.col_block[:16] == grid.col_block[0])  # 50 items: too few to group, one by one


@pytest.mark.parametrize("unit", [1, 2, 3, 16, 17])  # powers of two take a shift, the others a division
@pytest.mark.parametrize("seed", range(4))
def test_count_units_matches_reference_exactly(unit: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 100))
    keys = rng.integers(0, n, int(rng.integers(0, 300))).astype(np.int32)
    fast, slow = np.full(-(-n // unit), -1, np.int64), np.full(-(-n // unit), -1, np.int64)
    assert sgd_blocks.count_units(keys, unit, fast) == sgd_blocks_reference.count_units(keys, unit, slow)
    np.testing.assert_array_equal(fast, slow)


def test_grid_costs_fourteen_bytes_a_rating() -> None:
    """The grid holds the ratings in block order (12 bytes) and a uint16 visiting order, and building
    it makes nothing else per rating."""
    rng = np.random.default_rng(0)
    n, n_users, n_items = 200_000, 5000, 400
    users = rng.integers(0, n_users, n).astype(np.int32)
    items = rng.integers(0, n_items, n).astype(np.int32)
    values = rng.uniform(1, 5, n).astype(np.float32)
    make_grid(users, items, n_users, n_items, 4, rng, values=values)  # compiled, warm
    tracemalloc.start()
    try:
        grid = make_grid(users, items, n_users, n_items, 4, rng, values=values)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert grid.index.nbytes == 2 * n
    assert grid.users.nbytes + grid.items.nbytes + grid.values.nbytes == 12 * n
    assert peak < (12 + 2) * n + 64 * (n_users + n_items) + 100_000
    assert grid.block_sizes.shape == (4, 4) and grid.block_sizes.sum() == n


# ------------------------------------------------------------------ schedule


@settings(max_examples=80, deadline=None)
@given(n_blocks=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_schedule_rounds_are_disjoint_and_cover_every_block_once(n_blocks: int, seed: int) -> None:
    rounds = latin_schedule(n_blocks, np.random.default_rng(seed))
    assert rounds.shape == (n_blocks, n_blocks) and rounds.dtype == np.int64
    rows, cols = rounds // n_blocks, rounds % n_blocks
    for r in range(n_blocks):
        assert len(set(rows[r].tolist())) == n_blocks  # no two blocks of a round share a row block
        assert len(set(cols[r].tolist())) == n_blocks  # ... nor a column block
    np.testing.assert_array_equal(np.sort(rounds.ravel()), np.arange(n_blocks**2))


def test_schedules_vary_between_epochs() -> None:
    rng = np.random.default_rng(0)
    schedules = {latin_schedule(5, rng).tobytes() for _ in range(20)}
    assert len(schedules) > 15
    seeds, rounds = draw_epoch(5, np.random.default_rng(1))
    assert seeds.shape == (25,) and seeds.dtype == np.uint64 and rounds.shape == (5, 5)


# ------------------------------------------------------------------ the SGD sweep


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(25))
def test_sweep_matches_reference(dtype: type, seed: int) -> None:
    """Shuffle + rounds, compiled and parallel, equal the serial reference run in round order."""
    rng = np.random.default_rng(seed)
    n_users, n_items = (int(x) for x in rng.integers(1, 12, size=2))
    n_blocks = int(rng.integers(1, 5))
    k = int(rng.integers(1, 6))
    prob = random_problem(rng, dtype, n_users, n_items, int(rng.integers(0, 120)), k)
    grid = make_grid(
        prob["users"], prob["items"], n_users, n_items, n_blocks, rng, values=prob["values"], dtype=dtype,
        balance=bool(seed % 2),
    )  # fmt: skip
    users, items, values = grid.users, grid.items, grid.values
    fast, slow = [a.copy() for a in prob["model"]], [a.copy() for a in prob["model"]]
    index_fast, index_slow = grid.index.copy(), grid.index.copy()
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for _ in range(3):
        seeds, rounds = draw_epoch(n_blocks, rng)
        sgd_blocks.shuffle_blocks(index_fast, grid.block_ptr, seeds)
        sgd_blocks_reference.shuffle_blocks(index_slow, grid.block_ptr, seeds)
        np.testing.assert_array_equal(index_fast, index_slow)
        args = (grid.block_ptr, rounds, prob["mu"])
        sse_fast = sgd_blocks.sgd_blocks_epoch(users, items, values, index_fast, *args, *fast, *prob["rates"])
        sse_slow = sgd_blocks_reference.sgd_blocks_epoch(users, items, values, index_slow, *args, *slow, *prob["rates"])
        np.testing.assert_allclose(sse_fast, sse_slow, rtol=10 * tol)
    for a, b in zip(fast, slow, strict=True):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@settings(max_examples=60, deadline=None)
@given(
    n_ratings=st.integers(0, 400),
    n_blocks=st.integers(1, 6),
    index_dtype=st.sampled_from([np.uint16, np.uint32, np.int64]),
    value_dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_scatter_by_block_matches_reference_and_group_by_block_exactly(
    n_ratings: int, n_blocks: int, index_dtype: type, value_dtype: type, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 50, n_ratings).astype(np.int32)
    items = rng.integers(0, 40, n_ratings).astype(np.int32)
    values = rng.uniform(1, 5, n_ratings).astype(np.float32)
    row_block = rng.integers(0, n_blocks, 50).astype(np.int32)
    col_block = rng.integers(0, n_blocks, 40).astype(np.int32)
    results = []
    for kernels in (sgd_blocks, sgd_blocks_reference):
        block_ptr = np.empty(n_blocks**2 + 1, np.int64)
        largest = kernels.block_offsets(users, items, row_block, col_block, n_blocks, block_ptr)
        out = (np.empty(n_ratings, np.int32), np.empty(n_ratings, np.int32), np.empty(n_ratings, value_dtype),
               np.empty(n_ratings, index_dtype))  # fmt: skip
        ptr_before = block_ptr.copy()
        assert kernels.scatter_by_block(users, items, values, row_block, col_block, n_blocks, block_ptr, *out) == n_ratings
        np.testing.assert_array_equal(block_ptr, ptr_before)
        results.append((largest, block_ptr, *out))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1:], results[1][1:], strict=True):
        np.testing.assert_array_equal(a, b)
    positions, ptr = np.empty(n_ratings, np.int32), np.empty(n_blocks**2 + 1, np.int64)
    sgd_blocks.group_by_block(users, items, row_block, col_block, n_blocks, positions, ptr)
    np.testing.assert_array_equal(ptr, results[0][1])
    np.testing.assert_array_equal(results[0][2], users[positions])
    np.testing.assert_array_equal(results[0][4], values[positions].astype(value_dtype))
    assert results[0][0] == (int(np.diff(ptr).max()) if n_ratings else 0)


@pytest.mark.skipif(available_threads() < 2, reason="numba can run only one thread here (NUMBA_NUM_THREADS)")
def test_grid_copy_is_the_same_on_one_and_two_threads() -> None:
    """The parallel scatter (64 chunks here) gives the serial stable order whatever the thread count."""
    rng = np.random.default_rng(11)
    n = 300_000
    users = rng.integers(0, 3000, n).astype(np.int32)
    items = rng.integers(0, 800, n).astype(np.int32)
    values = rng.uniform(1, 5, n).astype(np.float32)
    assert sgd_blocks.scatter_chunks(n, 16) == 64
    one = make_grid(users, items, 3000, 800, 4, np.random.default_rng(1), values=values, n_threads=1)
    two = make_grid(users, items, 3000, 800, 4, np.random.default_rng(1), values=values, n_threads=2)
    positions = np.argsort(block_of(one, users, items), kind="stable")
    for grid in (one, two):
        np.testing.assert_array_equal(grid.users, users[positions])
        np.testing.assert_array_equal(grid.items, items[positions])
        np.testing.assert_array_equal(grid.values, values[positions])
        np.testing.assert_array_equal(grid.index, one.index)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lean_grid_gives_the_copy_s_model_bit_for_bit(dtype: type) -> None:
    """``make_grid(copy=False)`` keeps positions into the caller's arrays; same draws, same model."""
    rng = np.random.default_rng(21)
    prob = random_problem(rng, dtype, 300, 200, 20_000, 8)
    results = []
    for copy in (True, False):
        fit_rng = np.random.default_rng(9)
        grid = make_grid(prob["users"], prob["items"], 300, 200, 5, fit_rng, values=prob["values"], dtype=dtype,
                         copy=copy)  # fmt: skip
        assert grid.copied == copy
        if not copy:
            assert grid.users is prob["users"] and grid.index.dtype == np.int32
        model = [a.copy() for a in prob["model"]]
        sses = [sgd_blocks_sweep(grid, prob["mu"], *model, *prob["rates"], rng=fit_rng, n_threads=1) for _ in range(2)]
        results.append((model, sses))
    assert results[0][1] == results[1][1]
    for a, b in zip(results[0][0], results[1][0], strict=True):
        np.testing.assert_array_equal(a, b)


def test_block_sweep_visits_the_callers_ratings_once_each_in_the_shuffled_order() -> None:
    """Through the copy: one epoch over the grid equals the serial reference over the caller's arrays in
    the order ``positions[block_ptr[b] + index[...]]``, block by block in round order."""
    from factorise.kernels import sgd_ratings_reference

    rng = np.random.default_rng(3)
    prob = random_problem(rng, np.float64, 30, 20, 500, 3)
    users, items, values = prob["users"], prob["items"], prob["values"]
    grid = make_grid(users, items, 30, 20, 3, np.random.default_rng(4), values=values, dtype=np.float64)
    positions = np.argsort(block_of(grid, users, items), kind="stable")
    fast, slow = [a.copy() for a in prob["model"]], [a.copy() for a in prob["model"]]
    sse = sgd_blocks_sweep(grid, prob["mu"], *fast, *prob["rates"], rng=np.random.default_rng(5), n_threads=1)
    seeds, rounds = draw_epoch(3, np.random.default_rng(5))
    order = np.arange(500) - np.repeat(grid.block_ptr[:-1], np.diff(grid.block_ptr))
    sgd_blocks_reference.shuffle_blocks(order, grid.block_ptr, seeds)
    np.testing.assert_array_equal(order, grid.index)
    visit = np.concatenate(
        [positions[grid.block_ptr[b] + order[grid.block_ptr[b] : grid.block_ptr[b + 1]]] for b in rounds.ravel()]
    )
    np.testing.assert_array_equal(np.sort(visit), np.arange(500))
    ref = sgd_ratings_reference.sgd_ratings_epoch(users, items, values, visit, prob["mu"], *slow, *prob["rates"])
    np.testing.assert_allclose(sse, ref, rtol=1e-12)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_block_is_the_serial_sweep(dtype: type) -> None:
    """With one block the sweep is the serial kernel's on the same order: the per-rating update is shared."""
    rng = np.random.default_rng(7)
    prob = random_problem(rng, dtype, 40, 30, 3000, 8)
    users, items, values = prob["users"], prob["items"], prob["values"]
    order = rng.permutation(3000).astype(np.int32)
    block_ptr = np.array([0, 3000], np.int64)
    rounds = np.zeros((1, 1), np.int64)
    blocked, serial = [a.copy() for a in prob["model"]], [a.copy() for a in prob["model"]]
    sse_b = sgd_blocks.sgd_blocks_epoch(
        users, items, values, order, block_ptr, rounds, prob["mu"], *blocked, *prob["rates"]
    )
    sse_s = sgd_ratings.sgd_ratings_epoch(users, items, values, order, prob["mu"], *serial, *prob["rates"])
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(sse_b, sse_s, rtol=tol)
    for a, b in zip(blocked, serial, strict=True):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def _fit(n_threads: int, seed: int, n_blocks: int = 4, epochs: int = 3) -> tuple[list[np.ndarray], list[float]]:
    rng = np.random.default_rng(123)
    prob = random_problem(rng, np.float32, 400, 300, 30_000, 16)
    fit_rng = np.random.default_rng(seed)
    grid = make_grid(prob["users"], prob["items"], 400, 300, n_blocks, fit_rng, values=prob["values"])
    model = [a.copy() for a in prob["model"]]
    sses = [
        sgd_blocks_sweep(grid, prob["mu"], *model, *prob["rates"], rng=fit_rng, n_threads=n_threads)
        for _ in range(epochs)
    ]
    return model, sses


@pytest.mark.skipif(available_threads() < 2, reason="numba can run only one thread here (NUMBA_NUM_THREADS)")
def test_result_is_bit_identical_on_one_and_two_threads() -> None:
    one, sse_one = _fit(n_threads=1, seed=5)
    two, sse_two = _fit(n_threads=2, seed=5)
    assert sse_one == sse_two
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


def test_result_depends_on_the_seed() -> None:
    a, sse_a = _fit(n_threads=1, seed=5, epochs=1)
    b, sse_b = _fit(n_threads=1, seed=6, epochs=1)
    assert sse_a != sse_b
    assert not np.array_equal(a[2], b[2])


def test_sweep_restores_numba_threads_and_allocates_nothing_per_rating() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    prob = random_problem(rng, np.float32, 500, 400, n, 4)
    grid = make_grid(prob["users"], prob["items"], 500, 400, 8, rng, values=prob["values"])
    args = (grid, prob["mu"], *prob["model"], *prob["rates"])
    before = numba.get_num_threads()
    sgd_blocks_sweep(*args, rng=rng, n_threads=1)  # compiled, warm
    tracemalloc.start()
    try:
        sgd_blocks_sweep(*args, rng=rng, n_threads=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert numba.get_num_threads() == before
    assert peak < n  # far below one byte a rating (the draws are n_blocks**2 numbers)


def test_block_sgd_recovers_a_planted_model() -> None:
    """Block order is still SGD: held-out error reaches the planted noise level."""
    noise = 0.3
    (users, items, values), (hu, hi, hv) = planted(0, noise=noise)
    rng = np.random.default_rng(1)
    k, f = 3, np.float32
    grid = make_grid(users, items, 300, 200, 4, rng, values=values)
    model = [
        np.zeros(300, f),
        np.zeros(200, f),
        rng.normal(0, 0.1, (300, k)).astype(f),
        rng.normal(0, 0.1, (200, k)).astype(f),
    ]
    mu = f(values.mean())
    for epoch in range(60):
        lr = f(0.03 * 0.95**epoch)
        sse = sgd_blocks_sweep(
            grid,
            mu,
            *model,
            lr,
            f(0.02),
            lr,
            f(0.02),
            rng=rng,
            n_threads=2 if available_threads() > 1 else 1,
        )
    bu, bi, P, Q = model
    pred = mu + bu[hu] + bi[hi] + np.einsum("ij,ij->i", P[hu], Q[hi])
    rmse = float(np.sqrt(np.mean((pred - hv) ** 2)))
    assert math.sqrt(sse / values.shape[0]) < 1.1 * noise
    assert rmse < 1.2 * noise, rmse


# ------------------------------------------------------------------ choosing the engine


def test_resolve_n_blocks_default_and_rules() -> None:
    assert resolve_n_blocks(None, 1) == _blocks.DEFAULT_N_BLOCKS
    assert resolve_n_blocks(None, 64) == 128
    assert resolve_n_blocks(None, 10**6) == MAX_N_BLOCKS
    assert resolve_n_blocks(3, 2) == 3 and resolve_n_blocks(np.int64(2), 2) == 2
    # from the data: isqrt(n_ratings // 8192) between 8 and 32, and never below 2 * n_threads
    assert resolve_n_blocks(None, 1, 100_000) == 8
    assert resolve_n_blocks(None, 1, 1_000_000) == 11
    assert resolve_n_blocks(None, 1, 9_000_000) == 32 == resolve_n_blocks(None, 1, 10**9)
    assert resolve_n_blocks(None, 20, 9_000_000) == 40
    assert resolve_n_blocks(7, 1, 9_000_000) == 7
    # the factor rows: a block's rows within 512 KiB, capped by the block sweep's threshold
    assert resolve_n_blocks(None, 1, 9_000_000, 110_000 * 128) == 32  # 27 by the rows: the ratings rule wins
    assert resolve_n_blocks(None, 1, 99_475_702, 497_959 * 128) == 122  # the Netflix shape at rank 32
    assert resolve_n_blocks(None, 1, 1_000_000, 10**6 * 128) == 22  # isqrt(1M // 2000): still block-parallel
    assert use_blocks(1_000_000, 22)
    assert resolve_n_blocks(None, 1, 9_000_000, 110_000 * 128) == resolve_n_blocks(None, 2, 9_000_000, 110_000 * 128)
    for n in (0, 10**5, 10**6, 3 * 10**6, 10**7, 10**8):  # the same model on 1 and 2 threads
        assert resolve_n_blocks(None, 1, n) == resolve_n_blocks(None, 2, n)
        assert use_blocks(n, resolve_n_blocks(None, 1, n)) == (n >= MIN_BLOCK_RATINGS * 64)
    for bad in (2.0, True, "4"):
        with pytest.raises(TypeError, match=r"`n_blocks` must be None or an integer"):
            resolve_n_blocks(bad, 1)
    for bad in (0, -3, MAX_N_BLOCKS + 1):
        with pytest.raises(ValueError, match=rf"1 <= n_blocks <= {MAX_N_BLOCKS}; got {bad}"):
            resolve_n_blocks(bad, 1)


def test_more_threads_than_blocks_is_an_error_naming_both() -> None:
    with pytest.raises(ValueError, match=r"more threads than blocks: `n_threads` \(8\) must be <= `n_blocks` \(5\)"):
        resolve_n_blocks(5, 8)


def test_use_blocks_threshold() -> None:
    nb = 8
    assert not use_blocks(MIN_BLOCK_RATINGS * nb * nb - 1, nb)
    assert use_blocks(MIN_BLOCK_RATINGS * nb * nb, nb)
    assert not use_blocks(0, 1) or MIN_BLOCK_RATINGS == 0


@pytest.mark.parametrize("seed", range(6))
def test_fused_shuffle_and_sweep_equals_the_two_kernels(seed: int) -> None:
    """Shuffling each block just before running it gives exactly the two-pass result."""
    from factorise.kernels import sgd_blocks as kb
    from factorise.models import _blocks

    rng = np.random.default_rng(seed)
    n_users, n_items, k, n = 60, 50, 4, 3000
    users = rng.integers(0, n_users, n).astype(np.int32)
    items = rng.integers(0, n_items, n).astype(np.int32)
    values = rng.uniform(1, 5, n).astype(np.float32)
    grid = _blocks.make_grid(users, items, n_users, n_items, 4, np.random.default_rng(seed), values=values)
    users, items, values = grid.users, grid.items, grid.values
    seeds, rounds = _blocks.draw_epoch(4, np.random.default_rng(seed + 100))
    f = np.float32
    state = [np.zeros(n_users, f), np.zeros(n_items, f), rng.normal(0, 0.1, (n_users, k)).astype(f),
             rng.normal(0, 0.1, (n_items, k)).astype(f)]  # fmt: skip
    other = [a.copy() for a in state]
    index2 = grid.index.copy()
    rates = (f(0.01), f(0.05), f(0.01), f(0.01))
    kb.shuffle_blocks(grid.index, grid.block_ptr, seeds)
    sse = kb.sgd_blocks_epoch(users, items, values, grid.index, grid.block_ptr, rounds, f(3), *state, *rates)
    fused = kb.shuffle_sgd_blocks_epoch(
        users, items, values, index2, grid.block_ptr, rounds, seeds, f(3), *other, *rates
    )
    assert fused == sse
    np.testing.assert_array_equal(index2, grid.index)
    for a, b in zip(state, other):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ the block order made in place


@settings(max_examples=60, deadline=None)
@given(
    n_ratings=st.integers(0, 3000),
    n_blocks=st.integers(1, 6),
    n_chunks=st.integers(1, 9),
    key_dtype=st.sampled_from([np.uint16, np.uint32]),
    seed=st.integers(0, 2**32 - 1),
)
def test_in_place_kernels_match_reference_exactly(
    n_ratings: int, n_blocks: int, n_chunks: int, key_dtype: type, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 50, n_ratings).astype(np.int32)
    items = rng.integers(0, 40, n_ratings).astype(np.int32)
    row_block = rng.integers(0, n_blocks, 50).astype(np.int32)
    col_block = rng.integers(0, n_blocks, 40).astype(np.int32)
    column = rng.integers(-(2**31), 2**31 - 1, n_ratings).astype(np.int32)
    results = []
    for kernels in (sgd_blocks, sgd_blocks_reference):
        keys = np.empty(n_ratings, key_dtype)
        assert kernels.block_keys(users, items, row_block, col_block, n_blocks, keys) == n_ratings
        block_ptr = np.empty(n_blocks**2 + 1, np.int64)
        sgd_blocks_reference.block_offsets(users, items, row_block, col_block, n_blocks, block_ptr)
        index = np.full(n_ratings, 7, np.uint16)
        assert kernels.reset_index(block_ptr, index) == n_ratings
        results.append((keys, block_ptr, index))
    for a, b in zip(results[0], results[1], strict=True):
        np.testing.assert_array_equal(a, b)
    keys, block_ptr, _ = results[0]
    np.testing.assert_array_equal(keys, block_of_arrays(row_block, col_block, n_blocks, users, items))
    # the reorder of the grid's in-place path: grouping's chunked stable sort by block id, on a
    # contiguous column and on a strided one (the halves of an 8-byte array), for any cut into chunks
    ptr = np.full(n_blocks**2 + 1, -1, np.int64)
    starts = grouping.group_chunk_starts(keys, n_blocks**2, n_chunks, ptr)
    np.testing.assert_array_equal(ptr, block_ptr)
    order = np.argsort(block_of_arrays(row_block, col_block, n_blocks, users, items), kind="stable")
    pairs = np.stack([column, column[::-1]], axis=1)
    for moved in (column.copy(), pairs[:, 0], pairs[:, 1]):
        expected = moved[order]
        scratch = np.empty(n_ratings, np.int32)
        assert grouping.group_fill_chunked(keys, moved, starts, scratch) == n_ratings
        np.testing.assert_array_equal(scratch, expected)


def block_of_arrays(row_block: np.ndarray, col_block: np.ndarray, n_blocks: int, users: np.ndarray,
                    items: np.ndarray) -> np.ndarray:  # fmt: skip
    return row_block[users].astype(np.int64) * n_blocks + col_block[items]


@pytest.mark.parametrize("n_blocks", [3, 40, 300])  # 300**2 block ids need uint32 keys, then a separate index
@pytest.mark.parametrize("n_threads", [1, 2])
def test_grid_in_place_is_the_copy_reordering_the_callers_arrays(n_blocks: int, n_threads: int) -> None:
    rng = np.random.default_rng(n_blocks)
    n, n_users, n_items = 200_000, 4000, 3000
    users = rng.integers(0, n_users, n).astype(np.int32)
    items = rng.integers(0, n_items, n).astype(np.int32)
    values = rng.uniform(1, 5, n).astype(np.float32)
    stamps = rng.integers(-(2**62), 2**62, n)  # 8 bytes an entry: moved as two 4-byte halves
    weights = rng.uniform(0, 1, n).astype(np.float32)
    copied = make_grid(users, items, n_users, n_items, n_blocks, np.random.default_rng(3), values=values)
    mine = [users.copy(), items.copy(), values.copy(), stamps.copy(), weights.copy()]
    grid = make_grid(mine[0], mine[1], n_users, n_items, n_blocks, np.random.default_rng(3), values=mine[2],
                     n_threads=n_threads, copy="in-place", also=(mine[3], mine[4]))  # fmt: skip
    assert grid.users is mine[0] and grid.items is mine[1] and grid.values is mine[2] and grid.copied
    for field in ("users", "items", "values", "index", "block_ptr", "row_block", "col_block"):
        np.testing.assert_array_equal(getattr(grid, field), getattr(copied, field), err_msg=field)
    assert grid.index.dtype == copied.index.dtype == np.uint16
    order = np.argsort(block_of(copied, users, items), kind="stable")
    np.testing.assert_array_equal(mine[3], stamps[order])  # the extra arrays stay paired with their ratings
    np.testing.assert_array_equal(mine[4], weights[order])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a[0].setflags(write=False), "reorders users itself: it must be C-contiguous and writeable"),
        (lambda a: a.__setitem__(1, a[1].astype(np.int64)), "items must be of dtype int32; got int64"),
        (lambda a: a.__setitem__(3, np.zeros(5)), r"also\[0\] must be 1-D with 1000 entries"),
        (lambda a: a.__setitem__(3, np.zeros(1000, np.int16)), r"also\[0\] must have 4 or 8 bytes an entry"),
        (lambda a: a.__setitem__(2, a[2].astype(np.float64)), "values must be of dtype float32"),
    ],
)
def test_grid_in_place_refuses_arrays_it_cannot_reorder_and_changes_nothing(change, message: str) -> None:
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 30, 1000).astype(np.int32), rng.integers(0, 20, 1000).astype(np.int32),
              rng.uniform(1, 5, 1000).astype(np.float32), rng.integers(0, 9, 1000)]  # fmt: skip
    change(arrays)
    before = [a.copy() for a in arrays]
    with pytest.raises(ValueError, match=message):
        make_grid(arrays[0], arrays[1], 30, 20, 3, np.random.default_rng(1), values=arrays[2], copy="in-place",
                  also=(arrays[3],))  # fmt: skip
    for a, b in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_grid_in_place_keeps_float32_values_only() -> None:
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 30, 100).astype(np.int32), rng.integers(0, 20, 100).astype(np.int32)
    with pytest.raises(ValueError, match="keeps the values as they are, float32; got dtype float64"):
        make_grid(users, items, 30, 20, 3, np.random.default_rng(1), values=np.ones(100, np.float32),
                  dtype=np.float64, copy="in-place")  # fmt: skip
