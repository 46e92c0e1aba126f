"""The torch engine (device=DEVICE here; "cuda" on a GPU machine): against the numba engine, and its contract.

ALS on torch solves the same float64 systems as the numba kernel, so the
factors agree to rounding. SGD on torch runs the per-rating update in waves
of ratings that share no user and no item, which is exactly the serial sweep
in the waves' order: checked against the numba serial kernel in that order,
and in quality against the CPU engine's block sweep on planted data.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from factorise import ALS, BiasedMF, load_model
from factorise.datasets.synthetic import synthetic_ratings
from factorise.models.als import balanced_bounds

pytestmark = pytest.mark.usefixtures("torch")

#: The torch device the engine runs on: the CPU here and in CI; benchmarks/gpu_check.sh sets "cuda".
DEVICE = os.environ.get("FACTORISE_TEST_DEVICE", "torch-cpu")


def _device():  # type: ignore[no-untyped-def]
    from factorise._torch import check_device, torch_device

    return torch_device(check_device(DEVICE))


@pytest.fixture(scope="module")
def planted() -> object:
    return synthetic_ratings(1500, 700, 60_000, 4, 0.5, random_state=0, test_fraction=0.1)


# ------------------------------------------------------------------ ALS
def _csr(rng: np.random.Generator, n_rows: int, n_other: int, density: float) -> tuple[np.ndarray, ...]:
    mask = rng.random((n_rows, n_other)) < density
    mask[3] = False  # an empty row
    mask[5] = True  # a row longer than most: its own bucket
    rows, others = np.nonzero(mask)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr, others.astype(np.int32), rng.uniform(1, 5, rows.shape[0]).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1])
def test_als_half_step_matches_the_numba_kernel(seed: int) -> None:
    from factorise.kernels.als import als_half_step
    from factorise.torch_engine.als import TorchALS

    rng = np.random.default_rng(seed)
    indptr, others, values = _csr(rng, 40, 300, 0.08)
    k = 6
    F, fb = rng.normal(0, 1, (300, k)), rng.normal(0, 0.3, 300)
    outs = []
    for solve in (als_half_step, TorchALS(_device()).half_step):
        P, b, loss = np.full((40, k), 7.0, np.float32), np.full(40, 7.0, np.float32), np.empty(40)
        total = solve(indptr, others, values, 3.2, F, fb, P, b, 0.4, 0.2, 0.5, balanced_bounds(indptr, k, 1), loss)
        outs.append((P, b, loss, total))
    (P0, b0, l0, t0), (P1, b1, l1, t1) = outs
    np.testing.assert_allclose(P1, P0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b1, b0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(l1, l0, rtol=1e-9, atol=1e-9)
    assert t1 == pytest.approx(t0, rel=1e-10)
    assert P1[3].tolist() == [0.0] * k and b1[3] == 0.0  # no ratings: zero factors and bias, as numba's


def test_als_half_step_flags_a_singular_system_as_the_kernel_does() -> None:
    from factorise.torch_engine.als import TorchALS

    indptr = np.array([0, 1, 3], dtype=np.int64)
    others = np.array([0, 0, 1], dtype=np.int32)
    values = np.array([4.0, 3.0, 2.0], dtype=np.float32)
    F, fb = np.ones((2, 3)), np.zeros(2)
    P, b, loss = np.full((2, 3), 7.0, np.float32), np.full(2, 7.0, np.float32), np.empty(2)
    TorchALS(_device()).half_step(indptr, others, values, 3.0, F, fb, P, b, 0.0, 0.0, 0.0, np.array([0, 2]), loss)
    assert np.isnan(loss).all()  # one rating for four unknowns; two ratings on equal factors: both singular
    assert P.tolist() == [[7.0] * 3] * 2  # left unchanged


def test_als_on_torch_gives_the_numba_fit(planted: object) -> None:
    kwargs = {"rank": 8, "n_epochs": 4, "random_state": 3, "n_threads": 1}
    cpu = ALS(**kwargs).fit(planted.train, validation=planted.test)  # type: ignore[attr-defined]
    gpu_style = ALS(**kwargs, device=DEVICE).fit(planted.train, validation=planted.test)  # type: ignore[attr-defined]
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_allclose(getattr(gpu_style, name), getattr(cpu, name), rtol=1e-4, atol=1e-5, err_msg=name)
    for mine, theirs in zip(gpu_style.history_, cpu.history_, strict=True):
        assert mine["objective"] == pytest.approx(theirs["objective"], rel=1e-6)
        assert mine["valid_rmse"] == pytest.approx(theirs["valid_rmse"], rel=1e-6)


def test_a_torch_fit_saves_loads_and_predicts_as_a_cpu_one(planted: object, tmp_path) -> None:  # type: ignore[no-untyped-def]
    test = planted.test  # type: ignore[attr-defined]
    for model in (ALS(rank=6, n_epochs=2, random_state=0, device=DEVICE),
                  BiasedMF(rank=6, n_epochs=2, random_state=0, device=DEVICE)):  # fmt: skip
        model.fit(planted.train)  # type: ignore[attr-defined]
        assert isinstance(model.user_factors_, np.ndarray)  # engine-neutral fitted state
        path = tmp_path / f"{type(model).__name__}.npz"
        model.save(path)
        loaded = load_model(path)
        np.testing.assert_array_equal(loaded.predict(test.raw_users, test.raw_items), model.predict(test.raw_users, test.raw_items))
        assert loaded.device == "torch-cpu"
        assert loaded.recommend(test.raw_users[0], 5).items.tolist() == model.recommend(test.raw_users[0], 5).items.tolist()


# ------------------------------------------------------------------ SGD
def test_sgd_waves_share_no_user_and_no_item() -> None:
    from factorise.torch_engine.sgd import waves

    rng = np.random.default_rng(0)
    users = rng.integers(0, 50, 4000).astype(np.int32)
    items = (rng.pareto(1.2, 4000) * 3).astype(np.int64).clip(0, 79).astype(np.int32)  # a few popular items
    order = rng.permutation(4000)
    sorted_order, ptr = waves(users, items, order, 50, 80)
    assert sorted(sorted_order.tolist()) == list(range(4000))  # every rating once
    for w in range(ptr.shape[0] - 1):
        chunk = sorted_order[ptr[w] : ptr[w + 1]]
        assert np.unique(users[chunk]).shape[0] == chunk.shape[0]
        assert np.unique(items[chunk]).shape[0] == chunk.shape[0]
    # a user's (an item's) ratings keep the visiting order across waves
    position = np.empty(4000, dtype=np.int64)
    position[order] = np.arange(4000)
    wave_of = np.repeat(np.arange(ptr.shape[0] - 1), np.diff(ptr))
    for u in range(50):
        mine = sorted_order[users[sorted_order] == u]
        assert np.all(np.diff(position[mine]) > 0) and np.all(np.diff(wave_of[users[sorted_order] == u]) > 0)


def test_sgd_epoch_on_torch_is_the_serial_sweep_in_wave_order() -> None:
    from factorise.kernels.sgd_ratings import sgd_ratings_epoch
    from factorise.torch_engine.sgd import TorchSGD, waves

    rng = np.random.default_rng(1)
    n, m, q, k = 5000, 120, 90, 5
    users = rng.integers(0, m, n).astype(np.int32)
    items = rng.integers(0, q, n).astype(np.int32)
    values = rng.uniform(1, 5, n).astype(np.float32)
    P0, Q0 = rng.normal(0, 0.1, (m, k)).astype(np.float32), rng.normal(0, 0.1, (q, k)).astype(np.float32)
    f = np.float32
    scalars = (f(3.0), f(0.02), f(0.05), f(0.01), f(0.01))
    cpu = [np.zeros(m, np.float32), np.zeros(q, np.float32), P0.copy(), Q0.copy()]
    gpu = [np.zeros(m, np.float32), np.zeros(q, np.float32), P0.copy(), Q0.copy()]
    engine = TorchSGD(_device(), users, items, values)
    for epoch in range(3):
        order = np.random.default_rng(epoch).permutation(n)
        sorted_order, _ = waves(users, items, order, m, q)
        mu, lr, reg, blr, breg = scalars
        sse_cpu = sgd_ratings_epoch(users, items, values, sorted_order.astype(np.int64), mu, *cpu, lr, reg, blr, breg)
        sse_gpu = engine.epoch(order, mu, *gpu, lr, reg, blr, breg)
        assert sse_gpu == pytest.approx(sse_cpu, rel=1e-4)
    for a, b in zip(gpu, cpu, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_sgd_on_torch_matches_the_cpu_engine_in_quality(planted: object) -> None:
    """Different visiting orders, the same model: held-out RMSE within 1% of the CPU engine's."""
    test = planted.test  # type: ignore[attr-defined]
    kwargs = {"rank": 16, "n_epochs": 12, "random_state": 0, "n_threads": 1}
    scores = {}
    for device in (None, DEVICE):
        model = BiasedMF(**kwargs, device=device).fit(planted.train)  # type: ignore[attr-defined]
        error = model.predict(test.raw_users, test.raw_items) - test.values
        scores[device] = float(np.sqrt(np.mean(error**2)))
    floor = 0.5  # the planted noise
    assert scores[None] < floor * 1.25
    assert abs(scores[DEVICE] - scores[None]) < 0.01 * scores[None], scores


def test_same_seed_same_torch_fit(planted: object) -> None:
    a = BiasedMF(rank=4, n_epochs=2, random_state=5, device=DEVICE).fit(planted.train)  # type: ignore[attr-defined]
    b = BiasedMF(rank=4, n_epochs=2, random_state=5, device=DEVICE).fit(planted.train)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)


# ------------------------------------------------------------ bad input
@pytest.mark.parametrize("model", [ALS, BiasedMF])
@pytest.mark.parametrize(
    ("device", "error", "match"),
    [
        ("gpu", ValueError, r"`device` must be None, 'cpu', 'torch-cpu', 'cuda' or 'cuda:N'; got 'gpu'"),
        ("cuda:x", ValueError, r"`device` must be .*; got 'cuda:x'"),
        (1, TypeError, r"`device` must be .*; got 1"),
    ],
)
def test_bad_devices_are_named_before_any_data_is_read(model: type, device: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        model(device=device).validate_params()


@pytest.mark.parametrize("model", [ALS, BiasedMF])
def test_cuda_without_cuda_says_what_is_missing(model: type, planted: object) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")  # CI has none: the error is what it tests
    with pytest.raises(ValueError, match=r"`device`='cuda' asks for CUDA, but .*(CPU build|no CUDA device)"):
        model(rank=2, n_epochs=1, device="cuda").fit(planted.train)  # type: ignore[attr-defined]


def test_a_fit_too_large_for_the_device_is_refused_before_work(monkeypatch: pytest.MonkeyPatch) -> None:
    from factorise import _torch

    class FakeCuda:
        type = "cuda"

        def __str__(self) -> str:
            return "cuda:0"

    monkeypatch.setattr(_torch, "free_bytes", lambda device: 1 << 30)
    with pytest.raises(MemoryError, match=r"ALS\(rank=50\) on 1,000,000 ratings needs about .* GiB on cuda:0, which has 1.0 GiB free"):
        _torch.check_device_memory(FakeCuda(), 5 << 30, "ALS(rank=50) on 1,000,000 ratings")
    _torch.check_device_memory(FakeCuda(), 1 << 20, "small")  # fits: no error


def test_nothing_imports_torch_unless_a_torch_device_is_asked_for() -> None:
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, factorise, factorise.cli, factorise.torch_engine\n"
        "from factorise import ALS, BiasedMF, gd_factorise_masked\n"
        "from factorise.data import Ratings\n"
        "r = Ratings.from_raw(np.arange(60) % 7, np.arange(60) % 11, np.ones(60))\n"
        "ALS(rank=2, n_epochs=1, device='cpu').fit(r); BiasedMF(rank=2, n_epochs=1).fit(r)\n"
        "gd_factorise_masked(np.ones((4, 3)), np.ones((4, 3)), 2, 2, 0.01, device='cpu')\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "BiasedMF(device='cuda:0').validate_params()  # a device string is checked without torch\n"
        "assert 'torch' not in sys.modules, 'torch imported by validate_params'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
