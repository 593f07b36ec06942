"""A sweep's results as data: each chunk as a dataset over `run` (flat design indices), and
the chunks assembled into one dataset over the design's dimensions (a grid's named axes, or
`point`), with its provenance.

Besides what the members record, a sweep may carry closed-form predictions per member
(`predict`), computed in Python before any compute and stored with every chunk, so that
figures read them instead of re-deriving a problem's settings.
"""

from collections.abc import Callable, Mapping, Sequence
import json
import os
import subprocess
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ..metrics.per_class import learning_time
from ..results import VARIABLES, cf_attributes, provenance
from .grid import AbstractDesign
from .problems import SETTINGS


def grid_predictions(predict: Callable[..., dict] | None, points,
                     vectorized: bool = False) -> dict[str, np.ndarray]:
    """`predict` at every member of a design, checked before any compute.

    **Arguments:**

    - `predict`: member settings -> {name: number}, the same names at every member; or None.
    - `points`: the design's points, as keywords; vectorized, {setting: one value per member}.
    - `vectorized`: call `predict` once on the arrays of every member's settings; it returns
      {name: one number per member}.

    **Returns:** {name: one value per member, in design order}; {} for no `predict`.
    """
    if predict is None:
        return {}
    if vectorized:
        size = len(next(iter(points.values())))
        row = predict(**points)
        if isinstance(row, dict) and row:
            try:
                return {name: np.broadcast_to(np.asarray(v, dtype=float), (size,)).copy()
                        for name, v in row.items()}
            except (TypeError, ValueError):
                pass
        raise ValueError(f"`predict` returned {row!r} for the design's arrays: expected a "
                         f"non-empty dict of names to one number per member ({size}).")
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


class ClassGroups(NamedTuple):
    """Class groups, possibly different per member: the group names, the distinct groupings as
    a table of each class's group, and each member's row of the table.

    **Fields:**

    - `names`: the groups' names, in order.
    - `table`: (D, k) integers: the group index of each class in each distinct grouping, -1
      for a class in no group.
    - `member`: (N,) each member's row of `table`, or None where all members share row 0.
    """

    names: tuple[str, ...]
    table: np.ndarray
    member: np.ndarray | None = None

    def rows(self, members) -> np.ndarray:
        """Each member's group index per class, (len(members), k)."""
        rows = np.zeros(len(members), int) if self.member is None else self.member[members]
        return self.table[rows]

    def describe(self) -> dict | list[dict]:
        """The groupings as JSON values: one {name: classes} dict where every member shares
        it, else the list of the distinct ones (kept with a sweep's store)."""
        groupings = [{name: np.flatnonzero(row == g).tolist() for g, name in
                      enumerate(self.names)} for row in self.table]
        return groupings[0] if len(groupings) == 1 else groupings


def _grouping_row(groups, num_classes: int, where: str) -> tuple[tuple[str, ...], np.ndarray]:
    """One grouping checked (names -> non-empty lists of distinct class indices in range, no
    class in two groups) and turned into a row of group indices."""
    allowed = (f"expected a dict of group names to non-empty lists of class indices in "
               f"0..{num_classes - 1} (the members have {num_classes} classes), each class in "
               "at most one group")
    if not isinstance(groups, Mapping) or not groups:
        raise ValueError(f"`class_groups`{where} = {groups!r} is not allowed: {allowed}.")
    row = np.full(num_classes, -1)
    for g, (name, classes) in enumerate(groups.items()):
        if not isinstance(name, str):
            raise ValueError(f"`class_groups`{where} names a group {name!r}: {allowed}.")
        classes = list(classes) if isinstance(classes, (list, tuple, range, np.ndarray)) else [
            classes]
        if not classes or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool)
                                  for c in classes):
            raise ValueError(f"`class_groups`{where}[{name!r}] = {classes!r} is not allowed: "
                             f"{allowed}.")
        for c in classes:
            if not 0 <= c < num_classes:
                raise ValueError(f"`class_groups`{where}[{name!r}] = {classes!r} is not "
                                 f"allowed: class {c} is out of range; {allowed}.")
            if row[c] >= 0:
                other = list(groups)[row[c]]
                raise ValueError(f"`class_groups`{where}[{name!r}] = {classes!r} is not "
                                 f"allowed: class {c} is already in group {other!r}; {allowed}.")
            row[c] = g
    return tuple(groups), row


def grid_class_groups(class_groups, points: Sequence[dict],
                      num_classes: int) -> ClassGroups | None:
    """The class groups of every member, checked before any compute.

    **Arguments:**

    - `class_groups`: {name: class indices}, the same for every member; or a function of a
      point's settings returning one (the same names at every point), for groups that follow
      a member's own counts; or None.
    - `points`: the grid's points, as keywords.
    - `num_classes`: the number of classes the members record (k of their `class_*` metrics).

    **Returns:** a `ClassGroups`, or None for no `class_groups`. Raises `ValueError` naming
    the group, the class index and what is allowed (and the grid point, for a function).
    """
    if class_groups is None:
        return None
    if not callable(class_groups):
        names, row = _grouping_row(class_groups, num_classes, "")
        return ClassGroups(names, row[None])
    names, rows, member = None, {}, np.empty(len(points), int)
    for i, point in enumerate(points):
        these, row = _grouping_row(class_groups(**point), num_classes, f" at grid point {point}")
        if names is not None and these != names:
            raise ValueError(f"`class_groups` at grid point {point} names {list(these)}, at "
                             f"{points[0]} {list(names)}: every point needs the same groups.")
        names = these
        member[i] = rows.setdefault(row.tobytes(), len(rows))
    table = np.stack([np.frombuffer(key, dtype=int) for key in rows])
    return ClassGroups(names, table, member)


def _group(values: np.ndarray, rows: np.ndarray, num_groups: int) -> np.ndarray:
    """Per-class values (member, time, k) averaged within each member's groups."""
    out = []
    for g in range(num_groups):
        mask = (rows == g)[:, None, :]
        total = np.where(mask, values, 0).sum(-1)
        out.append(total / mask.sum(-1))
    return np.stack(out, -1).astype(values.dtype)


def _did_not_happen(tree, failed: np.ndarray):
    """Failed members' non-finite floats (the infinities diffrax leaves at saves after a stop,
    a diverged run's overflow) as NaN: values that did not happen, never plausible numbers."""
    def clean(x):
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            return x
        bad = failed.reshape((-1,) + (1,) * (x.ndim - 1)) & ~np.isfinite(x)
        return np.where(bad, np.nan, x)

    return jax.tree_util.tree_map(clean, tree)


def chunk_dataset(recorded: dict, stats: dict, members: Sequence[int], *, record_times,
                  class_groups: ClassGroups | dict[str, list[int]] | None = None,
                  predictions: dict[str, np.ndarray] | None = None, waste: float = 0.0,
                  **chunk) -> xr.Dataset:
    """One chunk's results as a dataset over `run` (grid indices).

    **Arguments:**

    - `recorded`, `stats`: the chunk's metrics (member, time[, cls | mode]) and statistics
      (member,); entries past `len(members)` (the copies that fill the last chunk) are dropped.
      A member whose status is not ok keeps its non-finite values as NaN (did not happen).
    - `members`: the chunk's grid indices.
    - `record_times`: the dynamics' record times.
    - `class_groups`: per-class metrics are averaged within each member's groups
      (`grid_class_groups`, or one dict for all); `cls` names the groups, and `group_size`
      counts each member's classes per group.
    - `predictions`: {name: value per grid member}, from `grid_predictions`.
    - `waste`: the share of the chunk's work that moved no member (the batching's `waste`).
    - `chunk`: chunk-level numbers (index, compile_seconds, run_seconds, device), kept as
      attributes `chunk_<name>`, with `chunk_size` and `chunk_waste` (`waste`).

    **Returns:** an `xarray.Dataset` over (run, time, cls | mode) with every metric,
    `learning_time`, the statistics and the predictions.
    """
    n = len(members)
    members = np.asarray(members)
    recorded = jax.tree_util.tree_map(lambda x: np.asarray(x)[:n], recorded)
    stats = jax.tree_util.tree_map(lambda x: np.asarray(x)[:n], stats)
    failed = np.asarray(stats["status"]) != 0
    recorded, stats = _did_not_happen((recorded, stats), failed)
    ts = np.asarray(record_times)
    rows = None
    if class_groups is not None:
        if not isinstance(class_groups, ClassGroups):
            k = next(v.shape[-1] for name, v in recorded.items() if name.startswith("class_"))
            class_groups = grid_class_groups(class_groups, [], k)
        rows = class_groups.rows(members)
    data = {}
    for name, values in recorded.items():
        if name.startswith("class_") and rows is not None:
            values = _group(values, rows, len(class_groups.names))
        dims = ("run", "time") + {2: (), 3: ("mode" if name == "mode_strength" else "cls",)}[
            values.ndim]
        data[name] = (dims, values)
    if rows is not None:
        data["group_size"] = (("run", "cls"), np.stack(
            [(rows == g).sum(-1) for g in range(len(class_groups.names))], -1))
    if "class_progress" in data:
        progress = jnp.moveaxis(jnp.asarray(data["class_progress"][1]), 1, 0)
        data["learning_time"] = (("run", "cls"), np.asarray(
            learning_time(ts, progress, status=np.asarray(stats["status"]))))
    for name, values in stats.items():
        data[name] = ("run", values)
    for name, values in (predictions or {}).items():
        data[name] = ("run", values[members])
    coords = {"run": members, "time": ts}
    if class_groups is not None:
        coords["cls"] = list(class_groups.names)
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


def label_by_grid(ds: xr.Dataset, design: AbstractDesign, manifest: dict) -> xr.Dataset:
    """Flat `run` -> the design's dimensions; provenance and totals into the attributes.

    **Arguments:**

    - `ds`: every member's results, from `merge_chunks`.
    - `design`: the sweep's `Grid` (the dataset is over its named axes) or `Points` (over
      `point`, each setting a coordinate on it).
    - `manifest`: the sweep's description (as kept with its store); all of it but the member
      order becomes the `config` attribute (JSON); its dynamics' kind sets the time units
      (flow time, or steps for training).

    **Returns:** an `xarray.Dataset` over the design's dimensions (then time, cls | mode),
    with the `chunk_*` variables over `chunk`, every variable and coordinate described in CF
    style (`long_name`, `units`, the status flags).
    """
    coords = design.coordinates()
    ds = ds.assign_coords({name: ("run", coords[name][ds.run.values]) for name in design.names})
    per_chunk = [v for v in ds.data_vars if "chunk" in ds[v].dims]
    part = ds.drop_vars(per_chunk)
    if design.dims == ("point",):
        part = part.rename(run="point")
    elif len(design.names) == 1:  # one axis: no multi-index to unstack
        part = part.swap_dims(run=design.names[0]).drop_vars("run")
    else:
        part = part.set_index(run=list(design.names)).unstack("run")
    out = part.transpose(*design.dims, ...).assign({v: ds[v] for v in per_chunk})
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
    return _describe(out, design, manifest)


_SWEEP_VARIABLES = {
    # "loss" of a sweep is the objective's value (elsewhere "loss" names a loss function)
    "loss": ("objective: the weighted loss plus the L2 penalty", "1"),
    "group_size": ("number of classes in the group", "1"),
    "chunk_index": ("index of the chunk (one compiled call)", None),
    "chunk_size": ("members in the chunk", "1"),
    "chunk_waste": ("share of the chunk's lane-steps that moved no member (lockstep or "
                    "refill tail)", "1"),
    "chunk_compile_seconds": ("wall time spent compiling the chunk", "s"),
    "chunk_run_seconds": ("wall time spent running the chunk, compiled", "s"),
    "chunk_device": ("device that ran the chunk", None),
    "point": ("index of the member in the design", None),
}


def _describe(ds: xr.Dataset, design: AbstractDesign, manifest: dict) -> xr.Dataset:
    """CF-style attributes: the sweep's own variables, its design's settings (`SETTINGS`, or
    the axis's name where no table knows it), then `results.cf_attributes`; time in steps for
    training."""
    described = dict(_SWEEP_VARIABLES)
    for name in design.names:
        if name in SETTINGS or name not in VARIABLES:
            described[name] = SETTINGS.get(name, (f"grid axis {name}", None))
    if "cls" in ds.coords and "group_size" in ds:
        described["cls"] = ("group of classes", None)
    for name, (long_name, units) in described.items():
        if name in ds.variables:
            ds[name].attrs = {"long_name": long_name} | ({} if units is None else
                                                         {"units": units}) | ds[name].attrs
    steps = (manifest.get("dynamics") or {}).get("kind") == "train"
    return cf_attributes(ds, {"time": "steps", "learning_time": "steps"} if steps else None)


def _git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(__file__), timeout=5).stdout.strip() or "-"
    except (OSError, subprocess.SubprocessError):
        return "-"
