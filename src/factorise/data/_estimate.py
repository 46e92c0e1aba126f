"""How many ratings a file holds, known before reading it (for memory checks)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["estimate_n_ratings"]

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
