"""Fuzzing load_model: random bytes, truncations and mutations of a valid model file.

Whatever the file holds, load_model raises ValueError (or FileNotFoundError)
or returns a model whose predict and recommend work; never another exception,
never a hang (hypothesis's deadline bounds each case), never an allocation
the file's size does not justify (tracemalloc's peak per case).
"""

from __future__ import annotations

import json
import tempfile
import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factorise.data import Ratings
from factorise.models import ALS, BiasedMF, load_model

FUZZ = settings(
    max_examples=150,
    deadline=timedelta(seconds=10),  # a hang guard, far above the milliseconds a case takes
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
#: Most bytes a load may allocate beyond a small multiple of the file's size.
_SLACK = 16 << 20


def _fitted() -> bytes:
    rng = np.random.default_rng(0)
    u, i = np.nonzero(rng.random((12, 9)) < 0.6)
    ratings = Ratings.from_raw(u + 1, i + 100, rng.integers(1, 6, u.shape[0]))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.npz"
        BiasedMF(rank=2, n_epochs=2, random_state=0).fit(ratings).save(path)
        return path.read_bytes()


VALID = _fitted()


def _arrays(data: bytes) -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.npz"
        path.write_bytes(data)
        with np.load(path) as npz:
            return {name: npz[name] for name in npz.files}


def _pack(arrays: dict[str, np.ndarray]) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.npz"
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)
        return path.read_bytes()


def check_load(data: bytes) -> None:
    """Load ``data`` as a model file: a clear ValueError, or a model that predicts and recommends."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.npz"
        path.write_bytes(data)
        tracemalloc.start()
        try:
            try:
                model = load_model(path)
            except ValueError as exc:
                message = str(exc)
                assert str(path) in message, message
                assert "\n" not in message and "allow_pickle" not in message, message
                return
            finally:
                _, peak = tracemalloc.get_traced_memory()
            assert peak <= 4 * len(data) + _SLACK, (peak, len(data))
        finally:
            tracemalloc.stop()
        users, items = model.user_ids_.ids[:50], model.item_ids_.ids[:50]
        # the id maps are what they claim: every id finds its own position
        np.testing.assert_array_equal(model.user_ids_.index(users), np.arange(len(users)))
        np.testing.assert_array_equal(model.item_ids_.index(items), np.arange(len(items)))
        pairs_u, pairs_i = np.repeat(users, len(items)), np.tile(items, len(users))
        assert np.isfinite(model.predict(pairs_u, pairs_i)).all()
        low, high = model.rating_range_
        for user in users:
            recs = model.recommend(user, n=5)
            assert np.isfinite(recs.scores).all() and len(recs.items) <= 5
            assert np.all((low <= recs.scores) & (recs.scores <= high))
            assert set(recs.items.tolist()).isdisjoint(model.rated_items(user).tolist())
        model.recommend("no such user" if model.user_ids_.is_string else -12345, n=2)


def test_the_valid_file_loads() -> None:
    check_load(VALID)  # the mutations below start from a file that works


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    check_load(data)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_behind_a_zip_signature(tail: bytes) -> None:
    check_load(b"PK\x03\x04" + tail)


@FUZZ
@given(st.integers(0, len(VALID)))
def test_truncations(length: int) -> None:
    check_load(VALID[:length])


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(1, 255)), min_size=1, max_size=8))
def test_flipped_bytes(flips: list[tuple[int, int]]) -> None:
    data = bytearray(VALID)
    for position, mask in flips:
        data[position] ^= mask
    check_load(bytes(data))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
METADATA = json.loads(_arrays(VALID)["metadata"].tobytes())
FIELDS = sorted(METADATA) + ["params." + key for key in METADATA["params"]] + ["extra"]


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(FIELDS), JSON_VALUES | st.just("<delete>")), min_size=1, max_size=4))
def test_edited_metadata(edits: list[tuple[str, Any]]) -> None:
    metadata = json.loads(json.dumps(METADATA))
    for field, value in edits:
        target, key = (metadata.get("params"), field[7:]) if field.startswith("params.") else (metadata, field)
        if not isinstance(target, dict):
            continue
        if value == "<delete>":
            target.pop(key, None)
        else:
            target[key] = value
    arrays = _arrays(VALID)
    arrays["metadata"] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    check_load(_pack(arrays))


ARRAY_NAMES = sorted(_arrays(VALID))
DTYPES = st.sampled_from(["int8", "int32", "int64", "uint64", "float16", "float32", "float64", "bool", "<U3"])


@st.composite
def replacement(draw: st.DrawFn) -> np.ndarray:
    dtype = np.dtype(draw(DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 14), min_size=0, max_size=3)))
    size = int(np.prod(shape))
    if dtype.kind == "U":
        values = draw(st.lists(st.text(max_size=3), min_size=size, max_size=size))
        return np.array(values, dtype=dtype).reshape(shape)
    if dtype.kind == "f":
        values = draw(st.lists(st.floats(width=min(64, dtype.itemsize * 8)), min_size=size, max_size=size))
        return np.array(values, dtype=dtype).reshape(shape)
    if dtype.kind == "b":
        return np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)), dtype=bool).reshape(shape)
    info = np.iinfo(dtype)
    values = draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=size, max_size=size))
    return np.array(values, dtype=dtype).reshape(shape)


@FUZZ
@given(st.dictionaries(st.sampled_from(ARRAY_NAMES), replacement(), min_size=1, max_size=3))
def test_replaced_arrays(changes: dict[str, np.ndarray]) -> None:
    arrays = _arrays(VALID)
    arrays.update(changes)
    check_load(_pack(arrays))


@FUZZ
@given(st.sampled_from(ARRAY_NAMES), st.integers(-3, 3))
def test_arrays_of_plausible_but_wrong_lengths(name: str, delta: int) -> None:
    arrays = _arrays(VALID)
    value = arrays[name]
    if value.ndim and delta:
        if delta < 0:
            value = value[: max(0, value.shape[0] + delta)]
        else:
            value = np.concatenate([value, value[:1].repeat(delta, axis=0)]) if value.shape[0] else value
    arrays[name] = value
    check_load(_pack(arrays))


@st.composite
def edited_values(draw: st.DrawFn) -> tuple[str, np.ndarray]:
    """One array of the valid file with a few of its values replaced, dtype and shape kept."""
    arrays = _arrays(VALID)
    name = draw(st.sampled_from([n for n in ARRAY_NAMES if n != "metadata" and arrays[n].size]))
    value = arrays[name].copy()
    flat = value.reshape(-1)
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, flat.shape[0] - 1))
        if value.dtype.kind == "f":
            flat[position] = draw(st.floats(width=value.dtype.itemsize * 8))
        elif value.dtype.kind in "iu":
            info = np.iinfo(value.dtype)
            near = int(flat[position])
            flat[position] = draw(
                st.integers(max(int(info.min), near - 40), min(int(info.max), near + 40))
                | st.integers(int(info.min), int(info.max))
            )
        else:
            flat[position] = draw(st.text(max_size=3))
    return name, value


@FUZZ
@given(edited_values())
def test_edited_values(edit: tuple[str, np.ndarray]) -> None:
    arrays = _arrays(VALID)
    arrays[edit[0]] = edit[1]
    check_load(_pack(arrays))


@FUZZ
@given(st.sampled_from(ARRAY_NAMES), st.lists(st.integers(0, 2**40), min_size=1, max_size=3))
def test_forged_headers_cannot_ask_for_more_memory_than_the_file_holds(name: str, shape: list[int]) -> None:
    """An entry whose header claims a huge shape (checksums intact): refused, nothing that size allocated."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(VALID)) as source, zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == name + ".npy":
                array = np.lib.format.read_array(io.BytesIO(data))
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    header, {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False, "shape": tuple(shape)}
                )
                data = header.getvalue() + array.tobytes()
            target.writestr(info.filename, data)
    check_load(buffer.getvalue())


def test_another_models_file_round_trips() -> None:
    rng = np.random.default_rng(1)
    u, i = np.nonzero(rng.random((8, 6)) < 0.7)
    ratings = Ratings.from_raw([f"u{x}" for x in u], [f"i{x}" for x in i], rng.integers(1, 6, u.shape[0]))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "als.npz"
        ALS(rank=2, n_epochs=2, random_state=0).fit(ratings).save(path)
        check_load(path.read_bytes())


def test_a_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothing.npz: no such model file"):
        load_model(tmp_path / "nothing.npz")
