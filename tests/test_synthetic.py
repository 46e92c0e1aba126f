"""Planted low-rank ratings with power-law popularity: kernels, shape, floor, files, CLI."""

from __future__ import annotations

import argparse
import inspect
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from factorise.data import Ratings, read_ratings
from factorise.datasets import synthetic as S
from factorise.datasets.synthetic import held_out_path, synthetic_ratings, write_ratings
from factorise.kernels import synthetic as K
from factorise.kernels import synthetic_reference as K_reference

# ------------------------------------------------------------------ kernels


def _weights(rng: np.random.Generator, n: int) -> np.ndarray:
    w = rng.random(n) ** rng.uniform(0, 8)  # from flat to very skewed
    w += 1e-12
    return w / w.sum()


def _offsets(degrees: np.ndarray) -> np.ndarray:
    offsets = np.zeros(degrees.shape[0] + 1, dtype=np.int64)
    np.cumsum(degrees, out=offsets[1:])
    return offsets


def _run_kernel(offsets: np.ndarray, weights: np.ndarray, seed: int) -> tuple[np.ndarray, int]:
    cdf, guide = K.inverse_cdf_tables(weights)
    out = np.empty(int(offsets[-1]), dtype=np.int32)
    draws = K.sample_items(offsets, cdf, guide, weights, np.uint64(seed), out)
    return out, draws


@pytest.mark.parametrize("seed", range(40))
def test_sample_items_kernel_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_users, n_items = int(rng.integers(1, 12)), int(rng.integers(1, 40))
    weights = _weights(rng, n_items)
    degrees = rng.integers(0, n_items + 1, n_users) if seed % 2 else rng.integers(0, max(1, n_items // 4), n_users)
    offsets = _offsets(degrees)
    kernel_seed = int(rng.integers(0, 2**64, dtype=np.uint64))
    out, draws = _run_kernel(offsets, weights, kernel_seed)
    expected, expected_draws = K_reference.sample_items(offsets, weights, kernel_seed)
    np.testing.assert_array_equal(out, expected)
    assert draws == expected_draws
    for u in range(n_users):
        mine = out[offsets[u] : offsets[u + 1]]
        assert np.all(np.diff(mine) > 0)  # sorted and distinct
        assert mine.size == 0 or (mine.min() >= 0 and mine.max() < n_items)


def test_sample_items_falls_back_when_rejection_stalls() -> None:
    # one item holds nearly all the weight: after it is taken, redraws hit it again and again
    weights = np.full(9, 1e-9)
    weights[4] = 1.0
    weights /= weights.sum()
    offsets = _offsets(np.array([2, 2, 1]))
    out, draws = _run_kernel(offsets, weights, 7)
    expected, expected_draws = K_reference.sample_items(offsets, weights, 7)
    np.testing.assert_array_equal(out, expected)
    assert draws == expected_draws
    assert draws >= 2 * 2 * 9  # both two-item users ran out of rejection budget
    assert 4 in out[0:2] and 4 in out[2:4]


@pytest.mark.parametrize("n_bits", [1, 5, 8, 9, 16, 17, 24, 31])
def test_sort_small_ints_sorts(n_bits: int) -> None:
    rng = np.random.default_rng(n_bits)
    scratch = np.empty(3000, dtype=np.int32)
    counts = np.zeros(257, dtype=np.int64)
    for m in (0, 1, 2, 15, 16, 17, 300, 3000):
        values = rng.integers(0, 2**n_bits, m).astype(np.int32)
        expected = np.sort(values)
        K.sort_small_ints(values, scratch, counts, n_bits)
        np.testing.assert_array_equal(values, expected)


@pytest.mark.parametrize("seed", range(20))
def test_select_positions_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(1, 300))
    k = int(rng.integers(0, n + 1))
    kernel_seed = int(rng.integers(0, 2**64, dtype=np.uint64))
    mask = np.zeros(n, dtype=bool)
    assert K.select_positions(k, np.uint64(kernel_seed), mask) == k
    np.testing.assert_array_equal(np.flatnonzero(mask), K_reference.select_positions(n, k, kernel_seed))


@pytest.mark.parametrize(
    ("n_items", "skewed"),
    [(9, False), (8, False), (9, True)],
    ids=["rejection", "exponential-keys", "stalled-rejection"],
)
def test_each_user_gets_a_successive_sample(n_items: int, skewed: bool) -> None:
    """Every path draws two items with P({a, b}) = q_a q_b (1 / (1 - q_a) + 1 / (1 - q_b))."""
    rng = np.random.default_rng(n_items + 10 * skewed)
    q = np.arange(1, n_items + 1, dtype=np.float64) ** (6.0 if skewed else 1.0)
    q /= q.sum()
    n_users = 40_000
    offsets = np.arange(0, 2 * n_users + 1, 2, dtype=np.int64)
    out, _ = _run_kernel(offsets, q, int(rng.integers(0, 2**63)))
    pairs = out.reshape(-1, 2).astype(np.int64)
    counts = np.bincount(pairs[:, 0] * n_items + pairs[:, 1], minlength=n_items * n_items)
    for a, b in itertools.combinations(range(n_items), 2):
        p = q[a] * q[b] * (1 / (1 - q[a]) + 1 / (1 - q[b]))
        se = math.sqrt(p * (1 - p) / n_users)
        assert abs(counts[a * n_items + b] / n_users - p) < 5 * se + 1e-9, (a, b)


# ------------------------------------------------------------------ the data


def _pair_keys(r: Ratings) -> np.ndarray:
    return r.users.astype(np.int64) * r.n_items + r.items


def test_same_seed_same_arrays_different_seed_different() -> None:
    kwargs = {"test_fraction": 0.2, "random_state": 5}
    a = synthetic_ratings(300, 200, 5000, 4, 0.5, **kwargs)
    b = synthetic_ratings(300, 200, 5000, 4, 0.5, **kwargs)
    c = synthetic_ratings(300, 200, 5000, 4, 0.5, test_fraction=0.2, random_state=6)
    for name in ("users", "items", "values"):
        for part in ("train", "test"):
            x, y = getattr(getattr(a, part), name), getattr(getattr(b, part), name)
            assert x.tobytes() == y.tobytes()
    np.testing.assert_array_equal(a.user_factors, b.user_factors)
    assert a.test_truth_rmse == b.test_truth_rmse
    assert not np.array_equal(_pair_keys(a.train), _pair_keys(c.train))
    assert not np.array_equal(a.user_factors, c.user_factors)


@pytest.mark.parametrize(
    ("n_users", "n_items", "n_ratings", "fraction"),
    [
        (500, 300, 20_000, 0.1),
        (2000, 50, 40_000, 0.25),
        (40, 3000, 50_000, 0.0),
        (7, 5, 35, 0.2),
    ],
)
def test_exactly_n_distinct_pairs_split_as_asked(n_users: int, n_items: int, n_ratings: int, fraction: float) -> None:
    data = synthetic_ratings(n_users, n_items, n_ratings, 2, 0.3, random_state=1, test_fraction=fraction)
    train, test = data.train, data.test
    n_test = round(fraction * n_ratings)
    assert len(train) == n_ratings - n_test
    assert (test is None) == (n_test == 0)
    parts = [train] if test is None else [train, test]
    keys = np.concatenate([_pair_keys(p) for p in parts])
    assert keys.size == n_ratings and np.unique(keys).size == n_ratings  # distinct, train and test disjoint
    assert np.all(np.diff(_pair_keys(train)) > 0)  # sorted by user, then item
    for p in parts:
        assert p.users.dtype == np.int32 and p.items.dtype == np.int32 and p.values.dtype == np.float32
        assert p.user_ids is train.user_ids and p.item_ids is train.item_ids
        assert p.n_users == n_users and p.n_items == n_items
        assert np.isfinite(p.values).all()
    users = np.concatenate([p.users for p in parts])
    items = np.concatenate([p.items for p in parts])
    np.testing.assert_array_equal(data.user_counts, np.bincount(users, minlength=n_users))
    np.testing.assert_array_equal(data.item_counts, np.bincount(items, minlength=n_items))
    assert data.user_counts.max() <= n_items and data.item_counts.max() <= n_users


def test_every_pair_when_the_matrix_is_full() -> None:
    data = synthetic_ratings(30, 20, 600, 3, 0.1, random_state=2, test_fraction=0.5)
    keys = np.sort(np.concatenate([_pair_keys(data.train), _pair_keys(data.test)]))
    np.testing.assert_array_equal(keys, np.arange(600))


@pytest.mark.parametrize(("exponent", "offset"), [(1.0, 0.0), (1.5, 0.006), (0.0, 0.0), (3.0, 0.2)])
def test_popularity_weights_follow_the_formula(exponent: float, offset: float) -> None:
    n = 1000
    p = S._popularity(n, exponent, offset, np.random.default_rng(0))
    ranks = np.arange(1, n + 1)
    expected = (ranks + offset * n) ** -exponent
    np.testing.assert_allclose(np.sort(p)[::-1], expected / expected.sum(), rtol=1e-12)


def _top_share(counts: np.ndarray, weights: np.ndarray, fraction: float = 0.01) -> tuple[float, float]:
    """Share of the counts and of the weight held by the top ``fraction`` of ids by weight."""
    top = np.argsort(weights, kind="stable")[::-1][: max(1, int(fraction * weights.size))]
    return counts[top].sum() / counts.sum(), weights[top].sum()


def test_user_counts_are_multinomial_in_the_zipf_weights() -> None:
    n = 40_000
    # the heaviest user expects about n / H(2000) = 4,900 ratings: well under the 8,000 items (no capping)
    data = synthetic_ratings(
        2000,
        8000,
        n,
        2,
        0.5,
        random_state=3,
        popularity_exponent=(1.0, 0.0),
        popularity_offset=0.0,
    )
    share, weight = _top_share(data.user_counts, data.user_popularity)
    assert weight > 0.3  # 20 of 2000 users hold H(20) / H(2000) of the weight
    se = math.sqrt(weight * (1 - weight) / n)  # the top users' total is Binomial(n, weight)
    assert abs(share - weight) < 5 * se


def test_item_counts_have_a_power_law_head() -> None:
    n = 100_000
    kwargs = {"random_state": 4, "popularity_offset": 0.0}
    # light users (5 ratings each on average), so within-user repeats barely cap the head
    zipf = synthetic_ratings(20_000, 2000, n, 2, 0.5, popularity_exponent=(0.0, 1.0), **kwargs)
    share, weight = _top_share(zipf.item_counts, zipf.item_popularity)
    assert weight > 0.4  # H(20) / H(2000)
    assert share > 0.5 * weight and share > 10 * 0.01  # the top 1% of items hold over 10x their uniform share
    flat = synthetic_ratings(20_000, 2000, n, 2, 0.5, popularity_exponent=(0.0, 0.0), **kwargs)
    share, weight = _top_share(flat.item_counts, flat.item_popularity)
    assert weight == pytest.approx(0.01)
    assert abs(share - 0.01) < 5 * math.sqrt(0.01 * 0.99 / n)


def test_true_model_scores_the_noise_on_held_out_ratings() -> None:
    noise = 0.7
    data = synthetic_ratings(3000, 1000, 300_000, 6, noise, random_state=8, test_fraction=0.2)
    test = data.test
    k = len(test)
    truth = (
        data.mean
        + data.user_bias[test.users].astype(np.float64)
        + data.item_bias[test.items]
        + np.einsum(
            "ij,ij->i",
            data.user_factors[test.users].astype(np.float64),
            data.item_factors[test.items].astype(np.float64),
        )
    )
    rmse = math.sqrt(np.mean((test.values - truth) ** 2))
    # k * rmse^2 / noise^2 is chi-squared with k degrees of freedom: rmse^2 has relative sd sqrt(2 / k)
    assert abs(rmse**2 / noise**2 - 1) < 5 * math.sqrt(2 / k)
    assert data.test_truth_rmse == pytest.approx(rmse, rel=1e-5)
    np.testing.assert_allclose(data.truth(test.users, test.items), truth, rtol=1e-6, atol=1e-6)
    # the floor is a floor: the global mean does worse
    assert math.sqrt(np.mean((test.values - data.train.values.mean()) ** 2)) > 1.2 * noise


def test_noiseless_data_is_exactly_low_rank() -> None:
    data = synthetic_ratings(200, 100, 5000, 3, 0.0, random_state=9, test_fraction=0.1)
    assert data.test_truth_rmse < 1e-6
    np.testing.assert_allclose(data.train.values, data.truth(data.train.users, data.train.items), rtol=1e-6)


def test_interaction_has_the_asked_spread() -> None:
    data = synthetic_ratings(5000, 5000, 10, 4, 0.5, random_state=10, signal_std=2.0)
    P, Q = data.user_factors.astype(np.float64), data.item_factors.astype(np.float64)
    # mean of (P[u] . Q[i])^2 over all cells = tr(P'P Q'Q) / (n m); its expectation is signal_std^2
    mean_square = np.trace((P.T @ P) @ (Q.T @ Q)) / (P.shape[0] * Q.shape[0])
    assert mean_square == pytest.approx(4.0, rel=0.1)


def test_clipped_ratings_stay_in_range_and_floor_is_an_upper_bound() -> None:
    noise = 1.0
    data = synthetic_ratings(
        2000,
        500,
        100_000,
        4,
        noise,
        random_state=11,
        test_fraction=0.2,
        clip=(1.0, 5.0),
    )
    for part in (data.train, data.test):
        assert part.values.min() >= 1.0 and part.values.max() <= 5.0
    assert data.test_truth_rmse < noise * (1 + 5 * math.sqrt(1 / (2 * len(data.test))))


# ------------------------------------------------------------------ files


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_files_round_trip_through_read_ratings(tmp_path: Path, suffix: str) -> None:
    data = synthetic_ratings(400, 300, 20_000, 3, 0.5, random_state=12, test_fraction=0.1)
    for part, name in ((data.train, "train"), (data.test, "test")):
        path = write_ratings(part, tmp_path / f"{name}{suffix}")
        back = read_ratings(path)
        assert len(back) == len(part)
        np.testing.assert_array_equal(back.raw_users, part.users)
        np.testing.assert_array_equal(back.raw_items, part.items)
        np.testing.assert_array_equal(back.values, part.values)  # float32 written in full
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}{suffix}" for n in ("train", "test"))


def test_string_ids_and_timestamps_round_trip(tmp_path: Path) -> None:
    ratings = Ratings.from_raw(["b", "a", "c,d"], ["x", "y", "x"], [1.5, 2.0, 3.25], [10, 20, 30])
    for fmt in ("parquet", "csv"):
        back = read_ratings(write_ratings(ratings, tmp_path / f"s.{fmt}"))
        np.testing.assert_array_equal(back.raw_users, ratings.raw_users)
        np.testing.assert_array_equal(back.raw_items, ratings.raw_items)
        np.testing.assert_array_equal(back.values, ratings.values)
        np.testing.assert_array_equal(back.timestamps, ratings.timestamps)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_same_seed_same_file_bytes(tmp_path: Path, fmt: str) -> None:
    a = synthetic_ratings(100, 80, 2000, 2, 0.4, random_state=13).train
    b = synthetic_ratings(100, 80, 2000, 2, 0.4, random_state=13).train
    pa, pb = tmp_path / "a.dat", tmp_path / "b.dat"
    write_ratings(a, pa, format=fmt)
    write_ratings(b, pb, format=fmt)
    assert pa.read_bytes() == pb.read_bytes()
    if fmt == "csv":
        assert pa.read_text().splitlines()[0] == "user,item,rating"


def test_write_errors_leave_no_file(tmp_path: Path) -> None:
    ratings = synthetic_ratings(10, 10, 50, 1, 0.1, random_state=0).train
    with pytest.raises(ValueError, match=r"'csv' contradicts the suffix of .*x\.parquet"):
        write_ratings(ratings, tmp_path / "x.parquet", format="csv")
    with pytest.raises(ValueError, match=r"compressed output \(\.gz\)"):
        write_ratings(ratings, tmp_path / "x.csv.gz")
    with pytest.raises(ValueError, match="`format` must be 'parquet', 'csv' or None; got 'tsv'"):
        write_ratings(ratings, tmp_path / "x.out", format="tsv")
    with pytest.raises(ValueError, match="does not exist"):
        write_ratings(ratings, tmp_path / "missing" / "x.csv")
    with pytest.raises(TypeError, match="`ratings` must be a Ratings"):
        write_ratings((1, 2, 3), tmp_path / "x.csv")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_held_out_path_inserts_test_before_the_suffix() -> None:
    assert held_out_path("d/ratings.parquet") == Path("d/ratings.test.parquet")
    assert held_out_path("ratings.csv") == Path("ratings.test.csv")
    assert held_out_path("ratings") == Path("ratings.test")


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (
            (10, 5, 51, 2, 0.1),
            {},
            ValueError,
            r"`n_ratings` must be <= n_users \* n_items = 10 \* 5 = 50, as each .*got 51",
        ),
        (
            (0, 5, 1, 1, 0.1),
            {},
            ValueError,
            r"`n_users` must be an integer with 1 <= n_users <= \d+; got 0",
        ),
        (
            (10, 5, 20.0, 2, 0.1),
            {},
            TypeError,
            r"`n_ratings` must be an integer .*got 20.0 of type float",
        ),
        ((10, True, 5, 1, 0.1), {}, TypeError, "`n_items` must be an integer"),
        (
            (10, 5, 20, 6, 0.1),
            {},
            ValueError,
            r"`rank` must be an integer with 1 <= rank <= min\(m, n\) = 5; got 6",
        ),
        (
            (10, 5, 20, 2, -0.1),
            {},
            ValueError,
            r"`noise` must be a finite number >= 0; got -0.1",
        ),
        (
            (10, 5, 20, 2, float("nan")),
            {},
            ValueError,
            "`noise` must be a finite number >= 0; got nan",
        ),
        (
            (10, 5, 20, 2, 0.1),
            {"popularity_exponent": 11},
            ValueError,
            r"`popularity_exponent` must be .*<= 10; got 11",
        ),
        (
            (10, 5, 20, 2, 0.1),
            {"popularity_exponent": (1, -1)},
            ValueError,
            r"`popularity_exponent\[1\]` .*got -1",
        ),
        (
            (10, 5, 20, 2, 0.1),
            {"popularity_exponent": (1, 2, 3)},
            ValueError,
            r"a \(users, items\) pair; got \(1, 2, 3\)",
        ),
        (
            (10, 5, 20, 2, 0.1),
            {"popularity_offset": -0.5},
            ValueError,
            "`popularity_offset` must be a finite number >= 0",
        ),
        (
            (10, 5, 20, 2, 0.1),
            {"test_fraction": 1.0},
            ValueError,
            r"`test_fraction` must be .*< 1; got 1.0",
        ),
        (
            (10, 5, 20, 2, 0.1),
            {"test_fraction": 0.01},
            ValueError,
            r"`test_fraction` \* n_ratings must round .*0.01 \* 20",
        ),
        (
            (10, 5, 20, 2, 0.1),
            {"signal_std": 0},
            ValueError,
            "`signal_std` must be a finite number > 0; got 0.0",
        ),
        (
            (10, 5, 20, 2, 0.1),
            {"bias_std": (0.1, -1)},
            ValueError,
            r"`bias_std\[1\]` must be a finite number >= 0",
        ),
        (
            (10, 5, 20, 2, 0.1),
            {"clip": (5, 1)},
            ValueError,
            r"`clip` must be None or a \(low, high\) pair",
        ),
        (
            (10, 5, 20, 2, 0.1),
            {"random_state": -1},
            ValueError,
            "`random_state` must be None",
        ),
    ],
)
def test_bad_input_names_parameter_rule_and_value(
    args: tuple, kwargs: dict, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        synthetic_ratings(*args, **kwargs)


# ------------------------------------------------------------------ CLI


def test_cli_defaults_are_the_library_defaults() -> None:
    from factorise.cli import _synth

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    types = {name: int for name in ("int0", "int1", "int2")} | {
        "positive": float,
        "nonneg": float,
    }
    _synth.add_command(sub, types)
    help_text = " ".join(sub.choices["synth"].format_help().split())
    params = inspect.signature(synthetic_ratings).parameters
    for name, flag in (
        ("popularity_exponent", "A[,B]"),
        ("popularity_offset", "C[,D]"),
    ):
        default = ",".join(f"{v:g}" for v in params[name].default)
        assert f"(default: {default})" in help_text, name
    assert f"(default: {params['mean'].default:g})" in help_text


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "factorise", "synth", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.slow
def test_cli_writes_train_and_held_out_files(tmp_path: Path) -> None:
    common = [
        "--users",
        "300",
        "--items",
        "200",
        "--ratings",
        "6000",
        "--rank",
        "3",
        "--noise",
        "0.5",
        "--seed",
        "4",
    ]
    run = _cli(*common, "--out", "r.parquet", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "best achievable RMSE (the noise level): 0.5" in run.stdout
    assert "train: r.parquet" in run.stdout and "test:  r.test.parquet" in run.stdout
    train, test = (
        read_ratings(tmp_path / "r.parquet"),
        read_ratings(tmp_path / "r.test.parquet"),
    )
    assert len(train) == 5400 and len(test) == 600

    again = _cli(*common, "--out", "again.parquet", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (tmp_path / "again.parquet").read_bytes() == (tmp_path / "r.parquet").read_bytes()
    assert summary["n_train"] == 5400 and summary["n_test"] == 600 and summary["noise"] == 0.5
    data = synthetic_ratings(300, 200, 6000, 3, 0.5, random_state=4, test_fraction=0.1)
    assert summary["test_truth_rmse"] == pytest.approx(data.test_truth_rmse)
    assert summary["max_item_ratings"] == int(data.item_counts.max())
    assert summary["users_with_ratings"] == int(np.count_nonzero(data.user_counts))
    assert f"{summary['max_user_ratings']:,} ratings" in run.stdout

    csv = _cli(
        *common,
        "--out",
        "r.csv",
        "--test-fraction",
        "0",
        "--popularity-exponent",
        "1,2",
        cwd=tmp_path,
    )
    assert csv.returncode == 0, csv.stderr
    assert not (tmp_path / "r.test.csv").exists()
    assert len(read_ratings(tmp_path / "r.csv")) == 6000

    bad = _cli(
        "--users",
        "10",
        "--items",
        "5",
        "--ratings",
        "51",
        "--rank",
        "2",
        "--noise",
        "1",
        "--out",
        "b.csv",
        cwd=tmp_path,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "--ratings must be <= --users * --items = 50" in bad.stderr
    clash = _cli(*common, "--out", "c.csv", "--format", "parquet", cwd=tmp_path)
    assert clash.returncode == 2 and "contradicts the suffix" in clash.stderr
    assert not (tmp_path / "b.csv").exists() and not (tmp_path / "c.csv").exists()
