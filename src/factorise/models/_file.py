"""Reading a model file back, trusting nothing in it.

A model file is an uncompressed ``.npz`` archive (written by
:meth:`factorise.models.RatingModel.save`) of nine arrays: ``metadata`` (UTF-8
JSON as uint8), ``user_ids``, ``item_ids``, ``user_bias``, ``item_bias``,
``user_factors``, ``item_factors``, ``rated_indptr`` and ``rated_items``.

:func:`load_model` reads it without pickle and checks everything before any
of it reaches a kernel: each array's header against the bytes the archive
holds (so a damaged header cannot ask for an unbounded allocation), the
archive's checksums, each array's dtype, shape, finiteness and index ranges,
and each metadata field's type, the model name and its parameters. A file
that is no model says "FILE is not a factorise model (...)"; a model file
that fails a check says "FILE is corrupt: ...".
"""

from __future__ import annotations

import json
import math
import numbers
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from factorise import __version__
from factorise.data import IdMap

__all__ = ["ARRAYS", "FORMAT_NAME", "FORMAT_VERSION", "load_model"]

#: Version of the model file format written by :meth:`RatingModel.save`.
FORMAT_VERSION = 1
#: The ``format`` field of every model file's metadata.
FORMAT_NAME = "factorise-model"

#: The arrays of a model file, in the order they are written.
ARRAYS = (
    "metadata",
    "user_ids",
    "item_ids",
    "user_bias",
    "item_bias",
    "user_factors",
    "item_factors",
    "rated_indptr",
    "rated_items",
)

#: The first bytes of a zip archive (a local file header, or the end record of an empty one).
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
#: What damaged archives raise while being read (zipfile and numpy's header parser).
_DAMAGE = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    OverflowError,
    SyntaxError,
)
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class _Corrupt(Exception):
    """A model file failed a check; the message says which (becomes a ValueError naming the file)."""


class _NotAModel(Exception):
    """The file is no model file at all."""


def load_model(path: str | Path) -> Any:
    """Load any model saved by :meth:`RatingModel.save`.

    Every array and metadata field is checked before use (see the module
    docstring), so a damaged or foreign file gives one clear error, never an
    IndexError, a pickle prompt or an allocation the file's size does not
    justify.

    Parameters
    ----------
    path : str or pathlib.Path
        The model file.

    Returns
    -------
    RatingModel
        The fitted model, of the class named in the file.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist or is not a file.
    ValueError
        "PATH is not a factorise model (...)" for a file of another kind (a
        CSV, a zip of other things); "PATH is corrupt: ..." for a model file
        that is truncated, damaged or inconsistent; or a message saying the
        file was written by a newer factorise.
    PermissionError
        If the file cannot be opened.
    """
    from factorise.models._base import _REGISTRY  # the model classes; imported late (they import this)

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        arrays = _read_archive(path)
        metadata = _read_metadata(arrays["metadata"])
        cls, params = _check_metadata(path, metadata, _REGISTRY)
        model = cls(**params)
        try:
            model._check_common_params(warn=False)  # a thread count chosen on another machine is no news
            model._validate_params()
        except (TypeError, ValueError) as exc:
            raise _Corrupt(f"its {cls.__name__} parameters are invalid ({exc})") from None
        _check_arrays(arrays, model)
    except _NotAModel as exc:
        raise ValueError(f"{path} is not a factorise model ({exc})") from None
    except _Corrupt as exc:
        raise ValueError(f"{path} is corrupt: {exc}") from None
    model.user_ids_ = IdMap(arrays["user_ids"])
    model.item_ids_ = IdMap(arrays["item_ids"])
    model.user_bias_ = arrays["user_bias"]
    model.item_bias_ = arrays["item_bias"]
    model.user_factors_ = arrays["user_factors"]
    model.item_factors_ = arrays["item_factors"]
    model._rated_indptr = arrays["rated_indptr"]
    model._rated_items = arrays["rated_items"]
    model.global_mean_ = float(metadata["global_mean"])
    model.rating_range_ = (float(metadata["rating_range"][0]), float(metadata["rating_range"][1]))
    model.history_ = metadata["history"]
    model.n_epochs_ = int(metadata["n_epochs"])
    return model


# ----------------------------------------------------------------- archive
def _read_archive(path: Path) -> dict[str, np.ndarray]:
    """The nine arrays, each read against its zip entry's size and checksum."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(32)
    if not head.startswith(_ZIP_MAGIC):
        what = "an empty file" if not head else f"it starts with {head[:24]!r}"
        raise _NotAModel(f"not an .npz archive: {what}")
    try:
        with zipfile.ZipFile(path) as archive:
            entries = {info.filename: info for info in archive.infolist()}
            if "metadata.npy" not in entries:
                found = ", ".join(sorted(entries)[:5]) or "nothing"
                raise _NotAModel(f"an archive without model metadata; it holds {found}")
            missing = [name for name in ARRAYS if name + ".npy" not in entries]
            if missing:
                raise _Corrupt(f"the arrays {', '.join(missing)} are missing")
            return {name: _read_entry(archive, entries[name + ".npy"], name, size) for name in ARRAYS}
    except (_NotAModel, _Corrupt):
        raise
    except _DAMAGE as exc:
        raise _Corrupt(f"truncated or damaged archive ({type(exc).__name__}: {exc})") from None


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, archive_size: int) -> np.ndarray:
    """One ``.npy`` entry; its header must agree with the bytes it holds."""
    # np.savez stores entries uncompressed; a compressed one may not claim more than a generous ratio
    if info.file_size > 1024 * max(archive_size, 1) + (1 << 20):
        raise _Corrupt(f"array {name} claims {info.file_size:,} bytes in a file of {archive_size:,}")
    with archive.open(info) as entry:
        version = np.lib.format.read_magic(entry)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(entry)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(entry)
        else:
            raise _Corrupt(f"array {name} has an unknown .npy version {version}")
        header = entry.tell()
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.itemsize == 0:
            raise _Corrupt(f"array {name} has dtype {dtype}, not a plain number or string type")
        count = math.prod(shape)
        n_bytes = count * dtype.itemsize
        if n_bytes != info.file_size - header:
            raise _Corrupt(
                f"array {name} should hold {n_bytes:,} bytes (shape {shape}, {dtype}) but holds "
                f"{info.file_size - header:,}"
            )
        buffer = bytearray(n_bytes)
        view, done = memoryview(buffer), 0
        while done < n_bytes:
            got = entry.readinto(view[done:])
            if not got:
                raise _Corrupt(f"array {name} is truncated ({done:,} of {n_bytes:,} bytes)")
            done += got
        entry.read(1)  # reach the end of the entry: zipfile checks its CRC there
    array = np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")
    if not dtype.isnative:
        array = array.astype(dtype.newbyteorder("="))
    return np.ascontiguousarray(array)


# ---------------------------------------------------------------- metadata
def _read_metadata(array: np.ndarray) -> dict[str, Any]:
    if array.dtype != np.uint8 or array.ndim != 1:
        raise _Corrupt(f"its metadata is a {array.dtype} array of shape {array.shape}, not UTF-8 bytes")
    try:
        metadata = json.loads(array.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _Corrupt(f"its metadata is not valid JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise _NotAModel(f"its metadata has no format {FORMAT_NAME!r}")
    return metadata


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))


def _check_metadata(path: Path, metadata: dict[str, Any], registry: dict[str, type]) -> tuple[type, dict[str, Any]]:
    """The model class and its parameters, after checking every metadata field."""
    version = metadata.get("format_version")
    if not _is_int(version) or version < 1:
        raise _Corrupt(f"its format_version is {version!r}, not an integer >= 1")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path}: written in model format version {version}, newer than this factorise "
            f"({__version__}) reads (up to {FORMAT_VERSION}); upgrade factorise to load it"
        )
    name = metadata.get("model")
    cls = registry.get(name) if isinstance(name, str) else None
    if cls is None:
        raise _Corrupt(f"unknown model type {name!r} (this factorise knows {', '.join(sorted(registry))})")
    params = metadata.get("params")
    if not isinstance(params, dict):
        raise _Corrupt(f"its params are {type(params).__name__}, not a JSON object")
    unknown = sorted(str(key) for key in params if key not in cls._param_names)
    if unknown:
        raise _Corrupt(f"unknown {cls.__name__} parameter(s) {', '.join(unknown)}")
    for key, value in params.items():
        if not (value is None or isinstance(value, (bool, int, float, str))):
            raise _Corrupt(f"parameter {key} is a {type(value).__name__}, not a number, string or null")
    if not _is_real(metadata.get("global_mean")):
        raise _Corrupt(f"its global_mean is {metadata.get('global_mean')!r}, not a finite number")
    bounds = metadata.get("rating_range")
    if not (isinstance(bounds, list) and len(bounds) == 2 and all(_is_real(b) for b in bounds) and bounds[0] <= bounds[1]):
        raise _Corrupt(f"its rating_range is {bounds!r}, not [low, high] with finite low <= high")
    history = metadata.get("history")
    if not (isinstance(history, list) and all(_is_record(r) for r in history)):
        raise _Corrupt("its history is not a list of {name: number} records")
    n_epochs = metadata.get("n_epochs")
    if not _is_int(n_epochs) or n_epochs < 0:
        raise _Corrupt(f"its n_epochs is {n_epochs!r}, not an integer >= 0")
    if "factorise_version" in metadata and not isinstance(metadata["factorise_version"], str):
        raise _Corrupt(f"its factorise_version is {metadata['factorise_version']!r}, not a string")
    return cls, params


def _is_record(record: object) -> bool:
    return isinstance(record, dict) and all(
        isinstance(k, str) and (v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)))
        for k, v in record.items()
    )


# ------------------------------------------------------------------ arrays
def _check_ids(array: np.ndarray, name: str) -> None:
    if array.ndim != 1 or array.dtype.kind not in "iuU":
        raise _Corrupt(f"{name} is a {array.dtype} array of shape {array.shape}, not 1-D integer or string ids")
    if array.shape[0] > 1 and not bool(np.all(array[1:] > array[:-1])):
        raise _Corrupt(f"{name} are not sorted and unique")


def _check_float(array: np.ndarray, name: str, shape: tuple[int, ...]) -> None:
    if array.dtype not in _FLOATS:
        raise _Corrupt(f"{name} has dtype {array.dtype}, not float32 or float64")
    if array.shape != shape:
        raise _Corrupt(f"{name} has shape {array.shape}, expected {shape}")
    if not bool(np.isfinite(array).all()):
        raise _Corrupt(f"{name} holds {int(np.count_nonzero(~np.isfinite(array)))} NaN or infinite value(s)")


def _check_arrays(arrays: dict[str, np.ndarray], model: Any) -> None:
    """Every array against the others and the model: dtype, shape, finiteness, index ranges."""
    _check_ids(arrays["user_ids"], "user_ids")
    _check_ids(arrays["item_ids"], "item_ids")
    n_users, n_items = arrays["user_ids"].shape[0], arrays["item_ids"].shape[0]
    factors = arrays["user_factors"]
    if factors.ndim != 2:
        raise _Corrupt(f"user_factors has shape {factors.shape}, not 2-D")
    k = factors.shape[1]
    expected_k = model._factor_columns()
    if k != expected_k:
        rank = int(model.rank) if "rank" in model._param_names else 0
        said = f"rank is {expected_k}" if expected_k == rank else f"parameters give {expected_k}"
        raise _Corrupt(f"the factors have {k} columns but the model's {said}")
    _check_float(arrays["user_bias"], "user_bias", (n_users,))
    _check_float(arrays["item_bias"], "item_bias", (n_items,))
    _check_float(factors, "user_factors", (n_users, k))
    _check_float(arrays["item_factors"], "item_factors", (n_items, k))
    dtypes = {arrays[name].dtype for name in ("user_bias", "item_bias", "user_factors", "item_factors")}
    if len(dtypes) > 1:
        raise _Corrupt(f"the biases and factors mix dtypes {sorted(str(d) for d in dtypes)}")
    indptr, rated = arrays["rated_indptr"], arrays["rated_items"]
    if indptr.dtype.kind not in "iu" or indptr.shape != (n_users + 1,):
        raise _Corrupt(f"rated_indptr is a {indptr.dtype} array of shape {indptr.shape}, expected {n_users + 1} integers")
    if rated.dtype.kind not in "iu" or rated.ndim != 1:
        raise _Corrupt(f"rated_items is a {rated.dtype} array of shape {rated.shape}, expected 1-D integers")
    if indptr[0] != 0 or indptr[-1] != rated.shape[0] or bool(np.any(np.diff(indptr.astype(np.int64)) < 0)):
        raise _Corrupt(
            f"rated_indptr must start at 0, never fall, and end at len(rated_items) = {rated.shape[0]}; "
            f"it runs from {int(indptr[0])} to {int(indptr[-1])}"
        )
    if rated.shape[0] and (int(rated.min()) < 0 or int(rated.max()) >= n_items):
        raise _Corrupt(
            f"rated_items holds item indices from {int(rated.min())} to {int(rated.max())}, outside "
            f"[0, {n_items}) (the model has {n_items} items)"
        )
    arrays["rated_indptr"] = indptr.astype(np.int64, copy=False)
    if rated.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        arrays["rated_items"] = rated.astype(np.int64)
    if arrays["user_ids"].dtype.kind == "i" and arrays["user_ids"].dtype != np.int64:
        arrays["user_ids"] = arrays["user_ids"].astype(np.int64)
    if arrays["item_ids"].dtype.kind == "i" and arrays["item_ids"].dtype != np.int64:
        arrays["item_ids"] = arrays["item_ids"].astype(np.int64)
