"""Safe concurrent writes into a store: one lock file per run, folders built aside and renamed
into place.

A run's lock is ``<store>/.writing/<run>/lock`` (JSON: pid, host, since, token), created
atomically with its record: written aside, then hard-linked (``os.link`` fails when a lock
exists), so no other process ever reads a half-written lock. A lock whose process is gone (same host) is taken over with a warning; a
live one is a :class:`RunBusyError`. Runs written aside (``--overwrite`` of a complete run) live
in the same folder until they are renamed into ``runs/<run>``.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import logging
import os
import shutil
import socket
import time
import uuid
import weakref
from pathlib import Path

__all__ = ["WRITING", "RunBusyError", "RunLock", "build_aside", "process_alive"]

log = logging.getLogger(__name__)

#: a store's folder of run locks and runs being written aside (hidden from zarr and from readers)
WRITING = ".writing"
#: locks held by this process, token -> lock: a lock of this pid not in here was abandoned
_HELD: "weakref.WeakValueDictionary[str, RunLock]" = weakref.WeakValueDictionary()


class RunBusyError(RuntimeError):
    """Another live writer holds the run's lock."""


def process_alive(pid: int) -> bool:
    """True when process ``pid`` of this host runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _tag(token: str = "") -> str:
    """``host-pid[-token]``: names of this process's temporary folders."""
    return f"{socket.gethostname()}-{os.getpid()}" + (f"-{token[:8]}" if token else "")


def _read(path: Path) -> dict | None:
    """The lock's record; None when there is no lock; {} for a lock its creator never finished."""
    for _ in range(500):  # the creator writes the record right after creating the file
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        if text.endswith("\n"):
            try:
                return json.loads(text)
            except ValueError:
                return {}
        time.sleep(0.01)
    return {}


class RunLock:
    """The lock of run ``run`` in the store at ``store_path`` (taken on creation).

    Raises
    ------
    RunBusyError
        A live process (or another writer of this process) holds it.
    """

    def __init__(self, store_path: str | Path, run: str):
        self.store_path = Path(store_path)
        self.run = run
        self.folder = self.store_path / WRITING / run
        self.path = self.folder / "lock"
        self.token = uuid.uuid4().hex
        self.tag = _tag(self.token)
        self.record = {"pid": os.getpid(), "host": socket.gethostname(),
                       "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                       "token": self.token}
        self.held = False
        self.folder.mkdir(parents=True, exist_ok=True)
        # the record is written first and hard-linked as the lock: a lock never exists half-written
        draft = self.folder.parent / f".lock-{self.tag}"
        draft.write_text(json.dumps(self.record) + "\n")
        try:
            for _ in range(10):
                try:
                    os.link(draft, self.path)
                except FileExistsError:
                    owner = _read(self.path)
                    if owner is None:  # released meanwhile
                        continue
                    if not self._abandoned(owner):
                        raise RunBusyError(self._busy(owner)) from None
                    self._take_over(owner)
                    continue
                self.held = True
                _HELD[self.token] = self
                self._recover()
                return
        finally:
            draft.unlink(missing_ok=True)
        raise RunBusyError(f"{self.store_path}: run {run!r}: could not take its lock {self.path} (other writers keep "
                           "taking it); try again")

    def _busy(self, owner: dict) -> str:
        me = " (this process)" if owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname() else ""
        return (f"{self.store_path}: run {self.run!r} is being written by pid {owner.get('pid')}{me} on host "
                f"{owner.get('host')} since {owner.get('since')}; wait until it finishes (or, if that process is "
                f"gone, delete {self.path})")

    @staticmethod
    def _abandoned(owner: dict) -> bool:
        if not owner:  # its creator died before writing the record
            return True
        pid = owner.get("pid")
        if owner.get("host") != socket.gethostname() or not isinstance(pid, int):
            return False  # another host: cannot tell
        if pid == os.getpid():
            return owner.get("token") not in _HELD
        return not process_alive(pid)

    def _guard(self):
        """An exclusive flock on the run's folder: takeovers and releases never remove a live lock."""
        fd = os.open(self.folder, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def _take_over(self, owner: dict) -> None:
        fd = self._guard()
        try:
            if _read(self.path) == owner:  # nobody took it over meanwhile
                os.unlink(self.path)
                log.warning("%s: run %r: took over the stale lock of pid %s on host %s (since %s): that process is gone",
                            self.store_path, self.run, owner.get("pid"), owner.get("host"), owner.get("since"))
        finally:
            os.close(fd)

    def _recover(self) -> None:
        """Folders left by a killed writer of this run: a replaced run that was not yet swapped
        back is restored, runs written aside are removed."""
        run = self.store_path / "runs" / self.run
        for entry in sorted(self.folder.iterdir()):
            if entry.name == "lock":
                continue
            if entry.name.startswith("old-") and not run.exists():
                os.rename(entry, run)
                log.warning("%s: run %r restored (a writer was killed while replacing it)", self.store_path, self.run)
            else:
                shutil.rmtree(entry, ignore_errors=True)

    def release(self) -> None:
        """Remove the lock if it is still this one's (idempotent)."""
        if not self.held:
            return
        self.held = False
        _HELD.pop(self.token, None)
        fd = self._guard()
        try:
            if (_read(self.path) or {}).get("token") == self.token:
                os.unlink(self.path)
        finally:
            os.close(fd)

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _clean_siblings(path: Path) -> None:
    """Temporary siblings of ``path`` left by killed creations on this host."""
    prefix = f".{path.name}."
    host = socket.gethostname()
    for entry in path.parent.glob(f"{prefix}*-{host}-*"):
        kind, _, rest = entry.name[len(prefix):].partition("-")
        pid = rest[len(host) + 1:].split("-")[0]
        if kind not in ("creating", "replaced") or not pid.isdigit() or process_alive(int(pid)):
            continue
        if kind == "replaced" and not path.exists():
            os.rename(entry, path)
            log.warning("%s restored (a replacement was killed half-way)", path)
        else:
            shutil.rmtree(entry, ignore_errors=True)


def build_aside(path: Path, build, overwrite: bool) -> None:
    """``build(tmp)`` in a temporary sibling of ``path``, then rename it into place: ``path``
    never holds a half-built folder.

    Raises
    ------
    FileExistsError
        ``path`` was created meanwhile by someone else (and ``overwrite`` is false).
    """
    _clean_siblings(path)
    tmp = path.parent / f".{path.name}.creating-{_tag(uuid.uuid4().hex)}"
    old = None
    try:
        build(tmp)
        if overwrite and path.exists() and any(path.iterdir()):
            old = path.parent / f".{path.name}.replaced-{_tag(uuid.uuid4().hex)}"
            os.rename(path, old)
        try:
            os.rename(tmp, path)  # fails on a non-empty folder: someone else's store
        except OSError as exc:
            if old is not None:
                os.rename(old, path)
                old = None
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise FileExistsError(f"{path} was created meanwhile by another process") from None
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old)
