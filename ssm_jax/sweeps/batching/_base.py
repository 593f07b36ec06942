"""The contract of a batching: how the members of one chunk run as one compiled call."""

import abc
from typing import NamedTuple

import equinox as eqx
import numpy as np

MAX_CHUNK = 4096
"""The largest chunk a memory estimate gives."""
CHUNK_SECONDS = 30.0
"""About how long a chunk should run where members are timed: the most a stop loses."""


def within_seconds(size: int, seconds_per_member: float | None, parallel: int = 1) -> int:
    """`size`, cut so that its members, `parallel` at a time, take about `CHUNK_SECONDS`.

    **Arguments:**

    - `size`: the chunk size otherwise.
    - `seconds_per_member`: a member's run time, or None (no cut).
    - `parallel`: members that run at once.

    **Returns:** a chunk size, at least 1.
    """
    if seconds_per_member is None or seconds_per_member <= 0:
        return size
    # The slack keeps an exact quotient (30 s / 0.1 s) from rounding down a member.
    return int(max(1, min(size, parallel * CHUNK_SECONDS / seconds_per_member + 1e-9)))


class ChunkOutput(NamedTuple):
    """One chunk's results, one entry per member along the leading axis of every array."""

    recorded: dict
    stats: dict
    compile_seconds: float
    run_seconds: float
    lane_efficiency: float | None = None
    """Member-steps / lane-steps, where members ran in lanes; None otherwise."""


def chunk_size_for_memory(bytes_per_member: int, free_bytes: int) -> int:
    """Members per chunk that fit, all at once, in half of the free memory, at most
    `MAX_CHUNK`.

    **Arguments:**

    - `bytes_per_member`: from `plan.member_bytes`.
    - `free_bytes`: the free memory of the smallest device.

    **Returns:** a chunk size, at least 1.
    """
    return int(min(max(1, (free_bytes // 2) // bytes_per_member), MAX_CHUNK))


class AbstractBatching(eqx.Module):
    """How a sweep runs the members of one chunk, stacked into one batch, as one compiled
    call on one device.

    A batching owns four things, so that a new one is one new file: which dynamics it can
    run (`check`), how it prepares them (`prepare`), how many members a chunk holds
    (`chunk_size`), how a chunk runs, with progress (`run`), and how much of the chunk's
    work moved no member (`waste`). `name` is its shorthand in configuration files and on the
    command line (`batching_named`), and what the sweep's store records.
    """

    name: eqx.AbstractClassVar[str]

    @abc.abstractmethod
    def check(self, dynamics) -> None:
        """Refuses dynamics this batching cannot run, before any compute.

        **Arguments:**

        - `dynamics`: the sweep's `Flow` or `Train`.

        **Returns:** nothing. Raises `ValueError` naming `batching` and saying what works.
        """

    @abc.abstractmethod
    def prepare(self, dynamics):
        """The dynamics as this batching runs them (e.g. an explicit Runge-Kutta solver with
        its stages unrolled, `Unrolled`): the same numbers up to round-off.

        **Arguments:**

        - `dynamics`: the sweep's checked dynamics.

        **Returns:** a dynamics.
        """

    @abc.abstractmethod
    def chunk_size(self, bytes_per_member: int, free_bytes: int, platform: str,
                   seconds_per_member: float | None = None) -> int:
        """Members per chunk (the unit of compiling, storing and resuming) by default: a
        chunk should fit in memory and, where a member's time is known, end within about
        `CHUNK_SECONDS`, so that a stopped sweep loses little.

        **Arguments:**

        - `bytes_per_member`: a generous estimate of one member's memory (`member_bytes`).
        - `free_bytes`: the free memory of the smallest device taking chunks.
        - `platform`: the devices' platform ("cpu", "gpu", "tpu").
        - `seconds_per_member`: the run time of the costliest member alone, where measured.

        **Returns:** a chunk size, at least 1.
        """

    @abc.abstractmethod
    def run(self, batch, static, dynamics, metrics, device, progress) -> ChunkOutput:
        """Runs a chunk, compiled, on `device`.

        **Arguments:**

        - `batch`: (parameters, objective arrays, hyperparameters, keys), each stacked along
          a leading member axis, already on `device`.
        - `static`: (model static part, objective static part), shared by the members.
        - `dynamics`: the prepared dynamics; its matmul precision is already pinned.
        - `metrics`: (model, objective) -> dict of arrays, what each member records.
        - `device`: the JAX device.
        - `progress`: None, or called with the chunk's members done so far, at least once at
          the end.

        **Returns:** a `ChunkOutput`, members in the batch's order.
        """

    @abc.abstractmethod
    def waste(self, num_steps: np.ndarray, output: ChunkOutput) -> float:
        """The share of the chunk's work that moved no member.

        **Arguments:**

        - `num_steps`: the steps of each real member of the chunk (no filling copies).
        - `output`: the chunk's `ChunkOutput`.

        **Returns:** a number in [0, 1].
        """
