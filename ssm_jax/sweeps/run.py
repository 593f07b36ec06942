"""Sweeps: one dynamics over every member of a design (a grid, or points), batched,
chunked, spread over devices, hosts and shards, with results as one labelled dataset.

How a sweep runs, one module per step:

1. Every member is checked before any compute: built abstractly one by one (`execute`), or,
   vectorized, the design's arrays checked at once and one abstract build traced
   (`vectorized`); everything that varies is an array leaf, so after padding to a bucket's
   number of examples (zero weight, no class) members stack and share one compilation.
2. The `plan` sorts members into size buckets, orders them by a cost key, cuts chunks and
   deals them to shards, processes and devices; a resumed sweep skips the chunks its store
   holds (`store`).
3. Each chunk runs compiled, one worker thread per device (`execute`): flows in refill lanes
   (`dynamics.refill`), reporting members done as they go.
4. Each chunk becomes a dataset over `run` and is written to its region of the store's zarr
   store; the result is the store opened lazily and labelled by the design (without a
   store: the chunks assembled in memory, `dataset`).
"""

from collections.abc import Callable
import math
import threading

import jax
import numpy as np
import xarray as xr

from .. import _validate
from ..dynamics.base import AbstractDynamics, objective_metrics
from ..dynamics.discrete import Train
from ..dynamics.flow import Flow
from .cpu_cores import warn_if_dispatched
from .dataset import (
    chunk_dataset,
    grid_class_groups,
    grid_predictions,
    label_by_grid,
    merge_chunks,
)
from .execute import ChunkRunner, run_on_devices
from .grid import AbstractDesign
from .member_checks import check_members
from .plan import MAX_BUCKETS, MIN_BUCKET, make_plan
from .points import design_from_dict
from .store import (
    SweepStore,
    check_finished,
    check_store,
    open_store,
    read_manifest,
    stored_chunks,
)
from .vectorized import check_vectorized


def sweep(make_problem: Callable, design: AbstractDesign, t1=None, *, num_saves: int = 100,
          dynamics: Flow | Train | None = None, metrics=objective_metrics,
          class_groups: dict[str, list[int]] | None = None, order_by: Callable | None = None,
          predict: Callable[..., dict[str, float]] | None = None,
          vectorized: bool = False, chunk_size: int | None = None,
          max_batch: int | None = None, batching: str = "auto", lanes: int | None = None,
          devices=None, pad_to: int | None = None, max_buckets: int = MAX_BUCKETS,
          min_bucket: int = MIN_BUCKET,
          store=None, resume: bool = False, shard: tuple[int, int] | None = None,
          seed: int = 0, progress: Callable[[int, int], None] | None = None,
          metadata: dict | None = None) -> xr.Dataset | None:
    """Runs `dynamics` for every member of `design` and returns the results as a dataset.

    **Arguments:**

    - `make_problem`: member settings (keywords named like the design's axes) -> (model,
      objective) or (model, objective, hyperparameters). Members may differ only in array
      values and in their number of examples.
    - `design`: a `Grid` (every combination of its axes) or `Points` (one member per
      index of its equal-length axes).
    - `t1`, `num_saves`: shorthand for `dynamics=Flow(t1, num_saves)`.
    - `dynamics`: `Flow(...)` or `Train(...)`; each chunk runs under its matmul `precision`,
      and a `Flow` with `unroll=None` steps its solver unrolled.
    - `metrics`: what each member records, as for `gradient_flow`.
    - `class_groups`: e.g. {"majority": [0, 1], "minority": [2, 3]}: per-class metrics are
      averaged within each group and `cls` is labelled by group; or a function of a member's
      settings returning such a dict (the same names everywhere), for groups that follow each
      member's own counts. Indices must lie in 0..k-1, each class in at most one group.
    - `order_by`: member settings -> a number; members are run in that order, so that a
      chunk holds members of similar cost (a predicted step count is a good key).
    - `predict`: member settings -> {name: number}, e.g. closed-form predictions; computed
      before any compute and recorded as variables over the design's dimensions (and in the
      store). Names must differ from the recorded metrics'.
    - `vectorized`: build each chunk by one traced `vmap` of `make_problem` over the
      design's arrays (no per-member Python): `make_problem` must be traceable in every
      setting the design varies (`problems.imbalance_problem` is), and takes a static
      `pad_to` keyword where its number of examples depends on them. If it offers
      `check_settings(settings)` and `num_examples(settings)` (as `config.ConfiguredProblem`
      does), the design's arrays are checked with the first and the padding bound and size
      buckets come from the second. `order_by` and `predict` are then called once, with
      arrays of every member's settings, and return arrays.
    - `chunk_size`: members per compiled call (the unit of storing and resuming); default
      from the batching and the devices' free memory, or, when resuming, the stored sweep's.
      `max_batch` caps it.
    - `batching`: "refill" (gradient flows without an event: lanes that each step their own
      member and take the next when theirs ends, no lockstep), "vmap" (lockstep), "map"
      (`lax.map`, one member after another inside one call) or "auto": "map" on CPUs, and
      on accelerators "refill" for a `Flow` without an event, else "vmap".
    - `lanes`: members stepping at once in a "refill" chunk (default
      `execute.default_lanes`).
    - `devices`: local devices to spread chunks over (default all).
    - `pad_to`: one number of examples for every member; default: members are padded per
      size bucket (`plan.size_buckets`: at most `max_buckets` sizes, one compilation each,
      and at most one per `min_bucket` members).
    - `store`: a folder to write each finished chunk to (`sweeps.store`: one zarr store, a
      done marker per chunk), checked and locked before any compute (a second writer is
      refused), written from the first chunk on (a sweep that fails before it leaves nothing);
      with `resume=True` a sweep that was stopped continues there, redoing exactly the chunks
      without a done marker. The result is then opened lazily from the store.
    - `shard`: (i, N): run only the chunks c with c mod N = i (with several processes, shard
      i * P + p of N * P), into `store`, which may already hold the other shards' chunks; a
      job array runs the N shards at once, and `open_sweep` (`ssm-jax merge`) finishes it.
    - `seed`: member i uses key fold_in(key(seed), i) (minibatches), whatever the chunking.
    - `progress`: called with (members done, members total) once before any compute (the
      members a resumed sweep finds done), then as members finish: under "map" as each
      ends, in a "refill" chunk about every second, under "vmap" after each chunk.
    - `metadata`: anything JSON can hold (e.g. the configuration file), kept with the store
      and in the dataset's `config` attribute.

    **Returns:** an `xarray.Dataset` over the design's dimensions (the grid's axes, or
    `point`) and (time, cls | mode) with every recorded metric, `learning_time`,
    `num_steps`, `status` (`STATUS` codes; a member that is not ok has NaN wherever its
    values did not happen), the predictions; per chunk `chunk_waste` (the share of lane-steps
    that moved no member), `chunk_compile_seconds`, `chunk_run_seconds`, `chunk_device`;
    CF-style `long_name` and `units` on every variable (time in steps for `Train`); config,
    versions, git revision, devices, batching, lane efficiency and totals in its attributes.
    With a store, its variables are read only when used. In a multi-process or sharded run,
    None until every chunk of the store is done.

    Every argument and every member is checked before any compute (a `ValueError` names the
    argument or the member), and nothing is written before the first chunk is done.
    """
    _check_arguments(make_problem, design, t1, dynamics,
                     {"metrics": metrics, "order_by": order_by, "predict": predict,
                      "progress": progress})
    if dynamics is None:
        dynamics = Flow(t1=t1, num_saves=num_saves)
    if isinstance(dynamics, Flow) and dynamics.unroll is None:
        # Compiled once for many members: its stages unrolled, as the refill lanes step.
        dynamics = dynamics.unrolled()
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("`devices` = [] is not allowed: expected at least one local device.")
    warn_if_dispatched(devices)
    batching = _batching(batching, dynamics, devices[0].platform)
    for name, value, minimum in (("chunk_size", chunk_size, 1), ("max_batch", max_batch, 1),
                                 ("lanes", lanes, 1), ("pad_to", pad_to, 1),
                                 ("max_buckets", max_buckets, 1), ("min_bucket", min_bucket, 1),
                                 ("seed", seed, 0)):
        if value is not None:
            _validate.integer(name, value, minimum=minimum)
    shard = _check_shard(shard, store)
    # Other processes and shards write into the same store: each may find it begun.
    joining = resume or shard != (0, 1) or jax.process_index() != 0
    if store is not None:  # cheap, so before the pass over every member
        store = check_store("store", store, joining)

    # Everything is checked before any compute.
    if vectorized:
        points = design.coordinates()
        checked = check_vectorized(make_problem, points, dynamics, metrics, pad_to,
                                   check=getattr(make_problem, "check_settings", None),
                                   num_examples=getattr(make_problem, "num_examples", None))
        keys = None if order_by is None else _vector_keys(order_by, points, design.size)
        predictions = grid_predictions(predict, points, vectorized=True)
        member_points = [design.point(i) for i in range(design.size)] if callable(
            class_groups) else []
    else:
        points = member_points = [design.point(i) for i in range(design.size)]
        checked = check_members(make_problem, points, dynamics, metrics, pad_to)
        keys = None if order_by is None else _order_keys(order_by, points)
        predictions = grid_predictions(predict, points)
    groups = grid_class_groups(class_groups, member_points,
                               _num_classes(checked.metric_shapes, class_groups))
    runner = ChunkRunner(make_problem, points, checked.pad_to, dynamics, metrics, batching,
                         seed, vectorized, lanes)
    stored = None if store is None or not joining else read_manifest(store)
    if chunk_size is None and stored is not None:
        # A resumed sweep (or a later shard) keeps the chunk plan the store started with.
        chunk_size, max_batch = stored["chunk_size"], None
    if chunk_size is None:
        chunk_size = runner.default_chunk_size(devices)
    plan = make_plan(design.size, keys, chunk_size, max_batch=max_batch,
                     process_index=shard[0] * jax.process_count() + jax.process_index(),
                     process_count=shard[1] * jax.process_count(),
                     num_examples=None if pad_to is not None else checked.num_examples,
                     max_buckets=max_buckets, min_bucket=min_bucket)

    manifest = {"design": design.kind, "grid": design.to_dict(),
                "dynamics": dynamics.describe(), "batching": batching,
                "chunk_size": plan.chunk_size, "order": list(plan.order),
                "class_groups": None if groups is None else groups.describe(),
                "pad_to": checked.pad_to, "max_buckets": max_buckets, "seed": seed,
                "predictions": sorted(predictions), "metadata": metadata}
    sweep_store = None if store is None else SweepStore(
        store, manifest, design.coordinates(),
        lambda ds: label_by_grid(merge_chunks([ds]), design, manifest), resume=joining,
        shard=shard, process=(jax.process_index(), jax.process_count()))
    if sweep_store is not None:
        plan = plan.skipping(stored_chunks(store))

    results: dict[int, xr.Dataset] = {}
    lock = threading.Lock()
    finished, running = [plan.members_done], {}

    def report(chunk: int, done: int) -> None:
        """Members done: whole chunks, plus those done inside the chunks running."""
        with lock:
            running[chunk] = done
            if progress is not None:
                progress(finished[0] + sum(running.values()), design.size)

    def run(chunk: int, device) -> None:
        members = plan.chunks[chunk]
        out = runner(plan.filled(chunk), device, plan.padded_size(chunk),
                     None if progress is None else
                     lambda done: report(chunk, min(done, len(members))))
        ds = chunk_dataset(out.recorded, out.stats, members,
                           record_times=dynamics.record_times(), class_groups=groups,
                           predictions=predictions, lockstep=batching == "vmap",
                           lane_efficiency=out.lane_efficiency, index=chunk,
                           compile_seconds=out.compile_seconds, run_seconds=out.run_seconds,
                           device=str(device))
        if sweep_store is not None:
            sweep_store.write(chunk, ds)
        with lock:
            if sweep_store is None:  # a store holds the results, not memory
                results[chunk] = ds
            running.pop(chunk, None)
            finished[0] += len(members)
            if progress is not None:
                progress(finished[0] + sum(running.values()), design.size)

    if progress is not None:  # what a resumed sweep starts from, before any compute
        progress(finished[0], design.size)
    try:
        run_on_devices(devices, plan.queue, run)
    finally:
        if sweep_store is not None:
            sweep_store.close()

    if sweep_store is not None:
        if len(stored_chunks(store)) < len(plan.chunks):
            return None  # other processes or shards are still writing their chunks
        out = open_sweep(store)
    else:
        out = label_by_grid(merge_chunks([results[c] for c in sorted(results)]), design,
                            manifest)
    out.attrs.update(batching=batching, devices=", ".join(str(d) for d in devices))
    if batching == "refill":
        out.attrs["lane_efficiency"] = 1.0 - out.attrs["waste"]
    return out


def _batching(batching: str, dynamics, platform: str) -> str:
    """The batching `sweep` runs with, "auto" resolved."""
    _validate.choice("batching", batching, ("auto", "refill", "vmap", "map"))
    refills = isinstance(dynamics, Flow) and dynamics.event is None
    if batching == "refill" and not refills:
        raise ValueError(f"`batching` = 'refill' is not allowed with {dynamics.describe()}: "
                         "refill lanes run gradient flows without an event; expected 'map' "
                         "or 'vmap' (or 'auto').")
    if batching == "auto":
        if platform == "cpu":  # members one after another: no lockstep, unbatched matmuls
            return "map"
        return "refill" if refills else "vmap"
    return batching


def _check_arguments(make_problem, design, t1, dynamics, functions: dict) -> None:
    """The arguments of `sweep` that need no member built."""
    if not isinstance(design, AbstractDesign):
        raise ValueError(f"`design` = {design!r} is not allowed: expected an ssm_jax.Grid, e.g. "
                         "Grid(ratio=[1, 10], power=[0.0, 1.0]), or ssm_jax.Points.")
    if not callable(make_problem):
        raise ValueError(f"`make_problem` = {make_problem!r} is not allowed: expected a "
                         "function of the design's settings returning (model, objective).")
    if dynamics is None and t1 is None:
        raise ValueError("Give `t1` (a gradient flow's final time) or `dynamics`.")
    if dynamics is not None and t1 is not None:
        raise ValueError(f"`t1` = {t1!r} and `dynamics` are both given: give one (the final "
                         "time goes into Flow(t1, ...)).")
    if dynamics is not None and not isinstance(dynamics, AbstractDynamics):
        raise ValueError(f"`dynamics` = {dynamics!r} is not allowed: expected ssm_jax.Flow(...) "
                         "or ssm_jax.Train(...).")
    for name, function in functions.items():
        if function is not None and not callable(function):
            raise ValueError(f"`{name}` = {function!r} is not allowed: expected a function.")


def _num_classes(metric_shapes: dict, class_groups) -> int:
    """k of the members' per-class metrics, which `class_groups` group."""
    per_class = [v for name, v in metric_shapes.items() if name.startswith("class_")]
    if class_groups is not None and not per_class:
        raise ValueError(f"`class_groups` = {class_groups!r} is not allowed: the members record "
                         f"no per-class metric (only {', '.join(sorted(metric_shapes))}); "
                         "expected None.")
    return int(per_class[0].shape[-1]) if per_class else 0


def _order_keys(order_by: Callable, points: list[dict]) -> list[float]:
    keys = []
    for point in points:
        key = order_by(**point)
        try:
            value = float(key)
        except (TypeError, ValueError):
            value = math.nan
        if math.isnan(value):
            raise ValueError(f"`order_by` at grid point {point} returned {key!r}: expected a "
                             "number (a cost; members run in increasing order).")
        keys.append(value)
    return keys


def _vector_keys(order_by: Callable, settings: dict, size: int) -> np.ndarray:
    """`order_by` called once on every member's settings (a vectorized sweep)."""
    keys = order_by(**settings)
    try:
        values = np.broadcast_to(np.asarray(keys, dtype=float), (size,))
    except (TypeError, ValueError):
        values = None
    if values is None or np.isnan(values).any():
        raise ValueError(f"`order_by` returned {keys!r} for the design's arrays: expected one "
                         f"number per member ({size}; a cost, members run in increasing "
                         "order), none NaN.")
    return values


def _check_shard(shard, store) -> tuple[int, int]:
    """`shard` as (i, N), checked; (0, 1) for None."""
    if shard is None:
        return (0, 1)
    allowed = "expected (i, N) with integers 0 <= i < N, and a `store`"
    if (not isinstance(shard, (tuple, list)) or len(shard) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                       for v in shard)
            or not 0 <= shard[0] < shard[1] or store is None):
        raise ValueError(f"`shard` = {shard!r} is not allowed: {allowed}.")
    return int(shard[0]), int(shard[1])


def open_sweep(path) -> xr.Dataset:
    """The dataset of a finished sweep store (e.g. after a multi-host or sharded sweep),
    labelled by its grid and opened lazily: a variable is read from the store when used.

    **Arguments:**

    - `path`: the store's folder; it may not be writable.

    **Returns:** the dataset `sweep` returns. Raises `ValueError` if `path` holds no sweep or
    chunks are missing, saying which shards to rerun (or to resume the sweep).
    """
    manifest = check_finished(path)
    grid = design_from_dict(manifest.get("design", "grid"), manifest["grid"])
    stored = open_store(path)  # over `run` in the order the members ran
    # The small variables are labelled by `label_by_grid`, with each member's position in the
    # store; the others are taken lazily from those positions (vectorized indexing).
    small = ["num_steps", *(v for v in stored.data_vars if "chunk" in stored[v].dims)]
    order = np.argsort(stored.run.values)
    labelled = label_by_grid(stored[small].isel(run=order).assign(position=("run", order)),
                             grid, manifest)
    position = labelled["position"].astype(int)
    members = stored.drop_vars([*small, *(c for c in stored.coords if "run" in stored[c].dims)])
    return labelled.drop_vars("position").assign(members.isel(run=position).data_vars)
