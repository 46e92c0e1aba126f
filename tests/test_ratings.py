"""The Ratings container and IdMap: ids, duplicates, subsets, joins, sparse matrices."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factorise.data import DuplicateRatingsWarning, IdMap, Ratings, concatenate


# -- IdMap ---------------------------------------------------------------------------


def test_idmap_from_raw_sorts_and_indexes_integer_ids() -> None:
    id_map, index = IdMap.from_raw([30, 10, 20, 10])
    assert id_map.ids.dtype == np.int64
    assert id_map.ids.tolist() == [10, 20, 30]
    assert index.dtype == np.int32
    assert index.tolist() == [2, 0, 1, 0]
    assert not id_map.is_string
    assert len(id_map) == 3


def test_idmap_from_raw_string_ids() -> None:
    id_map, index = IdMap.from_raw(["bob", "alice", "bob"])
    assert id_map.is_string
    assert id_map.ids.tolist() == ["alice", "bob"]
    assert index.tolist() == [1, 0, 1]


def test_idmap_round_trip_raw_index_raw() -> None:
    raw = np.array([7, 3, 3, 99, -5, 7])
    id_map, index = IdMap.from_raw(raw)
    np.testing.assert_array_equal(id_map.raw(index), raw)
    np.testing.assert_array_equal(id_map.index(raw), index)


def test_idmap_index_unknown_ids_are_minus_one() -> None:
    id_map, _ = IdMap.from_raw([1, 5, 9])
    assert id_map.index([0, 1, 6, 9, 10]).tolist() == [-1, 0, -1, 2, -1]
    strings, _ = IdMap.from_raw(["a", "c"])
    assert strings.index(["b", "c", "zz", ""]).tolist() == [-1, 1, -1, -1]


def test_idmap_index_mixed_int_and_string_queries() -> None:
    ints, _ = IdMap.from_raw([1, 2, 30])
    # strings are parsed as integers against integer ids; unparseable ones are unknown
    assert ints.index(["30", "x", "2"]).tolist() == [2, -1, 1]
    assert ints.index(np.array([1, "2", "nope"], dtype=object)).tolist() == [0, 1, -1]
    strings, _ = IdMap.from_raw(["1", "10", "x"])
    # integers compare as their decimal text against string ids
    assert strings.index([10, 1, 2]).tolist() == [1, 0, -1]
    assert strings.index(np.array([1, "x"], dtype=object)).tolist() == [0, 2]


def test_idmap_index_keeps_query_shape_and_handles_empty() -> None:
    id_map, _ = IdMap.from_raw([1, 2, 3])
    assert id_map.index(np.array([[1, 4], [3, 2]])).tolist() == [[0, -1], [2, 1]]
    assert id_map.index(np.array([["1", "4"], ["3", "y"]])).tolist() == [[0, -1], [2, -1]]
    assert id_map.index([]).shape == (0,)
    empty = IdMap(np.array([], dtype=np.int64))
    assert empty.index([1, 2]).tolist() == [-1, -1]


def test_idmap_raw_rejects_unknown_marker_and_out_of_range() -> None:
    id_map, _ = IdMap.from_raw([4, 5])
    with pytest.raises(IndexError, match="-1"):
        id_map.raw([0, -1])
    with pytest.raises(IndexError, match="2"):
        id_map.raw([2])
    assert id_map.raw([]).shape == (0,)


def test_idmap_id_kinds() -> None:
    floats, _ = IdMap.from_raw(np.array([3.0, 1.0]))
    assert floats.ids.dtype == np.int64 and floats.ids.tolist() == [1, 3]
    objects, _ = IdMap.from_raw(np.array([3, 1], dtype=object))
    assert objects.ids.dtype == np.int64
    mixed, _ = IdMap.from_raw(np.array([3, "a"], dtype=object))
    assert mixed.is_string and mixed.ids.tolist() == ["3", "a"]
    raw_bytes, _ = IdMap.from_raw(np.array([b"x", b"y"]))
    assert raw_bytes.ids.tolist() == ["x", "y"]
    with pytest.raises(TypeError, match="2.5"):
        IdMap.from_raw([1.0, 2.5])
    with pytest.raises(TypeError, match="nan"):
        IdMap.from_raw([1.0, np.nan])
    with pytest.raises(ValueError, match="missing"):
        IdMap.from_raw(np.array(["a", None], dtype=object))


def test_idmap_equality_and_repr() -> None:
    a, _ = IdMap.from_raw([1, 2])
    b, _ = IdMap.from_raw([2, 1, 1])
    c, _ = IdMap.from_raw(["1", "2"])
    assert a == b
    assert a != c
    assert repr(a) == "IdMap(2 integer ids)"
    assert repr(c) == "IdMap(2 string ids)"


# -- Ratings.from_raw ----------------------------------------------------------------


def test_from_raw_builds_indices_values_and_maps() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = Ratings.from_raw(["u2", "u1", "u2"], [10, 10, 20], [4.0, 3.5, 1], [5, 6, 7], source="here")
    assert len(r) == 3 and r.n_users == 2 and r.n_items == 2
    assert r.users.dtype == np.int32 and r.items.dtype == np.int32
    assert r.values.dtype == np.float32 and r.timestamps is not None and r.timestamps.dtype == np.int64
    assert r.raw_users.tolist() == ["u2", "u1", "u2"]
    assert r.raw_items.tolist() == [10, 10, 20]
    assert r.values.tolist() == [4.0, 3.5, 1.0]
    assert r.timestamps.tolist() == [5, 6, 7]
    assert r.rating_range == (1.0, 4.0)
    assert repr(r) == "Ratings(3 ratings, 2 users, 2 items from here)"


def test_from_raw_duplicates_keep_last_with_count() -> None:
    users = [1, 1, 2, 1, 2, 3]
    items = [5, 5, 6, 5, 6, 7]
    values = [1, 2, 3, 4, 5, 6]
    with pytest.warns(DuplicateRatingsWarning, match=r"src: 3 duplicate") as caught:
        r = Ratings.from_raw(users, items, values, timestamps=[10, 11, 12, 13, 14, 15], source="src")
    assert len(caught) == 1
    assert len(r) == 3
    got = {(int(u), int(i)): (float(v), int(t)) for u, i, v, t in zip(r.raw_users, r.raw_items, r.values, r.timestamps)}
    assert got == {(1, 5): (4.0, 13), (2, 6): (5.0, 14), (3, 7): (6.0, 15)}
    # order of the kept ratings is the order of their last occurrence
    assert r.values.tolist() == [4.0, 5.0, 6.0]


def test_from_raw_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="one length"):
        Ratings.from_raw([1, 2], [1], [1.0, 2.0])
    with pytest.raises(ValueError, match="1-D"):
        Ratings.from_raw([[1], [2]], [1, 2], [1.0, 2.0])
    with pytest.raises(ValueError, match="no ratings"):
        Ratings.from_raw([], [], [])
    with pytest.raises(TypeError, match="must be numbers"):
        Ratings.from_raw([1], [1], ["high"])
    with pytest.raises(ValueError, match=r"f\.csv: .*rating #2 is nan"):
        Ratings.from_raw([1, 2], [1, 2], [1.0, np.nan], source="f.csv")
    with pytest.raises(ValueError, match="rating #1 is inf"):
        Ratings.from_raw([1], [1], [np.inf])
    with pytest.raises(ValueError, match=r"timestamp #2 is nan"):
        Ratings.from_raw([1, 2], [1, 2], [1.0, 2.0], timestamps=[1.0, np.nan])
    with pytest.raises(TypeError, match="timestamps must be integers"):
        Ratings.from_raw([1], [1], [1.0], timestamps=["today"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.sampled_from(["a", "b", "c", "d"]), st.integers(-3, 9)),
        min_size=1,
        max_size=40,
    )
)
def test_from_raw_to_csr_matches_last_wins_dictionary(triples: list[tuple[int, str, int]]) -> None:
    users, items, values = (list(x) for x in zip(*triples, strict=True))
    expected: dict[tuple[int, str], float] = {}
    for u, i, v in triples:
        expected[(u, i)] = float(v)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateRatingsWarning)
        r = Ratings.from_raw(users, items, values)
    assert len(r) == len(expected)
    dense = r.to_csr().toarray()
    assert dense.shape == (len(set(users)), len(set(items)))
    got = {}
    for row, u in enumerate(r.user_ids.ids):
        for col, i in enumerate(r.item_ids.ids):
            if (int(u), str(i)) in expected:
                got[(int(u), str(i))] = float(dense[row, col])
            else:
                assert dense[row, col] == 0.0
    assert got == expected


# -- subset, compact, concatenate, deduplicated, to_csr -----------------------------------


def _example() -> Ratings:
    return Ratings.from_raw(
        ["a", "b", "c", "a", "d"], [1, 2, 3, 3, 1], [5.0, 4.0, 3.0, 2.0, 1.0], [10, 20, 30, 40, 50], source="ex"
    )


def test_subset_with_integer_and_boolean_index_shares_maps() -> None:
    r = _example()
    s = r.subset([3, 0])
    assert s.user_ids is r.user_ids and s.item_ids is r.item_ids
    assert s.raw_users.tolist() == ["a", "a"]
    assert s.raw_items.tolist() == [3, 1]
    assert s.values.tolist() == [2.0, 5.0]
    assert s.timestamps is not None and s.timestamps.tolist() == [40, 10]
    b = r.subset(r.values >= 3)
    assert b.values.tolist() == [5.0, 4.0, 3.0]
    assert b.source == "ex"


def test_compact_keeps_only_ids_that_occur_and_preserves_raw_ids() -> None:
    r = _example()
    s = r.subset([1, 2])  # users b, c; items 2, 3
    assert s.n_users == 4
    c = s.compact()
    assert c.n_users == 2 and c.n_items == 2
    assert c.user_ids.ids.tolist() == ["b", "c"]
    assert c.item_ids.ids.tolist() == [2, 3]
    assert c.raw_users.tolist() == s.raw_users.tolist()
    assert c.raw_items.tolist() == s.raw_items.tolist()
    assert c.values.tolist() == s.values.tolist()
    assert r.compact() is r


def test_concatenate_joins_parts_sharing_maps() -> None:
    r = _example()
    parts = [r.subset([4, 1]), r.subset([0]), r.subset([2, 3])]
    joined = concatenate(parts)
    assert joined.user_ids is r.user_ids
    assert joined.raw_users.tolist() == ["d", "b", "a", "c", "a"]
    assert joined.values.tolist() == [1.0, 4.0, 5.0, 3.0, 2.0]
    assert joined.timestamps is not None and joined.timestamps.tolist() == [50, 20, 10, 30, 40]
    np.testing.assert_array_equal(joined.to_csr().toarray(), r.to_csr().toarray())


def test_concatenate_rejects_different_maps_and_no_parts() -> None:
    r = _example()
    other = Ratings.from_raw(["a"], [1], [1.0])
    with pytest.raises(ValueError, match="share"):
        concatenate([r, other])
    with pytest.raises(ValueError, match="at least one"):
        concatenate([])


def test_concatenate_drops_timestamps_when_a_part_has_none() -> None:
    r = _example()
    no_ts = Ratings(r.users[:1], r.items[:1], r.values[:1], r.user_ids, r.item_ids)
    assert concatenate([r.subset([1]), no_ts]).timestamps is None


def test_deduplicated_returns_self_without_duplicates_and_keeps_last() -> None:
    r = _example()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert r.deduplicated() is r
    extra = r.subset([2, 0])  # (c, 3) and (a, 1) again, rated differently below
    joined = concatenate([r, extra])
    values = np.concatenate([r.values, np.array([7.0, 9.0], dtype=np.float32)])
    doubled = Ratings(joined.users, joined.items, values, joined.user_ids, joined.item_ids, None, "d")
    with pytest.warns(DuplicateRatingsWarning, match="d: 2 duplicate"):
        once = doubled.deduplicated()
    assert len(once) == len(r)
    table = {(u, int(i)): float(v) for u, i, v in zip(once.raw_users, once.raw_items, once.values)}
    assert table == {("b", 2): 4.0, ("d", 1): 1.0, ("c", 3): 7.0, ("a", 1): 9.0, ("a", 3): 2.0}


def test_to_csr_places_every_rating() -> None:
    r = _example()
    m = r.to_csr()
    assert m.shape == (4, 3) and m.dtype == np.float32 and m.nnz == 5
    dense = m.toarray()
    for u, i, v in zip(r.users, r.items, r.values):
        assert dense[u, i] == v
    assert dense.sum() == pytest.approx(float(r.values.sum()))


def test_rating_range_of_no_ratings_is_an_error() -> None:
    empty = _example().subset(np.zeros(5, dtype=bool))
    assert len(empty) == 0
    with pytest.raises(ValueError, match="no ratings"):
        _ = empty.rating_range
