"""The plan of a sweep: which members run together, in which order, on which process, and the
queue from which that process's devices take them.

Members of different numbers of examples are first grouped into a few size buckets
(`size_buckets`), each padded to its own largest member, not to the largest of the sweep; within
a bucket they are sorted by a cost key, so that a chunk holds members of similar cost, and cut
into chunks of one size (no chunk spans two buckets: one compilation per bucket). Chunk c goes
to process c mod P; within a process the local devices take its chunks from one queue, the
costliest first, each the next as it finishes one, so that they finish together. Every process
computes the same plan from the same plain inputs, so the processes of a multi-host sweep agree
without talking to each other.
"""

from collections.abc import Sequence
import dataclasses
import functools

import equinox as eqx
import jax
import numpy as np

from .. import _validate

MAX_BUCKETS = 4
"""The default bound on size buckets, hence on compilations of a sweep's chunks."""
BUCKET_GROWTH = 1.25
"""Members whose sizes lie within this factor of a rung of the ladder share a bucket."""
MIN_BUCKET = 256
"""Members per size bucket at least, in a sweep: fewer do not repay a compilation."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """How one process runs its share of a sweep.

    **Arguments:**

    - `order`: grid indices in the order they run; chunks are cut from it.
    - `chunk_size`: members per compiled call.
    - `process_index`, `process_count`: this process and how many share the sweep.
    - `done`: chunks already written (a resumed sweep); they are neither run nor queued.
    - `buckets`: the size bucket of each entry of `order` (non-decreasing); () for one.
    - `bucket_sizes`: each bucket's number of examples; () where the runner's own applies.
    """

    order: tuple[int, ...]
    chunk_size: int
    process_index: int = 0
    process_count: int = 1
    done: frozenset[int] = frozenset()
    buckets: tuple[int, ...] = ()
    bucket_sizes: tuple[int, ...] = ()

    @functools.cached_property
    def _cuts(self) -> tuple[tuple[int, int, int], ...]:
        """(start, stop, bucket) of each chunk in `order`: every `chunk_size` members, so that
        chunk c is rows c * chunk_size onwards of a store (whose zarr chunks it fills alone);
        a chunk across a bucket's edge is padded to the larger bucket (buckets increase along
        `order`)."""
        buckets, size = self.buckets or (0,) * len(self.order), len(self.order)
        return tuple((i, min(i + self.chunk_size, size),
                      buckets[min(i + self.chunk_size, size) - 1])
                     for i in range(0, size, self.chunk_size))

    @functools.cached_property
    def chunks(self) -> tuple[tuple[int, ...], ...]:
        """The design indices of each chunk; the last may be shorter."""
        return tuple(self.order[start:stop] for start, stop, _ in self._cuts)

    def padded_size(self, chunk: int) -> int | None:
        """The number of examples that `chunk`'s members are padded to.

        **Arguments:**

        - `chunk`: a chunk index.

        **Returns:** its bucket's size, or None without buckets (the runner's own `pad_to`).
        """
        return self.bucket_sizes[self._cuts[chunk][2]] if self.bucket_sizes else None

    @functools.cached_property
    def share(self) -> tuple[int, ...]:
        """The chunks this process owns: c with c mod `process_count` = `process_index`."""
        return tuple(range(self.process_index, len(self.chunks), self.process_count))

    @functools.cached_property
    def todo(self) -> tuple[int, ...]:
        """The chunks this process still runs: its share, less those done."""
        return tuple(c for c in self.share if c not in self.done)

    @functools.cached_property
    def queue(self) -> tuple[int, ...]:
        """The chunks this process still runs, in the order its devices take them: the last
        (costliest, as members run in increasing cost within a bucket) first, so that no
        device is left with a slow chunk when the others have finished."""
        return self.todo[::-1]

    @property
    def members_done(self) -> int:
        """Members in the chunks already done, by any process."""
        return sum(len(self.chunks[c]) for c in self.done)

    def filled(self, chunk: int) -> np.ndarray:
        """The design indices of `chunk`, the short last chunk filled up with copies of its last
        member: every chunk of a bucket has one shape, so one compilation serves them all.

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
              max_batch: int | None = None, process_index: int = 0,
              process_count: int = 1, num_examples: Sequence[int] | None = None,
              max_buckets: int = MAX_BUCKETS, min_bucket: int = 1) -> Plan:
    """The plan of a sweep, from plain numbers.

    **Arguments:**

    - `num_members`: the design's size.
    - `order_keys`: one cost key per member (run in increasing order within a bucket, ties in
      design order), or None for design order.
    - `chunk_size`: the wanted members per chunk; capped by `max_batch` and the design's size.
    - `max_batch`: at most this many members per chunk, or None.
    - `process_index`, `process_count`: this process among those sharing the sweep.
    - `num_examples`: each member's number of examples, for size buckets (`size_buckets`);
      None for one bucket, padded to the runner's `pad_to`.
    - `max_buckets`: at most this many size buckets (compilations).
    - `min_bucket`: at most one bucket per this many members (`sweep` asks `MIN_BUCKET`).

    **Returns:** a `Plan` with nothing done yet (see `Plan.skipping`).
    """
    keys = np.zeros(num_members)
    if order_keys is not None:
        if len(order_keys) != num_members:
            raise ValueError(f"`order_keys` has {len(order_keys)} entries, expected one per "
                             f"member ({num_members}).")
        keys = np.asarray(order_keys, dtype=float)
    buckets, sizes = np.zeros(num_members, dtype=int), ()
    if num_examples is not None:
        if len(num_examples) != num_members:
            raise ValueError(f"`num_examples` has {len(num_examples)} entries, expected one "
                             f"per member ({num_members}).")
        # A bucket is worth its compilation only if it holds enough members.
        sizes, buckets = size_buckets(
            num_examples, max_buckets=min(max_buckets, max(1, num_members // min_bucket)))
        sizes = tuple(int(x) for x in sizes)
    order = np.lexsort((keys, buckets))  # by bucket, then cost; stable: ties in design order
    chunk_size = int(min(chunk_size, max_batch or chunk_size, num_members))
    return Plan(tuple(int(i) for i in order), chunk_size, process_index,
                process_count, buckets=tuple(int(b) for b in buckets[order]) if sizes else (),
                bucket_sizes=sizes)


def size_buckets(num_examples: Sequence[int], *, max_buckets: int = MAX_BUCKETS,
                 growth: float = BUCKET_GROWTH) -> tuple[np.ndarray, np.ndarray]:
    """Members grouped by their number of examples, so that each group is padded to its own
    largest member: sizes on one rung of the geometric ladder n_min growth^j share a bucket,
    then neighbouring buckets are merged, the merge that adds the least padded work first,
    until at most `max_buckets` remain.

    **Arguments:**

    - `num_examples`: each member's number of examples.
    - `max_buckets`: at most this many buckets, an integer >= 1.
    - `growth`: the ladder's ratio, > 1.

    **Returns:** (each bucket's size, increasing; each member's bucket index).
    """
    max_buckets = _validate.integer("max_buckets", max_buckets, minimum=1)
    _validate.number("growth", growth, low=1.0, low_open=True)
    sizes = np.asarray(num_examples, dtype=np.int64)
    rungs = np.floor(np.log(sizes / sizes.min()) / np.log(growth) + 1e-9).astype(int)
    _, member = np.unique(rungs, return_inverse=True)
    tops = [int(sizes[member == b].max()) for b in range(member.max() + 1)]
    counts = list(np.bincount(member))
    while len(tops) > max_buckets:
        # merging bucket b into b + 1 pads its members up to the larger size
        cost = [counts[b] * (tops[b + 1] - tops[b]) for b in range(len(tops) - 1)]
        b = int(np.argmin(cost))
        merged = counts.pop(b)
        counts[b] += merged  # bucket b + 1, now at b
        tops.pop(b)
        member = np.where(member > b, member - 1, member)
    return np.asarray(tops), member


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
    return int(dynamics.working_copies * param_bytes + 2 * objective_bytes
               + 8 * num_records * num_metric_values)
