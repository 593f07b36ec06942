"""Sweeps: one dynamics over every point of a grid, batched, chunked, spread over devices and
hosts, with results as one labelled dataset.

How a sweep runs, one module per step:

1. Every member is built abstractly and checked before any compute (`execute`); everything
   that varies is an array leaf, so after padding to a common number of examples (zero
   weight, no class) all members stack into one batch and share one compilation.
2. The `plan` orders members by a cost key, cuts them into chunks of one size and deals the
   chunks to processes and devices; a resumed sweep skips the chunks in its store (`store`).
3. Each chunk runs as one compiled call, one worker thread per device (`execute`).
4. Each chunk becomes a dataset over `run`, is written to the store, and all are assembled
   into one dataset over the grid's axes (`dataset`).
"""

from collections.abc import Callable
import math
import threading

import jax
import xarray as xr

from .. import _validate
from ..dynamics.base import AbstractDynamics, objective_metrics
from ..dynamics.discrete import Train
from ..dynamics.flow import Flow
from .dataset import (
    chunk_dataset,
    grid_class_groups,
    grid_predictions,
    label_by_grid,
    merge_chunks,
)
from .execute import ChunkRunner, check_members, run_on_devices
from .grid import Grid
from .plan import make_plan
from .store import SweepStore, check_store, read_chunks, read_manifest


def sweep(make_problem: Callable, grid: Grid, t1=None, *, num_saves: int = 100,
          dynamics: Flow | Train | None = None, metrics=objective_metrics,
          class_groups: dict[str, list[int]] | None = None, order_by: Callable | None = None,
          predict: Callable[..., dict[str, float]] | None = None,
          chunk_size: int | None = None, max_batch: int | None = None,
          batching: str = "auto", devices=None, pad_to: int | None = None,
          store=None, resume: bool = False, seed: int = 0,
          progress: Callable[[int, int], None] | None = None,
          metadata: dict | None = None) -> xr.Dataset | None:
    """Runs `dynamics` for every point of `grid` and returns the results as a dataset.

    **Arguments:**

    - `make_problem`: point settings (keywords named like the grid's axes) -> (model, objective)
      or (model, objective, hyperparameters). Members may differ only in array values and in
      their number of examples.
    - `grid`: a `Grid`.
    - `t1`, `num_saves`: shorthand for `dynamics=Flow(t1, num_saves)`.
    - `dynamics`: `Flow(...)` or `Train(...)`; each chunk runs under its matmul `precision`.
    - `metrics`: what each member records, as for `gradient_flow`.
    - `class_groups`: e.g. {"majority": [0, 1], "minority": [2, 3]}: per-class metrics are
      averaged within each group and `cls` is labelled by group; or a function of a point's
      settings returning such a dict (the same names everywhere), for groups that follow each
      member's own counts. Indices must lie in 0..k-1, each class in at most one group.
    - `order_by`: point settings -> a number; members are run in that order, so that a
      chunk holds members of similar cost (a predicted step count is a good key).
    - `predict`: point settings -> {name: number}, e.g. closed-form predictions; computed
      per member before any compute and recorded as variables over the grid's axes (and in
      the store's chunks). Names must differ from the recorded metrics'.
    - `chunk_size`: members per compiled call; default from the devices' free memory, or,
      when resuming, the stored sweep's. `max_batch` caps it.
    - `batching`: "vmap", "map" (`lax.map`, one member after another inside one call) or
      "auto": "map" on CPUs, "vmap" on accelerators.
    - `devices`: local devices to spread chunks over (default all).
    - `pad_to`: the common number of examples; default: the largest in the grid (found by
      abstract evaluation of `make_problem`, before any compute).
    - `store`: a folder to write each finished chunk to, checked before any compute and
      made with the first chunk (a sweep that fails before it leaves nothing); with
      `resume=True` a sweep that was stopped continues there, skipping finished chunks.
    - `seed`: member i uses key fold_in(key(seed), i) (minibatches), whatever the chunking.
    - `progress`: called with (members done, members total) after each chunk.
    - `metadata`: anything JSON can hold (e.g. the configuration file), kept with the store
      and in the dataset's `config` attribute.

    **Returns:** an `xarray.Dataset` over the grid's axes and (time, cls | mode) with every
    recorded metric, `learning_time`, `num_steps`, `status` (`STATUS` codes; a member that
    is not ok has NaN wherever its values did not happen), the predictions; per chunk
    `chunk_waste` (1 - mean steps / max steps of a vmapped chunk), `chunk_compile_seconds`,
    `chunk_run_seconds`, `chunk_device`; CF-style `long_name` and `units` on every variable
    (time in steps for `Train`); config, versions, git revision, devices and totals in its
    attributes. In a multi-process run, None on processes other than the last to finish.

    Every argument and every member is checked before any compute (a `ValueError` names the
    argument or the grid point), and nothing is written before the first chunk is done.
    """
    _check_arguments(make_problem, grid, t1, dynamics,
                     {"metrics": metrics, "order_by": order_by, "predict": predict,
                      "progress": progress})
    if dynamics is None:
        dynamics = Flow(t1=t1, num_saves=num_saves)
    _validate.choice("batching", batching, ("auto", "vmap", "map"))
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("`devices` = [] is not allowed: expected at least one local device.")
    if batching == "auto":
        batching = "map" if devices[0].platform == "cpu" else "vmap"
    for name, value, minimum in (("chunk_size", chunk_size, 1), ("max_batch", max_batch, 1),
                                 ("pad_to", pad_to, 1), ("seed", seed, 0)):
        if value is not None:
            _validate.integer(name, value, minimum=minimum)
    if store is not None:  # cheap, so before the pass over every member
        store = check_store("store", store, resume or jax.process_index() != 0)

    # Everything is checked before any compute.
    points = [grid.point(i) for i in range(grid.size)]
    checked = check_members(make_problem, points, dynamics, metrics, pad_to)
    pad_to = checked.pad_to
    groups = grid_class_groups(class_groups, points, _num_classes(checked.metric_shapes,
                                                                  class_groups))
    predictions = grid_predictions(predict, points)
    keys = None if order_by is None else _order_keys(order_by, points)
    runner = ChunkRunner(make_problem, points, pad_to, dynamics, metrics, batching, seed)
    stored = None if store is None or not resume else read_manifest(store)
    if chunk_size is None and stored is not None:
        # A resumed sweep keeps the chunk plan it started with.
        chunk_size, max_batch = stored["chunk_size"], None
    if chunk_size is None:
        chunk_size = runner.default_chunk_size(devices)
    plan = make_plan(grid.size, keys, chunk_size, max_batch=max_batch,
                     num_devices=len(devices), process_index=jax.process_index(),
                     process_count=jax.process_count())

    manifest = {"grid": grid.to_dict(), "dynamics": dynamics.describe(),
                "chunk_size": plan.chunk_size, "order": list(plan.order),
                "class_groups": None if groups is None else groups.describe(),
                "pad_to": pad_to, "seed": seed, "predictions": sorted(predictions),
                "metadata": metadata}
    # The processes of a multi-host sweep share one store: each may find the others' chunks.
    sweep_store = None if store is None else SweepStore(
        store, manifest, resume=resume or jax.process_index() != 0)
    if sweep_store is not None:
        plan = plan.skipping(sweep_store.done())

    results: dict[int, xr.Dataset] = {}
    lock = threading.Lock()
    finished = [plan.members_done]

    def run(chunk: int, device) -> None:
        members = plan.chunks[chunk]
        out = runner(plan.filled(chunk), device)
        ds = chunk_dataset(out.recorded, out.stats, members,
                           record_times=dynamics.record_times(), class_groups=groups,
                           predictions=predictions, lockstep=batching == "vmap", index=chunk,
                           compile_seconds=out.compile_seconds, run_seconds=out.run_seconds,
                           device=str(device))
        if sweep_store is not None:
            sweep_store.write(chunk, ds)
        with lock:
            results[chunk] = ds
            finished[0] += len(members)
            if progress is not None:
                progress(finished[0], grid.size)

    run_on_devices(devices, plan.assignments, run)

    if sweep_store is not None:
        if len(sweep_store.done()) < len(plan.chunks):
            return None  # other processes are still writing their chunks
        merged = sweep_store.read_all()
    else:
        merged = merge_chunks([results[c] for c in sorted(results)])
    out = label_by_grid(merged, grid, manifest)
    out.attrs.update(batching=batching, devices=", ".join(str(d) for d in devices))
    return out


def _check_arguments(make_problem, grid, t1, dynamics, functions: dict) -> None:
    """The arguments of `sweep` that need no member built."""
    if not isinstance(grid, Grid):
        raise ValueError(f"`grid` = {grid!r} is not allowed: expected an ssm_jax.Grid, e.g. "
                         "Grid(ratio=[1, 10], power=[0.0, 1.0]).")
    if not callable(make_problem):
        raise ValueError(f"`make_problem` = {make_problem!r} is not allowed: expected a "
                         "function of the grid's settings returning (model, objective).")
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


def open_sweep(path) -> xr.Dataset:
    """The dataset of a finished sweep store (e.g. after a multi-host sweep), labelled by its
    grid.

    **Arguments:**

    - `path`: the store's folder.

    **Returns:** the dataset `sweep` returns. Raises `ValueError` if `path` holds no sweep or
    chunks are missing: resume the sweep to finish it.
    """
    manifest = read_manifest(path)
    if manifest is None:
        raise ValueError(f"`path` = {str(path)!r} holds no sweep (no manifest.json): expected "
                         "a sweep's store folder.")
    grid = Grid(**manifest["grid"])
    merged = read_chunks(path)
    if merged.sizes["run"] < grid.size:
        raise ValueError(f"The sweep at {str(path)!r} is unfinished: {merged.sizes['run']} of "
                         f"{grid.size} members written. Resume it to finish.")
    return label_by_grid(merged, grid, manifest)
