"""Sweeps: one dynamics over every point of a grid, batched, chunked, spread over devices and
hosts, with results as one labelled dataset.

How a sweep runs:

1. `make_problem(**point)` builds each member's (model, objective[, hyperparameters]).
   Everything that varies is an array leaf, so after padding to a common number of examples
   (zero weight, label -1) all members stack into one batch and share one compilation.
2. Members are ordered by `order_by` (e.g. a predicted step count), so that members of one
   chunk take similar numbers of steps, then cut into chunks of equal size.
3. Each chunk runs as one compiled call: `vmap` over its members (accelerators), or
   `lax.map` (CPU, where batched small matmuls are slower than a loop and a vmapped adaptive
   solve waits for its slowest member). Chunks go round-robin to the local devices, one
   worker per device, and to the processes of a multi-host run.
4. Finished chunks are written to a resumable store and assembled into an `xarray.Dataset`
   over the grid's axes.
"""

from collections.abc import Callable
import concurrent.futures
import json
import os
from pathlib import Path
import subprocess
import threading

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import _validate
from .._timing import timed_call
from ..dynamics.base import objective_metrics
from ..dynamics.discrete import Train
from ..dynamics.flow import Flow
from ..metrics.per_class import learning_time
from ..results import provenance
from .grid import Grid
from .padding import pad_examples
from .store import SweepStore, merge_chunks


def _as_problem(result):
    model, objective, *rest = result
    hyper = rest[0] if rest else {}
    return model, objective, {k: jnp.asarray(v) for k, v in hyper.items()}


def _num_examples(objective) -> int:
    return int(objective.labels.shape[0])


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


def _free_bytes(device) -> int:
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def member_bytes(problem, dynamics, num_metric_values: int) -> int:
    """A generous estimate of one member's memory in a vmapped chunk: its parameters times
    the solver's working copies (stages, error estimate, candidate), its objective's arrays,
    and its recorded metrics."""
    model, objective, _ = problem
    leaves = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))
    param_bytes = sum(x.size * x.dtype.itemsize for x in leaves)
    objective_bytes = sum(x.size * x.dtype.itemsize
                          for x in jax.tree_util.tree_leaves(eqx.filter(objective, eqx.is_array)))
    num_records = dynamics.record_times().size
    working_copies = 16 if isinstance(dynamics, Flow) else 6
    return working_copies * param_bytes + 2 * objective_bytes + 8 * num_records * num_metric_values


def _git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(__file__), timeout=5).stdout.strip() or "-"
    except (OSError, subprocess.SubprocessError):
        return "-"


def _chunk_dataset(recorded, stats, indices, dynamics, class_groups):
    """One chunk's results as a dataset over `run` (global grid indices)."""
    n = len(indices)
    recorded = jax.tree_util.tree_map(lambda x: np.asarray(x)[:n], recorded)
    stats = jax.tree_util.tree_map(lambda x: np.asarray(x)[:n], stats)
    ts = np.asarray(dynamics.record_times())
    data = {}
    for name, values in recorded.items():
        if name.startswith("class_") and class_groups is not None:
            values = np.stack([values[..., list(m)].mean(-1) for m in class_groups.values()], -1)
        dims = ("run", "time") + {2: (), 3: ("mode" if name == "mode_strength" else "cls",)}[
            values.ndim]
        data[name] = (dims, values)
    if "class_progress" in data:
        progress = jnp.moveaxis(jnp.asarray(data["class_progress"][1]), 1, 0)
        data["learning_time"] = (("run", "cls"), np.asarray(learning_time(ts, progress)))
    for name, values in stats.items():
        data[name] = ("run", values)
    coords = {"run": np.asarray(indices), "time": ts}
    if class_groups is not None:
        coords["cls"] = list(class_groups)
    return xr.Dataset(data, coords=coords)


def sweep(make_problem: Callable, grid: Grid, t1=None, *, num_saves: int = 100,
          dynamics: Flow | Train | None = None, metrics=objective_metrics,
          class_groups: dict[str, list[int]] | None = None, order_by: Callable | None = None,
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
    - `dynamics`: `Flow(...)` or `Train(...)`.
    - `metrics`: what each member records, as for `gradient_flow`.
    - `class_groups`: e.g. {"majority": [0, 1], "minority": [2, 3]}: per-class metrics are
      averaged within each group and `cls` is labelled by group.
    - `order_by`: point settings -> a number; members are run in that order, so that a
      chunk holds members of similar cost (a predicted step count is a good key).
    - `chunk_size`: members per compiled call; default from the devices' free memory, or,
      when resuming, the stored sweep's. `max_batch` caps it.
    - `batching`: "vmap", "map" (`lax.map`, one member after another inside one call) or
      "auto": "map" on CPUs, "vmap" on accelerators.
    - `devices`: local devices to spread chunks over (default all).
    - `pad_to`: the common number of examples; default: the largest in the grid (found by
      abstract evaluation of `make_problem`, before any compute).
    - `store`: a folder to write each finished chunk to; with `resume=True` a sweep that was
      stopped continues there, skipping finished chunks.
    - `seed`: member i uses key fold_in(key(seed), i) (minibatches), whatever the chunking.
    - `progress`: called with (members done, members total) after each chunk.
    - `metadata`: anything JSON can hold (e.g. the configuration file), kept with the store
      and in the dataset's `config` attribute.

    **Returns:** an `xarray.Dataset` over the grid's axes and (time, cls | mode) with every
    recorded metric, `learning_time`, `num_steps`, `status` (`STATUS` codes); per chunk
    `chunk_waste` (1 - mean steps / max steps of a vmapped chunk), `chunk_compile_seconds`,
    `chunk_run_seconds`, `chunk_device`; config, versions, git revision, devices and totals
    in its attributes. In a multi-process run, None on processes other than the last to finish.
    """
    if dynamics is None:
        if t1 is None:
            raise ValueError("Give `t1` (a gradient flow's final time) or `dynamics`.")
        dynamics = Flow(t1=t1, num_saves=num_saves)
    _validate.choice("batching", batching, ("auto", "vmap", "map"))
    devices = list(jax.local_devices() if devices is None else devices)
    if batching == "auto":
        batching = "map" if devices[0].platform == "cpu" else "vmap"
    for name, value in (("chunk_size", chunk_size), ("max_batch", max_batch)):
        if value is not None:
            _validate.integer(name, value, minimum=1)

    # Everything is checked before any compute: building each problem abstractly runs the
    # constructors' validation and gives each member's number of examples.
    points = [grid.point(i) for i in range(grid.size)]
    sizes = []
    for point in points:
        try:
            shapes = jax.eval_shape(lambda p=point: _as_problem(make_problem(**p)))
        except (ValueError, TypeError) as error:
            raise ValueError(f"Grid point {point}: {error}") from error
        sizes.append(_num_examples(shapes[1]))
    pad_to = max(sizes) if pad_to is None else pad_to
    if pad_to < max(sizes):
        raise ValueError(f"`pad_to` = {pad_to} is smaller than the largest problem "
                         f"({max(sizes)} examples).")

    order = np.arange(grid.size)
    if order_by is not None:
        order = np.argsort([order_by(**p) for p in points], kind="stable")
    sample = _pad(_as_problem(make_problem(**points[order[0]])), pad_to)
    stored_manifest = None if store is None else Path(store) / "manifest.json"
    if resume and chunk_size is None and stored_manifest.exists():
        # A resumed sweep keeps the chunk plan it started with.
        chunk_size = json.loads(stored_manifest.read_text())["chunk_size"]
        max_batch = None
    if chunk_size is None:
        sample_metrics = jax.eval_shape(metrics, sample[0], sample[1])
        num_values = sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(sample_metrics))
        per_member = member_bytes(sample, dynamics, int(num_values) + 8)
        budget = min(_free_bytes(d) for d in devices) // 2
        chunk_size = max(1, budget // per_member) if batching == "vmap" else 256
        chunk_size = int(min(chunk_size, 4096))
    chunk_size = int(min(chunk_size, max_batch or chunk_size, grid.size))
    chunks = [order[i:i + chunk_size] for i in range(0, grid.size, chunk_size)]

    manifest = {"grid": grid.to_dict(), "dynamics": dynamics.describe(),
                "chunk_size": chunk_size, "order": [int(i) for i in order],
                "class_groups": class_groups, "pad_to": pad_to, "seed": seed,
                "metadata": metadata}
    sweep_store = None if store is None else SweepStore(
        store, manifest, resume=resume, create=jax.process_index() == 0)
    done = set() if sweep_store is None else sweep_store.done()
    mine = [c for c in range(len(chunks)) if c % jax.process_count() == jax.process_index()]
    todo = [c for c in mine if c not in done]

    results: dict[int, xr.Dataset] = {}
    lock = threading.Lock()
    finished = [sum(len(chunks[c]) for c in done)]
    base_key = jax.random.key(seed)

    def compute(members, device):
        """Runs `members` in one compiled call; a call that exhausts the device's memory is
        run again as two halves (results are per member, so they do not change)."""
        problems = [_pad(_as_problem(make_problem(**points[i])), pad_to) for i in members]
        batch, static = _stack(problems, members)
        keys = jax.vmap(lambda i: jax.random.fold_in(base_key, i))(jnp.asarray(members))
        batch = jax.device_put((*batch, keys), device)
        try:
            (recorded, stats), compile_s, run_s = timed_call(
                _run_chunk, batch, static, dynamics, metrics, batching)
        except jax.errors.JaxRuntimeError as error:
            if "RESOURCE_EXHAUSTED" not in str(error) or len(members) == 1:
                raise
            del batch
            half = len(members) // 2
            (r1, s1, c1, t1), (r2, s2, c2, t2) = (compute(members[:half], device),
                                                  compute(members[half:], device))
            join = lambda a, b: np.concatenate([np.asarray(a), np.asarray(b)])  # noqa: E731
            return (jax.tree_util.tree_map(join, r1, r2), jax.tree_util.tree_map(join, s1, s2),
                    c1 + c2, t1 + t2)
        return recorded, stats, compile_s, run_s

    def run(chunk: int, device) -> None:
        indices = chunks[chunk]
        # The last chunk is filled up with copies of its last member: one shape, one compile.
        filled = np.concatenate([indices, np.repeat(indices[-1:], chunk_size - len(indices))])
        recorded, stats, compile_s, run_s = compute(filled, device)
        ds = _chunk_dataset(recorded, stats, indices, dynamics, class_groups)
        steps = np.asarray(stats["num_steps"])[:len(indices)].astype(float)
        ds.attrs.update(chunk_index=chunk, chunk_size=len(indices),
                        chunk_waste=float(1 - steps.mean() / steps.max())
                        if batching == "vmap" and steps.max() > 0 else 0.0,
                        chunk_compile_seconds=compile_s, chunk_run_seconds=run_s,
                        chunk_device=str(device))
        if sweep_store is not None:
            sweep_store.write(chunk, ds)
        with lock:
            results[chunk] = ds
            finished[0] += len(indices)
            if progress is not None:
                progress(finished[0], grid.size)

    def worker(device, assigned):
        for chunk in assigned:
            run(chunk, device)

    assignments = [todo[d::len(devices)] for d in range(len(devices))]
    with concurrent.futures.ThreadPoolExecutor(len(devices)) as pool:
        for future in [pool.submit(worker, d, a) for d, a in zip(devices, assignments,
                                                                  strict=True)]:
            future.result()

    if sweep_store is not None:
        if len(sweep_store.done()) < len(chunks):
            return None  # other processes are still writing their chunks
        merged = sweep_store.read_all()
    else:
        merged = merge_chunks([results[c] for c in sorted(results)])
    out = _label(merged, grid, manifest)
    out.attrs.update(batching=batching, devices=", ".join(str(d) for d in devices))
    return out


def open_sweep(path) -> xr.Dataset:
    """The dataset of a finished sweep store (e.g. after a multi-host sweep), labelled by its
    grid. Raises `ValueError` if chunks are missing: resume the sweep to finish it."""
    manifest_path = Path(path) / "manifest.json"
    if not manifest_path.exists():
        raise ValueError(f"`path` = {str(path)!r} holds no sweep (no manifest.json).")
    manifest = json.loads(manifest_path.read_text())
    grid = Grid(**manifest["grid"])
    merged = SweepStore(path, manifest, resume=True).read_all()
    if merged.sizes["run"] < grid.size:
        raise ValueError(f"The sweep at {str(path)!r} is unfinished: {merged.sizes['run']} of "
                         f"{grid.size} members written. Resume it to finish.")
    return _label(merged, grid, manifest)


def _pad(problem, size: int):
    model, objective, hyper = problem
    return pad_examples(model, size), pad_examples(objective, size), hyper


def _label(ds: xr.Dataset, grid: Grid, manifest: dict) -> xr.Dataset:
    """Flat `run` -> the grid's named axes; provenance into the attributes."""
    coords = grid.coordinates()
    ds = ds.assign_coords({name: ("run", coords[name][ds.run.values]) for name in grid.names})
    per_chunk = [v for v in ds.data_vars if "chunk" in ds[v].dims]
    grid_part = ds.drop_vars(per_chunk)
    if len(grid.names) == 1:  # one axis: no multi-index to unstack
        grid_part = grid_part.swap_dims(run=grid.names[0]).drop_vars("run")
    else:
        grid_part = grid_part.set_index(run=list(grid.names)).unstack("run")
    out = grid_part.transpose(*grid.names, ...).assign({v: ds[v] for v in per_chunk})
    steps = ds["num_steps"].values
    out.attrs.update(provenance())
    out.attrs.update(
        config=json.dumps({k: v for k, v in manifest.items() if k != "order"}),
        git_revision=_git_revision(),
        compile_seconds=float(ds["chunk_compile_seconds"].sum()),
        run_seconds=float(ds["chunk_run_seconds"].sum()),
        waste=float(np.average(ds["chunk_waste"], weights=ds["chunk_size"])),
        mean_steps=float(steps.mean()), max_steps=float(steps.max()),
    )
    return out
