"""Members done across a sweep's chunks, as the devices' worker threads report them."""

from collections.abc import Callable
import threading


class MembersDone:
    """Counts a sweep's members done, whole chunks and those inside the chunks running, and
    tells `progress` (members done, members total) at each change; thread-safe.

    **Arguments:**

    - `total`: the design's size.
    - `already`: members done before any compute (the chunks a resumed sweep finds).
    - `progress`: the callback, or None.
    """

    def __init__(self, total: int, already: int, progress: Callable[[int, int], None] | None):
        self.total = total
        self.progress = progress
        self._finished = already
        self._running: dict[int, int] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        """Reports where the sweep starts from, before any compute."""
        if self.progress is not None:
            self.progress(self._finished, self.total)

    def inside(self, chunk: int, done: int) -> None:
        """`done` members of `chunk` are done so far.

        **Arguments:**

        - `chunk`: a chunk index.
        - `done`: its members done.

        **Returns:** nothing.
        """
        with self._lock:
            self._running[chunk] = done
            self._report()

    def finished(self, chunk: int, size: int) -> None:
        """`chunk`, of `size` members, is done.

        **Arguments:**

        - `chunk`: a chunk index.
        - `size`: its number of members.

        **Returns:** nothing.
        """
        with self._lock:
            self._running.pop(chunk, None)
            self._finished += size
            self._report()

    @property
    def done(self) -> int:
        """Members in the chunks finished, by this process or before it started."""
        return self._finished

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self._finished + sum(self._running.values()), self.total)
