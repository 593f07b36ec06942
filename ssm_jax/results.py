"""Trajectories as labelled xarray datasets, and their netCDF store.

A run's metrics become variables over named dimensions: `time`, `cls` (class) and `mode`;
solver statistics become scalar variables, and learning times a variable over `cls`.
Runs are stacked along a `run` dimension with their settings as coordinates.
"""

import csv
from importlib.metadata import PackageNotFoundError, version
import json
from pathlib import Path
import platform

import jax
import numpy as np
import xarray as xr

from .dynamics.trajectory import STATUS, Trajectory


def _metric_dims(name: str, value: np.ndarray) -> tuple[str, ...]:
    if name == "mode_strength":
        return ("time", "mode")
    return ("time",) + ("cls",) * (value.ndim - 1)


def trajectory_dataset(traj: Trajectory, level: float = 0.5) -> xr.Dataset:
    """One trajectory as a dataset: metrics over (time, cls | mode), learning times over cls,
    solver statistics as scalars (status as its word in `attrs["status_words"]` order)."""
    data = {name: (_metric_dims(name, np.asarray(v)), np.asarray(v))
            for name, v in traj.metrics.items()}
    data["learning_time"] = ("cls", np.asarray(traj.learning_times(level)))
    for name, value in traj.stats.items():
        data[name] = ((), np.asarray(value))
    ds = xr.Dataset(data, coords={"time": np.asarray(traj.ts)})
    ds["status"].attrs["flag_meanings"] = " ".join(STATUS)
    ds["learning_time"].attrs["level"] = level
    return ds


def provenance() -> dict[str, str]:
    """Package versions and the device, for a dataset's attributes."""
    info = {"python": platform.python_version(), "device": str(jax.devices()[0].device_kind)}
    for package in ("ssm_jax", "jax", "jaxlib", "equinox", "diffrax", "optax"):
        try:
            info[f"version_{package}"] = version(package)
        except PackageNotFoundError:
            info[f"version_{package}"] = "not installed"
    return info


def write_netcdf(ds: xr.Dataset, path, config: dict | None = None) -> None:
    """Writes `ds` with provenance (and `config`, as JSON) in its attributes."""
    ds = ds.assign_attrs(provenance())
    if config is not None:
        ds = ds.assign_attrs(config=json.dumps(config, default=str))
    ds.to_netcdf(path, engine="netcdf4")


def write_csv(rows: list[dict], path) -> None:
    """Rows of a results table (dicts with the same keys) as a CSV file."""
    with Path(path).open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
