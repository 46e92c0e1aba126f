"""The Spark engine (factorise.spark) on a local[2] session: DSGD against the shared-memory sweep, outputs, faults.

Every test shares one session (the ``spark`` fixture of conftest); without
pyspark they skip, except in CI, where the ``spark`` extra must be installed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from factorise.data import Ratings
from factorise.models import BiasedMF
from factorise.models._blocks import use_blocks


def planted(seed: int, n_users: int, n_items: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs with ratings from a planted rank-2 model plus noise, rounded to 1..5."""
    rng = np.random.default_rng(seed)
    key = rng.choice(n_users * n_items, n, replace=False)  # distinct pairs, in a random order
    u, i = key // n_items, key % n_items
    p, q = rng.normal(0, 0.7, (n_users, 2)), rng.normal(0, 0.7, (n_items, 2))
    r = np.clip(np.round(3.5 + np.sum(p[u] * q[i], axis=1) + rng.normal(0, 0.4, u.shape[0])), 1, 5)
    return u, i, r.astype(np.float32)


def frame(spark: object, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, slices: int = 3) -> object:
    """A DataFrame of the ratings in this order, over ``slices`` partitions (as read from several files)."""
    rows = list(zip(users.tolist(), items.tolist(), ratings.astype(float).tolist(), strict=True))
    schema = "user string, item string, rating double" if users.dtype.kind == "U" else "user long, item long, rating double"
    return spark.createDataFrame(spark.sparkContext.parallelize(rows, slices), schema)  # type: ignore[attr-defined]


PARAMS = {"rank": 6, "n_epochs": 3, "random_state": 11}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u, i, r = planted(0, 240, 160, 12_000)
    return u + 1, i + 1000, r  # raw ids, not indices


@pytest.fixture(scope="module")
def fitted(spark: object, data: tuple[np.ndarray, ...]) -> object:
    from factorise.spark import SparkBiasedMF

    return SparkBiasedMF(**PARAMS, n_blocks=2).fit(frame(spark, *data), spark=spark)


# ------------------------------------------------------------ equivalence
@pytest.mark.parametrize(("n_users", "n_items", "n_blocks"), [(240, 160, 2), (150, 260, 3)])
def test_dsgd_gives_the_factors_of_the_block_sweep(spark: object, n_users: int, n_items: int, n_blocks: int) -> None:
    """Same seed and n_blocks: the same factors as BiasedMF's block-parallel sweep (users or items at home)."""
    from factorise.spark import SparkBiasedMF

    u, i, r = planted(1, n_users, n_items, 2000 * n_blocks**2 + 500)
    assert use_blocks(u.shape[0], n_blocks)  # the local fit runs the block sweep
    spark_model = SparkBiasedMF(**PARAMS, n_blocks=n_blocks).fit(frame(spark, u, i, r), spark=spark)
    local = BiasedMF(**PARAMS, n_blocks=n_blocks, n_threads=1).fit(Ratings.from_raw(u, i, r))
    got = spark_model.to_local()
    for name in ("user_bias_", "item_bias_", "user_factors_", "item_factors_"):
        np.testing.assert_allclose(getattr(got, name), getattr(local, name), rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(got.user_ids_.ids, local.user_ids_.ids)
    assert got.global_mean_ == pytest.approx(local.global_mean_, rel=1e-12)
    assert got.rating_range_ == local.rating_range_
    for mine, theirs in zip(spark_model.history_, local.history_, strict=True):
        assert mine["sgd_rmse"] == pytest.approx(theirs["sgd_rmse"], rel=1e-6)
        assert mine["train_rmse"] == pytest.approx(theirs["train_rmse"], rel=1e-6)


def test_string_ids_round_trip(spark: object) -> None:
    from factorise.spark import SparkBiasedMF

    u, i, r = planted(2, 120, 90, 9000)
    su, si = np.array([f"u{x:03d}" for x in u]), np.array([f"item-{x}" for x in i])
    model = SparkBiasedMF(**PARAMS, n_blocks=2).fit(frame(spark, su, si, r), spark=spark)
    local = BiasedMF(**PARAMS, n_blocks=2, n_threads=1).fit(Ratings.from_raw(su, si, r))
    got = model.to_local()
    np.testing.assert_array_equal(got.user_ids_.ids, local.user_ids_.ids)
    np.testing.assert_allclose(got.item_factors_, local.item_factors_, rtol=1e-5, atol=1e-6)
    pairs = model.transform(frame(spark, su[:40], si[:40], r[:40])).toArrow()
    np.testing.assert_allclose(
        pairs.column("prediction").to_numpy(), local.predict(pairs.column("user").to_numpy(zero_copy_only=False).astype(str),
                                                            pairs.column("item").to_numpy(zero_copy_only=False).astype(str)),
        rtol=1e-5,
    )  # fmt: skip


# ----------------------------------------------------------------- outputs
def test_to_local_predicts_what_transform_predicts(spark: object, fitted: object, data: tuple[np.ndarray, ...]) -> None:
    u, i, r = data
    scored = fitted.transform(frame(spark, u[:300], i[:300], r[:300])).toArrow()  # type: ignore[attr-defined]
    local = fitted.to_local()  # type: ignore[attr-defined]
    expected = local.predict(scored.column("user").to_numpy(), scored.column("item").to_numpy())
    np.testing.assert_allclose(scored.column("prediction").to_numpy(), expected, rtol=1e-6, atol=1e-6)


def test_cold_start_users_and_items_get_the_biases(spark: object, fitted: object) -> None:
    local = fitted.to_local()  # type: ignore[attr-defined]
    known_user, known_item = int(local.user_ids_.ids[0]), int(local.item_ids_.ids[0])
    pairs = np.array([known_user, -5, -5]), np.array([-7, known_item, -7])
    scored = fitted.transform(frame(spark, *pairs, np.zeros(3, np.float32), slices=1)).orderBy("user", "item").toArrow()
    got = dict(zip(zip(scored.column("user").to_pylist(), scored.column("item").to_pylist()), scored.column("prediction").to_pylist()))
    low, high = local.rating_range_
    mu = local.global_mean_
    assert got[(-5, -7)] == pytest.approx(min(max(mu, low), high))
    assert got[(known_user, -7)] == pytest.approx(min(max(mu + local.user_bias_[0], low), high), rel=1e-6)
    assert got[(-5, known_item)] == pytest.approx(min(max(mu + local.item_bias_[0], low), high), rel=1e-6)
    assert all(math.isfinite(v) for v in got.values())


def test_recommendations_are_the_local_models(spark: object, fitted: object) -> None:
    local = fitted.to_local()  # type: ignore[attr-defined]
    users = local.user_ids_.ids[[0, 5, 17]]
    wanted = spark.createDataFrame([(int(x),) for x in users] + [(-1,)], "user long")  # type: ignore[attr-defined]
    table = fitted.recommend(wanted, n=7).toArrow()  # type: ignore[attr-defined]
    for user in [*users.tolist(), -1]:
        mask = np.asarray(table.column("user").to_numpy()) == user
        ranks = np.asarray(table.column("rank").to_numpy())[mask]
        items = np.asarray(table.column("item").to_numpy())[mask][np.argsort(ranks)]
        expected = local.recommend(user, n=7)
        np.testing.assert_array_equal(items, expected.items)
    every = fitted.recommend_for_all_users(3)  # type: ignore[attr-defined]
    assert every.count() == 3 * len(local.user_ids_)


def test_save_and_load_round_trip(spark: object, fitted: object, tmp_path: Path, data: tuple[np.ndarray, ...]) -> None:
    from factorise.spark import SparkBiasedMF, load

    path = str(tmp_path / "model")
    fitted.save(path)  # type: ignore[attr-defined]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary left beside it
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fitted.save(path)  # type: ignore[attr-defined]
    again = load(path, spark)
    assert isinstance(again, SparkBiasedMF) and again.history_ == fitted.history_  # type: ignore[attr-defined]
    u, i, r = data
    pairs = frame(spark, u[:200], i[:200], r[:200])
    a = fitted.transform(pairs).orderBy("user", "item").toArrow().column("prediction").to_numpy()  # type: ignore[attr-defined]
    b = again.transform(pairs).orderBy("user", "item").toArrow().column("prediction").to_numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(again.to_local().user_factors_, fitted.to_local().user_factors_)  # type: ignore[attr-defined]


def test_evaluate_matches_the_local_rmse(spark: object, fitted: object, data: tuple[np.ndarray, ...]) -> None:
    u, i, r = data
    scores = fitted.evaluate(frame(spark, u[:500], i[:500], r[:500]))  # type: ignore[attr-defined]
    predictions = fitted.to_local().predict(u[:500], i[:500])  # type: ignore[attr-defined]
    assert scores["n"] == 500
    assert scores["rmse"] == pytest.approx(math.sqrt(np.mean((predictions - r[:500]) ** 2)), rel=1e-6)
    assert scores["mae"] == pytest.approx(np.mean(np.abs(predictions - r[:500])), rel=1e-6)


def test_validation_history_and_early_stopping(spark: object, data: tuple[np.ndarray, ...]) -> None:
    from factorise.spark import SparkBiasedMF

    u, i, r = data
    train, held = slice(0, 10_000), slice(10_000, None)
    params = {**PARAMS, "n_epochs": 4, "learning_rate": 0.3, "patience": 0}
    model = SparkBiasedMF(**params, n_blocks=2).fit(
        frame(spark, u[train], i[train], r[train]), validation=frame(spark, u[held], i[held], r[held]), spark=spark
    )
    local = BiasedMF(**params, n_blocks=2, n_threads=1).fit(
        Ratings.from_raw(u[train], i[train], r[train]), validation=Ratings.from_raw(u[held], i[held], r[held])
    )
    assert [h["epoch"] for h in model.history_] == [h["epoch"] for h in local.history_]
    for mine, theirs in zip(model.history_, local.history_, strict=True):
        assert mine["valid_rmse"] == pytest.approx(theirs["valid_rmse"], rel=1e-5)
    np.testing.assert_allclose(model.to_local().user_factors_, local.user_factors_, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ faults
def test_a_failed_task_is_retried_to_the_same_factors(spark: object, tmp_path: Path) -> None:
    """local[2,3]: the first attempt of one DSGD task raises; Spark's retry gives the factors of a clean fit."""
    from factorise.spark import SparkBiasedMF

    u, i, r = planted(3, 200, 150, 9000)
    clean = SparkBiasedMF(**PARAMS, n_blocks=2).fit(frame(spark, u, i, r), spark=spark).to_local()
    faulty = SparkBiasedMF(**PARAMS, n_blocks=2)
    faulty._fault = (str(tmp_path), 2, 1, 0)  # epoch 2, round 1, partition 0
    got = faulty.fit(frame(spark, u, i, r), spark=spark).to_local()
    assert (tmp_path / "failed-2-1-0").exists()  # the failure did happen
    np.testing.assert_array_equal(got.user_factors_, clean.user_factors_)
    np.testing.assert_array_equal(got.item_factors_, clean.item_factors_)
