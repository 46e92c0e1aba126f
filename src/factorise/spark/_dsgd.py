"""Distributed SGD over strata (DSGD) on Spark RDDs: the block sweep of :class:`~factorise.models.BiasedMF`.

Gemulla, Nijkamp, Haas and Sismanis (KDD 2011) cut the rating matrix into
``B x B`` blocks; blocks that share no row block and no column block (a
*stratum*) can run SGD at the same time. The shared-memory sweep
(:mod:`factorise.models._blocks`) runs the strata of a random Latin square
each epoch, on threads; this module runs the same strata, in the same order,
with the same per-block shuffles and the same compiled update, as Spark
tasks, so the factors come out the same.

Layout on the cluster (``B`` partitions, all under one partitioner, so that
Spark's partitioner-aware union lines them up partition by partition):

* the *home* side is the larger of users and items (the one whose factors
  are bigger); partition ``h`` holds home block ``h``'s factors and biases and
  the ratings of its ``B`` blocks, ``(h, g)`` for every block ``g`` of the
  other, *rotating* side. The ratings are cached once and never move again;
  the home factors are rewritten in place each round (a new cached RDD, same
  partition);
* the rotating side's factor blocks move: in each round every partition
  ``h`` gets the block ``g`` its stratum pairs it with (a shuffle of the
  smaller factors only), runs SGD on block ``(h, g)``, and hands that factor
  block on to the partition that needs it next round.

An epoch runs in one of two ways (the same factors either way):

* as one *barrier stage* (:func:`run_epoch_barrier`, where the cluster can
  run all ``B`` tasks at once): each task runs all ``B`` rounds of its
  partition, and the rotating blocks pass from task to task as files in the
  checkpoint directory; the stage's output goes through a shuffle so that
  Spark can retry it whole when a task fails;
* as ``B`` rounds (:func:`run_epoch`), each a stage of one task a partition,
  the rotating blocks moved by shuffles; this works on any cluster.

Then one collect of the per-block squared errors; every ``checkpoint_interval`` epochs the factors
are checkpointed, which cuts the lineage. The training RMSE of ``history_``
(over the same ratings, or the same sample, as a local fit) and the
validation RMSE are computed with every rotating block in every partition:
by the barrier tasks after their last round, or by one more stage in the
rounds' job. Every random draw is made on the driver by the
model's generator, in the order the local fit makes them; tasks are pure
functions of their inputs, so a task that Spark retries after a failure
computes the same result.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Layout", "block_home", "build_blocks", "factor_rows", "initial_state", "run_epoch", "split_blocks"]

logger = logging.getLogger(__name__)


def block_home(key: int) -> int:
    """The partitioner of every RDD of the engine: element key ``h`` lives in partition ``h``.

    One function object, so that Spark sees one partitioner and unions the
    RDDs partition by partition.
    """
    return int(key)


@dataclasses.dataclass(frozen=True)
class Layout:
    """The grid as the tasks see it (small: it travels in every task's closure).

    Attributes
    ----------
    n_blocks : int
    home_is_user : bool
        Whether the home (partition) side is the users.
    home_sizes, rot_sizes : tuple of int
        Rows of each home (rotating) block.
    rank : int
    dtype : str
    """

    n_blocks: int
    home_is_user: bool
    home_sizes: tuple[int, ...]
    rot_sizes: tuple[int, ...]
    rank: int
    dtype: str

    def block_id(self, h: int, g: int) -> int:
        """Id ``I * B + J`` of the block of home block ``h`` and rotating block ``g``."""
        i, j = (h, g) if self.home_is_user else (g, h)
        return i * self.n_blocks + j


def local_indices(blocks: np.ndarray, n_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """Each id's row within its block (ids of a block in ascending order), and the blocks' sizes."""
    order = np.argsort(blocks, kind="stable")
    sizes = np.bincount(blocks, minlength=n_blocks).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    local = np.empty(blocks.shape[0], dtype=np.int32)
    local[order] = (np.arange(blocks.shape[0], dtype=np.int64) - np.repeat(starts, sizes)).astype(np.int32)
    return local, sizes


# ------------------------------------------------------------------ ratings
def _encode(columns: tuple[np.ndarray, ...]) -> bytes:
    return b"".join(np.ascontiguousarray(c).tobytes() for c in columns)


_DTYPES = (np.int32, np.int32, np.float32, np.int64)


def _decode(payload: bytes) -> tuple[np.ndarray, ...]:
    n = len(payload) // 20
    out, start = [], 0
    for dtype in _DTYPES:
        size = n * np.dtype(dtype).itemsize
        out.append(np.frombuffer(payload, dtype=dtype, count=n, offset=start))
        start += size
    return tuple(out)


def _key_batches(
    batches: Iterable[Any], maps: Any, home_is_user: bool, offsets: np.ndarray | None, n_blocks: int
) -> Iterator[Any]:
    """mapInArrow body: raw ratings (``u_raw``, ``i_raw``, ``r``) grouped by (home block, rotating block), encoded.

    The raw ids are looked up in the fit's sorted ids (``maps``); the
    position of a rating is its partition's offset (``offsets``) plus its
    row. Unknown ids (validation only) keep -1 as their row; their block is
    0 on the home side and -1 on the rotating side.
    """
    from pyspark import TaskContext

    base = int(offsets[TaskContext.get().partitionId()]) if offsets is not None else 0
    yield from _key_at(batches, maps, home_is_user, base, n_blocks)


def _key_pieces(
    pieces: Iterable[tuple[int, str, int]], maps: Any, home_is_user: bool, columns: Any, n_blocks: int
) -> Iterator[Any]:
    """The keying of :func:`_key_batches`, on Parquet row groups read here (``(offset, uri, group)``)."""
    from factorise.spark._prepare import read_piece

    for offset, uri, group in pieces:
        table = read_piece(uri, group, columns)
        for batch in _key_at(table.to_batches(max_chunksize=1 << 20), maps, home_is_user, offset, n_blocks):
            for h, g, payload in zip(*(batch.column(c).to_pylist() for c in ("h", "g", "payload")), strict=True):
                yield h, (g, payload)


def _key_at(batches: Iterable[Any], maps: Any, home_is_user: bool, base: int, n_blocks: int) -> Iterator[Any]:
    """:func:`_key_batches` from position ``base`` on."""
    import pyarrow as pa

    from factorise.spark._prepare import raw_indices

    user_ids, item_ids, ub, ul, ib, il = maps.value
    row = 0
    for batch in batches:
        u = raw_indices(batch.column("u_raw"), user_ids)
        i = raw_indices(batch.column("i_raw"), item_ids)
        r = batch.column("r").to_numpy(zero_copy_only=False).astype(np.float32)
        pos = base + row + np.arange(u.shape[0], dtype=np.int64)
        row += u.shape[0]
        known_u, known_i = u >= 0, i >= 0
        u0, i0 = np.maximum(u, 0), np.maximum(i, 0)
        u_block = np.where(known_u, ub[u0], -1)
        i_block = np.where(known_i, ib[i0], -1)
        u_local = np.where(known_u, ul[u0], -1).astype(np.int32)
        i_local = np.where(known_i, il[i0], -1).astype(np.int32)
        home, rot = (u_block, i_block) if home_is_user else (i_block, u_block)
        home = np.maximum(home, 0)
        width = n_blocks + 1  # rotating block -1 (unknown) .. B - 1
        key = home.astype(np.int64) * width + (rot + 1)
        if n_blocks * width <= 1 << 16:  # a stable sort of 2-byte keys is a radix sort: linear
            key = key.astype(np.uint16)
        order = np.argsort(key, kind="stable")  # stable: each piece keeps its ratings' order (ascending positions)
        counts = np.bincount(key, minlength=n_blocks * width)
        keys = np.flatnonzero(counts)
        ends = np.cumsum(counts)
        hs, gs, payloads = [], [], []
        for k in keys.tolist():
            rows = order[ends[k] - counts[k] : ends[k]]
            hs.append(k // width)
            gs.append(k % width - 1)
            payloads.append(_encode((u_local[rows], i_local[rows], r[rows], pos[rows])))
        yield pa.RecordBatch.from_arrays(
            [pa.array(hs, pa.int32()), pa.array(gs, pa.int32()), pa.array(payloads, pa.binary())], names=["h", "g", "payload"]
        )


def _assemble(
    iterator: Iterable[tuple[int, tuple[int, bytes]]], layout: Layout, sample: Any, kind: str
) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """One partition's pieces, joined into its blocks (ratings in input order), with their statistics.

    ``kind`` "R": training ratings; yields ``(h, ("R", g, users, items,
    values))`` for every rotating block ``g`` (empty ones too), then, where a
    sample of positions is given, ``(h, ("T", g, ...))`` with the sampled
    ratings, and ``(h, ("stats", ...))``. Earlier ratings of a (user, item)
    pair are dropped, as :meth:`factorise.data.Ratings.from_raw` drops them.
    ``kind`` "V": validation pairs, ``(h, ("V", g, ...))`` (``g`` -1 for
    unknown rotating ids), no statistics.
    """
    pieces: dict[int, list[tuple[np.ndarray, ...]]] = {}
    h = None
    for key, (g, payload) in iterator:
        h = key
        pieces.setdefault(int(g), []).append(_decode(bytes(payload)))
    if h is None:
        return
    picks = sample.value if sample is not None else None
    stats = []
    blocks = range(layout.n_blocks) if kind == "R" else sorted(pieces)
    for g in blocks:
        u, i, r, pos = _in_input_order(pieces.get(g, []))
        dropped = 0
        if kind == "R" and u.shape[0] > 1 and _has_repeats(u, i):
            by_pair = np.lexsort((pos, i, u))
            su, si = u[by_pair], i[by_pair]
            earlier = np.zeros(u.shape[0], dtype=bool)
            earlier[by_pair[:-1]] = (su[:-1] == su[1:]) & (si[:-1] == si[1:])
            dropped = int(earlier.sum())
            if dropped:
                keep = ~earlier
                u, i, r, pos = u[keep], i[keep], r[keep], pos[keep]
        if kind == "R":  # rows of blocks of at most 65,536 ids fit in 2 bytes: a third less to stream each round
            yield h, (kind, g, _narrow(u, layout, h, g, "user"), _narrow(i, layout, h, g, "item"), r.copy())
        else:
            yield h, (kind, g, u.copy(), i.copy(), r.copy())
        if kind == "R":
            if picks is not None:
                found = np.minimum(np.searchsorted(picks, pos), max(picks.shape[0] - 1, 0))
                chosen = picks[found] == pos if picks.shape[0] else np.zeros(pos.shape[0], dtype=bool)
                yield h, ("T", g, u[chosen], i[chosen], r[chosen])
            values = r.astype(np.float64)
            n = values.shape[0]
            mean = float(values.mean()) if n else 0.0
            m2 = float(((values - mean) ** 2).sum()) if n else 0.0
            low = float(values.min()) if n else math.inf
            high = float(values.max()) if n else -math.inf
            stats.append((n, mean, m2, low, high, float(np.abs(values).max()) if n else 0.0, dropped))
    if kind == "R":
        yield h, ("stats", stats)


def _in_input_order(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """One block's pieces joined, ratings in ascending position.

    Each piece of :func:`_key_at` keeps its batch's order, and the pieces of
    training ratings cover disjoint ranges of positions, so ordering the
    pieces by their first position is enough; otherwise (validation pairs,
    whose positions are not unique) the ratings are sorted stably.
    """
    if not parts:
        return tuple(np.empty(0, dtype=d) for d in _DTYPES)
    parts = sorted(parts, key=lambda p: int(p[3][0]) if p[3].shape[0] else -1)
    u, i, r, pos = (np.concatenate([p[c] for p in parts]) for c in range(4))
    if pos.shape[0] > 1 and not bool(np.all(pos[1:] > pos[:-1])):
        order = np.argsort(pos, kind="stable")
        u, i, r, pos = u[order], i[order], r[order], pos[order]
    return u, i, r, pos


def _has_repeats(users: np.ndarray, items: np.ndarray) -> bool:
    """Whether some (user, item) pair occurs twice (one unstable sort of the pairs' keys)."""
    key = users.astype(np.int64) * (int(items.max()) + 1) + items
    key.sort()
    return bool(np.any(key[1:] == key[:-1]))


def _narrow(rows: np.ndarray, layout: Layout, h: int, g: int, side: str) -> np.ndarray:
    """A block's user (item) rows as uint16 where that side's blocks hold at most 65,536 ids, else int32."""
    sizes = layout.home_sizes if (side == "user") == layout.home_is_user else layout.rot_sizes
    return rows.astype(np.uint16) if max(sizes, default=0) <= 1 << 16 else rows.copy()


def build_blocks(
    frame: Any,
    layout: Layout,
    maps: Any,
    *,
    offsets: np.ndarray | None = None,
    sample: Any = None,
    kind: str = "R",
    pieces: list[tuple[str, int, int]] | None = None,
    columns: Any = None,
) -> Any:
    """The blocks of ``frame`` (raw ``u_raw``, ``i_raw``, ``r``) as an RDD of ``B`` partitions, cached.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
    layout : Layout
    maps : pyspark.Broadcast
        ``(user_ids, item_ids, user_block, user_row, item_block, item_row)`` arrays.
    offsets : numpy.ndarray, optional
        Position of the first rating of each partition of ``frame`` (training ratings).
    sample : pyspark.Broadcast, optional
        Sorted positions of the training-RMSE sample.
    kind : {"R", "V"}
        Training ratings or validation pairs.
    """
    from pyspark import StorageLevel

    if pieces is not None:  # Parquet row groups, read by pyarrow on the executors
        sc = frame.sparkSession.sparkContext
        starts = np.concatenate([[0], np.cumsum([rows for _, _, rows in pieces])[:-1]])
        work = [(int(o), uri, g) for o, (uri, g, _) in zip(starts, pieces, strict=True)]
        slices = max(1, min(len(work), 4 * sc.defaultParallelism))
        body = partial(_key_pieces, maps=maps, home_is_user=layout.home_is_user, columns=columns, n_blocks=layout.n_blocks)
        rdd = sc.parallelize(work, slices).mapPartitions(body).partitionBy(layout.n_blocks, block_home)
    else:
        body = partial(_key_batches, maps=maps, home_is_user=layout.home_is_user, offsets=offsets, n_blocks=layout.n_blocks)
        keyed = frame.mapInArrow(body, "h int, g int, payload binary")
        rdd = keyed.rdd.map(lambda row: (row[0], (row[1], row[2]))).partitionBy(layout.n_blocks, block_home)
    blocks = rdd.mapPartitions(partial(_assemble, layout=layout, sample=sample, kind=kind), preservesPartitioning=True)
    return blocks.persist(StorageLevel.MEMORY_AND_DISK)


def split_blocks(blocks: Any) -> tuple[Any, Any | None, RatingStats]:
    """The training blocks (``R``), the training-RMSE sample (``T``, None without one), cached apart, and the statistics.

    The rounds stream every ``R`` element of their partition, so the sample
    (only read by the evaluation) is kept out of them. One job computes the
    blocks, caches both parts and collects the per-block statistics.
    """
    from pyspark import StorageLevel

    ratings = blocks.filter(lambda kv: kv[1][0] == "R").persist(StorageLevel.MEMORY_AND_DISK)
    sample = blocks.filter(lambda kv: kv[1][0] == "T").persist(StorageLevel.MEMORY_AND_DISK)
    stats = blocks.filter(lambda kv: kv[1][0] == "stats")
    marks = sample.map(lambda kv: (-1, ("T",)))  # one mark per sample block: whether there is a sample
    records = (
        blocks.context.union([ratings.filter(lambda kv: False), marks, stats])
        .map(lambda kv: (kv[0], kv[1][1] if kv[1][0] == "stats" else None))
        .collect()
    )
    blocks.unpersist()
    if not any(key == -1 for key, _ in records):
        sample.unpersist()
        sample = None
    return ratings, sample, rating_stats([r for r in records if r[0] != -1])


@dataclasses.dataclass(frozen=True)
class RatingStats:
    """What the driver learns of the training ratings: counts and moments, nothing per rating."""

    n: int
    mean: float
    squared_deviation: float
    low: float
    high: float
    largest: float
    dropped: int


def rating_stats(records: list[tuple[int, Any]]) -> RatingStats:
    """Combine the per-block statistics of :func:`build_blocks`, ``(partition, stats)`` (Chan et al.'s pairwise update)."""
    n, mean, m2, low, high, largest, dropped = 0, 0.0, 0.0, math.inf, -math.inf, 0.0, 0
    for _, stats in sorted(records):
        for nb, mb, m2b, lb, hb, ab, db in stats:
            dropped += db
            if nb == 0:
                continue
            delta = mb - mean
            total = n + nb
            mean += delta * nb / total
            m2 += m2b + delta * delta * n * nb / total
            n = total
            low, high, largest = min(low, lb), max(high, hb), max(largest, ab)
    return RatingStats(n, mean, m2, low, high, largest, dropped)


# ------------------------------------------------------------------ factors
def _draw_chunks(
    chunks: Iterable[tuple[int, int]], seeds: tuple[int, int], sizes: tuple[int, int], scale: Any, layout: Layout,
    maps: Any,
) -> Iterator[tuple[int, tuple[Any, ...]]]:  # fmt: skip
    """Draw chunks of the initial factors (side 0 users, 1 items) and cut them into blocks."""
    from factorise.models.sgd import INIT_CHUNK_ROWS, initial_factor_chunk

    _, _, ub, ul, ib, il = maps.value
    for side, chunk in chunks:
        rows = (initial_factor_chunk(seeds[side], chunk, sizes[side], layout.rank) * scale).astype(layout.dtype)
        ids = np.arange(chunk * INIT_CHUNK_ROWS, chunk * INIT_CHUNK_ROWS + rows.shape[0])
        block, local = (ub[ids], ul[ids]) if side == 0 else (ib[ids], il[ids])
        is_home = (side == 0) == layout.home_is_user
        for b in np.unique(block):
            mask = block == b
            yield int(b), ("piece", int(is_home), int(b), local[mask], rows[mask])


def _join_chunks(iterator: Iterable[tuple[int, tuple[Any, ...]]], layout: Layout) -> Iterator[tuple[int, tuple[Any, ...]]]:
    blocks: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for _, (_, is_home, b, local, rows) in iterator:
        if (is_home, b) not in blocks:
            size = layout.home_sizes[b] if is_home else layout.rot_sizes[b]
            blocks[(is_home, b)] = (np.zeros(size, dtype=layout.dtype), np.empty((size, layout.rank), dtype=layout.dtype))
        blocks[(is_home, b)][1][local] = rows
    for (is_home, b), (bias, factors) in sorted(blocks.items()):
        yield b, ("H" if is_home else "G", b, bias, factors)


def initial_state(
    sc: Any, layout: Layout, maps: Any, seeds: tuple[int, int], sizes: tuple[int, int], scale: Any
) -> Any:
    """The initial factors (those of :func:`factorise.models.sgd.initial_factors`), drawn on the executors.

    Returns
    -------
    RDD
        ``(h, ("H", h, bias, factors))`` in partition ``h`` and the rotating
        blocks ``(g, ("G", g, bias, factors))`` (which each round moves to
        where they are needed).
    """
    from factorise.models.sgd import INIT_CHUNK_ROWS

    chunks = [(side, c) for side in (0, 1) for c in range(-(-sizes[side] // INIT_CHUNK_ROWS))]
    n_slices = max(1, min(len(chunks), sc.defaultParallelism))
    draw = partial(_draw_chunks, seeds=seeds, sizes=sizes, scale=scale, layout=layout, maps=maps)
    pieces = sc.parallelize(chunks, n_slices).mapPartitions(draw).partitionBy(layout.n_blocks, block_home)
    return pieces.mapPartitions(partial(_join_chunks, layout=layout), preservesPartitioning=True)


# ------------------------------------------------------------------- rounds
def _round_task(
    h: int,
    iterator: Iterable[tuple[int, tuple[Any, ...]]],
    *,
    layout: Layout,
    partner: np.ndarray,
    seeds: np.ndarray,
    scalars: tuple[Any, ...],
    round_: int,
    fault: tuple[str, int, int, int] | None,
    epoch: int,
) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """SGD on block ``(h, partner[h])`` of this round: the home block's factors and the partner's, updated.

    The partition holds the previous round's output (its ``H`` element is
    this home block's factors), the rotating block moved here (``M``) and the
    cached ratings (``R``, one element per rotating block).
    """
    from factorise.kernels.sgd_blocks import shuffle_sgd_block

    g = int(partner[h])
    home = rot = ratings = None
    for _, element in iterator:
        tag = element[0]
        if tag == "H":
            home = element
        elif tag == "M":
            rot = element
        elif tag == "R" and element[1] == g:
            ratings = element
    if home is None or rot is None or ratings is None or home[1] != h or rot[1] != g:
        raise RuntimeError(
            f"DSGD round {round_}: partition {h} lacks its blocks (home {h}, rotating {g}, ratings); got "
            f"{None if home is None else home[1]}, {None if rot is None else rot[1]}"
        )
    if fault is not None and (epoch, round_, h) == fault[1:]:
        marker = Path(fault[0]) / f"failed-{epoch}-{round_}-{h}"
        if not marker.exists():  # a test's injected failure, the first time only
            marker.touch()
            raise RuntimeError(f"injected failure of DSGD task {epoch}/{round_}/{h}")
    mu, lr, reg, lr_bias, reg_bias = scalars
    _, _, hb, hf = home
    _, _, gb, gf = rot
    bu, P, bi, Q = (hb, hf, gb, gf) if layout.home_is_user else (gb, gf, hb, hf)
    _, _, users, items, values = ratings
    block = layout.block_id(h, g)
    index = np.empty(users.shape[0], dtype=np.uint32 if users.shape[0] < 2**32 else np.int64)
    block_seeds = np.ascontiguousarray(seeds[:, block])
    sse = shuffle_sgd_block(users, items, values, index, block_seeds, mu, bu, bi, P, Q, lr, reg, lr_bias, reg_bias)
    row_block = h if layout.home_is_user else g
    yield h, ("H", h, hb, hf)
    yield h, ("G", g, gb, gf)
    yield h, ("S", round_, row_block, float(sse))


def _move(element: tuple[int, tuple[Any, ...]], where: np.ndarray) -> list[tuple[int, tuple[Any, ...]]]:
    """A rotating block of a round's output, sent to the partition ``where[g]`` that needs it next."""
    tag = element[1][0]
    if tag != "G":
        return []
    _, g, bias, factors = element[1]
    return [(int(where[g]), ("M", g, bias, factors))]


def _spread(element: tuple[int, tuple[Any, ...]], n_blocks: int) -> list[tuple[int, tuple[Any, ...]]]:
    """A rotating block, sent to every partition (for evaluation)."""
    if element[1][0] != "G":
        return []
    _, g, bias, factors = element[1]
    return [(h, ("M", g, bias, factors)) for h in range(n_blocks)]


def run_epoch(
    sc: Any,
    layout: Layout,
    ratings: Any,
    state: Any,
    *,
    epoch: int,
    rounds: np.ndarray,
    epoch_seeds: np.ndarray,
    scalars: tuple[Any, ...],
    checkpoint: bool,
    fault: tuple[str, int, int, int] | None = None,
    evaluation: tuple[Any, ...] | None = None,
) -> tuple[Any, list[Any], float, dict[str, float]]:
    """One epoch: ``B`` rounds of the Latin square ``rounds`` (from :func:`factorise.models._blocks.draw_epoch`).

    Parameters
    ----------
    state : RDD
        The factors: each home block's (``H``) in its partition, and the
        rotating blocks (``G``) anywhere.
    rounds : numpy.ndarray, shape (B, B)
        ``rounds[r, i]``: block ``I * B + J`` row block ``i`` runs in round ``r``.
    epoch_seeds : numpy.ndarray of uint64, shape (epoch, B * B)
        Every epoch's shuffle seeds so far (this one last).
    scalars : tuple
        ``(mu, lr, reg, lr_bias, reg_bias)`` in the factors' dtype.
    checkpoint : bool
        Checkpoint the new state (cuts the lineage).
    evaluation : tuple, optional
        ``(layout, sets, mu, low, high, train_tag)``: also compute the RMSEs of the
        clipped predictions over the training set (sample) and the validation pairs after the
        epoch, in the same Spark job (every partition gets every rotating block for it).

    Returns
    -------
    state : RDD
        The factors after the epoch (cached, computed).
    rounds_out : list of RDD
        The cached outputs of every round (the last is ``state``), for the caller to unpersist.
    sse : float
        Sum of the squared pre-update errors, added in the shared-memory sweep's order.
    rmse : dict
        With ``evaluation``: ``{"train": ..., "valid": ...}``.
    """
    from pyspark import StorageLevel

    B = layout.n_blocks
    outs = []
    for r in range(B):
        cols = rounds[r] % B  # column block of each row block
        if layout.home_is_user:
            partner = cols.astype(np.int64)
        else:
            partner = np.empty(B, dtype=np.int64)
            partner[cols] = np.arange(B)
        where = np.empty(B, dtype=np.int64)
        where[partner] = np.arange(B)  # the partition that runs each rotating block this round
        moved = state.flatMap(partial(_move, where=where)).partitionBy(B, block_home)
        task = partial(
            _round_task, layout=layout, partner=partner, seeds=epoch_seeds, scalars=scalars, round_=r, fault=fault,
            epoch=epoch,
        )  # fmt: skip
        state = sc.union([state, moved, ratings]).mapPartitionsWithIndex(task, preservesPartitioning=True)
        state = state.persist(StorageLevel.MEMORY_AND_DISK)
        outs.append(state)
    if checkpoint:
        state.checkpoint()
    records = sc.union(outs).filter(lambda kv: kv[1][0] == "S").map(lambda kv: kv[1])
    if evaluation is not None:  # the epoch's RMSEs in the same job
        records = sc.union([records, _evaluation(state, *evaluation)])
    total, rmse = _tally(records.collect())
    return state, outs, total, rmse


def _tally(records: Iterable[tuple[Any, ...]]) -> tuple[float, dict[str, float]]:
    """An epoch's collected records: the sum of the blocks' squared errors, added in the shared-memory
    sweep's order (round, then row block), and the RMSE of each evaluated set."""
    sse_records, sums = [], {}
    for record in records:
        if record[0] == "S":
            sse_records.append(record[1:])
        else:
            entry = sums.setdefault(record[1], [0.0, 0])
            entry[0] += record[2]
            entry[1] += record[3]
    total = 0.0
    for _, _, sse in sorted(sse_records):
        total += sse
    return total, {kind: math.sqrt(sse / n) for kind, (sse, n) in sums.items() if n}


# ------------------------------------------------- rounds in one barrier stage
def _block_path(base: str, round_: int, g: int) -> str:
    return f"{base}/round-{round_:05d}/block-{g:05d}.npy"


def _write_block(fs: Any, path: str, bias: np.ndarray, factors: np.ndarray) -> None:
    """A rotating block as one ``.npy`` of ``(rows, 1 + rank)`` (bias first), written whole then renamed."""
    import io
    import uuid

    buffer = io.BytesIO()
    np.save(buffer, np.column_stack([bias, factors]), allow_pickle=False)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    partial_path = f"{path}.{uuid.uuid4().hex}.part"
    with fs.open_output_stream(partial_path) as out:
        out.write(buffer.getvalue())
    fs.move(partial_path, path)


#: Seconds a DSGD task waits for a block another task of its barrier stage writes, before it fails.
BLOCK_WAIT_SECONDS = 600.0


def _read_block(fs: Any, path: str, timeout: float = BLOCK_WAIT_SECONDS) -> tuple[np.ndarray, np.ndarray]:
    """Read a rotating block, waiting for the task that writes it (polling, from 1 ms up to 50 ms)."""
    import io
    import time

    import pyarrow.fs as pafs

    deadline, pause = time.monotonic() + timeout, 0.001
    while fs.get_file_info(path).type == pafs.FileType.NotFound:
        if time.monotonic() > deadline:
            raise TimeoutError(f"DSGD: no rotating block at {path} after {timeout:.0f} s (did another task stop?)")
        time.sleep(pause)
        pause = min(2 * pause, 0.05)
    with fs.open_input_stream(path) as stream:
        table = np.load(io.BytesIO(stream.readall()), allow_pickle=False)
    return np.ascontiguousarray(table[:, 0]), np.ascontiguousarray(table[:, 1:])


def _epoch_task(
    h: int,
    iterator: Iterable[tuple[int, tuple[Any, ...]]],
    *,
    layout: Layout,
    partners: np.ndarray,
    seeds: np.ndarray,
    scalars: tuple[Any, ...],
    fault: tuple[str, int, int, int] | None,
    epoch: int,
    directory: str,
    evaluation: tuple[float, float, float, str] | None,
) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """A whole epoch in one barrier task: the ``B`` rounds of partition ``h``, rotating blocks passed on through files.

    The barrier stage runs all ``B`` tasks at once, and retries all of them
    when one fails. The task writes the rotating blocks it holds as
    ``directory/round-00000/block-g.npy``; in round ``r`` it waits for the
    block it pairs with (``partners[r, h]``) in ``round-r``, runs SGD on its
    rating block, and writes the updated rotating block to ``round-(r+1)``
    for the task that needs it next. Tasks wait only for the one file they
    read (Spark's ``BarrierTaskContext.barrier()`` polls once a second, which
    cost a second a round). Files are written whole and renamed, and a task's
    output is a pure function of its inputs, so a retried stage may read the
    files of a failed attempt: they hold what the retry would write. With
    ``evaluation`` ``(mu, low, high, train_tag)`` the task then scores its
    training sample and validation pairs with every rotating block.
    """
    import pyarrow.fs as pafs
    from factorise.kernels.sgd_blocks import shuffle_sgd_block

    fs, base = pafs.FileSystem.from_uri(directory)
    B = layout.n_blocks
    home = None
    held: list[tuple[Any, ...]] = []
    ratings: dict[int, tuple[Any, ...]] = {}
    sets: list[tuple[Any, ...]] = []
    train_tag = evaluation[3] if evaluation is not None else None
    for _, element in iterator:
        tag = element[0]
        if tag == "H":
            home = element
        elif tag == "G":
            held.append(element)
        elif tag == "R":
            ratings[element[1]] = element
            if tag == train_tag:
                sets.append(element)
        elif tag in ("T", "V") and evaluation is not None and tag in (train_tag, "V"):
            sets.append(element)
    if home is None or home[1] != h or len(ratings) != B:
        raise RuntimeError(f"DSGD epoch {epoch}: partition {h} lacks its home block or its {B} rating blocks")
    for _, g, bias, factors in held:
        _write_block(fs, _block_path(base, 0, g), bias, factors)
    mu, lr, reg, lr_bias, reg_bias = scalars
    _, _, hb, hf = home
    records = []
    g, gb, gf = -1, None, None
    for r in range(B):
        g = int(partners[r, h])
        gb, gf = _read_block(fs, _block_path(base, r, g))
        gb, gf = gb.astype(layout.dtype, copy=False), gf.astype(layout.dtype, copy=False)
        if fault is not None and (epoch, r, h) == fault[1:]:
            marker = Path(fault[0]) / f"failed-{epoch}-{r}-{h}"
            if not marker.exists():  # a test's injected failure, the first time only
                marker.touch()
                raise RuntimeError(f"injected failure of DSGD task {epoch}/{r}/{h}")
        bu, P, bi, Q = (hb, hf, gb, gf) if layout.home_is_user else (gb, gf, hb, hf)
        _, _, users, items, values = ratings[g]
        block = layout.block_id(h, g)
        index = np.empty(users.shape[0], dtype=np.uint32 if users.shape[0] < 2**32 else np.int64)
        block_seeds = np.ascontiguousarray(seeds[:, block])
        sse = shuffle_sgd_block(users, items, values, index, block_seeds, mu, bu, bi, P, Q, lr, reg, lr_bias, reg_bias)
        records.append(("S", r, h if layout.home_is_user else g, float(sse)))
        _write_block(fs, _block_path(base, r + 1, g), gb, gf)
    yield h, ("H", h, hb, hf)
    yield h, ("G", g, gb, gf)
    for record in records:
        yield h, record
    if evaluation is not None:
        mu_e, low, high, _ = evaluation
        rot = {}
        for block_g in range(B):
            bias, factors = _read_block(fs, _block_path(base, B, block_g))
            rot[block_g] = ("M", block_g, bias.astype(layout.dtype, copy=False), factors.astype(layout.dtype, copy=False))
        elements = [(h, home), *((h, m) for m in rot.values()), *((h, e) for e in sets)]
        for record in _eval_task(elements, layout=layout, mu=mu_e, low=low, high=high, train_tag=str(train_tag)):
            yield h, record


def remove_dir(directory: str) -> None:
    """Delete ``directory`` (a URI pyarrow reads) and all under it, if it is there."""
    import pyarrow.fs as pafs

    fs, root = pafs.FileSystem.from_uri(directory)
    try:
        fs.delete_dir(root)
    except (FileNotFoundError, OSError):
        pass


def barrier_slots(sc: Any) -> int:
    """How many tasks the cluster runs at once now (0 where barrier stages cannot be used).

    Barrier stages need every task running together: not with dynamic
    allocation or speculation; the slots are Spark's own count
    (``SparkContext.maxNumConcurrentTasks``) where it can be asked, else the
    default parallelism over ``spark.task.cpus``.
    """
    conf = sc.getConf()
    if conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true":
        return 0
    if conf.get("spark.speculation", "false").lower() == "true":
        return 0
    try:
        jsc = sc._jsc.sc()
        return int(jsc.maxNumConcurrentTasks(jsc.resourceProfileManager().defaultResourceProfile()))
    except Exception:  # noqa: BLE001 -- a private API: fall back to the public figures
        cpus = max(1, int(conf.get("spark.task.cpus", "1")))
        return sc.defaultParallelism // cpus


def run_epoch_barrier(
    sc: Any,
    layout: Layout,
    ratings: Any,
    state: Any,
    *,
    epoch: int,
    rounds: np.ndarray,
    epoch_seeds: np.ndarray,
    scalars: tuple[Any, ...],
    checkpoint: bool,
    directory: str,
    fault: tuple[str, int, int, int] | None = None,
    evaluation: tuple[Any, ...] | None = None,
) -> tuple[Any, list[Any], float, dict[str, float]]:
    """:func:`run_epoch` as one barrier stage of ``B`` tasks (one Spark job; the rotating blocks move through files).

    ``directory`` (a URI pyarrow's filesystems read, on storage every
    executor sees) holds the rotating blocks between rounds; it is deleted
    after the epoch. Same parameters and returns as :func:`run_epoch`.
    """
    from pyspark import StorageLevel

    B = layout.n_blocks
    partners = np.empty((B, B), dtype=np.int64)
    for r in range(B):
        cols = rounds[r] % B
        if layout.home_is_user:
            partners[r] = cols
        else:
            partners[r, cols] = np.arange(B)
    sets: list[Any] = []
    scoring = None
    if evaluation is not None:
        _, sets, mu, low, high, train_tag = evaluation
        sets = [s for s in sets if s is not ratings]
        scoring = (mu, low, high, train_tag)
    task = partial(
        _epoch_task, layout=layout, partners=partners, seeds=epoch_seeds, scalars=scalars, fault=fault, epoch=epoch,
        directory=directory, evaluation=scoring,
    )  # fmt: skip
    # Spark retries a failed barrier stage only when it is a shuffle-map stage: so the epoch's output goes
    # through a shuffle to the partition it came from (each task's output to one reducer, which Spark's reduce
    # locality runs where that output was written; the partitionBy is not skipped, as the barrier stage's
    # output does not claim the partitioner)
    epoch_rdd = sc.union([state, ratings, *sets]).barrier().mapPartitionsWithIndex(task, preservesPartitioning=False)
    out = epoch_rdd.partitionBy(B, block_home).persist(StorageLevel.MEMORY_AND_DISK)
    if checkpoint:
        out.checkpoint()
    try:
        records = out.filter(lambda kv: kv[1][0] in ("S", "E")).map(lambda kv: kv[1]).collect()
    finally:
        remove_dir(directory)
    total, rmse = _tally(records)
    return out, [out], total, rmse


# --------------------------------------------------------------- evaluation
def _eval_task(
    iterator: Iterable[tuple[int, tuple[Any, ...]]], *, layout: Layout, mu: float, low: float, high: float, train_tag: str
) -> Iterator[tuple[str, float, int]]:
    from factorise.kernels.ratings import predict_pairs

    home, rot, sets = None, {}, []
    for _, element in iterator:
        tag = element[0]
        if tag == "H":
            home = element
        elif tag == "M":
            rot[element[1]] = element
        elif tag in (train_tag, "V"):
            sets.append(element)
    empty_b = np.zeros(0, dtype=layout.dtype)
    empty_f = np.zeros((0, layout.rank), dtype=layout.dtype)
    totals: dict[str, list[float]] = {}
    for tag, g, users, items, values in sets:
        if values.shape[0] == 0:
            continue
        hb, hf = (home[2], home[3]) if home is not None else (empty_b, empty_f)
        gb, gf = (rot[g][2], rot[g][3]) if g >= 0 else (empty_b, empty_f)
        bu, P, bi, Q = (hb, hf, gb, gf) if layout.home_is_user else (gb, gf, hb, hf)
        out = np.empty(values.shape[0], dtype=np.float64)
        predict_pairs(users.astype(np.int64), items.astype(np.int64), mu, bu, bi, P, Q, out)
        error = np.clip(out, low, high) - values.astype(np.float64)
        entry = totals.setdefault("train" if tag == train_tag else "valid", [0.0, 0])
        entry[0] += float(error @ error)
        entry[1] += values.shape[0]
    for kind, (sse, n) in totals.items():
        yield "E", kind, sse, n


def _evaluation(state: Any, layout: Layout, sets: list[Any], mu: float, low: float, high: float, train_tag: str) -> Any:
    """The RDD of ``("E", kind, sse, n)`` records: squared errors and counts of the training sample and validation."""
    B = layout.n_blocks
    spread = state.flatMap(partial(_spread, n_blocks=B)).partitionBy(B, block_home)
    task = partial(_eval_task, layout=layout, mu=mu, low=low, high=high, train_tag=train_tag)
    return state.context.union([state, spread, *sets]).mapPartitions(task)


# ------------------------------------------------------------------ results
def factor_rows(layout: Layout, state: Any, maps: Any, side: str) -> Any:
    """``(id, idx, bias, factors)`` rows of one side's factors, for a DataFrame."""
    is_user = side == "user"
    tag = "H" if is_user == layout.home_is_user else "G"

    def rows(element: tuple[int, tuple[Any, ...]]) -> Iterator[tuple[int, float, list[float]]]:
        _, b, bias, factors = element[1]
        user_ids, item_ids, ub, _, ib, _ = maps.value
        raw = user_ids if is_user else item_ids
        ids = np.flatnonzero((ub if is_user else ib) == b)
        for row, idx in enumerate(ids):
            yield raw[idx].item(), int(idx), float(bias[row]), factors[row].astype(np.float64).tolist()

    return state.filter(lambda kv: kv[1][0] == tag).flatMap(rows)


def _write_factor_files(
    elements: Iterable[tuple[int, tuple[Any, ...]]], layout: Layout, maps: Any, directory: str
) -> Iterator[tuple[str, str]]:
    """Write each factor block of a partition as one Parquet file ``directory/{side}/block-{b}.parquet``."""
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    user_ids, item_ids, ub, _, ib, _ = maps.value
    for _, element in elements:
        tag = element[0]
        if tag not in ("H", "G"):
            continue
        _, b, bias, factors = element
        is_user = (tag == "H") == layout.home_is_user
        side = "user" if is_user else "item"
        idx = np.flatnonzero((ub if is_user else ib) == b)
        raw = (user_ids if is_user else item_ids)[idx]
        k = factors.shape[1]
        table = pa.table({
            "id": pa.array(raw.tolist(), pa.string()) if raw.dtype.kind == "U" else pa.array(raw, pa.int64()),
            "idx": pa.array(idx.astype(np.int32)),
            "bias": pa.array(np.asarray(bias, dtype=np.float32)),
            "factors": pa.ListArray.from_arrays(
                pa.array(np.arange(0, (idx.shape[0] + 1) * k, k, dtype=np.int32)),
                pa.array(np.ascontiguousarray(factors, dtype=np.float32).reshape(-1)),
            ),
        })  # fmt: skip
        fs, base = pafs.FileSystem.from_uri(f"{directory}/{side}")
        fs.create_dir(base, recursive=True)
        pq.write_table(table, f"{base}/block-{b:05d}.parquet", filesystem=fs)
        yield side, f"{directory}/{side}"


def factor_frames(spark: Any, layout: Layout, state: Any, maps: Any, directory: str) -> dict[str, Any] | None:
    """The factor DataFrames (``id, idx, bias, factors``), written as Parquet by the tasks and read back.

    None when pyarrow cannot write to ``directory``'s filesystem (the caller
    then builds them from rows).
    """
    try:
        import pyarrow.fs as pafs

        pafs.FileSystem.from_uri(directory)
    except Exception:  # noqa: BLE001
        return None
    written = state.mapPartitions(partial(_write_factor_files, layout=layout, maps=maps, directory=directory)).collect()
    user_ids, item_ids = maps.value[:2]
    frames = {}
    for side, path in sorted(set(written)):  # the schema given: Spark need not read the footers to infer it
        frames[side] = spark.read.schema(factor_schema(user_ids if side == "user" else item_ids)).parquet(path)
    return frames


def factor_schema(ids: np.ndarray) -> str:
    """The DDL schema of a factor DataFrame whose raw ids are ``ids``."""
    kind = "string" if ids.dtype.kind == "U" else "bigint"
    return f"id {kind}, idx int, bias float, factors array<float>"


def file_uri(path: str) -> str:
    """``path`` as a URI pyarrow's ``FileSystem.from_uri`` reads: a bare local path, or Spark's ``file:/x``, as ``file:///x``."""
    if path.startswith("file:") and not path.startswith("file://"):
        return "file://" + path[len("file:") :]
    scheme = path.split("/", 1)[0]
    if not scheme.endswith(":"):  # no scheme: a local path
        return "file://" + os.path.abspath(path)
    return path


def checkpoint_dir(sc: Any) -> str | None:
    """The context's checkpoint directory, if one is set."""
    value = sc._jsc.sc().getCheckpointDir()
    return value.get() if value.isDefined() else None


def ensure_checkpoint_dir(sc: Any, directory: str | None) -> str:
    """Set a checkpoint directory on ``sc`` when it has none (``directory``, else a fresh temporary one)."""
    current = checkpoint_dir(sc)
    if directory is not None:
        sc.setCheckpointDir(str(directory))
        return str(directory)
    if current is not None:
        return current
    import tempfile

    base = os.environ.get("FACTORISE_SPARK_CHECKPOINTS") or tempfile.gettempdir()
    path = tempfile.mkdtemp(prefix="factorise-checkpoints-", dir=base)
    logger.info("Spark checkpoints go to %s (set checkpoint_dir on a cluster: it must be shared)", path)
    sc.setCheckpointDir(path)
    return path
