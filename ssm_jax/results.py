"""Results as labelled xarray datasets, and the files they are written to.

A run's metrics become variables over named dimensions: `time`, `cls` (class) and `mode`;
solver statistics become scalar variables, and learning times a variable over `cls`.
Every dataset the package writes describes its variables in CF style (`long_name`, `units`,
`flag_values`/`flag_meanings`) from one table, `VARIABLES`; NaN marks a value that did not
happen (a learning time never reached, a save after a run stopped), in netCDF, CSV and JSON
(as null) alike.
"""

import csv
from importlib.metadata import PackageNotFoundError, version
import json
import math
from pathlib import Path
import platform

import jax
import numpy as np
import xarray as xr

from .dynamics.trajectory import STATUS, Trajectory

_FLOW_TIME = "1"  # gradient-flow time is dimensionless (time in units of the learning rate)

VARIABLES: dict[str, tuple[str, str | None]] = {
    # settings and axes
    "time": ("time (gradient flow)", _FLOW_TIME),
    "step": ("training step", "steps"),
    "epoch": ("training epoch", "epochs"),
    "cls": ("class", None),
    "mode": ("mode index", None),
    "group": ("group of classes", None),
    "count": ("number of training examples of the class", "1"),
    "majority": ("whether the class is a majority class", None),
    "model": ("model", None),
    "network": ("network", None),
    "loss": ("loss function", None),
    "power": ("re-weighting power gamma in omega_c ~ n_c^-gamma", "1"),
    "log2_weight": ("log2 of the importance weight on the positive class", "1"),
    "weight": ("importance weight on the weighted digit", "1"),
    "l2": ("L2 strength lambda", "1"),
    "dropout": ("dropout rate", "1"),
    "batch_norm": ("whether the network uses batch norm", None),
    "seed": ("random seed", None),
    "reading": ("reading of the re-weighting: target (SSM) or loss (UFM)", None),
    "probe_class": ("out-of-distribution probe class", None),
    "snapshot": ("time of the decision-boundary snapshot", _FLOW_TIME),
    "gx": ("first input coordinate of the snapshot grid", "1"),
    "gy": ("second input coordinate of the snapshot grid", "1"),
    "feature": ("feature of the input augmented with a constant, [x1, x2, 1]", None),
    # metrics along a run
    "class_accuracy": ("training accuracy of each class", "1"),
    "class_loss": ("class mean of the per-example loss, without class or importance weights",
                   "1"),
    "class_output": ("class mean of the correct-class output (the margin for a margin loss)",
                     "1"),
    "class_progress": ("class mean of the progress towards the class's target (1: learned)",
                       "1"),
    "mode_strength": ("mode strength a_i: the output along the target's i-th singular "
                      "vectors", "1"),
    "objective": ("objective: the weighted loss plus the L2 penalty", "1"),
    "direction_cosine": ("cosine between the linear predictor and the max-margin direction",
                         "1"),
    "direction_angle": ("angle between the linear predictor and the max-margin direction",
                        "rad"),
    "direction_error": ("1 - direction_cosine", "1"),
    "normalized_margin": ("smallest training margin over |beta| (linear) or |theta|^2 (MLP)",
                          "1"),
    "norm": ("norm of the linear predictor beta, or of all parameters theta (MLP)", "1"),
    "probe_positive": ("fraction of the probe set predicted positive", "1"),
    "grid_outputs": ("model output on the snapshot grid (first seed)", "1"),
    "train_accuracy": ("training accuracy of each class", "1"),
    "train_loss": ("class mean of the training cross-entropy, without weights", "1"),
    "test_accuracy": ("test accuracy of each class", "1"),
    "test_loss": ("class mean of the test cross-entropy", "1"),
    "feature_spectrum": ("singular values of the centred class-mean penultimate features",
                         "1"),
    "test_predicted_up": ("fraction of each test class predicted as the weighted digit", "1"),
    "probe_predicted_up": ("fraction of each probe digit predicted as the weighted digit",
                           "1"),
    # outcomes, closed forms and statistics
    "learning_time": ("first time the class's mean progress reaches the level (NaN: never)",
                      _FLOW_TIME),
    "predicted_learning_time": ("closed-form learning time from the run's effective initial "
                                "strength (NaN: no closed form)", _FLOW_TIME),
    "analytic_mode_strength": ("closed-form mode strength a_i(t)", "1"),
    "learning_step": ("first step at which the group's mean test accuracy is half-way from "
                      "chance to its final value (NaN: never)", "steps"),
    "learning_step_ratio": ("learning step of the minority group over the majority's", "1"),
    "predicted_ratio": ("closed-form t_min / t_maj for the same counts", "1"),
    "inputs": ("training inputs (first seed)", "1"),
    "labels": ("training labels (first seed): +1 positive, -1 negative", None),
    "svm_direction": ("max-margin direction of the augmented training inputs (first seed)",
                      "1"),
    "status": ("how the run ended", None),
    "stop_time": ("time at which the run stopped: t1, or where an event ended it",
                  _FLOW_TIME),
    "num_steps": ("solver steps taken", "1"),
    "num_accepted_steps": ("solver steps accepted", "1"),
    "num_rejected_steps": ("solver steps rejected", "1"),
    "num_vector_field_evals": ("vector field evaluations (NaN: not known in closed form)",
                               "1"),
    "compile_seconds": ("wall time spent compiling", "s"),
    "run_seconds": ("wall time spent running, compiled", "s"),
}
"""name -> (`long_name`, `units`, None where a quantity has none) of every variable and
coordinate the package writes; `cf_attributes` applies it."""


def cf_attributes(ds: xr.Dataset, units: dict[str, str] | None = None) -> xr.Dataset:
    """CF-style attributes on every variable and coordinate `VARIABLES` knows: `long_name`,
    `units` (where the quantity has one) and, on `status`, `flag_values` and `flag_meanings`
    (`dynamics.trajectory.STATUS`, in the variable's type). Other attributes a variable
    already has are kept, so that a second call changes nothing.

    **Arguments:**

    - `ds`: a result dataset.
    - `units`: units that depend on the run, by variable name: e.g. {"time": "steps",
      "learning_time": "steps"} for discrete training, whose time counts steps.

    **Returns:** `ds` with the attributes (a shallow copy; the data are shared).
    """
    ds = ds.copy()
    for name in ds.variables:
        if name not in VARIABLES:
            continue
        long_name, unit = VARIABLES[name]
        unit = (units or {}).get(name, unit)
        attrs = {"long_name": long_name} | ({} if unit is None else {"units": unit})
        attrs = attrs | dict(ds[name].attrs)
        if name == "status":  # flag values of the variable's type (float where NaN marks a gap)
            attrs["flag_values"] = np.arange(len(STATUS), dtype=ds[name].dtype)
            attrs["flag_meanings"] = " ".join(STATUS)
        ds[name].attrs = attrs
    return ds


def _metric_dims(name: str, value: np.ndarray) -> tuple[str, ...]:
    if name == "mode_strength":
        return ("time", "mode")
    return ("time",) + ("cls",) * (value.ndim - 1)


def trajectory_dataset(traj: Trajectory, level: float = 0.5,
                       time_units: str = _FLOW_TIME) -> xr.Dataset:
    """One trajectory as a dataset, described in CF style (`cf_attributes`).

    **Arguments:**

    - `traj`: a `Trajectory` from `gradient_flow` or `train`.
    - `level`: the progress level of the learning times (kept as their attribute `level`).
    - `time_units`: "1" for gradient-flow time (dimensionless), "steps" for `train`.

    **Returns:** a dataset with the metrics over (time, cls | mode) (the objective's value as
    `objective`), `learning_time` over cls (NaN where never reached) and the solver
    statistics as scalars (`status` indexes `dynamics.trajectory.STATUS`).
    """
    data = {("objective" if name == "loss" else name): (_metric_dims(name, np.asarray(v)),
                                                        np.asarray(v))
            for name, v in traj.metrics.items()}
    data["learning_time"] = ("cls", np.asarray(traj.learning_times(level)))
    for name, value in traj.stats.items():
        data[name] = ((), np.asarray(value))
    ds = xr.Dataset(data, coords={"time": np.asarray(traj.ts)})
    ds["learning_time"].attrs["level"] = level
    return cf_attributes(ds, {"time": time_units, "learning_time": time_units,
                              "stop_time": time_units})


def provenance() -> dict[str, str]:
    """Package versions and the device, for a dataset's attributes."""
    info = {"python": platform.python_version(), "device": str(jax.devices()[0].device_kind)}
    for package in ("ssm_jax", "jax", "jaxlib", "equinox", "diffrax", "optax"):
        try:
            info[f"version_{package}"] = version(package)
        except PackageNotFoundError:
            info[f"version_{package}"] = "not installed"
    return info


def _jsonable(obj):
    """`obj` with numpy values as Python ones and non-finite floats as None (null)."""
    if isinstance(obj, dict):
        return {str(key): _jsonable(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_jsonable(value) for value in (obj.tolist() if isinstance(obj, np.ndarray)
                                               else obj)]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    return str(obj)  # paths, dtypes, solvers: their names


def write_json(obj, path) -> None:
    """Writes `obj` as strict JSON: NaN and infinities (values that did not happen) become
    null, numpy numbers and arrays plain numbers and lists, anything else its `str`.

    **Arguments:**

    - `obj`: dicts, lists, tuples, numbers, strings, numpy values.
    - `path`: the file to write.

    **Returns:** nothing.
    """
    Path(path).write_text(json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n")


def write_netcdf(ds: xr.Dataset, path, config: dict | None = None) -> None:
    """Writes `ds` to netCDF with provenance (package versions, device) in its attributes.

    **Arguments:**

    - `ds`: a result dataset.
    - `path`: the file to write.
    - `config`: the settings that made `ds`, stored as strict JSON in `attrs["config"]`.

    **Returns:** nothing.
    """
    ds = ds.assign_attrs(provenance())
    if config is not None:
        ds = ds.assign_attrs(config=json.dumps(_jsonable(config), allow_nan=False))
    ds.to_netcdf(path, engine="netcdf4")


def write_csv(rows: list[dict], path) -> None:
    """Rows of a results table as a CSV file; a value that did not happen (NaN, or an infinity
    standing for one) is written as `nan`.

    **Arguments:**

    - `rows`: dicts with the same keys, in the columns' order.
    - `path`: the file to write.

    **Returns:** nothing.
    """
    def cell(value):
        is_float = isinstance(value, (float, np.floating))
        return float("nan") if is_float and not math.isfinite(value) else value

    with Path(path).open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({key: cell(value) for key, value in row.items()} for row in rows)
