"""Atomic file writes, with temporary files a later run can recognise and clear away.

:func:`atomic_write` writes to a temporary file beside the target and renames
it onto the target only once everything is written and flushed to disk, so
the target holds either its old contents or the complete new ones, never a
part. A process killed outright (SIGKILL, a power cut) cannot remove its own
temporary file; that is why the name says whose it is::

    .model.npz.factorise-tmp-<host>-<pid>-<random>.tmp

The next write to the same target removes such files when they were made on
this host by a process that no longer runs (:func:`remove_stale_temp_files`).
Temporary files of live processes, of other hosts (a shared network folder)
and of other programs are never touched.

Errors name the user's path, never the temporary name: a full disk reads
``[Errno 28] No space left on device: 'model.npz'``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["TEMP_TAG", "atomic_write", "remove_stale_temp_files", "temp_file_pattern"]

logger = logging.getLogger(__name__)

#: The word every temporary file of factorise carries in its name.
TEMP_TAG = "factorise-tmp"


def _host() -> str:
    """This host's name, reduced to letters and digits (it sits between dashes in the name)."""
    return re.sub(r"[^0-9A-Za-z]", "", socket.gethostname()) or "host"


def _prefix(path: Path) -> str:
    return f".{path.name}.{TEMP_TAG}-{_host()}-{os.getpid()}-"


def temp_file_pattern(path: str | os.PathLike[str]) -> re.Pattern[str]:
    """The names of factorise's temporary files for the target ``path`` (groups ``host``, ``pid``)."""
    name = re.escape(Path(path).name)
    return re.compile(rf"\A\.{name}\.{TEMP_TAG}-(?P<host>[0-9A-Za-z]+)-(?P<pid>[0-9]+)-[^/]*\.tmp\Z")


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's live process (or a pid we cannot ask about): leave it
    return True


def remove_stale_temp_files(path: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary files left beside ``path`` by killed factorise processes on this host.

    Parameters
    ----------
    path : str or os.PathLike
        A target of :func:`atomic_write`.

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    pattern = temp_file_pattern(target)
    host = _host()
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or match["host"] != host or _running(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
                logger.info("removed %s, left by an interrupted write of %s", entry.path, target)
    return removed


def _named(exc: OSError, path: Path) -> OSError:
    """The same error, naming the user's path instead of the temporary file."""
    if exc.errno is None:
        return OSError(f"{path}: cannot write: {exc}")
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))


_DEFERRED = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _deferred_signals() -> Iterator[list[int]]:
    """Record SIGINT and SIGTERM instead of acting on them; yield the list of those that arrived.

    Only in the main thread (where Python handles signals) and only where the current handler is
    one Python knows (a callable, SIG_DFL or SIG_IGN); elsewhere nothing is deferred. The previous
    handlers are restored on exit; delivering what arrived is the caller's business.
    """
    caught: list[int] = []
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def record(signum: int, frame: object) -> None:
            caught.append(signum)

        for sig in _DEFERRED:
            handler = signal.getsignal(sig)
            if handler is not None:
                previous[sig] = signal.signal(sig, record)
    try:
        yield caught
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it onto ``path``.

    On any error the temporary file is removed and ``path`` is left as it was,
    so a failed write never leaves a partial file. Temporary files left by
    killed factorise processes for the same target are removed first (see the
    module docstring).

    Ctrl-C (SIGINT) or SIGTERM during the write does not cut it short at a
    random point (where a half-closed archive could raise errors of its own):
    the signal is held until the file is written, then the temporary file is
    removed, ``path`` is left as it was, and the signal is delivered to its
    usual handler (``KeyboardInterrupt`` for Ctrl-C). This applies in the main
    thread; SIGKILL cannot be caught, and what it leaves is removed by the next
    write to ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The destination.
    mode : {"w", "wb"}
        Text or binary.

    Raises
    ------
    OSError
        If the file cannot be written (no space, no permission, ...); the
        error's ``filename`` is ``path``.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    remove_stale_temp_files(path)
    with _deferred_signals() as caught:
        try:
            fd, tmp = tempfile.mkstemp(prefix=_prefix(path), suffix=".tmp", dir=directory)
        except OSError as exc:
            raise _named(exc, path) from None
        try:
            with os.fdopen(fd, mode) as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            if caught:
                raise _Interrupted()
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600; give it the usual permissions
            os.replace(tmp, path)
        except _Interrupted:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if exc.filename not in (None, tmp) and exc.filename2 is None:
                raise  # an error about some other file, raised inside the block
            raise _named(exc, path) from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    if caught:
        signal.raise_signal(caught[0])  # to the handler restored above; the target is untouched


class _Interrupted(Exception):
    """A signal arrived during the write: abandon it."""
