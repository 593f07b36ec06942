"""The writer lock of a sweep store: one file per writer in the store's `locks/` folder,
`shard-I-of-N.lock`, holding the writer's host, pid and shard.

It guarantees two things while a writer holds its lock:

- No other live writer runs the same shard: two would write the same chunks' regions of the
  zarr store at once, and their bytes could interleave.
- Every live writer of the store counts shards alike: chunks are dealt to shards by their
  index modulo the count, so shard i of N and shard j of M can own the same chunk.

A lock is made whole or not at all: its holder is written to a private file first, then hard
linked to the lock's name, which fails where that name exists. No writer ever sees a lock
without its holder, and of two writers racing for one name exactly one wins.

A writer killed without releasing leaves its lock behind. Where its host is this one and its
pid is gone, the lock is stale and taken over, with a warning, so that a resumed sweep needs no
hand. A lock from another host cannot be checked from here and is refused: its file must be
removed by hand. Releasing removes the folder once it is empty, so a finished store holds no
`locks/`."""

import json
import os
from pathlib import Path
import shutil
import socket
import threading
import warnings

LOCKS = "locks"  # the folder of a store that holds its writers' locks


class WriterLock:
    """The lock of one writer of a store: `locks/shard-I-of-N.lock`, made exclusively (a hard
    link, which fails where the name exists), holding the writer's host and pid. A lock left by
    a process that is gone (same host, no such pid) is taken over with a warning; a live one is
    refused, as is a live writer counting shards otherwise (their chunks could overlap).

    **Arguments:**

    - `path`: the store's folder.
    - `shard`: (index, count) of the writer among those of the store.
    - `name`: the parameter that gave `path`, for messages.
    """

    def __init__(self, path: Path, shard: tuple[int, int], name: str = "store"):
        self.path = Path(path)
        self.shard = shard
        self.name = name
        self.file = self.path / LOCKS / f"shard-{shard[0]}-of-{shard[1]}.lock"
        self.holder = {"host": socket.gethostname(), "pid": os.getpid(), "shard": list(shard)}

    def acquire(self) -> None:
        """Takes the lock (making the folders), or raises `ValueError` naming the holder.

        **Returns:** nothing.
        """
        while not self._create():
            holder = _read_lock(self.file)
            if holder is not None and not self._taken_over(self.file, holder):
                self._refuse(self.file, holder, "a second writer of one shard is refused")
        for other in self.file.parent.glob("*.lock"):
            holder = _read_lock(other)
            if (other == self.file or holder is None or holder["shard"][1] == self.shard[1]
                    or self._taken_over(other, holder)):
                continue
            self.release()
            self._refuse(other, holder, f"shard {self.shard[0]}/{self.shard[1]} could share "
                         "chunks with it: every writer of a store must count shards alike")

    def _create(self) -> bool:
        """Whether the lock file could be made (it did not exist)."""
        self.file.parent.mkdir(parents=True, exist_ok=True)
        written = self.file.with_name(f".{self.file.name}.{socket.gethostname()}."
                                      f"{os.getpid()}.{threading.get_ident()}")
        try:
            written.write_text(json.dumps(self.holder))
            os.link(written, self.file)
        except FileExistsError:
            return False
        except FileNotFoundError:  # `locks` removed meanwhile by a writer that ended
            return self._create()
        finally:
            written.unlink(missing_ok=True)
        return True

    def _taken_over(self, file: Path, holder: dict) -> bool:
        """Whether the lock `file` of `holder` was stale and is now removed (with a warning)."""
        if not _stale(holder):
            return False
        aside = file.with_name(f".{file.name}.{os.getpid()}.stale")
        try:  # a rename succeeds for one taker only
            os.rename(file, aside)
        except FileNotFoundError:
            return True
        taken = _read_lock(aside) == holder
        if not taken:  # a new writer took it meanwhile: give it back
            os.link(aside, file)
        aside.unlink()
        if taken:
            # Level 4: the line that opened the `SweepStore`, past `acquire` and `__init__`.
            warnings.warn(f"`{self.name}` = '{self.path}': took over the lock {file.name} of "
                          f"process {holder['pid']} on {holder['host']}, which is gone.",
                          stacklevel=4)
        return taken

    def _refuse(self, file: Path, holder: dict, why: str) -> None:
        raise ValueError(f"`{self.name}` = '{self.path}' is being written by shard "
                         f"{holder['shard'][0]}/{holder['shard'][1]}, process {holder['pid']} on "
                         f"{holder['host']} (lock {file}): {why}. Wait for it to finish or stop "
                         "it (a lock whose process is gone is taken over on its host; from "
                         "another host, remove the file).")

    def release(self) -> None:
        """Removes the lock (if still this writer's), and `locks` if empty.

        **Returns:** nothing.
        """
        if _read_lock(self.file) == self.holder:
            self.file.unlink()
        try:
            self.file.parent.rmdir()
        except OSError:  # other writers' locks
            pass


def _read_lock(file: Path) -> dict | None:
    """A lock's holder; None where the lock is gone."""
    try:
        return json.loads(file.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        raise ValueError(f"The lock {file} cannot be read: remove it if no sweep is writing "
                         "the store.") from None


def remove_dead_writers_folders(folder: Path, prefix: str) -> None:
    """Removes the hidden folders `.{prefix}.{host}.{pid}` in `folder` that processes of this
    host that are gone left (a writer killed by SIGKILL while making one aside)."""
    for aside in folder.glob(f".{prefix}.{socket.gethostname()}.*"):
        pid = aside.name.rsplit(".", 1)[-1]
        if pid.isdigit() and _stale({"host": socket.gethostname(), "pid": int(pid)}):
            shutil.rmtree(aside, ignore_errors=True)


def _stale(holder: dict) -> bool:
    """Whether a lock's holder is a process on this host that is gone."""
    if holder["host"] != socket.gethostname():
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        pass
    return False
