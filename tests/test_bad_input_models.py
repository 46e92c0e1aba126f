"""Issue 7 at the library level: each bad input or fault gets a clear error, nothing is guessed or lost.

One test (or a few) per item of the issue owned by the models: 7 (the ranking
score beside the clipped prediction), 8 (memory estimates bound the measured
peak), 9 (corrupt model files), 10 (one data-free parameter check), 11 (the
thread limit), 12 (data too large for the dtype) and 18 (BLAS warning only
when the user's own setting is overridden). Each asserts the exception type
and that the message names the file or parameter, the rule and the value.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from factorise import DivergenceError, sgd_factorise
from factorise._threads import BLAS_THREAD_VARIABLES, MAX_N_THREADS, available_cores, available_threads
from factorise.cli._memory import check_fit_memory, check_read_memory
from factorise.data import Ratings
from factorise.data._estimate import estimate_read_memory
from factorise.exceptions import BlasThreadsWarning, ThreadsWarning
from factorise.models import ALS, Baseline, BayesianMF, BiasedMF, SoftImpute, load_model
from factorise import _threads

MODELS = [BiasedMF, ALS, SoftImpute, Baseline, BayesianMF]


def steps_of(cls: type, n: int) -> dict[str, Any]:
    """``n`` steps of ``cls`` (BayesianMF also keeps samples: one of them is burn-in)."""
    return {cls._steps_param: n, **({"burn_in": min(1, n - 1)} if cls is BayesianMF and n >= 1 else {})}


def ratings(seed: int = 0, n_users: int = 30, n_items: int = 20, density: float = 0.5) -> Ratings:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    mask[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    u, i = np.nonzero(mask)
    values = np.clip(np.round(3 + rng.standard_normal(u.shape[0])), 1, 5)
    return Ratings.from_raw(u + 100, i + 1000, values)


def small_model(cls: type = BiasedMF) -> Any:
    params: dict[str, Any] = {"rank": 3} if "rank" in cls._param_names else {}
    return cls(**params, **steps_of(cls, 2), random_state=0).fit(ratings())


# --------------------------------------------------------------- item 7: recommend's score
def test_recommend_shows_the_unclipped_score_it_ranks_by() -> None:
    """Items predicted above the top of the scale tie at 5 when clipped; the ranking score orders them."""
    model = small_model(BiasedMF)
    user = 100
    u = int(model.user_ids_.index([user])[0])
    n_items = len(model.item_ids_)
    # known scores: mu + b_u + b_i + p_u . q_i with p_u = 0 and b_i = 10 - i / n: all above 5, all distinct
    model.user_factors_[u] = 0.0
    model.user_bias_[u] = 0.0
    model.item_bias_[:] = (10.0 - np.arange(n_items) / n_items - model.global_mean_).astype(np.float32)
    recs = model.recommend(user, n=5, exclude_rated=False)
    truth = model.global_mean_ + model.item_bias_.astype(np.float64)
    best = np.argsort(-truth, kind="stable")[:5]
    np.testing.assert_array_equal(recs.items, model.item_ids_.raw(best))
    np.testing.assert_allclose(recs.ranking_scores, truth[best], rtol=1e-12)
    assert np.all(np.diff(recs.ranking_scores) < 0)  # strictly ordered ...
    np.testing.assert_array_equal(recs.scores, np.full(5, model.rating_range_[1]))  # ... while all read 5
    np.testing.assert_allclose(recs.scores, model.predict(np.full(5, user), recs.items))


# ------------------------------------------------------------- item 8: memory estimates
CHILD = textwrap.dedent(
    """
    import json, os, sys
    from factorise import read_ratings
    from factorise import models
    ratings = read_ratings(sys.argv[1])
    model = getattr(models, sys.argv[2])(**json.loads(sys.argv[3]))
    model.fit(ratings)
    with open("/proc/self/status") as status:  # the peak of this program (reset by exec, unlike ru_maxrss)
        peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
    print(json.dumps([peak, len(ratings), ratings.n_users, ratings.n_items]))
    """
)


def _peak_of_child(args: list[str]) -> tuple[int, list[int]]:
    """The child's own peak resident set (``VmHWM``) and the counts it read.

    Not the ``ru_maxrss`` of ``wait4``: that also counts the parent's pages
    the child held between fork and exec (pytest's, hundreds of MiB).
    """
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    peak, *counts = json.loads(done.stdout.strip().splitlines()[-1])
    return peak, counts


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_fit_memory_estimate_bounds_the_measured_peak(tmp_path: Path, cls: type) -> None:
    """A memory bound, not a timing: the child's peak resident set never exceeds the estimate."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    n_users, n_items, n = 3000, 1000, 150_000
    flat = rng.choice(n_users * n_items, size=n, replace=False)
    path = tmp_path / "r.parquet"
    pq.write_table(
        pa.table({"user": flat // n_items, "item": flat % n_items, "rating": rng.integers(1, 6, n).astype(np.float32)}),
        path,
    )
    params = steps_of(cls, 2)
    params["random_state"] = 0
    if not Path("/proc/self/status").is_file():
        pytest.skip("needs /proc/self/status (Linux) to read a process's peak resident set")
    peak, counts = _peak_of_child([str(path), cls.__name__, json.dumps(params)])
    estimate = cls(**params).estimate_fit_memory(*counts)
    assert estimate >= peak, (estimate / 2**20, peak / 2**20)
    assert estimate_read_memory(counts[0]) >= peak or estimate >= peak
    assert estimate < 3 * peak  # an honest margin, not a refusal of everything


def test_fit_memory_estimate_grows_with_what_it_holds() -> None:
    small = BiasedMF(rank=8).estimate_fit_memory(10**6, 10**4, 10**3)
    assert BiasedMF(rank=64).estimate_fit_memory(10**6, 10**4, 10**3) > small
    assert BiasedMF(rank=8, dtype="float64").estimate_fit_memory(10**6, 10**4, 10**3) > small
    assert BiasedMF(rank=8).estimate_fit_memory(10**7, 10**4, 10**3) > small + 10**7 * 12
    # the block copy costs 12 bytes a rating more than the lean layout's int32 positions
    copy, lean = (BiasedMF(rank=8, block_copy=c).estimate_fit_memory(10**7, 10**4, 10**3) for c in (True, False))
    assert copy - lean >= 12 * 10**7
    # reordering the ratings in place: 8 bytes a rating at most (block ids, then a scratch column)
    in_place = BiasedMF(rank=8, block_copy="in-place").estimate_fit_memory(10**7, 10**4, 10**3)
    assert lean < in_place <= lean + 5 * 10**7 and copy - in_place >= 8 * 10**7  # (estimates carry a margin)
    in_place64 = BiasedMF(rank=8, block_copy="in-place", dtype="float64").estimate_fit_memory(10**7, 10**4, 10**3)
    assert in_place64 == BiasedMF(rank=8, dtype="float64").estimate_fit_memory(10**7, 10**4, 10**3)  # it copies
    with pytest.raises(TypeError, match=r"`rank` must be an integer >= 1; got 'x'"):
        BiasedMF(rank="x").estimate_fit_memory(10, 2, 2)
    with pytest.raises(ValueError, match=r"`n_users` must be an integer >= 0; got -1"):
        ALS().estimate_fit_memory(10, -1, 2)


def test_memory_checks_name_the_flag_the_estimate_and_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("".join(f"{u},{u % 7},3\n" for u in range(500)))
    before = path.read_bytes()
    check_read_memory(path, None)  # no limit, no check
    check_read_memory(path, 10 * 2**30)
    with pytest.raises(ValueError, match=r"r.csv: reading about 500 ratings needs up to \d+\.\d MiB, more than --max-memory 1\.0 MiB; raise --max-memory"):
        check_read_memory(path, 2**20)
    data = ratings()
    model = ALS(rank=3)
    check_fit_memory(model, data, 10 * 2**30)
    with pytest.raises(ValueError, match=r"fitting ALS at rank 3 to \d+ ratings \(30 users x 20 items\) needs up to .* more than --limit 1\.0 MiB; raise --limit .* or lower --rank"):
        check_fit_memory(model, data, 2**20, flag="--limit")
    with pytest.raises(ValueError, match=r"--max-memory must be a size > 0"):
        check_fit_memory(model, data, 0)
    assert path.read_bytes() == before


# ------------------------------------------------------------------ item 9: model files
@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "m.npz"
    small_model(BiasedMF).save(path)
    return path


def _rewrite(source: Path, target: Path, **changes: Any) -> Path:
    with np.load(source) as npz:
        arrays = {name: npz[name] for name in npz.files}
    metadata = changes.pop("metadata_json", None)
    if metadata is not None:
        arrays["metadata"] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    arrays.update(changes)
    with open(target, "wb") as handle:
        np.savez(handle, **arrays)
    return target


def _metadata(path: Path) -> dict[str, Any]:
    with np.load(path) as npz:
        return json.loads(npz["metadata"].tobytes())


def _refused(path: Path, pattern: str) -> str:
    before = path.read_bytes()
    with pytest.raises(ValueError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message and "allow_pickle" not in message and "__init__" not in message, message
    assert __import__("re").search(pattern, message), message
    assert path.read_bytes() == before  # loading never changes the file
    return message


def test_a_text_file_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text("user,item,rating\n1,2,3\n")
    _refused(path, r"ratings.csv is not a factorise model \(not an \.npz archive: it starts with b'user,item")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    _refused(empty, r"is not a factorise model \(not an \.npz archive: an empty file\)")


def test_an_npz_of_other_arrays_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, a=np.arange(3))
    _refused(path, r"other.npz is not a factorise model \(an archive without model metadata; it holds a.npy\)")


def test_out_of_range_rated_item_is_corrupt_not_an_index_error(saved: Path, tmp_path: Path) -> None:
    with np.load(saved) as npz:
        rated = npz["rated_items"].copy()
        n_items = npz["item_ids"].shape[0]
    rated[-1] = n_items + 5
    path = _rewrite(saved, tmp_path / "bad.npz", rated_items=rated)
    _refused(path, rf"bad.npz is corrupt: rated_items holds item indices from \d+ to {n_items + 5}, outside \[0, {n_items}\)")


def test_rated_indptr_must_rise_to_the_rated_items(saved: Path, tmp_path: Path) -> None:
    with np.load(saved) as npz:
        indptr = npz["rated_indptr"].copy()
    indptr[1], indptr[2] = indptr[2], indptr[1] - 1 if indptr[1] > 0 else 0
    indptr[2] = indptr[1] - 1
    path = _rewrite(saved, tmp_path / "bad.npz", rated_indptr=indptr)
    _refused(path, r"is corrupt: rated_indptr must start at 0, never fall")


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"user_factors": "nan"}, r"is corrupt: user_factors holds \d+ NaN or infinite value\(s\)"),
        ({"item_bias": "short"}, r"is corrupt: item_bias has shape \(\d+,\), expected \(\d+,\)"),
        ({"user_ids": "unsorted"}, r"is corrupt: user_ids are not sorted and unique"),
        ({"item_factors": "int"}, r"is corrupt: item_factors has dtype int64, not float32 or float64"),
        ({"user_factors": "object"}, r"is corrupt: array user_factors has dtype object"),
    ],
)
def test_every_array_is_checked(saved: Path, tmp_path: Path, change: dict[str, str], pattern: str) -> None:
    with np.load(saved) as npz:
        arrays = {name: npz[name] for name in npz.files}
    (name, how), = change.items()
    value = arrays[name]
    if how == "nan":
        value = value.copy()
        value[0, 0] = np.nan
    elif how == "short":
        value = value[:-1]
    elif how == "unsorted":
        value = value[::-1].copy()
    elif how == "int":
        value = value.astype(np.int64)
    elif how == "object":
        value = value.astype(object)
    target = tmp_path / "bad.npz"
    arrays[name] = value
    with open(target, "wb") as handle:
        np.savez(handle, **arrays)  # an object array is pickled: the reader must not unpickle it
    _refused(target, pattern)


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda m: m["params"].update(surprise=1), r"is corrupt: unknown BiasedMF parameter\(s\) surprise"),
        (lambda m: m["params"].update(rank="abc"), r"is corrupt: its BiasedMF parameters are invalid \(`rank` must be an integer >= 1; got 'abc'"),
        (lambda m: m.update(model="Mystery"), r"is corrupt: unknown model type 'Mystery' \(this factorise knows .*BiasedMF"),
        (lambda m: m.update(rating_range=[5, 1]), r"is corrupt: its rating_range is \[5, 1\], not \[low, high\] with finite low <= high"),
        (lambda m: m.update(global_mean="3"), r"is corrupt: its global_mean is '3', not a finite number"),
        (lambda m: m.update(n_epochs=True), r"is corrupt: its n_epochs is True, not an integer >= 0"),
        (lambda m: m.update(history={"a": 1}), r"is corrupt: its history is not a list"),
        (lambda m: m.update(format="something-else"), r"is not a factorise model \(its metadata has no format 'factorise-model'\)"),
        (lambda m: m.update(format_version=99), r"written in model format version 99, newer than this factorise"),
    ],
)
def test_every_metadata_field_is_checked(saved: Path, tmp_path: Path, edit: Any, pattern: str) -> None:
    metadata = _metadata(saved)
    edit(metadata)
    _refused(_rewrite(saved, tmp_path / "bad.npz", metadata_json=metadata), pattern)


def test_truncated_or_damaged_files_are_corrupt(saved: Path, tmp_path: Path) -> None:
    data = saved.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    _refused(cut, r"cut.npz is corrupt: truncated or damaged archive")
    flipped = bytearray(data)
    with np.load(saved) as npz:
        offset = data.index(npz["user_factors"].tobytes()[:16])
    flipped[offset + 3] ^= 0x40
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(bytes(flipped))
    _refused(damaged, r"damaged.npz is corrupt: truncated or damaged archive \(BadZipFile: Bad CRC-32 for file 'user_factors.npy'\)")


def test_a_valid_model_loads_and_predicts(saved: Path) -> None:
    model = load_model(saved)
    assert isinstance(model, BiasedMF) and np.isfinite(model.predict([100, 9999], [1000, 1001])).all()
    assert len(model.recommend(100, n=3).items) == 3


# ---------------------------------------------------------- item 10: one validation path
@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_zero_steps_are_refused_by_every_model_before_reading(cls: type, tmp_path: Path) -> None:
    steps = cls._steps_param
    model = cls(**{steps: 0})
    with pytest.raises(ValueError, match=rf"`{steps}` must be an integer >= 1; got 0"):
        model.validate_params()
    missing = tmp_path / "no-such-file.csv"
    with pytest.raises(ValueError, match=rf"`{steps}` must be an integer >= 1; got 0"):
        model.fit(missing)  # the parameter is checked before the (missing) file is opened


@pytest.mark.parametrize("cls", [BiasedMF, ALS, SoftImpute, BayesianMF], ids=lambda c: c.__name__)
def test_a_string_rank_is_a_type_error_naming_the_rule(cls: type) -> None:
    with pytest.raises(TypeError, match=r"`rank` must be an integer >= 1; got 'abc' of type str"):
        cls(rank="abc").validate_params()


@pytest.mark.parametrize(
    ("cls", "params", "error", "pattern"),
    [
        (BiasedMF, {"learning_rate": "fast"}, TypeError, r"`learning_rate` must be a finite real number > 0; got 'fast'"),
        (BiasedMF, {"dtype": 32}, ValueError, r"`dtype` must be 'float32' or 'float64'; got 32"),
        (BiasedMF, {"n_blocks": 0}, ValueError, r"`n_blocks` must be None or an integer with 1 <= n_blocks <= 1024; got 0"),
        (BiasedMF, {"block_copy": "no"}, TypeError, r"`block_copy` must be True, False or 'in-place'; got 'no' of type str"),
        (BiasedMF, {"block_copy": "inplace"}, TypeError, r"`block_copy` must be True, False or 'in-place'; got 'inplace'"),
        (BiasedMF, {"block_copy": 0}, TypeError, r"`block_copy` must be True, False or 'in-place'; got 0 of type int"),
        (ALS, {"regularization": -1.0}, ValueError, r"`regularization` must be a finite real number >= 0; got -1.0"),
        (SoftImpute, {"shrinkage": 1.5}, ValueError, r"`shrinkage` must be a real number with 0 <= shrinkage < 1; got 1.5"),
        (Baseline, {"patience": -1}, ValueError, r"`patience` must be an integer >= 0; got -1"),
        (Baseline, {"random_state": "seed"}, TypeError, r"`random_state` must be None, an integer >= 0"),
        (BayesianMF, {"burn_in": 10, "n_samples": 10}, ValueError, r"`burn_in` must be less than `n_samples` \(10\)"),
        (BayesianMF, {"prior_strength": -2.0}, ValueError, r"`prior_strength` must be a finite real number > 0; got -2.0"),
        (BayesianMF, {"noise_rate": "x"}, TypeError, r"`noise_rate` must be a finite real number > 0; got 'x'"),
        (BayesianMF, {"implicit": "yes"}, ValueError, r"`implicit` must be True or False; got 'yes' of type str"),
        (BayesianMF, {"implicit": 1}, ValueError, r"`implicit` must be True or False; got 1 of type int"),
        (BayesianMF, {"noise": None}, ValueError, r"`noise` must be one of 'user-item', 'shared'; got None"),
    ],
)
def test_validate_params_needs_no_data(cls: type, params: dict, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        cls(**params).validate_params()


def test_validate_params_returns_the_model_and_keeps_a_generator_unused() -> None:
    rng = np.random.default_rng(3)
    state = rng.bit_generator.state
    model = BiasedMF(random_state=rng)
    assert model.validate_params() is model
    assert rng.bit_generator.state == state


# --------------------------------------------------------------------- item 11: threads
@pytest.mark.parametrize("cls", [BiasedMF, ALS], ids=lambda c: c.__name__)
def test_absurd_thread_counts_are_refused(cls: type) -> None:
    with pytest.raises(ValueError, match=rf"`n_threads` must be None \(all cores\) or an integer with 1 <= n_threads <= {MAX_N_THREADS}; got 100000"):
        cls(n_threads=100_000).validate_params()


def test_more_threads_than_cores_warn_once_per_line() -> None:
    cores = available_cores()
    with pytest.warns(ThreadsWarning, match=rf"`n_threads`={cores + 1} is more than the {cores} core\(s\)") as caught:
        ALS(n_threads=cores + 1).validate_params()
    assert caught[0].filename == __file__


# -------------------------------------------------------- item 12: the data's scale
def test_ratings_too_large_for_float32_say_so_not_lower_the_rate() -> None:
    data = Ratings.from_raw([1, 2, 3, 1, 2, 3], [1, 1, 2, 2, 3, 3], [1e38, 2e38, 3e37, 1e38, 5e37, 2e38])
    model = BiasedMF(rank=1, random_state=0)
    with pytest.raises(DivergenceError) as info:
        model.fit(data)
    message = str(info.value)
    assert "ratings are too large for float32 arithmetic: the largest |value| is 2e+38" in message
    assert "rescale the ratings (e.g. divide them by 1e38)" in message
    assert "try a smaller learning_rate" not in message
    assert not hasattr(model, "user_factors_")  # no NaN factors left behind


def test_ordinary_divergence_keeps_the_learning_rate_advice() -> None:
    model = BiasedMF(rank=2, n_epochs=20, learning_rate=1e4, random_state=0)
    with pytest.raises(DivergenceError, match=r"try a smaller learning_rate \(now 1e\+04; e\.g\. 1e\+03\)") as info:
        model.fit(ratings(1))
    assert "too large" not in str(info.value)
    assert not hasattr(model, "user_factors_")


def test_lab_dense_matrix_of_huge_magnitude_says_rescale() -> None:
    A = np.full((3, 3), 1e300)
    with pytest.raises(DivergenceError) as info:
        sgd_factorise(A, 2, num_epochs=5, random_state=0)
    message = str(info.value)
    assert "too large for float64 arithmetic: the largest |value| is 1e+300" in message
    assert "rescale" in message and "1e-301" not in message and "smaller learning rate (for" not in message
    with pytest.raises(DivergenceError, match=r"try a smaller learning rate \(for example lr=1\)"):
        sgd_factorise(np.full((3, 3), 5.0), 2, num_epochs=20, lr=10.0, random_state=0)


# ------------------------------------------------------------ item 18: BLAS warning
def test_a_default_machine_gets_no_blas_warning_from_a_parallel_fit(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if available_threads() < 2 or available_cores() < 2:
        pytest.skip("needs two cores to run two threads")
    for variable in BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(_threads, "_warned", False)
    with threadpool_limits(limits=2, user_api="blas"):
        if max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), default=1) < 2:
            pytest.skip("this BLAS cannot run two threads")
        with warnings.catch_warnings(), caplog.at_level(logging.DEBUG, logger="factorise._threads"):
            warnings.simplefilter("error")
            ALS(rank=3, n_epochs=2, n_threads=2, random_state=0).fit(ratings())
    assert any("limits it to 1" in r.getMessage() for r in caplog.records)
    monkeypatch.setenv("MKL_NUM_THREADS", "4")
    with threadpool_limits(limits=2, user_api="blas"):
        with pytest.warns(BlasThreadsWarning, match=r"overrides MKL_NUM_THREADS=4"):
            ALS(rank=3, n_epochs=2, n_threads=2, random_state=0).fit(ratings())


def test_no_model_returns_nan_factors_on_overflow() -> None:
    """Whatever the model, a fit either succeeds with finite arrays or raises DivergenceError."""
    data = Ratings.from_raw([1, 2, 3, 1, 2, 3], [1, 1, 2, 2, 3, 3], [3e38, -3e38, 3e38, -3e38, 3e38, -3e38])
    for cls in MODELS:
        model = cls(**({"n_samples": 6, "burn_in": 2} if cls is BayesianMF else {}))
        if "rank" in cls._param_names:
            model.set_params(rank=1)
        try:
            model.fit(data)
        except DivergenceError as exc:
            assert "too large" in str(exc), str(exc)
            assert not hasattr(model, "user_factors_")
        else:
            assert all(math.isfinite(v) for v in model.predict([1, 2], [1, 3]))
            assert np.isfinite(model.user_factors_).all() and np.isfinite(model.item_bias_).all()


@pytest.mark.slow
def test_memory_benchmark_runs_and_its_estimates_hold() -> None:
    """benchmarks/memory.py on a small size: every estimate >= the CLI's measured peak (exit 0)."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "memory.py"
    done = subprocess.run(
        [sys.executable, str(script), "--sizes", "20000", "--algos", "baseline,sgd", "--epochs", "1"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every estimate >= the measured peak" in done.stdout
    rows = [line.split() for line in done.stdout.splitlines() if line.strip().startswith("20")]
    assert len(rows) == 2 and all(float(row[-2]) >= 1 for row in rows)
