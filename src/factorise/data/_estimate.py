"""How many ratings a file holds, and how much memory reading and holding them takes.

Known before reading (for ``--max-memory``): :func:`estimate_n_ratings`
counts (Parquet) or estimates (text) the ratings of a file;
:func:`estimate_read_memory` bounds the peak resident set of a process that
reads that many; :func:`held_ratings_memory` is what a process holding them
(after reading) takes, the part of every model's
:meth:`~factorise.models.RatingModel.estimate_fit_memory` that is not the
fit's own. The constants were calibrated by ``benchmarks/memory.py``, which
measures the peak resident set of ``factorise fit`` beside these estimates
(the rule: estimate >= measured peak, with a margin).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "HELD_BYTES_PER_ID",
    "HELD_BYTES_PER_RATING",
    "READ_BUFFER_BYTES",
    "READ_BYTES_PER_RATING",
    "RUNTIME_BYTES",
    "estimate_n_ratings",
    "estimate_read_memory",
    "held_ratings_memory",
]

_MIB = 1 << 20

#: Resident set of a ``factorise`` process before any data: the interpreter, NumPy, SciPy, numba
#: and its loaded kernels, pyarrow and the command line (measured: 151 MiB after the imports,
#: about 250 MiB once a small file is read and a kernel runs; ``factorise fit`` holds some 20 MiB
#: more than a library fit of the same data), with a margin.
RUNTIME_BYTES = 288 * _MIB
#: What reading keeps regardless of the file's size: pyarrow's block buffers and the memory the
#: allocator holds on to after them.
READ_BUFFER_BYTES = 64 * _MIB
#: Peak bytes per rating while reading: the result (int32 user, int32 item, float32 rating and an
#: int64 timestamp when the file has one: 12 or 20 bytes), the id maps and duplicate detection
#: (measured: 13 bytes a rating at 100M ratings without timestamps).
READ_BYTES_PER_RATING = 24
#: Bytes per rating held after reading (the ratings, a timestamp, memory the reader left to the
#: allocator), counted in every fit estimate.
HELD_BYTES_PER_RATING = 20
#: Bytes per distinct user or item held after reading (raw id, id map, lookup tables).
HELD_BYTES_PER_ID = 64

_SAMPLE = 1 << 20
_COMPRESSED = {".gz": 4.0, ".bz2": 5.0, ".zst": 4.0}  # typical text compression ratios


def estimate_n_ratings(path: str | os.PathLike[str]) -> tuple[int, bool]:
    """The number of ratings in ``path``: exact for Parquet, estimated for text.

    Text files are estimated from the size of the file and the mean length of
    the lines in its first megabyte (compressed files with a typical
    compression ratio).

    Parameters
    ----------
    path : str or os.PathLike
        A ratings file.

    Returns
    -------
    n_ratings : int
    exact : bool
        Whether ``n_ratings`` is exact.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such file")
    size = file.stat().st_size
    with open(file, "rb") as handle:
        head = handle.read(4)
    if head == b"PAR1":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(file).metadata.num_rows), True
    suffix = file.suffix.lower()
    if suffix in _COMPRESSED:
        import pyarrow as pa

        with pa.input_stream(str(file), compression="detect") as stream:
            sample = stream.read(_SAMPLE)
        lines = max(1, sample.count(b"\n"))
        return int(size * _COMPRESSED[suffix] / (len(sample) / lines)), False
    with open(file, "rb") as handle:
        sample = handle.read(_SAMPLE)
    lines = sample.count(b"\n") + (0 if sample.endswith(b"\n") or not sample else 1)
    if len(sample) == size:
        return lines, False  # the whole file: line count (a header would make it one too many)
    return int(size / (len(sample) / max(1, lines))), False


def _check_count(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"`{name}` must be an integer >= 0; got {value!r} of type {type(value).__name__}")
    if value < 0:
        raise ValueError(f"`{name}` must be an integer >= 0; got {value}")
    return value


def estimate_read_memory(n_ratings: int) -> int:
    """An upper bound on the peak resident set of a process that reads ``n_ratings`` ratings.

    ``RUNTIME_BYTES + READ_BUFFER_BYTES + READ_BYTES_PER_RATING * n_ratings``:
    the runtime, the reader's fixed buffers and, per rating, the result, the
    id maps and duplicate detection. The number of users and items is not
    known before reading; the per-rating figure covers one distinct id every
    few ratings. ``benchmarks/memory.py`` checks the bound against measured
    peaks.

    Parameters
    ----------
    n_ratings : int
        Ratings in the file (e.g. from :func:`estimate_n_ratings`).

    Returns
    -------
    int
        Bytes.
    """
    n = _check_count(n_ratings, "n_ratings")
    return RUNTIME_BYTES + READ_BUFFER_BYTES + READ_BYTES_PER_RATING * n


def held_ratings_memory(n_ratings: int, n_users: int, n_items: int) -> int:
    """Resident set of a process holding ``n_ratings`` ratings after reading them, before any fit.

    ``RUNTIME_BYTES + HELD_BYTES_PER_RATING * n_ratings + HELD_BYTES_PER_ID *
    (n_users + n_items)``.

    Parameters
    ----------
    n_ratings, n_users, n_items : int
        Ratings, distinct users, distinct items.

    Returns
    -------
    int
        Bytes.
    """
    n = _check_count(n_ratings, "n_ratings")
    ids = _check_count(n_users, "n_users") + _check_count(n_items, "n_items")
    return RUNTIME_BYTES + HELD_BYTES_PER_RATING * n + HELD_BYTES_PER_ID * ids
