"""Read ratings from files and in-memory data into :class:`Ratings`.

:func:`read_ratings` reads delimited text (CSV, TSV, whitespace-separated,
MovieLens ``::``) and Parquet with pyarrow, in blocks, so a large file is never
held as text and as a table at once. The layout (separator, header line,
which column holds what) is detected from the file name and its first lines;
every detected choice can be overridden.

:func:`as_ratings` turns whatever a model's ``fit`` receives -- a file path, a
pandas DataFrame, a pyarrow Table, a list of ``(user, item, rating)`` records,
a scipy.sparse matrix or torch sparse tensor, a dense array with NaN for
missing, or a tuple of arrays -- into :class:`Ratings`. Nothing is guessed: a
layout that could be read two ways (a headerless file of many columns, a list
of short numeric rows) is an error that says how to choose.

Error messages name the file and, for a problem on one line, the 1-based
line number (``ratings.csv, line 17: rating 'x' is not a number``).

The work is done in rooms of their own, each readable alone:

* :mod:`factorise.data._options` -- checks of the reader options;
* :mod:`factorise.data._columns` -- header names of each role, and which
  column holds what (the ``columns`` option);
* :mod:`factorise.data._sniff` -- format, separator and header detection
  for text;
* :mod:`factorise.data._text` -- text streamed in blocks through pyarrow;
* :mod:`factorise.data._columnar` -- Parquet, pyarrow Tables, DataFrames;
* :mod:`factorise.data._memory` -- records, sparse and dense matrices,
  tuples, tensors;
* :mod:`factorise.data._collect` -- batches checked and collected into
  :class:`Ratings` or pairs.
"""

from __future__ import annotations

import logging
import numbers
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from factorise.data._collect import _PAIRS, _R, _RATINGS, _Target
from factorise.data._columnar import _from_frame, _from_table, _read_parquet
from factorise.data._columns import _check_columns
from factorise._arrays import is_torch_tensor
from factorise.data._memory import (
    _check_layout,
    _from_list_like,
    _from_sparse,
    _from_torch_sparse,
    _from_tuple,
    _no_layout,
    _tuple_of_records,
    _type_error,
)
from factorise.data._options import _check_sep, _no_options, spell
from factorise.data._ratings import Ratings
from factorise.data._sniff import _detect_format
from factorise.data._text import _read_text

__all__ = ["as_ratings", "read_pairs", "read_ratings"]

logger = logging.getLogger(__name__)

#: Default bytes of text per block (pyarrow ``block_size``).
DEFAULT_CHUNK_SIZE = 1 << 22


# ---------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------


def read_ratings(
    path: str | os.PathLike[str],
    *,
    sep: str | None = None,
    header: bool | None = None,
    columns: Mapping[str, str | int] | Sequence[str | int] | None = None,
    format: str | None = None,  # noqa: A002 - the natural name for the option
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Ratings:
    """Read ``user, item, rating[, timestamp]`` records from a file.

    Text files are delimited by a comma, a tab, ``;``, ``|``, ``::``
    (MovieLens 1M ``ratings.dat``) or runs of spaces and tabs; files named
    ``*.gz``, ``*.bz2`` or ``*.zst`` are decompressed on the fly. Parquet is
    recognised by its suffix (``.parquet``, ``.pq``) or its magic bytes. The
    separator, whether the first line is a header, and which columns hold the
    user id, item id, rating and timestamp are detected from the first lines
    (a header such as ``userId,movieId,rating,timestamp``, ``user_id,item_id,
    rating`` or ``user,item,rating``). Other columns are ignored.

    The layout is never guessed. Without a header line (or with one that
    names none of the columns) the columns are taken in the order user,
    item, rating only where that is the one reading: three columns, or four
    whose fourth holds integers (taken as the timestamp) or is named as the
    timestamp. A file with more columns and no header naming them, or a
    headerless fourth column that is not an integer timestamp, is a
    ValueError that lists the columns found (the first row's values, with
    their 0-based positions) and asks for ``columns``.

    Blank lines, and comment lines (whose first non-blank character is
    ``#``), are skipped wherever they are; line numbers in messages count
    them. A ``#`` later in a line is data.

    Ids that are all integers are kept as int64 (so ``"007"`` and ``"7"`` are
    the same id); otherwise every id of that column is a string. Duplicate
    (user, item) pairs keep the last rating, with a
    :class:`~factorise.data.DuplicateRatingsWarning` giving the count.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    sep : str, optional
        Field separator of a text file: one character, a character repeated
        (``"::"``), or ``"whitespace"`` (runs of spaces and tabs; also spelled
        ``r"\\s+"``). Detected when not given.
    header : bool, optional
        Whether the first line of a text file names the columns. Detected
        when not given.
    columns : mapping or sequence, optional
        Where the fields are: a mapping from ``"user"``, ``"item"``,
        ``"rating"`` and optionally ``"timestamp"`` to a column name (from the
        header or Parquet schema) or a 0-based position, or a sequence of 3 or
        4 names/positions in that order. Without ``"timestamp"`` no timestamps
        are read. Detected when not given; given, it always wins.
    format : {"csv", "parquet"}, optional
        ``"csv"`` for any delimited text, ``"parquet"`` for Parquet. Detected
        when not given.
    chunk_size : int, optional
        Bytes of text parsed per block (Parquet: row groups of more than
        2M rows are read in batches of about ``chunk_size // 32`` rows). A
        line must fit in one block.

    Returns
    -------
    Ratings
        With ``source`` set to ``str(path)``.

    Raises
    ------
    TypeError
        If an option has the wrong type.
    ValueError
        If the file is missing, empty, of an unknown format, has fewer than
        three columns, has an ambiguous layout (see above) and no ``columns``,
        lacks a requested column, has a line with the wrong number of fields,
        or a missing, non-numeric or non-finite rating. The message names the
        file and, for a bad line, its 1-based number. Options are named as
        the caller spells them (the keyword here, the flag in the CLI).

    Notes
    -----
    Line numbers count physical lines; a quoted field spanning several lines
    makes later line numbers approximate.
    """
    return _read_file(path, sep, header, columns, format, chunk_size, _RATINGS)


def read_pairs(
    path: str | os.PathLike[str],
    *,
    sep: str | None = None,
    header: bool | None = None,
    columns: Mapping[str, str | int] | Sequence[str | int] | None = None,
    format: str | None = None,  # noqa: A002 - the natural name for the option
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(user, item)`` pairs -- the ids to predict for -- from a file.

    Accepts every file :func:`read_ratings` reads, detected the same way,
    and also files with only two columns, user id and item id, with or
    without a header line (``user,item``, ``userId\\tmovieId``, ...). Rating,
    timestamp and other columns are ignored: a missing or non-numeric rating
    is not an error. Every line gives one pair, in file order; duplicate
    pairs are kept. Blank lines and comment lines (first non-blank
    character ``#``) are skipped, as in :func:`read_ratings`.

    Ids that are all integers are int64 (so ``"007"`` and ``"7"`` are the
    same id); otherwise every id of that column is a string, as in
    :func:`read_ratings`.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    sep : str, optional
        Field separator of a text file, as in :func:`read_ratings`. Detected
        when not given.
    header : bool, optional
        Whether the first line of a text file names the columns. Detected
        when not given.
    columns : mapping or sequence, optional
        Where the ids are: a mapping from ``"user"`` and ``"item"`` to a
        column name or 0-based position, or a sequence of 2 to 4
        names/positions in the order user, item, rating, timestamp. A
        ``"rating"`` or ``"timestamp"`` entry is accepted (so the options of
        :func:`read_ratings` can be reused); its column must exist but is
        not read. Detected when not given: columns named as user and item
        in a header, else the first two -- of at most four columns when
        there is no header line, of at most three when the header names none
        of them; wider files are ambiguous (a ValueError listing the columns
        found).
    format : {"csv", "parquet"}, optional
        As in :func:`read_ratings`; detected when not given.
    chunk_size : int, optional
        As in :func:`read_ratings`: bytes of text parsed per block.

    Returns
    -------
    users, items : numpy.ndarray
        Raw ids, one per line, in file order: int64, or unicode strings.

    Raises
    ------
    TypeError
        If an option has the wrong type.
    ValueError
        If the file is missing, empty, of an unknown format, has fewer than
        two columns, has an ambiguous layout and no ``columns``, lacks a
        requested column, has a header that names other columns (rating,
        timestamp) but no user or item column, or has a
        line with the wrong number of fields or a missing id. The message
        names the file and, for a bad line, its 1-based number.

    See Also
    --------
    read_ratings : Read ``user, item, rating[, timestamp]`` records.
    """
    return _read_file(path, sep, header, columns, format, chunk_size, _PAIRS)


def _read_file(
    path: str | os.PathLike[str],
    sep: str | None,
    header: bool | None,
    columns: Mapping[str, str | int] | Sequence[str | int] | None,
    format: str | None,  # noqa: A002 - as in the public functions
    chunk_size: int,
    target: _Target[_R],
) -> _R:
    """Check the options of :func:`read_ratings` / :func:`read_pairs` and read ``target`` from the file."""
    source = str(path)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or os.PathLike; got {path!r} of type {type(path).__name__}")
    sep = _check_sep(sep)
    if header is not None and not isinstance(header, (bool, np.bool_)):
        raise TypeError(
            f"{spell('header')} must be True, False or None; got {header!r} of type {type(header).__name__}"
        )
    request = _check_columns(columns, target)
    if format is not None and format not in ("csv", "parquet"):
        raise ValueError(f"{spell('format')} must be 'csv', 'parquet' or None; got {format!r}")
    if not isinstance(chunk_size, numbers.Integral) or isinstance(chunk_size, (bool, np.bool_)):
        raise TypeError(
            f"{spell('chunk_size')} must be an integer >= 1; got {chunk_size!r} of type {type(chunk_size).__name__}"
        )
    if chunk_size < 1:
        raise ValueError(f"{spell('chunk_size')} must be an integer >= 1; got {chunk_size}")
    chunk_size = int(chunk_size)

    file = Path(path)
    if not file.exists():
        raise ValueError(f"{source}: no such file")
    if not file.is_file():
        raise ValueError(f"{source}: not a regular file")
    if file.stat().st_size == 0:
        raise ValueError(f"{source}: the file is empty")

    if format is None:
        format = _detect_format(file, source)
    if format == "parquet":
        if sep is not None or header is not None:
            raise ValueError(f"{source}: {spell('sep')} and {spell('header')} apply to text files, not Parquet")
        return _read_parquet(file, source, request, chunk_size, target)
    return _read_text(file, source, sep, header, request, chunk_size, target)


def as_ratings(data: Any, *, layout: str | None = None, **kwargs: Any) -> Ratings:
    """Turn ratings in any accepted form into :class:`Ratings`.

    Accepted:

    * a :class:`Ratings` -- returned as is;
    * a ``str`` or ``os.PathLike`` -- read with :func:`read_ratings`
      (``kwargs`` are passed on);
    * a pandas DataFrame or a pyarrow Table -- columns found by name as in a
      file header (``userId``, ``user_id``, ``user``, ...) or else, by the
      rule of :func:`read_ratings`, the first three (and a fourth integer
      column as timestamp) where that is no guess; an ambiguous layout is a
      ValueError. Column labels that are just their positions (a DataFrame
      built from a list) count as no header. ``columns=`` as in
      :func:`read_ratings` overrides;
    * records: a list (or any sequence or iterator) of ``(user, item,
      rating)`` or ``(user, item, rating, timestamp)`` tuples, as Surprise
      and ``DataFrame.itertuples`` give them -- ``[(10, 20, 4.0), (11, 21,
      2.0)]`` is two ratings. Rows that are lists are records too when one
      holds a string (an id); a list of numeric lists of length 3 or 4 could
      be records or a small dense matrix and is a ValueError unless
      ``layout`` says which;
    * a scipy.sparse matrix, or a torch sparse tensor (COO, CSR or CSC) --
      row index = user id, column index = item id, every *stored* entry is
      a rating. Explicitly stored zeros are ratings of 0; entries that are
      not stored are missing. Duplicate stored entries (a COO matrix or
      tensor that is not coalesced, a non-canonical CSR matrix) are not
      summed: the last in stored order is kept, with a
      :class:`~factorise.data.DuplicateRatingsWarning` giving the count;
    * a dense 2-D NumPy array or torch tensor (or nested lists of numbers
      whose rows are not of length 3 or 4, or ``layout="dense"``) -- rows
      are users, columns are items, NaN marks a missing rating, ids are the
      row and column indices;
    * a tuple ``(users, items, ratings)`` or ``(users, items, ratings,
      timestamps)`` of equal-length arrays of raw ids and values, or scipy's
      ``(ratings, (users, items))``. A tuple is never read as a dense matrix;
      a tuple of record tuples is records, except three or four records of
      three or four fields, which could be columns: say ``layout="records"``
      or give the columns as lists or arrays.

    Raw ids keep their values exactly: integers beyond int64 (unsigned
    64-bit ids >= 2**63, Python ints of any size) make every id of their
    column a decimal string, as in a file; a model fitted on them predicts
    for the same ids, given as ints or strings.

    For a matrix the id maps hold every row and column index, including
    users and items with no rating.

    Parameters
    ----------
    data : object
        The ratings.
    layout : {None, "records", "dense"}, optional
        How to read a list, a tuple of tuples or a 2-D array: ``"records"``
        (one rating per row: user, item, rating[, timestamp]) or
        ``"dense"`` (a matrix, NaN for missing). By default a NumPy array or
        a dense tensor is dense and a list decides by its rows (see above).
        Not accepted for other kinds of ``data``.
    **kwargs
        Options of :func:`read_ratings` for a path; only ``columns`` for a
        DataFrame or Table; none otherwise.

    Returns
    -------
    Ratings

    Raises
    ------
    TypeError
        If ``data`` is of none of the accepted kinds, an option does not
        apply to it, or a tensor's values cannot be read (a tensor on the
        ``meta`` device).
    ValueError
        If the ratings are empty, hold a missing or non-finite rating, or a
        list could be records or a matrix and ``layout`` is not given.

    Examples
    --------
    >>> as_ratings([(10, 20, 4.0), (11, 21, 2.0)])
    Ratings(2 ratings, 2 users, 2 items from records)
    >>> as_ratings([[4.0, float("nan"), 1.0], [2.0, 3.0, float("nan")]], layout="dense")
    Ratings(4 ratings, 2 users, 3 items from dense matrix)
    """
    layout = _check_layout(layout)
    if isinstance(data, Ratings):
        _no_options(kwargs, "a Ratings object")
        _no_layout(layout, "a Ratings object")
        return data
    if isinstance(data, (str, os.PathLike)):
        _no_layout(layout, "a file")
        return read_ratings(data, **kwargs)
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(data, pandas.DataFrame):
        _no_layout(layout, "a DataFrame")
        return _from_frame(data, kwargs)
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        _no_layout(layout, "a pyarrow Table")
        return _from_table(data, kwargs)
    sparse = sys.modules.get("scipy.sparse")
    if sparse is not None and sparse.issparse(data):
        _no_options(kwargs, "a sparse matrix")
        _no_layout(layout, "a sparse matrix")
        return _from_sparse(data)
    if is_torch_tensor(data) and data.layout != sys.modules["torch"].strided:
        _no_options(kwargs, "a sparse tensor")
        _no_layout(layout, "a sparse tensor")
        return _from_torch_sparse(data)
    if isinstance(data, tuple):
        _no_options(kwargs, "a tuple of arrays")
        if layout is not None or _tuple_of_records(data):
            return _from_list_like(data, layout)
        return _from_tuple(data)
    if isinstance(data, (bytes, bytearray, Mapping)) or isinstance(data, (numbers.Number, np.generic)):
        raise _type_error(data)
    _no_options(kwargs, "a list or a dense matrix")
    return _from_list_like(data, layout)
