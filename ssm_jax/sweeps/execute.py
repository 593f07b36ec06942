"""Running a sweep's chunks: each chunk's problems built, padded to one number of examples
and stacked into one batch, run compiled on one device by the sweep's batching
(`sweeps.batching`), and the chunks spread over the devices by one worker thread each, taking
them from one queue.

Members are built in Python (the problem, checked beforehand by `member_checks`), or,
vectorized, all of a chunk at once (`vectorized`). Each chunk is padded to its own number of
examples (its size bucket, see `plan`).
"""

from collections.abc import Callable, Sequence
import dataclasses
import os
import threading
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..dynamics.base import AbstractDynamics
from .batching import AbstractBatching, ChunkOutput
from .padding import pad_problem
from .plan import member_bytes
from .vectorized import as_member, build_batch, member_keys


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


@dataclasses.dataclass(frozen=True)
class ChunkRunner:
    """Runs members of a sweep, given by their design indices, as one compiled call.

    **Arguments:**

    - `problem`: an `AbstractProblem`, settings -> (model, objective[, hyperparameters]).
    - `points`: the design's points, as keywords (a sequence of dicts); vectorized, its
      coordinates {setting name: one value per member} (`design.coordinates()`).
    - `pad_to`: the number of examples of a chunk unless a call gives its own (its bucket's).
    - `dynamics`: the sweep's `Flow` or `Train`, prepared by the batching; its `precision` is
      pinned for every call.
    - `metrics`: (model, objective) -> dict of arrays.
    - `batching`: an `AbstractBatching`: how a chunk runs.
    - `seed`: member i draws with key fold_in(key(seed), i), whatever the chunking.
    - `vectorized`: build each chunk by one compiled `vmap` of the problem over its settings
      (`vectorized.build_batch`) instead of member by member in Python.
    """

    problem: Callable
    points: Sequence[dict] | dict[str, np.ndarray]
    pad_to: int
    dynamics: AbstractDynamics
    metrics: Callable
    batching: AbstractBatching
    seed: int = 0
    vectorized: bool = False

    def member(self, index: int, pad_to: int | None = None):
        """The member at design index `index`, padded.

        **Arguments:**

        - `index`: a design index.
        - `pad_to`: its number of examples; default `self.pad_to`.

        **Returns:** (model, objective, hyperparameters).
        """
        pad_to = self.pad_to if pad_to is None else pad_to
        if not self.vectorized:
            return pad_problem(as_member(self.problem(**self.points[index])), pad_to)
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
                return build_batch(self.problem, settings, members, pad_to, seed=self.seed)
            (params, objectives, hyper), static = _stack(
                [self.member(i, pad_to) for i in members], members)
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
        - `progress`: called with the chunk's members done so far, as the batching reports.

        **Returns:** a `ChunkOutput`.
        """
        batch, static = self.batch(members, pad_to)
        batch = jax.device_put(batch, device)
        try:
            with jax.default_matmul_precision(self.dynamics.precision):
                return self.batching.run(batch, static, self.dynamics, self.metrics, device,
                                         progress)
        except jax.errors.JaxRuntimeError as error:
            if "RESOURCE_EXHAUSTED" not in str(error) or len(members) == 1:
                raise
        del batch
        half = len(members) // 2
        first = self(members[:half], device, pad_to, progress)
        rest = self(members[half:], device, pad_to,
                    None if progress is None else lambda n: progress(half + n))
        return _join(first, rest)

    def default_chunk_size(self, devices, pilot: int | None = None) -> int:
        """Members per chunk by the batching's rule, from the smallest free memory of
        `devices`, a CPU host's shared by its CPU devices (every padded member has the
        shapes of the first), and, given a `pilot` member, from its run time alone.

        **Arguments:**

        - `devices`: the local devices that take chunks.
        - `pilot`: a design index to time (the costliest member), or None.

        **Returns:** a chunk size, at least 1.
        """
        per_member, free = self.memory(devices)
        seconds = None if pilot is None else self.seconds(pilot, devices[0])
        return self.batching.chunk_size(per_member, free, devices[0].platform, seconds)

    def memory(self, devices) -> tuple[int, int]:
        """One member's memory in a chunk and the free memory of the smallest of `devices`
        (`device_memory`); every padded member has the shapes of the first. A member that
        cannot fit in half of it is refused (`check_member_memory`).

        **Arguments:**

        - `devices`: the local devices that take chunks.

        **Returns:** (bytes per member, free bytes). Raises `ValueError` for a member too
        large, naming what it records.
        """
        sample = self.member(0)
        shapes = jax.eval_shape(self.metrics, sample[0], sample[1])
        num_values = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(shapes))
        per_member = member_bytes(sample, self.dynamics, num_values + 8)
        free = device_memory(devices)
        check_member_memory(per_member, free, self.dynamics.record_times().size, num_values)
        return per_member, free

    def seconds(self, index: int, device) -> float:
        """The run time of member `index` alone on `device`: its second run's wall time (the
        first compiles).

        **Arguments:**

        - `index`: a design index.
        - `device`: a local device.

        **Returns:** seconds.
        """
        model, objective, hyper = self.member(index)
        key = member_keys(self.seed, [index])[0]
        with jax.default_device(device):
            for _ in range(2):
                start = time.perf_counter()
                self.dynamics(model, objective, key=key, metrics=self.metrics,
                              hyperparameters=hyper)
        return time.perf_counter() - start


def device_memory(devices) -> int:
    """The free memory of the smallest of `devices`, a CPU host's shared by its CPU devices.

    **Arguments:**

    - `devices`: local devices.

    **Returns:** bytes.
    """
    free = min(free_bytes(d) for d in devices)
    return free // len(devices) if devices[0].platform == "cpu" else free


def readable_bytes(size: float) -> str:
    """`size` bytes in words, e.g. "2.8 KiB" or "1.5 GiB".

    **Arguments:**

    - `size`: a number of bytes.

    **Returns:** a string.
    """
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.3g} {unit}"
        size /= 1024


def check_member_memory(per_member: int, free: int, records: int, values: int) -> None:
    """Refuses a member that cannot fit in half of a device's free memory, before compute.

    **Arguments:**

    - `per_member`: its bytes (at least its records, 8 bytes a value).
    - `free`: the device's free bytes (`device_memory`).
    - `records`, `values`: its record times and values recorded at each, for the message.

    **Returns:** nothing. Raises `ValueError`.
    """
    if per_member > free // 2:
        raise ValueError(f"One member needs about {readable_bytes(per_member)} ({records} "
                         f"record times x {values} recorded values, and its state), more "
                         f"than half of a device's free memory ({readable_bytes(free)}): "
                         "record fewer times (`num_saves`, `record_every`) or fewer metrics.")


def run_on_devices(devices: Sequence, chunks: Sequence[int], run: Callable[[int, object], None],
                   stop: threading.Event | None = None) -> None:
    """One worker thread per device, each taking the next chunk of one queue as it finishes
    one: a device that meets a slow chunk does not hold the others.

    The workers are daemon threads and the caller waits for them in short, interruptible
    waits: a signal handler that raises (`stopping.StopSignals`) reaches the caller within a
    fraction of a second, even while a chunk computes (a compiled call cannot be cut short;
    its worker finishes it in the background and takes no other).

    **Arguments:**

    - `devices`: local JAX devices.
    - `chunks`: chunk indices, in the order they are taken.
    - `run`: (chunk index, device) -> None, called once per chunk.
    - `stop`: once set, workers take no new chunk.

    **Returns:** nothing. After an error the other workers stop at their next chunk (the
    chunks they finished are kept) and the error is raised.
    """
    stop = threading.Event() if stop is None else stop
    queue = iter(chunks)
    taking = threading.Lock()  # one worker at a time takes the next chunk
    errors = []

    def worker(device):
        while not stop.is_set():  # stopped, or another device failed: at a chunk boundary
            with taking:
                chunk = next(queue, None)
            if chunk is None:
                return
            try:
                run(chunk, device)
            except BaseException as error:  # handed to the caller, raised there
                errors.append(error)
                stop.set()
                return

    threads = [threading.Thread(target=worker, args=(device,), daemon=True,
                                name=f"ssm_jax sweep worker {device}") for device in devices]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.1)
    if errors:
        raise errors[0]
