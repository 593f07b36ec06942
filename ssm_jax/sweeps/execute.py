"""Running a sweep's chunks: each chunk's problems built, padded to one number of examples
and stacked into one batch, run compiled on one device, and the chunks spread over the
devices by one worker thread each, taking them from one queue.

Members are built in Python (`make_problem`, checked beforehand by `member_checks`), or,
vectorized, all of a chunk at once (`vectorized`). Each chunk is padded to its own number of
examples (its size bucket, see `plan`). Inside a chunk, members run
- "refill" (gradient flows without events; the default on accelerators): in lanes that each
  step their own member and take the next one when theirs ends (`dynamics.refill`), so no
  member waits for another; with a progress callback the chunk advances in segments,
  between which the host reports members done;
- "map" (the default on CPUs, where batched steps gain little): one after another inside one
  call (`lax.map`);
- "vmap": in lockstep, for training and flows with events on accelerators.
"""

from collections.abc import Callable, Sequence
import concurrent.futures
import dataclasses
import itertools
import os
import threading
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._timing import timed_call
from ..dynamics import refill
from ..dynamics.base import AbstractDynamics
from .padding import pad_problem
from .plan import chunk_size_for_memory, member_bytes
from .vectorized import as_problem, build_batch, member_keys


def _stack(problems, indices):
    """Stacks padded problems into one batch; all must share their non-array structure."""
    parts = []
    for model, objective, hyper in problems:
        params, model_static = eqx.partition(model, eqx.is_inexact_array)
        obj_arrays, obj_static = eqx.partition(objective, eqx.is_array)
        parts.append(((params, obj_arrays, hyper), (model_static, obj_static)))
    first_dynamic, first_static = parts[0]
    structure = jax.tree_util.tree_structure(first_dynamic)
    for (dynamic, static), index in zip(parts, indices, strict=True):
        same = (jax.tree_util.tree_structure(dynamic) == structure
                and eqx.tree_equal(static, first_static) is True
                and all(a.shape == b.shape for a, b in zip(jax.tree_util.tree_leaves(dynamic),
                        jax.tree_util.tree_leaves(first_dynamic), strict=True)))
        if not same:
            raise ValueError(f"make_problem built a problem of another structure or shape at "
                             f"grid point {index}: members of a sweep may differ only in "
                             "array values (and in their number of examples, which is padded).")
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *[p[0] for p in parts])
    return stacked, first_static


_BUILDING = threading.Lock()
"""One chunk is built at a time: builds are short, and two at once on two CPU devices can hang
XLA:CPU (both waiting on its thread pool for batched LAPACK work, such as an SVD of every
member's target)."""

_LISTENERS: dict[int, Callable[[], None]] = {}
"""Progress callbacks of the chunks running under "map", by the number each was given."""
_listener_ids = itertools.count()


def _member_done(listener, _) -> None:
    """Called from inside a "map" chunk as each member ends (its step count, the second
    argument, makes the call wait for the member's run)."""
    callback = _LISTENERS.get(int(listener))
    if callback is not None:
        callback()


@eqx.filter_jit
@eqx.debug.assert_max_traces(max_traces=None)  # counts compilations; tests read the count
def _run_chunk(batch, static, dynamics, metrics, batching, listener=-1):
    model_static, objective_static = static

    def member(args):
        params, objective, hyper, key = args
        recorded, _, stats = dynamics.run(params, model_static,
                                          eqx.combine(objective, objective_static), key,
                                          metrics, hyperparameters=hyper)
        if batching == "map":  # members end one by one: say so as they do
            jax.debug.callback(_member_done, listener, stats["num_steps"])
        return recorded, stats

    if batching == "vmap":
        return jax.vmap(member)(batch)
    return jax.lax.map(member, batch)


def free_bytes(device) -> int:
    """The free memory of `device`: its allocator's limit less what is in use, or, where it
    reports none (CPUs), the host's available memory.

    **Arguments:**

    - `device`: a JAX device.

    **Returns:** bytes, an int.
    """
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


class ChunkOutput(NamedTuple):
    """One chunk's results, one entry per member along the leading axis of every array."""

    recorded: dict
    stats: dict
    compile_seconds: float
    run_seconds: float
    lane_efficiency: float | None = None
    """Member-steps / lane-steps of a refill chunk; None for "map" and "vmap"."""


def _join(a: ChunkOutput, b: ChunkOutput) -> ChunkOutput:
    join = lambda x, y: np.concatenate([np.asarray(x), np.asarray(y)])
    efficiency = None
    if a.lane_efficiency is not None:  # weighted by each half's member-steps
        steps = [float(np.sum(x.stats["num_steps"])) for x in (a, b)]
        efficiency = sum(steps) / (steps[0] / a.lane_efficiency + steps[1] / b.lane_efficiency)
    return ChunkOutput(jax.tree_util.tree_map(join, a.recorded, b.recorded),
                       jax.tree_util.tree_map(join, a.stats, b.stats),
                       a.compile_seconds + b.compile_seconds, a.run_seconds + b.run_seconds,
                       efficiency)


CPU_LANES = 16
"""Refill lanes on a CPU."""
SEGMENT_SECONDS = 1.0
"""A refill chunk reports progress about this often."""


def default_lanes(chunk_size: int, device) -> int:
    """Lanes of a refill chunk: `CPU_LANES` on a CPU (batched steps gain little there, and
    few lanes keep the tail short), a quarter of the chunk on an accelerator (wide enough to
    fill it, with several members per lane to refill from).

    **Arguments:**

    - `chunk_size`: members per chunk.
    - `device`: the device that runs it.

    **Returns:** the number of lanes, 1..chunk_size.
    """
    lanes = CPU_LANES if device.platform == "cpu" else chunk_size // 4
    return int(min(max(lanes, 1), chunk_size))


@dataclasses.dataclass(frozen=True)
class ChunkRunner:
    """Runs members of a sweep, given by their design indices, as one compiled call.

    **Arguments:**

    - `make_problem`: point settings -> (model, objective[, hyperparameters]).
    - `points`: the design's points, as keywords (a sequence of dicts); vectorized, its
      coordinates {setting name: one value per member} (`design.coordinates()`).
    - `pad_to`: the number of examples of a chunk unless a call gives its own (its bucket's).
    - `dynamics`: the sweep's `Flow` or `Train`; its `precision` is pinned for every call.
    - `metrics`: (model, objective) -> dict of arrays.
    - `batching`: "refill", "vmap" or "map".
    - `seed`: member i draws with key fold_in(key(seed), i), whatever the chunking.
    - `vectorized`: build each chunk by one compiled `vmap` of `make_problem` over its
      settings (`vectorized.build_batch`) instead of member by member in Python.
    - `lanes`: members stepping at once in a "refill" chunk; None for `default_lanes`.
    """

    make_problem: Callable
    points: Sequence[dict] | dict[str, np.ndarray]
    pad_to: int
    dynamics: AbstractDynamics
    metrics: Callable
    batching: str
    seed: int = 0
    vectorized: bool = False
    lanes: int | None = None

    def problem(self, index: int, pad_to: int | None = None):
        """The member at design index `index`, padded.

        **Arguments:**

        - `index`: a design index.
        - `pad_to`: its number of examples; default `self.pad_to`.

        **Returns:** (model, objective, hyperparameters).
        """
        pad_to = self.pad_to if pad_to is None else pad_to
        if not self.vectorized:
            return pad_problem(as_problem(self.make_problem(**self.points[index])), pad_to)
        (params, objective, hyper, _), (model_static, objective_static) = self.batch(
            np.array([index]), pad_to)
        first = jax.tree_util.tree_map(lambda x: x[0], (params, objective, hyper))
        return (eqx.combine(first[0], model_static), eqx.combine(first[1], objective_static),
                first[2])

    def batch(self, members: np.ndarray, pad_to: int | None = None):
        """The members stacked into one batch, with their keys.

        **Arguments:**

        - `members`: design indices.
        - `pad_to`: their number of examples; default `self.pad_to`.

        **Returns:** ((parameters, objective arrays, hyperparameters, keys), static parts).
        """
        pad_to = self.pad_to if pad_to is None else pad_to
        members = np.asarray(members)
        with _BUILDING:
            if self.vectorized:
                settings = {name: np.asarray(values)[members]
                            for name, values in self.points.items()}
                return build_batch(self.make_problem, settings, members, pad_to,
                                   seed=self.seed)
            (params, objectives, hyper), static = _stack(
                [self.problem(i, pad_to) for i in members], members)
            return (params, objectives, hyper, member_keys(self.seed, members)), static

    def __call__(self, members: np.ndarray, device, pad_to: int | None = None,
                 progress: Callable[[int], None] | None = None) -> ChunkOutput:
        """Runs `members` on `device`, compiled. A call that exhausts the device's memory runs
        again as two halves (results are per member, so they do not change).

        **Arguments:**

        - `members`: design indices.
        - `device`: a local JAX device.
        - `pad_to`: the chunk's number of examples (its size bucket's,
          `Plan.padded_size`); default `self.pad_to`.
        - `progress`: called with the chunk's members done so far: under "map" as each ends,
          in a "refill" chunk about every `SEGMENT_SECONDS`, under "vmap" at the end.

        **Returns:** a `ChunkOutput`.
        """
        batch, static = self.batch(members, pad_to)
        batch = jax.device_put(batch, device)
        try:
            with jax.default_matmul_precision(self.dynamics.precision):
                if self.batching == "refill":
                    out = self._refill(batch, static, device, progress)
                else:
                    out = self._call(batch, static, progress)
        except jax.errors.JaxRuntimeError as error:
            if "RESOURCE_EXHAUSTED" not in str(error) or len(members) == 1:
                raise
            del batch
            half = len(members) // 2
            first = self(members[:half], device, pad_to, progress)
            done = len(members[:half])
            rest = self(members[half:], device, pad_to,
                        None if progress is None else lambda n: progress(done + n))
            return _join(first, rest)
        if progress is not None and self.batching == "vmap":
            progress(len(members))
        return out

    def _call(self, batch, static, progress) -> ChunkOutput:
        """A "map" or "vmap" chunk as one compiled call; under "map" `progress` hears of each
        member as it ends."""
        listener, done = next(_listener_ids), itertools.count(1)
        if progress is not None and self.batching == "map":
            _LISTENERS[listener] = lambda: progress(next(done))
        try:
            (recorded, stats), compile_s, run_s = timed_call(
                _run_chunk, batch, static, self.dynamics, self.metrics, self.batching,
                jnp.asarray(listener))
        finally:
            _LISTENERS.pop(listener, None)
        return ChunkOutput(recorded, stats, compile_s, run_s)

    def _refill(self, batch, static, device, progress) -> ChunkOutput:
        """A chunk in refill lanes, advanced in segments of about `SEGMENT_SECONDS` (the first
        short, so that progress shows within seconds)."""
        params, objectives, _, _ = batch  # a flow draws nothing and takes no hyperparameters
        model_static, objective_static = static
        num_members = len(jax.tree_util.tree_leaves(params)[0])
        lanes = min(self.lanes or default_lanes(num_members, device), num_members)
        objective = eqx.combine(objectives, objective_static)
        if progress is None:  # one compiled call
            out, compile_s, run_s = timed_call(refill.refill_run, self.dynamics, params,
                                               model_static, objective, self.metrics,
                                               num_lanes=lanes)
            return ChunkOutput(out.recorded, out.stats, compile_s, run_s,
                               float(out.lane_efficiency))
        state, compile_s, run_s = timed_call(refill.refill_start, self.dynamics, params,
                                             model_static, objective, self.metrics,
                                             num_lanes=lanes)
        iterations = 32
        while int(state.members_done) < num_members:
            state, compile_t, run_t = timed_call(refill.refill_advance, state, iterations)
            compile_s, run_s = compile_s + compile_t, run_s + run_t
            if progress is not None:
                progress(int(state.members_done))
            # Next segment sized from this one's pace.
            iterations = int(np.clip(iterations * SEGMENT_SECONDS / max(run_t, 1e-3), 8, 1 << 20))
        out, compile_t, run_t = timed_call(refill.refill_finish, state)
        return ChunkOutput(out.recorded, out.stats, compile_s + compile_t, run_s + run_t,
                           float(out.lane_efficiency))

    def default_chunk_size(self, devices) -> int:
        """Members per chunk from the smallest free memory of `devices`, a CPU host's shared
        by its CPU devices (see `plan.chunk_size_for_memory`); every padded member has the
        shapes of the first.

        **Arguments:**

        - `devices`: the local devices that take chunks.

        **Returns:** a chunk size, at least 1.
        """
        sample = self.problem(0)
        shapes = jax.eval_shape(self.metrics, sample[0], sample[1])
        num_values = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(shapes))
        per_member = member_bytes(sample, self.dynamics, num_values + 8)
        free = min(free_bytes(d) for d in devices)
        if devices[0].platform == "cpu":  # CPU devices (one per core) share the host's memory
            free //= len(devices)
        return chunk_size_for_memory(per_member, free, self.batching, devices[0].platform)


def run_on_devices(devices: Sequence, chunks: Sequence[int],
                   run: Callable[[int, object], None]) -> None:
    """One worker thread per device, each taking the next chunk of one queue as it finishes
    one: a device that meets a slow chunk does not hold the others.

    **Arguments:**

    - `devices`: local JAX devices.
    - `chunks`: chunk indices, in the order they are taken.
    - `run`: (chunk index, device) -> None, called once per chunk.

    **Returns:** nothing. After an error the other workers stop at their next chunk (the
    chunks they finished are kept) and the error is raised.
    """
    failed, queue = threading.Event(), iter(chunks)
    taking = threading.Lock()

    def worker(device):
        while not failed.is_set():  # another device failed: stop at the chunk boundary
            with taking:
                chunk = next(queue, None)
            if chunk is None:
                return
            try:
                run(chunk, device)
            except BaseException:
                failed.set()
                raise

    with concurrent.futures.ThreadPoolExecutor(len(devices)) as pool:
        futures = [pool.submit(worker, device) for device in devices]
    for future in futures:
        future.result()
