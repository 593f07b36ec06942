"""Running a sweep's chunks: each chunk's problems built, padded to one number of examples
and stacked into one batch, run as one compiled call on one device, and the chunks spread
over the devices by one worker thread each.

Members are built in Python (`make_problem`), checked beforehand by an abstract evaluation of
every grid point. Inside a chunk, members run under `vmap` (accelerators) or `lax.map` (CPUs,
where batched small matmuls are slower than a loop and a vmapped adaptive solve waits for its
slowest member).
"""

from collections.abc import Callable, Sequence
import concurrent.futures
import dataclasses
import os
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._timing import timed_call
from ..dynamics.base import AbstractDynamics
from .padding import pad_examples
from .plan import chunk_size_for_memory, member_bytes


def _as_problem(result):
    model, objective, *rest = result
    hyper = rest[0] if rest else {}
    return model, objective, {k: jnp.asarray(v) for k, v in hyper.items()}


def _pad(problem, size: int):
    model, objective, hyper = problem
    return pad_examples(model, size), pad_examples(objective, size), hyper


def example_counts(make_problem: Callable, points: Sequence[dict], dynamics) -> list[int]:
    """Builds every member abstractly (`jax.eval_shape`, no compute): this runs the
    constructors' checks and `dynamics.check`, and counts each member's examples.

    **Arguments:**

    - `make_problem`: point settings -> (model, objective[, hyperparameters]).
    - `points`: the grid's points, as keywords.
    - `dynamics`: the sweep's dynamics.

    **Returns:** each member's number of examples. Raises `ValueError` naming the grid point
    at fault.
    """
    counts = []
    for point in points:
        try:
            _, objective, _ = jax.eval_shape(lambda p=point: _as_problem(make_problem(**p)))
            dynamics.check(objective)
        except (ValueError, TypeError) as error:
            raise ValueError(f"Grid point {point}: {error}") from error
        counts.append(int(objective.labels.shape[0]))
    return counts


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


@eqx.filter_jit
@eqx.debug.assert_max_traces(max_traces=None)  # counts compilations; tests read the count
def _run_chunk(batch, static, dynamics, metrics, batching):
    model_static, objective_static = static

    def member(args):
        params, objective, hyper, key = args
        recorded, _, stats = dynamics.run(params, model_static,
                                          eqx.combine(objective, objective_static), key,
                                          metrics, hyperparameters=hyper)
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


def _join(a: ChunkOutput, b: ChunkOutput) -> ChunkOutput:
    join = lambda x, y: np.concatenate([np.asarray(x), np.asarray(y)])
    return ChunkOutput(jax.tree_util.tree_map(join, a.recorded, b.recorded),
                       jax.tree_util.tree_map(join, a.stats, b.stats),
                       a.compile_seconds + b.compile_seconds, a.run_seconds + b.run_seconds)


@dataclasses.dataclass(frozen=True)
class ChunkRunner:
    """Runs members of a sweep, given by their grid indices, as one compiled call.

    **Arguments:**

    - `make_problem`: point settings -> (model, objective[, hyperparameters]).
    - `points`: the grid's points, as keywords.
    - `pad_to`: the common number of examples.
    - `dynamics`: the sweep's `Flow` or `Train`; its `precision` is pinned for every call.
    - `metrics`: (model, objective) -> dict of arrays.
    - `batching`: "vmap" or "map".
    - `seed`: member i draws with key fold_in(key(seed), i), whatever the chunking.
    """

    make_problem: Callable
    points: Sequence[dict]
    pad_to: int
    dynamics: AbstractDynamics
    metrics: Callable
    batching: str
    seed: int = 0

    def problem(self, index: int):
        """The member at grid index `index`, padded.

        **Arguments:**

        - `index`: a grid index.

        **Returns:** (model, objective, hyperparameters).
        """
        return _pad(_as_problem(self.make_problem(**self.points[index])), self.pad_to)

    def batch(self, members: np.ndarray):
        """The members stacked into one batch, with their keys.

        **Arguments:**

        - `members`: grid indices.

        **Returns:** ((parameters, objective arrays, hyperparameters, keys), static parts).
        """
        (params, objectives, hyper), static = _stack([self.problem(i) for i in members],
                                                     members)
        base_key = jax.random.key(self.seed)
        keys = jax.vmap(lambda i: jax.random.fold_in(base_key, i))(jnp.asarray(members))
        return (params, objectives, hyper, keys), static

    def __call__(self, members: np.ndarray, device) -> ChunkOutput:
        """Runs `members` in one compiled call on `device`. A call that exhausts the device's
        memory runs again as two halves (results are per member, so they do not change).

        **Arguments:**

        - `members`: grid indices.
        - `device`: a local JAX device.

        **Returns:** a `ChunkOutput`.
        """
        batch, static = self.batch(members)
        batch = jax.device_put(batch, device)
        try:
            with jax.default_matmul_precision(self.dynamics.precision):
                (recorded, stats), compile_s, run_s = timed_call(
                    _run_chunk, batch, static, self.dynamics, self.metrics, self.batching)
        except jax.errors.JaxRuntimeError as error:
            if "RESOURCE_EXHAUSTED" not in str(error) or len(members) == 1:
                raise
            del batch
            half = len(members) // 2
            return _join(self(members[:half], device), self(members[half:], device))
        return ChunkOutput(recorded, stats, compile_s, run_s)

    def default_chunk_size(self, devices) -> int:
        """Members per chunk from the smallest free memory of `devices` (see
        `plan.chunk_size_for_memory`); every padded member has the shapes of the first.

        **Arguments:**

        - `devices`: the local devices that take chunks.

        **Returns:** a chunk size, at least 1.
        """
        sample = self.problem(0)
        shapes = jax.eval_shape(self.metrics, sample[0], sample[1])
        num_values = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(shapes))
        per_member = member_bytes(sample, self.dynamics, num_values + 8)
        return chunk_size_for_memory(per_member, min(free_bytes(d) for d in devices),
                                     self.batching)


def run_on_devices(devices: Sequence, assignments: Sequence[Sequence[int]],
                   run: Callable[[int, object], None]) -> None:
    """One worker thread per device, each running its own chunks in turn: a device that
    meets a slow chunk does not hold the others.

    **Arguments:**

    - `devices`: local JAX devices.
    - `assignments`: for each device, its chunk indices.
    - `run`: (chunk index, device) -> None, called once per chunk.

    **Returns:** nothing; the first error of any worker is raised.
    """
    def worker(device, chunks):
        for chunk in chunks:
            run(chunk, device)

    with concurrent.futures.ThreadPoolExecutor(len(devices)) as pool:
        futures = [pool.submit(worker, d, a) for d, a in zip(devices, assignments, strict=True)]
        for future in futures:
            future.result()
