"""The plan of a sweep: which members run together, in which order, on which process and
device.

Members are sorted by a cost key, so that a chunk holds members of similar cost, and cut into
chunks of one size. Chunk c goes to process c mod P; within a process its chunks are dealt
round-robin to the local devices. Every process computes the same plan from the same plain
inputs, so the processes of a multi-host sweep agree without talking to each other.
"""

from collections.abc import Sequence
import dataclasses
import functools

import equinox as eqx
import jax
import numpy as np

from ..dynamics.flow import Flow

MAX_CHUNK = 4096
"""The largest chunk a memory estimate gives."""
MAP_CHUNK = 256
"""The default chunk under `lax.map`: members run one after another, so memory does not
bound it; a chunk is the unit of storing and resuming."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """How one process runs its share of a sweep.

    **Arguments:**

    - `order`: grid indices in the order they run; chunks are cut from it.
    - `chunk_size`: members per compiled call.
    - `num_devices`: local devices that take chunks.
    - `process_index`, `process_count`: this process and how many share the sweep.
    - `done`: chunks already written (a resumed sweep); they are neither run nor dealt.
    """

    order: tuple[int, ...]
    chunk_size: int
    num_devices: int = 1
    process_index: int = 0
    process_count: int = 1
    done: frozenset[int] = frozenset()

    @functools.cached_property
    def chunks(self) -> tuple[tuple[int, ...], ...]:
        """The grid indices of each chunk; the last may be shorter."""
        size = self.chunk_size
        return tuple(self.order[i:i + size] for i in range(0, len(self.order), size))

    @functools.cached_property
    def share(self) -> tuple[int, ...]:
        """The chunks this process owns: c with c mod `process_count` = `process_index`."""
        return tuple(range(self.process_index, len(self.chunks), self.process_count))

    @functools.cached_property
    def todo(self) -> tuple[int, ...]:
        """The chunks this process still runs: its share, less those done."""
        return tuple(c for c in self.share if c not in self.done)

    @functools.cached_property
    def assignments(self) -> tuple[tuple[int, ...], ...]:
        """For each local device, the chunks it runs, in turn."""
        return tuple(self.todo[d::self.num_devices] for d in range(self.num_devices))

    @property
    def members_done(self) -> int:
        """Members in the chunks already done, by any process."""
        return sum(len(self.chunks[c]) for c in self.done)

    def filled(self, chunk: int) -> np.ndarray:
        """The grid indices of `chunk`, the last chunk filled up with copies of its last
        member: every chunk has one shape, so one compilation serves them all.

        **Arguments:**

        - `chunk`: a chunk index.

        **Returns:** an integer array of `chunk_size` grid indices.
        """
        members = np.asarray(self.chunks[chunk])
        return np.concatenate([members, np.repeat(members[-1:], self.chunk_size - members.size)])

    def skipping(self, done) -> "Plan":
        """This plan with the chunks `done` already written (read from a store).

        **Arguments:**

        - `done`: chunk indices.

        **Returns:** a `Plan` whose `todo` leaves them out.
        """
        return dataclasses.replace(self, done=frozenset(int(c) for c in done))


def make_plan(num_members: int, order_keys: Sequence[float] | None, chunk_size: int, *,
              max_batch: int | None = None, num_devices: int = 1, process_index: int = 0,
              process_count: int = 1) -> Plan:
    """The plan of a sweep, from plain numbers.

    **Arguments:**

    - `num_members`: the grid's size.
    - `order_keys`: one cost key per member (run in increasing order, ties in grid order),
      or None for grid order.
    - `chunk_size`: the wanted members per chunk; capped by `max_batch` and the grid's size.
    - `max_batch`: at most this many members per chunk, or None.
    - `num_devices`: local devices that take chunks.
    - `process_index`, `process_count`: this process among those sharing the sweep.

    **Returns:** a `Plan` with nothing done yet (see `Plan.skipping`).
    """
    if order_keys is None:
        order = np.arange(num_members)
    else:
        if len(order_keys) != num_members:
            raise ValueError(f"`order_keys` has {len(order_keys)} entries, expected one per "
                             f"member ({num_members}).")
        order = np.argsort(np.asarray(order_keys, dtype=float), kind="stable")
    chunk_size = int(min(chunk_size, max_batch or chunk_size, num_members))
    return Plan(tuple(int(i) for i in order), chunk_size, num_devices, process_index,
                process_count)


def padded_size(num_examples: Sequence[int], pad_to: int | None = None) -> int:
    """The common number of examples that every member is padded to.

    **Arguments:**

    - `num_examples`: each member's number of examples.
    - `pad_to`: a wanted size, at least the largest; None for the largest.

    **Returns:** the size, an int.
    """
    largest = int(max(num_examples))
    if pad_to is None:
        return largest
    if pad_to < largest:
        raise ValueError(f"`pad_to` = {pad_to} is not allowed: expected at least {largest}, "
                         "the largest member's number of examples.")
    return int(pad_to)


def member_bytes(problem, dynamics, num_metric_values: int) -> int:
    """A generous estimate of one member's memory in a vmapped chunk: its parameters times
    the solver's working copies (stages, error estimate, candidate), its objective's arrays,
    and its recorded metrics.

    **Arguments:**

    - `problem`: a padded member, (model, objective, hyperparameters).
    - `dynamics`: the sweep's `Flow` or `Train`.
    - `num_metric_values`: numbers recorded per record time.

    **Returns:** bytes, an int.
    """
    model, objective, _ = problem
    leaves = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))
    param_bytes = sum(x.size * x.dtype.itemsize for x in leaves)
    objective_bytes = sum(x.size * x.dtype.itemsize
                          for x in jax.tree_util.tree_leaves(eqx.filter(objective, eqx.is_array)))
    num_records = dynamics.record_times().size
    working_copies = 16 if isinstance(dynamics, Flow) else 6
    return int(working_copies * param_bytes + 2 * objective_bytes
               + 8 * num_records * num_metric_values)


def chunk_size_for_memory(bytes_per_member: int, free_bytes: int, batching: str) -> int:
    """Members per chunk: under "vmap" as many as fit in half of the free memory, at most
    `MAX_CHUNK`; under "map" `MAP_CHUNK`.

    **Arguments:**

    - `bytes_per_member`: from `member_bytes`.
    - `free_bytes`: the free memory of the smallest device.
    - `batching`: "vmap" or "map".

    **Returns:** a chunk size, at least 1.
    """
    size = max(1, (free_bytes // 2) // bytes_per_member) if batching == "vmap" else MAP_CHUNK
    return int(min(size, MAX_CHUNK))
