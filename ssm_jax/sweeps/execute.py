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
import threading
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._timing import timed_call
from ..dynamics.base import AbstractDynamics
from ..objective import AbstractObjective
from .padding import pad_examples
from .plan import chunk_size_for_memory, member_bytes, padded_size


def _parts(result):
    """(model, objective, hyperparameters as given) from what `make_problem` returned."""
    if not isinstance(result, (tuple, list)) or len(result) not in (2, 3):
        raise ValueError(f"`make_problem` returned a {type(result).__name__}: expected "
                         "(model, objective) or (model, objective, hyperparameters).")
    model, objective, *rest = result
    hyper = rest[0] if rest else {}
    if not isinstance(objective, AbstractObjective):
        raise ValueError(f"`make_problem` returned an objective of type "
                         f"{type(objective).__name__}: expected an AbstractObjective such as "
                         "ssm_jax.Objective or ssm_jax.TargetFit.")
    if not isinstance(hyper, dict):
        raise ValueError(f"`make_problem` returned hyperparameters {hyper!r}: expected a dict "
                         "such as {'learning_rate': 0.1}.")
    return model, objective, hyper


def _as_problem(result):
    model, objective, hyper = _parts(result)
    return model, objective, {k: jnp.asarray(v) for k, v in hyper.items()}


def _pad(problem, size: int):
    model, objective, hyper = problem
    return pad_examples(model, size), pad_examples(objective, size), hyper


def _checked_problem(make_problem, point, dynamics):
    """A member with every check of a single run: the model fits the objective, and the
    dynamics takes the objective and the member's hyperparameters (as given, so that a
    negative learning rate is seen even under `eval_shape`)."""
    model, objective, hyper = _parts(make_problem(**point))
    objective.check_model(model)
    dynamics.check(objective, hyper)
    return model, objective, {k: jnp.asarray(v) for k, v in hyper.items()}


def _signature(problem) -> tuple:
    """What members must share to stack: the structure, and each leaf's shape and dtype (an
    array) or value (anything else)."""
    leaves, structure = jax.tree_util.tree_flatten(problem)
    return structure, tuple((leaf.shape, leaf.dtype) if isinstance(leaf, jax.ShapeDtypeStruct)
                            else leaf for leaf in leaves)


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except ValueError:  # arrays among the settings: `_stack` compares them when it runs
        return True


def _difference(a: tuple, b: tuple) -> str:
    """The first difference of two signatures, in words."""
    if not _same(a[0], b[0]) or len(a[1]) != len(b[1]):
        return "its parts differ"
    for x, y in zip(a[1], b[1], strict=True):
        if not _same(x, y):
            if isinstance(x, tuple) and isinstance(y, tuple):
                return f"an array of shape {x[0]} where the other has {y[0]}"
            return f"{x!r} where the other has {y!r}"
    return "its parts differ"


class Members(NamedTuple):
    """What the abstract pass over a sweep's members found (`check_members`)."""

    pad_to: int
    """The common number of examples that every member is padded to."""
    metric_shapes: dict
    """The abstract metrics one member records per record time."""


def check_members(make_problem: Callable, points: Sequence[dict], dynamics, metrics,
                  pad_to: int | None = None) -> Members:
    """Builds every member abstractly (`equinox.filter_eval_shape`, no compute) and runs all
    the checks of a single run before any compute: the constructors' checks, that each model
    fits its objective, `dynamics.check` with the member's hyperparameters, and that all
    members stack into one batch once padded (the same structure and shapes).

    **Arguments:**

    - `make_problem`: point settings -> (model, objective[, hyperparameters]).
    - `points`: the grid's points, as keywords.
    - `dynamics`: the sweep's dynamics.
    - `metrics`: (model, objective) -> dict of arrays, what each member records.
    - `pad_to`: the wanted common number of examples, or None for the largest.

    **Returns:** `Members`. Raises `ValueError` naming the grid point at fault.
    """
    def build(point, size=None):
        try:
            problem = eqx.filter_eval_shape(lambda: _checked_problem(make_problem, point,
                                                                     dynamics))
            return problem if size is None else eqx.filter_eval_shape(_pad, problem, size)
        except (ValueError, TypeError) as error:
            raise ValueError(f"Grid point {point}: {error}") from error

    # Members with as many examples as a first one must match it; the first of each size
    # must match the very first once both are padded.
    firsts: dict[int, tuple[int, tuple]] = {}
    for index, point in enumerate(points):
        problem = build(point)
        size = int(problem[1].labels.shape[0])
        signature = _signature(problem)
        first, expected = firsts.setdefault(size, (index, signature))
        if not _same(signature, expected):
            _refuse_structure(points, index, first, _difference(signature, expected))
    pad_to = padded_size(list(firsts), pad_to)
    padded = {index: _signature(build(points[index], pad_to)) for index, _ in firsts.values()}
    reference = min(padded)
    for index, signature in padded.items():
        if not _same(signature, padded[reference]):
            _refuse_structure(points, index, reference,
                              _difference(signature, padded[reference]))
    model, objective, _ = build(points[reference], pad_to)
    # Metrics are recorded on the objective at each record time (weights may change with time).
    at_start = eqx.filter_eval_shape(lambda o: o.at(dynamics.record_times()[0]), objective)
    return Members(pad_to, eqx.filter_eval_shape(metrics, model, at_start))


def _refuse_structure(points, index: int, other: int, difference: str):
    raise ValueError(f"`make_problem` built a problem at grid point {points[index]} that cannot "
                     f"share a batch with the one at {points[other]} ({difference}): members "
                     "of a sweep may differ only in array values and in their number of "
                     "examples (which is padded), not in shapes or other settings.")


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

    **Returns:** nothing. After an error the other workers stop at their next chunk (the
    chunks they finished are kept) and the error is raised.
    """
    failed = threading.Event()

    def worker(device, chunks):
        for chunk in chunks:
            if failed.is_set():  # another device failed: stop at the chunk boundary
                return
            try:
                run(chunk, device)
            except BaseException:
                failed.set()
                raise

    with concurrent.futures.ThreadPoolExecutor(len(devices)) as pool:
        futures = [pool.submit(worker, d, a) for d, a in zip(devices, assignments, strict=True)]
    for future in futures:
        future.result()
