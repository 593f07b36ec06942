"""Sweeps: one dynamics over every member of a design (a grid, or points), batched,
chunked, spread over devices, hosts and shards, with results as one labelled dataset.

`sweep` composes one piece per step:

1. `design_checks`: every member checked before any compute (built abstractly one by one, or,
   vectorized, the design's arrays checked by the problem and one abstract build traced),
   with its size, cost key, predictions and class groups;
2. `plan`: size buckets, the order, chunks, and this process's queue of them; a resumed sweep
   skips the chunks its store holds (`destination`, `store`);
3. `execute`: each chunk built and run compiled by the sweep's `batching`, one worker thread
   per device, members done counted as they go (`progress`);
4. `dataset`: each chunk becomes a dataset over `run`, written to its region of the store
   (or kept in memory), and the result is labelled by the design.
"""

from collections.abc import Callable

import jax
import numpy as np
import xarray as xr

from .. import _validate
from ..dynamics.base import AbstractDynamics, objective_metrics
from ..dynamics.flow import Flow
from .batching import AbstractBatching, default_batching
from .cpu_cores import warn_if_dispatched
from .dataset import label_by_grid, merge_chunks
from .design_checks import check_design
from .destination import Destination
from .execute import ChunkRunner, check_member_memory, device_memory
from .grid import AbstractDesign
from .out_of_core import dask_members
from .plan import MAX_BUCKETS, MIN_BUCKET, make_plan
from .points import design_from_dict
from .problem import as_problem
from .progress import MembersDone
from .running import ChunkLoop
from .store import check_finished, open_store

PILOT_FROM = 256
"""Designs larger than this time their costliest member before choosing a chunk size."""


def sweep(make_problem, design: AbstractDesign, t1=None, *, num_saves: int = 100,
          dynamics: AbstractDynamics | None = None, metrics=objective_metrics,
          class_groups: dict[str, list[int]] | None = None, order_by: Callable | None = None,
          predict: Callable[..., dict[str, float]] | None = None,
          vectorized: bool = False, chunk_size: int | None = None,
          max_batch: int | None = None, batching: AbstractBatching | None = None,
          devices=None, pad_to: int | None = None, max_buckets: int = MAX_BUCKETS,
          min_bucket: int = MIN_BUCKET, store=None, resume: bool = False,
          shard: tuple[int, int] | None = None, seed: int = 0,
          progress: Callable[[int, int], None] | None = None,
          metadata: dict | None = None) -> xr.Dataset | None:
    """Runs `dynamics` for every member of `design` and returns the results as a dataset.

    **Arguments:**

    - `make_problem`: an `AbstractProblem` (such as `imbalance_problem`), or a plain function
      of the member's settings (keywords named like the design's axes) returning (model,
      objective) or (model, objective, hyperparameters). Members may differ only in array
      values and in their number of examples.
    - `design`: a `Grid` (every combination of its axes) or `Points` (one member per
      index of its equal-length axes).
    - `t1`, `num_saves`: shorthand for `dynamics=Flow(t1, num_saves)`.
    - `dynamics`: `Flow(...)` or `Train(...)`; each chunk runs under its matmul `precision`,
      as the batching prepares it (`AbstractBatching.prepare`).
    - `metrics`: what each member records, as for `gradient_flow`.
    - `class_groups`: e.g. {"majority": [0, 1], "minority": [2, 3]}: per-class metrics are
      averaged within each group and `cls` is labelled by group; or a function of a member's
      settings returning such a dict (the same names everywhere), for groups that follow each
      member's own counts. Indices must lie in 0..k-1, each class in at most one group.
    - `order_by`: member settings -> a number; members are run in that order, so that a
      chunk holds members of similar cost (a predicted step count is a good key). Default:
      the problem's `cost`, if it offers one.
    - `predict`: member settings -> {name: number}, e.g. closed-form predictions; computed
      before any compute and recorded as variables over the design's dimensions (and in the
      store). Names must differ from the recorded metrics'. Default: the problem's
      `predict`, if it offers any.
    - `vectorized`: build each chunk by one traced `vmap` of `make_problem` over the
      design's arrays (no per-member Python): `make_problem` must be traceable in every
      setting the design varies (`problems.imbalance_problem` is), and takes a static
      `pad_to` keyword where its number of examples depends on them. The problem's
      `check_settings` checks the design's arrays, and its `num_examples` gives the padding
      bound and size buckets. `order_by` and `predict` are then called once, with arrays of
      every member's settings, and return arrays.
    - `chunk_size`: members per compiled call (the unit of storing and resuming); default
      from the batching and the devices' free memory, cut so that a chunk ends within about
      `CHUNK_SECONDS` by the run time of the costliest member alone (timed first, in a
      design of more than `PILOT_FROM` members run by one process); when resuming, the
      stored sweep's. `max_batch` caps it.
    - `batching`: an `AbstractBatching`: `Map()` (`lax.map`, one member after another inside
      one call), `Vmap()` (lockstep) or `Refill(lanes=...)` (gradient flows without an
      event, in lanes that each take the next member as theirs ends); default
      `default_batching` (`Map()` on CPUs; on accelerators `Refill()` where it runs the
      dynamics, else `Vmap()`).
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
      members a resumed sweep finds done), then as members finish, as the batching reports
      them (`Map` as each ends, `Refill` about every second, `Vmap` after each chunk).
    - `metadata`: anything JSON can hold (e.g. the configuration file), kept with the store
      and in the dataset's `config` attribute.

    **Returns:** an `xarray.Dataset` over the design's dimensions (the grid's axes, or
    `point`) and (time, cls | mode) with every recorded metric, `learning_time`,
    `num_steps`, `status` (`STATUS` codes; a member that is not ok has NaN wherever its
    values did not happen), the predictions; per chunk `chunk_waste` (the share of the
    chunk's work that moved no member, `AbstractBatching.waste`), `chunk_compile_seconds`,
    `chunk_run_seconds`, `chunk_device`;
    CF-style `long_name` and `units` on every variable (time in steps for `Train`); config,
    versions, git revision, devices, batching, lane efficiency and totals in its attributes.
    With a store, its variables are read only when used. In a multi-process or sharded run,
    None until every chunk of the store is done.

    Every argument and every member is checked before any compute (a `ValueError` names the
    argument or the member), and nothing is written before the first chunk is done. SIGINT
    (Ctrl-C) or SIGTERM stops it within about a second (`stopping`): the finished chunks
    stay in the store, the store is released, and `SweepStopped` (a `KeyboardInterrupt`)
    says what was kept; `resume=True` finishes it.
    """
    problem = as_problem(make_problem)
    _check_arguments(design, t1, dynamics, {"metrics": metrics, "order_by": order_by,
                                            "predict": predict, "progress": progress})
    dynamics = Flow(t1=t1, num_saves=num_saves) if dynamics is None else dynamics
    devices = _devices(devices)
    batching = _batching(batching, dynamics, devices[0].platform)
    _check_numbers(chunk_size=chunk_size, max_batch=max_batch, pad_to=pad_to,
                   max_buckets=max_buckets, min_bucket=min_bucket, seed=seed)
    destination = Destination.checked(store, resume, shard)  # cheap: before the members

    checked = check_design(problem, design, dynamics, metrics, vectorized=vectorized,
                           pad_to=pad_to, order_by=order_by, predict=predict,
                           class_groups=class_groups, in_memory=store is None)
    runner = ChunkRunner(problem, checked.points, checked.members.pad_to,
                         batching.prepare(dynamics), metrics, batching, seed, vectorized)
    chunk_size, max_batch = _chunk_size(chunk_size, max_batch, runner, checked, destination,
                                        devices, design.size)
    plan = make_plan(design.size, checked.keys, chunk_size, max_batch=max_batch,
                     process_index=destination.process[0],
                     process_count=destination.process[1],
                     num_examples=None if pad_to is not None else checked.members.num_examples,
                     max_buckets=max_buckets, min_bucket=min_bucket)
    manifest = {"design": design.kind, "grid": design.to_dict(),
                "dynamics": dynamics.describe(), "batching": batching.name,
                "chunk_size": plan.chunk_size, "order": list(plan.order),
                "class_groups": None if checked.groups is None else checked.groups.describe(),
                "pad_to": checked.members.pad_to, "max_buckets": max_buckets, "seed": seed,
                "predictions": sorted(checked.predictions), "metadata": metadata}
    sweep_store = destination.open(
        manifest, design.coordinates(),
        lambda ds: label_by_grid(merge_chunks([ds]), design, manifest))
    plan = plan.skipping(destination.done())
    counter = MembersDone(design.size, plan.members_done, progress)
    loop = ChunkLoop(plan, runner, checked, counter, sweep_store,
                     "run the same sweep with resume=True to finish it.")
    try:
        results = loop(devices)
    finally:
        if sweep_store is not None:
            sweep_store.close()

    if sweep_store is None:
        out = label_by_grid(merge_chunks([results[c] for c in sorted(results)]), design,
                            manifest)
    elif len(destination.done()) < len(plan.chunks):
        return None  # other processes or shards are still writing their chunks
    else:
        out = open_sweep(destination.path)
    # The share of the work that moved a member, whatever the batching.
    out.attrs.update(batching=batching.name, devices=", ".join(str(d) for d in devices),
                     lane_efficiency=1.0 - out.attrs["waste"])
    return out


def _check_numbers(seed, **numbers) -> None:
    """The integer settings of `sweep` (None where not given) and its seed, checked."""
    for name, value in numbers.items():
        if value is not None:
            _validate.integer(name, value, minimum=1)
    _validate.seed("seed", seed)


def _chunk_size(chunk_size, max_batch, runner, checked, destination, devices, size):
    """(chunk size, max batch): as given, a joined store's, or the batching's default, sized
    from the free memory and, in a large design run by one process, the costliest member's
    time (`_pilot`)."""
    if chunk_size is None and destination.stored_chunk_size():
        return destination.stored_chunk_size(), None  # a joining writer keeps the plan
    if chunk_size is None:
        alone = destination.process == (0, 1)  # a timing would differ between processes
        return runner.default_chunk_size(devices, _pilot(checked, size) if alone else None), \
            max_batch
    # A chunk size given: a member's records must still fit.
    values = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(
        checked.members.metric_shapes))
    records = runner.dynamics.record_times().size
    check_member_memory(8 * records * values, device_memory(devices), records, values)
    return chunk_size, max_batch


def _pilot(checked, size: int) -> int | None:
    """The member timed to size chunks: the costliest by its key (or the largest), in a
    design larger than `PILOT_FROM` members; None otherwise (a small sweep needs no bound
    and saves the pilot's compilation)."""
    if size <= PILOT_FROM:
        return None
    cost = checked.keys if checked.keys is not None else checked.members.num_examples
    return int(np.argmax(cost))


def _devices(devices) -> list:
    """The local devices a sweep spreads its chunks over, checked."""
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("`devices` = [] is not allowed: expected at least one local device.")
    warn_if_dispatched(devices)
    return devices


def _batching(batching, dynamics, platform: str) -> AbstractBatching:
    """The batching `sweep` runs with: as given (checked against the dynamics), or the
    default for the dynamics and platform."""
    if batching is None:
        return default_batching(dynamics, platform)
    if not isinstance(batching, AbstractBatching):
        raise ValueError(f"`batching` = {batching!r} is not allowed: expected a batching "
                         "module, ssm_jax.sweeps.Map(), Vmap() or Refill(lanes=...), or None "
                         "for the default (names such as 'refill' are for configuration "
                         "files and the command line).")
    batching.check(dynamics)
    return batching


def _check_arguments(design, t1, dynamics, functions: dict) -> None:
    """The arguments of `sweep` that need no member built."""
    if not isinstance(design, AbstractDesign):
        raise ValueError(f"`design` = {design!r} is not allowed: expected an ssm_jax.Grid, e.g. "
                         "Grid(ratio=[1, 10], power=[0.0, 1.0]), or ssm_jax.Points.")
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


def open_sweep(path, *, name: str = "path", chunks=None) -> xr.Dataset:
    """The dataset of a finished sweep store (e.g. after a multi-host or sharded sweep),
    labelled by its grid and opened lazily: a variable is read from the store when used.

    **Arguments:**

    - `path`: the store's folder; it may not be writable.
    - `name`: what messages call `path` (e.g. the command line's argument).
    - `chunks`: None (variables read when used, whole), or dask's chunks of the store's
      `run` axis, as xarray's `open_zarr` takes them (`{}`: the store's own chunks, one
      per plan chunk; `"auto"`): every member variable is then a dask array, so that a
      reduction (`ds.learning_time.mean("seed").compute()`) reads one chunk at a time, in
      bounded memory. Needs dask (`pip install "ssm_jax[cluster]"`).

    **Returns:** the dataset `sweep` returns. Raises `ValueError` if `path` holds no sweep or
    chunks are missing, saying which shards to rerun (or to resume the sweep).
    """
    manifest = check_finished(path, name)
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
    if chunks is not None:
        return labelled.drop_vars("position").assign(dask_members(path, members, position,
                                                                  chunks))
    return labelled.drop_vars("position").assign(members.isel(run=position).data_vars)

