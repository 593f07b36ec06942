"""A sweep's results as data: each chunk as a dataset over `run` (flat grid indices), and the
chunks assembled into one dataset over the grid's named axes, with its provenance.

Besides what the members record, a sweep may carry closed-form predictions per member
(`predict`), computed in Python before any compute and stored with every chunk, so that
figures read them instead of re-deriving a problem's settings.
"""

from collections.abc import Callable, Sequence
import json
import os
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ..metrics.per_class import learning_time
from ..results import provenance
from .grid import Grid


def grid_predictions(predict: Callable[..., dict] | None,
                     points: Sequence[dict]) -> dict[str, np.ndarray]:
    """`predict` at every grid point, checked before any compute.

    **Arguments:**

    - `predict`: point settings -> {name: number}, the same names at every point; or None.
    - `points`: the grid's points, as keywords.

    **Returns:** {name: one value per member, in grid order}; {} for no `predict`.
    """
    if predict is None:
        return {}
    rows = []
    for point in points:
        row = predict(**point)
        if not isinstance(row, dict) or not row or not all(map(_is_number, row.values())):
            raise ValueError(f"`predict` at grid point {point} returned {row!r}: expected a "
                             "non-empty dict of names to numbers.")
        if rows and row.keys() != rows[0].keys():
            raise ValueError(f"`predict` at grid point {point} names {sorted(row)}, at "
                             f"{points[0]} {sorted(rows[0])}: every point needs the same.")
        rows.append(row)
    return {name: np.array([float(row[name]) for row in rows]) for name in rows[0]}


def _is_number(value) -> bool:
    return (not isinstance(value, (bool, str)) and np.ndim(value) == 0
            and np.issubdtype(np.asarray(value).dtype, np.number))


def chunk_dataset(recorded: dict, stats: dict, members: Sequence[int], *, record_times,
                  class_groups: dict[str, list[int]] | None = None,
                  predictions: dict[str, np.ndarray] | None = None, lockstep: bool = False,
                  **chunk) -> xr.Dataset:
    """One chunk's results as a dataset over `run` (grid indices).

    **Arguments:**

    - `recorded`, `stats`: the chunk's metrics (member, time[, cls | mode]) and statistics
      (member,); entries past `len(members)` (the copies that fill the last chunk) are dropped.
    - `members`: the chunk's grid indices.
    - `record_times`: the dynamics' record times.
    - `class_groups`: per-class metrics are averaged within each group; `cls` names groups.
    - `predictions`: {name: value per grid member}, from `grid_predictions`.
    - `lockstep`: whether members ran vmapped, so that all waited for the slowest.
    - `chunk`: chunk-level numbers (index, compile_seconds, run_seconds, device), kept as
      attributes `chunk_<name>`, with `chunk_size` and `chunk_waste`.

    **Returns:** an `xarray.Dataset` over (run, time, cls | mode) with every metric,
    `learning_time`, the statistics and the predictions.
    """
    n = len(members)
    recorded = jax.tree_util.tree_map(lambda x: np.asarray(x)[:n], recorded)
    stats = jax.tree_util.tree_map(lambda x: np.asarray(x)[:n], stats)
    ts = np.asarray(record_times)
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
    for name, values in (predictions or {}).items():
        data[name] = ("run", values[np.asarray(members)])
    coords = {"run": np.asarray(members), "time": ts}
    if class_groups is not None:
        coords["cls"] = list(class_groups)
    steps = np.asarray(stats["num_steps"]).astype(float)
    waste = 1 - steps.mean() / steps.max() if lockstep and steps.max() > 0 else 0.0
    attrs = {f"chunk_{k}": v for k, v in chunk.items()}
    return xr.Dataset(data, coords=coords,
                      attrs=dict(attrs, chunk_size=n, chunk_waste=float(waste)))


def merge_chunks(parts: list[xr.Dataset]) -> xr.Dataset:
    """Chunk datasets (over `run`) as one, in grid order. Chunk-level numbers travel in each
    chunk's attributes ("chunk_*") and are gathered along a `chunk` dimension.

    **Arguments:**

    - `parts`: datasets from `chunk_dataset` (or read back from a store).

    **Returns:** one dataset over `run`, with `chunk_*` variables over `chunk`.
    """
    keys = [k for k in parts[0].attrs if k.startswith("chunk_")]
    per_chunk = {k: ("chunk", np.array([p.attrs[k] for p in parts])) for k in keys}
    merged = xr.concat([p.drop_attrs() for p in parts], dim="run", data_vars="minimal",
                       coords="minimal", compat="override", join="override")
    return merged.sortby("run").assign(per_chunk)


def label_by_grid(ds: xr.Dataset, grid: Grid, manifest: dict) -> xr.Dataset:
    """Flat `run` -> the grid's named axes; provenance and totals into the attributes.

    **Arguments:**

    - `ds`: every member's results, from `merge_chunks`.
    - `grid`: the sweep's `Grid`.
    - `manifest`: the sweep's description (as kept with its store); all of it but the member
      order becomes the `config` attribute (JSON).

    **Returns:** an `xarray.Dataset` over the grid's axes (then time, cls | mode), with the
    `chunk_*` variables over `chunk`.
    """
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


def _git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(__file__), timeout=5).stdout.strip() or "-"
    except (OSError, subprocess.SubprocessError):
        return "-"
