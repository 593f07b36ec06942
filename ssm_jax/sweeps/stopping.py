"""Stopping a sweep with SIGINT (Ctrl-C) or SIGTERM (what schedulers send): within a second
the sweep takes no new chunk, waits for a chunk being written, releases its store and raises
`SweepStopped`, which says what was kept and how to resume.

A compiled chunk cannot be cut short: its worker thread (a daemon) finishes it in the
background and writes nothing. A program that then exits would otherwise finalize Python
under that thread, which can end in a fatal error once XLA calls back into Python; so, while
such a worker is still computing at exit, the process leaves at once with the signal's exit
code (128 + its number), its output flushed (`_leave_at_exit`).
"""

import atexit
import os
import signal
import sys
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SweepStopped(KeyboardInterrupt):
    """A sweep stopped by a signal.

    **Arguments:**

    - `signum`: the signal's number; `signal_name` and `exit_code` (128 + it) follow.
    - `members_kept`, `members_total`: members in the chunks kept, of the design's.
    - `store`: the store that keeps them, or None.
    - `hint`: how to resume, in words.
    """

    def __init__(self, signum: int, members_kept: int, members_total: int, store, hint: str):
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        self.members_kept = members_kept
        self.members_total = members_total
        self.store = store
        if store is None:
            kept = (f"{members_kept} of {members_total} members had finished, and are not "
                    "kept: the sweep had no store (give one to keep each chunk as it ends).")
        else:
            kept = (f"{members_kept} of {members_total} members are kept in {store}, in whole "
                    f"chunks; {hint}")
        super().__init__(f"Stopped by {self.signal_name}: {kept}")


class _Signalled(BaseException):
    """Raised in the main thread by the handler, turned into `SweepStopped` by the sweep."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class StopSignals:
    """While entered in the main thread, SIGINT and SIGTERM set `event` and raise in the main
    thread (elsewhere: nothing changes, as Python delivers signals to the main thread only).
    The previous handlers come back on exit.
    """

    def __init__(self):
        self.event = threading.Event()
        self._previous = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.event.is_set():  # a second signal while stopping: let the stop finish
            return
        self.event.set()
        raise _Signalled(signum)

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


_EXIT_CODE: list[int] = []
"""The exit code of the last sweep stopped while its workers still compute."""


def abandon_workers(exit_code: int) -> None:
    """Notes that workers still compute a chunk that a stopped sweep abandoned: if they still
    do when the program exits, it leaves at once with `exit_code` (see this module).

    **Arguments:**

    - `exit_code`: 128 + the signal's number.

    **Returns:** nothing.
    """
    if not _EXIT_CODE:
        atexit.register(_leave_at_exit)
    _EXIT_CODE[:] = [exit_code]


def _leave_at_exit() -> None:
    workers = [t for t in threading.enumerate() if t.name.startswith("ssm_jax sweep worker")]
    if any(t.is_alive() for t in workers):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_CODE[0])
