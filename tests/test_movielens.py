"""load_movielens: download once, verify, cache; local copies; clear errors. No network.

Downloads are served by an ``http.server`` on 127.0.0.1 from a small archive
with the MovieLens 100K layout that the tests build; the real MovieLens 100K in
../shared/data is read through ``path=`` when present.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import socket
import sys
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA_DIR, IN_CI

from factorise.data import Ratings
from factorise.datasets import MOVIELENS_SHA256, MovieLens, default_cache_dir, load_movielens

# -- a fake MovieLens 100K archive --------------------------------------------------------------


SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")


@dataclass
class FakeArchive:
    """A small archive in the ml-100k layout and the truths it was built from."""

    data: bytes
    sha256: str
    rows: list[tuple[int, int, int, int]]  # every rating: user, item, rating, time
    splits: dict[str, tuple[list, list]] = field(default_factory=dict)


def _lines(rows: list[tuple[int, int, int, int]], sep: str = "\t") -> str:
    return "".join(sep.join(str(v) for v in row) + "\n" for row in rows)


def _build_fake_100k() -> FakeArchive:
    rng = np.random.default_rng(7)
    n_users, n_items, n = 6, 10, 42
    cells = rng.choice(n_users * n_items, size=n, replace=False)
    rows = [
        (int(c // n_items) + 1, int(c % n_items) + 1, int(rng.integers(1, 6)), 880000000 + int(k))
        for k, c in enumerate(cells)
    ]
    splits: dict[str, tuple[list, list]] = {}
    for fold in range(5):
        test = [r for k, r in enumerate(rows) if k % 5 == fold]
        base = [r for k, r in enumerate(rows) if k % 5 != fold]
        splits[f"u{fold + 1}"] = (base, test)
    for split, pick in (("ua", 0), ("ub", -1)):
        held = {u: [r for r in rows if r[0] == u][pick] for u in {r[0] for r in rows}}
        test = sorted(held.values())
        splits[split] = ([r for r in rows if r not in test], test)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("ml-100k/", "")
        zf.writestr("ml-100k/README", "fake MovieLens 100K for tests\n")
        zf.writestr("ml-100k/u.data", _lines(rows))
        zf.writestr("ml-100k/u.item", "1|Film|01-Jan-1995||\n")
        for split, (base, test) in splits.items():
            zf.writestr(f"ml-100k/{split}.base", _lines(base))
            zf.writestr(f"ml-100k/{split}.test", _lines(test))
    data = buffer.getvalue()
    return FakeArchive(data, hashlib.sha256(data).hexdigest(), rows, splits)


@pytest.fixture(scope="module")
def fake() -> FakeArchive:
    return _build_fake_100k()


@pytest.fixture
def fake_zip(tmp_path: Path, fake: FakeArchive) -> Path:
    path = tmp_path / "local" / "ml-100k.zip"
    path.parent.mkdir()
    path.write_bytes(fake.data)
    return path


def _triples(ratings: Ratings) -> Counter:
    """The ratings as a multiset of (raw user, raw item, value): independent of id maps."""
    return Counter(zip(ratings.raw_users.tolist(), ratings.raw_items.tolist(), ratings.values.tolist(), strict=True))


def _expected(rows: list[tuple[int, int, int, int]]) -> Counter:
    return Counter((u, i, float(r)) for u, i, r, _ in rows)


def _check_matches(ml: MovieLens, fake: FakeArchive) -> None:
    assert ml.name == "100k"
    assert _triples(ml.ratings) == _expected(fake.rows)
    assert set(ml.splits) == set(SPLITS)
    for split, (base, test) in fake.splits.items():
        train_r, test_r = ml.splits[split]
        assert _triples(train_r) == _expected(base), split
        assert _triples(test_r) == _expected(test), split


# -- a local HTTP server ------------------------------------------------------------------------


class Server:
    """Serves fixed bytes per path on 127.0.0.1 and records the paths requested."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.truncate:
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                else:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server(fake: FakeArchive) -> Iterator[Server]:
    s = Server()
    s.files["/ml-100k.zip"] = fake.data
    s.thread.start()
    try:
        yield s
    finally:
        s.httpd.shutdown()
        s.httpd.server_close()
        s.thread.join()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("load_movielens must not open a connection here")

    monkeypatch.setattr("urllib.request.urlopen", refuse)


# -- downloading and caching ----------------------------------------------------------------------


def test_first_call_downloads_and_verifies_later_calls_use_the_cache(
    tmp_path: Path, server: Server, fake: FakeArchive, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache" / "nested"  # created on demand
    url = server.url("/ml-100k.zip")
    with caplog.at_level(logging.INFO, logger="factorise.datasets.movielens"):
        first = load_movielens("100k", cache, url=url, sha256=fake.sha256)
    assert server.requests == ["/ml-100k.zip"]
    assert any("downloading" in r.getMessage() and url in r.getMessage() for r in caplog.records)
    _check_matches(first, fake)
    assert first.path == cache / "ml-100k"
    archive = cache / "ml-100k.zip"
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == fake.sha256
    assert (cache / "ml-100k" / "README").is_file()
    assert not (cache / "ml-100k" / "u.item").exists()  # only what is needed is extracted
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary files left

    second = load_movielens("100k", cache, url=url, sha256=fake.sha256)
    assert server.requests == ["/ml-100k.zip"]  # one request in all
    _check_matches(second, fake)


def test_lost_extracted_files_come_back_from_the_cached_archive(
    tmp_path: Path, server: Server, fake: FakeArchive
) -> None:
    url = server.url("/ml-100k.zip")
    load_movielens("100k", tmp_path, url=url, sha256=fake.sha256)
    (tmp_path / "ml-100k" / "u3.test").unlink()
    (tmp_path / "ml-100k" / "u.data").unlink()
    again = load_movielens("100k", tmp_path, url=url, sha256=fake.sha256)
    assert len(server.requests) == 1
    _check_matches(again, fake)


def test_a_corrupted_cached_archive_is_reported_not_used(tmp_path: Path, server: Server, fake: FakeArchive) -> None:
    url = server.url("/ml-100k.zip")
    load_movielens("100k", tmp_path, url=url, sha256=fake.sha256)
    (tmp_path / "ml-100k" / "u.data").unlink()
    archive = tmp_path / "ml-100k.zip"
    data = bytearray(archive.read_bytes())
    data[-1] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"cached archive .*ml-100k\.zip.*delete it"):
        load_movielens("100k", tmp_path, url=url, sha256=fake.sha256)


def test_checksum_mismatch_raises_naming_both_digests_and_keeps_nothing(
    tmp_path: Path, server: Server, fake: FakeArchive
) -> None:
    wrong = hashlib.sha256(b"another archive").hexdigest()
    with pytest.raises(ValueError) as info:
        load_movielens("100k", tmp_path, url=server.url("/ml-100k.zip"), sha256=wrong)
    assert wrong in str(info.value) and fake.sha256 in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no archive, no partial file, no extracted folder


def test_the_pinned_digest_is_checked_by_default(tmp_path: Path, server: Server, fake: FakeArchive) -> None:
    with pytest.raises(ValueError, match=MOVIELENS_SHA256["100k"]):
        load_movielens("100k", tmp_path, url=server.url("/ml-100k.zip"))  # the fake is not the real archive
    assert list(tmp_path.iterdir()) == []


def test_a_truncated_download_raises_and_keeps_nothing(tmp_path: Path, server: Server, fake: FakeArchive) -> None:
    server.truncate.add("/ml-100k.zip")
    with pytest.raises(ConnectionError, match="path="):
        load_movielens("100k", tmp_path, url=server.url("/ml-100k.zip"), sha256=fake.sha256)
    assert list(tmp_path.iterdir()) == []


def test_http_errors_advise_path(tmp_path: Path, server: Server) -> None:
    url = server.url("/missing.zip")
    with pytest.raises(ConnectionError, match=r"could not download .*missing\.zip.*Not Found.*path="):
        load_movielens("100k", tmp_path, url=url)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_advises_path(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and is now closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ml-100k.zip"
    with pytest.raises(ConnectionError) as info:
        load_movielens("100k", tmp_path, url=url)
    message = str(info.value)
    assert url in message and "download the archive yourself and pass path=" in message
    assert list(tmp_path.iterdir()) == []


def test_a_cache_dir_that_cannot_be_created_is_named(tmp_path: Path, server: Server) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cache = blocker / "cache"
    with pytest.raises(OSError, match=rf"cache directory {re.escape(str(cache))}") as info:
        load_movielens("100k", cache, url=server.url("/ml-100k.zip"))
    assert "cache_dir=" in str(info.value)
    assert server.requests == []  # checked before downloading


def test_the_writability_check_names_the_directory(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read-only folder, made so by faking os.access (root may write anywhere, so chmod cannot show it).
    import factorise.datasets.movielens as movielens

    cache = tmp_path / "cache"
    real_access = os.access
    monkeypatch.setattr(movielens.os, "access", lambda p, mode: Path(p) != cache and real_access(p, mode))
    with pytest.raises(PermissionError, match=rf"cache directory {re.escape(str(cache))} is not writable.*path="):
        load_movielens("100k", cache, url=server.url("/ml-100k.zip"))
    assert server.requests == []


def test_a_complete_cache_is_read_even_when_not_writable(
    tmp_path: Path, fake: FakeArchive, fake_zip: Path, no_network: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cache folder that already holds the files needs neither writes nor the network.
    import factorise.datasets.movielens as movielens

    cache = tmp_path / "cache"
    with zipfile.ZipFile(fake_zip) as zf:
        zf.extractall(cache)
    real_access = os.access
    monkeypatch.setattr(movielens.os, "access", lambda p, mode: Path(p) != cache and real_access(p, mode))
    ml = load_movielens("100k", cache)
    _check_matches(ml, fake)
    assert ml.path == cache / "ml-100k"
    assert sorted(p.name for p in cache.iterdir()) == ["ml-100k"]  # no archive fetched or written


def test_default_cache_dir_follows_factorise_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Server, fake: FakeArchive
) -> None:
    monkeypatch.setenv("FACTORISE_DATA", str(tmp_path / "env-cache"))
    assert default_cache_dir() == tmp_path / "env-cache"
    ml = load_movielens("100k", url=server.url("/ml-100k.zip"), sha256=fake.sha256)
    assert ml.path == tmp_path / "env-cache" / "ml-100k"
    assert (tmp_path / "env-cache" / "ml-100k.zip").is_file()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG layout is the Linux default")
def test_default_cache_dir_without_factorise_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACTORISE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "factorise"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "factorise"


# -- local copies ---------------------------------------------------------------------------------


def test_path_reads_an_extracted_folder_or_its_parent(
    tmp_path: Path, fake: FakeArchive, fake_zip: Path, no_network: None
) -> None:
    with zipfile.ZipFile(fake_zip) as zf:
        zf.extractall(tmp_path / "copy")
    for path in (tmp_path / "copy" / "ml-100k", tmp_path / "copy"):
        ml = load_movielens("100k", path=path)
        _check_matches(ml, fake)
        assert ml.path == tmp_path / "copy" / "ml-100k"
        assert "100k" in repr(ml) and f"{len(fake.rows)} ratings" in repr(ml)


def test_path_reads_the_zip_archive_without_writing(
    tmp_path: Path, fake: FakeArchive, fake_zip: Path, no_network: None
) -> None:
    before = sorted(p.name for p in fake_zip.parent.iterdir())
    ml = load_movielens("100k", path=fake_zip)
    _check_matches(ml, fake)
    assert ml.path == fake_zip
    assert ml.ratings.source is not None and ml.ratings.source.endswith("ml-100k.zip:u.data")
    assert sorted(p.name for p in fake_zip.parent.iterdir()) == before


def test_a_folder_without_some_splits_gives_the_others(
    tmp_path: Path, fake: FakeArchive, fake_zip: Path, no_network: None
) -> None:
    with zipfile.ZipFile(fake_zip) as zf:
        zf.extractall(tmp_path)
    folder = tmp_path / "ml-100k"
    (folder / "u2.test").unlink()
    (folder / "ub.base").unlink()
    ml = load_movielens("100k", path=folder)
    assert set(ml.splits) == set(SPLITS) - {"u2", "ub"}
    assert _triples(ml.splits["u1"][1]) == _expected(fake.splits["u1"][1])


def test_path_reads_the_1m_and_latest_small_layouts(tmp_path: Path, no_network: None) -> None:
    rows = [(1, 10, 5, 978300760), (1, 20, 3, 978302109), (2, 10, 4, 978301968), (3, 30, 1, 978824291)]
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text(_lines(rows, "::"))
    ml = load_movielens("1m", path=tmp_path)
    assert _triples(ml.ratings) == _expected(rows)
    assert dict(ml.splits) == {}

    halves = [(1, 1, 4.0, 964982703), (1, 3, 4.5, 964981247), (2, 1, 0.5, 964982224)]
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    text = "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in halves)
    (folder / "ratings.csv").write_text(text)
    ml = load_movielens("latest-small", path=folder)
    assert _triples(ml.ratings) == Counter((u, i, r) for u, i, r, _ in halves)


def test_path_errors_name_the_path(tmp_path: Path, no_network: None) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=r"`path` .*nowhere.* does not exist"):
        load_movielens("100k", path=missing)
    with pytest.raises(FileNotFoundError, match=r"no MovieLens 100k ratings: expected u\.data"):
        load_movielens("100k", path=tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"neither a directory nor a zip archive"):
        load_movielens("100k", path=text)
    wrong = tmp_path / "other.zip"
    with zipfile.ZipFile(wrong, "w") as zf:
        zf.writestr("ml-1m/ratings.dat", "1::1::5::1\n")
    with pytest.raises(ValueError, match=r"lacks u\.data"):
        load_movielens("100k", path=wrong)


def test_bad_arguments_are_named(tmp_path: Path, no_network: None) -> None:
    with pytest.raises(ValueError, match=r"`name` must be one of \['100k', '1m', 'latest-small'\]; got '10m'"):
        load_movielens("10m", tmp_path)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`name` must be one of .*; got 100 of type int"):
        load_movielens(100, tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"either `path` .* or `url`"):
        load_movielens("100k", path=tmp_path, url="http://127.0.0.1/ml-100k.zip")
    with pytest.raises(ValueError, match=r"`sha256` must be a SHA-256 digest, 64 hexadecimal digits; got 'abc'"):
        load_movielens("100k", tmp_path, sha256="abc")
    with pytest.raises(TypeError, match=r"`cache_dir` must be a path"):
        load_movielens("100k", 3)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_pinned_digests_are_sha256_hex() -> None:
    assert set(MOVIELENS_SHA256) == {"100k", "1m", "latest-small"}
    for digest in MOVIELENS_SHA256.values():
        assert len(digest) == 64 and int(digest, 16) >= 0


# -- the real MovieLens 100K ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_100k() -> MovieLens:
    folder = DATA_DIR / "ml-100k"
    if not (folder / "u.data").is_file():
        message = f"MovieLens 100K not found at {folder}"
        if IN_CI:
            pytest.fail(f"{message}; CI must provide ../shared/data")
        pytest.skip(message)
    return load_movielens("100k", path=folder)


def test_real_100k_sizes(real_100k: MovieLens) -> None:
    r = real_100k.ratings
    assert (len(r), r.n_users, r.n_items) == (100_000, 943, 1682)
    assert r.rating_range == (1.0, 5.0)
    assert set(real_100k.splits) == set(SPLITS)
    for split in ("u1", "u2", "u3", "u4", "u5"):
        train, test = real_100k.splits[split]
        assert (len(train), len(test)) == (80_000, 20_000), split
    for split in ("ua", "ub"):
        train, test = real_100k.splits[split]
        assert (len(train), len(test)) == (90_570, 9_430), split
        assert set(Counter(test.raw_users.tolist()).values()) == {10}  # ten held out per user


def _sorted_rows(*parts: Ratings) -> np.ndarray:
    """(raw user, raw item, value) rows of all parts, sorted: a multiset as an array."""
    rows = np.concatenate(
        [np.column_stack([p.raw_users, p.raw_items, p.values.astype(np.int64)]) for p in parts]
    )
    return rows[np.lexsort(rows.T[::-1])]


def test_real_100k_splits_partition_the_ratings(real_100k: MovieLens) -> None:
    everything = _sorted_rows(real_100k.ratings)
    for split in SPLITS:
        train, test = real_100k.splits[split]
        assert np.array_equal(_sorted_rows(train, test), everything), split
    folds = [real_100k.splits[f"u{k}"][1] for k in range(1, 6)]
    assert np.array_equal(_sorted_rows(*folds), everything)  # u1..u5 test sets are the five folds
