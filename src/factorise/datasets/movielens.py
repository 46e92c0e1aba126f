"""MovieLens rating data sets (GroupLens Research): fetch once, verify, cache, read.

:func:`load_movielens` returns a :class:`MovieLens` object holding the ratings
(and, for MovieLens 100K, the predefined train/test splits) as
:class:`~factorise.data.Ratings`. The official archive is downloaded once into
a cache directory and checked against a pinned SHA-256 digest; or an existing
local copy is read with ``path=``, without any network access.

Cache directory
---------------
``cache_dir`` if given; otherwise the environment variable ``FACTORISE_DATA``
if set and non-empty; otherwise the platform's user cache directory:
``$XDG_CACHE_HOME/factorise`` (``~/.cache/factorise`` when ``XDG_CACHE_HOME``
is unset) on Linux and other Unix systems, ``~/Library/Caches/factorise`` on
macOS and ``%LOCALAPPDATA%\\factorise\\Cache`` on Windows. It holds the archive
(``ml-100k.zip``) and the files read from it (``ml-100k/u.data``, ...).

Licence
-------
MovieLens data may be used for research under the terms of the README in each
archive (no redistribution, no commercial use without permission, cite
F. M. Harper and J. A. Konstan, "The MovieLens Datasets: History and Context",
ACM TiiS 5(4), 2015). factorise never ships the data; it only fetches it.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from factorise.data import Ratings
from factorise.io import atomic_write

__all__ = ["MovieLens", "load_movielens", "default_cache_dir", "MOVIELENS_SHA256", "MOVIELENS_URLS"]

logger = logging.getLogger(__name__)

MovieLensName = Literal["100k", "1m", "latest-small"]

_BASE_URL = "https://files.grouplens.org/datasets/movielens"

#: Official GroupLens archive of each data set.
MOVIELENS_URLS: Mapping[str, str] = MappingProxyType(
    {
        "100k": f"{_BASE_URL}/ml-100k.zip",
        "1m": f"{_BASE_URL}/ml-1m.zip",
        "latest-small": f"{_BASE_URL}/ml-latest-small.zip",
    }
)

#: SHA-256 of each official archive. These are the digests that TensorFlow
#: Datasets pins in ``tensorflow_datasets/url_checksums/movielens.txt``
#: (sizes 4,924,029 / 5,917,549 / 978,202 bytes), and that several other
#: public projects pin independently. They were not recomputed here. GroupLens
#: publishes MD5s beside the archives (ml-100k 0e33842e24a9c977be4e0107933c0723,
#: ml-1m c4d9eecfca2ab87c1945afe126590906). ``ml-latest-small`` is replaced in
#: place whenever GroupLens regenerates it (the pinned one is dated 2018-09-26:
#: 100,836 ratings); a new upload fails the check until this digest changes.
MOVIELENS_SHA256: Mapping[str, str] = MappingProxyType(
    {
        "100k": "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        "1m": "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
        "latest-small": "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
    }
)

# The separator each data set's rating files use, and the file holding all ratings.
_SEPARATORS = {"100k": "\t", "1m": "::", "latest-small": ","}
_RATINGS_FILE = {"100k": "u.data", "1m": "ratings.dat", "latest-small": "ratings.csv"}
# MovieLens 100K's predefined splits: u1..u5 are a 5-fold cross-validation
# (80,000 / 20,000 each); ua and ub hold out exactly 10 ratings per user.
_SPLITS_100K = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
_README = {"100k": "README", "1m": "README", "latest-small": "README.txt"}

_CHUNK = 1 << 16
_TIMEOUT_S = 60.0


@dataclass(frozen=True, eq=False)
class MovieLens:
    """A MovieLens data set: all its ratings and its predefined splits.

    Attributes
    ----------
    name : {"100k", "1m", "latest-small"}
        Which data set.
    ratings : Ratings
        Every rating (``u.data``, ``ratings.dat`` or ``ratings.csv``).
    splits : Mapping[str, tuple[Ratings, Ratings]]
        Predefined ``(train, test)`` pairs by name: ``"u1"`` .. ``"u5"``,
        ``"ua"``, ``"ub"`` for MovieLens 100K; empty for the others. Each file
        is read on its own, so a train set, its test set and ``ratings`` each
        have their own id maps (index 3 may be a different user in each);
        compare ratings by raw id (``raw_users``, ``raw_items``), as the
        models do when they predict.
    path : pathlib.Path
        The directory the files were read from, or the zip archive given as
        ``path=``.
    """

    name: str
    ratings: Ratings
    splits: Mapping[str, tuple[Ratings, Ratings]]
    path: Path

    def __repr__(self) -> str:
        r = self.ratings
        splits = f", splits={list(self.splits)}" if self.splits else ""
        return (
            f"MovieLens({self.name!r}, {len(r)} ratings, {r.n_users} users, "
            f"{r.n_items} items{splits}, path={str(self.path)!r})"
        )


def default_cache_dir() -> Path:
    """The directory :func:`load_movielens` caches archives in by default.

    ``$FACTORISE_DATA`` if set and non-empty, else the platform's user cache
    directory followed by ``factorise`` (``~/.cache/factorise`` on Linux).

    Returns
    -------
    pathlib.Path
    """
    override = os.environ.get("FACTORISE_DATA")
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        root = Path(base) if base else Path.home() / "AppData" / "Local"
        return root / "factorise" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "factorise"
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return root / "factorise"


def load_movielens(
    name: MovieLensName,
    cache_dir: str | os.PathLike[str] | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
) -> MovieLens:
    """Load a MovieLens data set, downloading the official archive once.

    Without ``path``, the files are looked for in ``<cache_dir>/ml-<name>/``.
    When they are missing, the archive ``<cache_dir>/ml-<name>.zip`` is
    downloaded (unless already there), checked against its SHA-256 digest,
    and the rating files are extracted from it. The download goes to a
    temporary file that is renamed into place only once its digest matches,
    so the cache never holds a partial or unverified archive.

    Parameters
    ----------
    name : {"100k", "1m", "latest-small"}
        MovieLens 100K (943 users, 1,682 films, 100,000 ratings 1..5, with
        predefined splits), 1M (6,040 users, 1,000,209 ratings) or the small
        "latest" set (610 users, 100,836 half-star ratings 0.5..5).
    cache_dir : str or os.PathLike, optional
        Where archives are cached; see :func:`default_cache_dir`. Created if
        missing. Not used with ``path``.
    path : str or os.PathLike, optional
        An existing local copy to read instead of downloading: the extracted
        directory (``.../ml-100k`` holding ``u.data``, or its parent), or the
        zip archive itself (read through a temporary directory). Local copies
        are not checked against the digest. In a directory, the 100K splits
        whose two files are both present are read; the others are left out.
    url : str, optional
        Where to download the archive from instead of GroupLens (a mirror).
        It must serve the same archive, or pass its digest as ``sha256``.
    sha256 : str, optional
        Expected SHA-256 of the archive (64 hex digits); defaults to the
        pinned digest of the official archive, :data:`MOVIELENS_SHA256`.

    Returns
    -------
    MovieLens
        ``ratings``, ``splits`` (100K: ``"u1"`` .. ``"u5"``, ``"ua"``,
        ``"ub"`` as ``(train, test)``; every file is read separately and has
        its own id maps), ``path``.

    Raises
    ------
    TypeError, ValueError
        Bad arguments, or a downloaded archive whose digest is not the
        expected one (the message gives both; nothing is kept).
    FileNotFoundError
        ``path`` does not exist or lacks the rating file.
    PermissionError, NotADirectoryError, OSError
        The cache directory cannot be created or written to (the message
        names it).
    ConnectionError
        The download failed (offline, DNS, HTTP error); the message says how
        to download the archive yourself and pass ``path=``.

    Examples
    --------
    >>> ml = load_movielens("100k")                      # doctest: +SKIP
    >>> train, test = ml.splits["u1"]                    # doctest: +SKIP
    >>> load_movielens("100k", path="data/ml-100k")      # doctest: +SKIP
    """
    name = _check_name(name)
    if path is not None and url is not None:
        raise ValueError(f"pass either `path` (a local copy) or `url` (a download), not both; got path={path!r}")
    if url is not None and not isinstance(url, str):
        raise TypeError(f"`url` must be a string; got {url!r} of type {type(url).__name__}")
    expected = _check_sha256(sha256) if sha256 is not None else MOVIELENS_SHA256[name]
    if path is not None:
        return _load_local(name, _as_path(path, "path"))
    cache = default_cache_dir() if cache_dir is None else _as_path(cache_dir, "cache_dir")
    return _load_cached(name, cache, url or MOVIELENS_URLS[name], expected)


# -- arguments -----------------------------------------------------------------


def _check_name(name: object) -> str:
    rule = f"`name` must be one of {sorted(MOVIELENS_URLS)}"
    if not isinstance(name, str):
        raise TypeError(f"{rule}; got {name!r} of type {type(name).__name__}")
    if name not in MOVIELENS_URLS:
        raise ValueError(f"{rule}; got {name!r}")
    return name


def _check_sha256(digest: object) -> str:
    rule = "`sha256` must be a SHA-256 digest, 64 hexadecimal digits"
    if not isinstance(digest, str):
        raise TypeError(f"{rule}; got {digest!r} of type {type(digest).__name__}")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
        raise ValueError(f"{rule}; got {digest!r}")
    return digest.lower()


def _as_path(value: object, parameter: str) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"`{parameter}` must be a path (str or os.PathLike); got {type(value).__name__}")
    return Path(value).expanduser()


def _wanted_files(name: str) -> list[str]:
    """Rating files of a data set: the full file, then each split's pair."""
    files = [_RATINGS_FILE[name]]
    if name == "100k":
        for split in _SPLITS_100K:
            files += [f"{split}.base", f"{split}.test"]
    return files


# -- reading -------------------------------------------------------------------


def _read(
    name: str, directory: Path, *, source_prefix: str | None = None
) -> tuple[Ratings, dict[str, tuple[Ratings, Ratings]]]:
    """Read the rating file and the splits present in ``directory``."""
    from factorise.data import read_ratings

    sep = _SEPARATORS[name]

    def read(file: str) -> Ratings:
        logger.debug("reading %s", directory / file)
        ratings = read_ratings(directory / file, sep=sep)
        if source_prefix is not None:
            ratings = replace(ratings, source=f"{source_prefix}:{file}")
        return ratings

    ratings = read(_RATINGS_FILE[name])
    splits: dict[str, tuple[Ratings, Ratings]] = {}
    if name == "100k":
        for split in _SPLITS_100K:
            base, test = f"{split}.base", f"{split}.test"
            if (directory / base).is_file() and (directory / test).is_file():
                splits[split] = (read(base), read(test))
            else:
                logger.info("split %s left out: %s or %s is missing in %s", split, base, test, directory)
    return ratings, splits


def _find_data_dir(name: str, path: Path) -> Path | None:
    """``path`` or ``path/ml-<name>``: whichever holds the rating file."""
    for candidate in (path, path / f"ml-{name}"):
        if (candidate / _RATINGS_FILE[name]).is_file():
            return candidate
    return None


def _load_local(name: str, path: Path) -> MovieLens:
    if path.is_dir():
        directory = _find_data_dir(name, path)
        if directory is None:
            raise FileNotFoundError(
                f"`path` {str(path)!r} holds no MovieLens {name} ratings: expected "
                f"{_RATINGS_FILE[name]} in it or in its ml-{name} folder"
            )
        logger.info("reading MovieLens %s from %s", name, directory)
        ratings, splits = _read(name, directory)
        return MovieLens(name, ratings, MappingProxyType(splits), directory)
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise ValueError(
                f"`path` {str(path)!r} is neither a directory nor a zip archive; "
                f"pass the ml-{name} folder or the ml-{name}.zip archive"
            )
        logger.info("reading MovieLens %s from the archive %s", name, path)
        with tempfile.TemporaryDirectory(prefix="factorise-movielens-") as tmp:
            files = _wanted_files(name)
            _extract(path, Path(tmp), required=files[:1], optional=files[1:])
            ratings, splits = _read(name, Path(tmp), source_prefix=str(path))
        return MovieLens(name, ratings, MappingProxyType(splits), path)
    raise FileNotFoundError(f"`path` {str(path)!r} does not exist")


# -- cache, download, extraction -----------------------------------------------


def _load_cached(name: str, cache: Path, url: str, expected: str) -> MovieLens:
    directory = cache / f"ml-{name}"
    files = _wanted_files(name)
    missing = [f for f in files if not (directory / f).is_file()]
    if missing:
        archive = cache / f"ml-{name}.zip"
        _ensure_writable(cache)
        if archive.is_file():
            actual = _sha256_of(archive)
            if actual != expected:
                raise ValueError(
                    f"the cached archive {archive} has SHA-256 {actual}, expected {expected}; "
                    "delete it to download it again"
                )
            logger.info("using the cached archive %s", archive)
        else:
            _download(url, archive, expected)
        directory.mkdir(exist_ok=True)
        _extract(archive, directory, required=missing, optional=[_README[name]])
    else:
        logger.info("using the cached MovieLens %s in %s", name, directory)
    ratings, splits = _read(name, directory)
    return MovieLens(name, ratings, MappingProxyType(splits), directory)


def _ensure_writable(cache: Path) -> None:
    """Create ``cache`` if needed; a clear error if it cannot hold files."""
    advice = "pass another cache_dir=, set FACTORISE_DATA, or read a local copy with path="
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise type(exc)(f"cannot create the cache directory {cache}: {exc.strerror or exc}; {advice}") from exc
    if not os.access(cache, os.W_OK | os.X_OK):
        raise PermissionError(f"the cache directory {cache} is not writable; {advice}")


def _sha256_of(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, archive: Path, expected: str) -> None:
    """Download ``url`` to ``archive`` through a temporary file, verifying its digest."""
    advice = "download the archive yourself and pass path=<the .zip or its extracted folder> to load_movielens"
    logger.info("downloading %s to %s", url, archive)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{archive.name}.", suffix=".part", dir=archive.parent)
    except OSError as exc:
        raise type(exc)(f"cannot write to the cache directory {archive.parent}: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        received = 0
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:  # noqa: S310 (scheme is the caller's)
                    length = response.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                    next_report = 0.1
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        if total and received / total >= next_report:
                            logger.info("%s: %d of %d bytes", archive.name, received, total)
                            next_report += 0.1
                    if total is not None and received != total:
                        raise ConnectionError(f"the connection closed after {received} of {total} bytes")
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise ConnectionError(f"could not download {url}: {reason}; {advice}") from exc
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != expected:
            raise ValueError(
                f"the archive downloaded from {url} has SHA-256 {actual}, expected {expected} "
                f"({received} bytes); it was not kept. If the server publishes a new archive, pass sha256=; "
                f"otherwise try again later, or {advice}"
            )
        os.replace(tmp, archive)
        logger.info("downloaded %s (%d bytes, SHA-256 verified)", archive, received)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _member_index(zf: zipfile.ZipFile) -> dict[str, str]:
    """Archive members by base name (the archives hold one top-level folder)."""
    index: dict[str, str] = {}
    for member in zf.namelist():
        if member.endswith("/"):
            continue
        index.setdefault(member.rsplit("/", 1)[-1], member)
    return index


def _extract(archive: Path, directory: Path, *, required: list[str], optional: list[str]) -> None:
    """Copy the named files out of ``archive`` into ``directory``, each atomically.

    The archive must hold every ``required`` file; ``optional`` ones are copied
    when present. Members are looked up by base name and written under that
    name only, so no member path can escape ``directory``.
    """
    with zipfile.ZipFile(archive) as zf:
        members = _member_index(zf)
        absent = [f for f in required if f not in members]
        if absent:
            lacks = ", ".join(absent)
            raise ValueError(f"the archive {archive} is not the MovieLens archive expected: it lacks {lacks}")
        for file in required + [f for f in optional if f in members]:
            logger.debug("extracting %s from %s", members[file], archive)
            with zf.open(members[file]) as src, atomic_write(directory / file, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
