"""What the package writes: strict JSON, CSV with NaN for what did not happen, CF-style
attributes on every dataset, output folders checked before any work, and messages and tables
that print whole."""

import csv
import dataclasses
import json
import math
from pathlib import Path

import jax
import numpy as np
import pytest
from rich.console import Console
import xarray as xr

from ssm_jax import _validate, losses
from ssm_jax.cli import _common, demo as demo_cli
from ssm_jax.data.imbalance import StepImbalance
from ssm_jax.dynamics.flow import gradient_flow
from ssm_jax.experiments import digits, importance
from ssm_jax.models import UFM
from ssm_jax.objective import Objective
from ssm_jax.results import (
    VARIABLES,
    cf_attributes,
    trajectory_dataset,
    write_csv,
    write_json,
    write_netcdf,
)


def _strict_load(path):
    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(Path(path).read_text(), parse_constant=refuse)


# ---------------------------------------------------------------- files


def test_write_json_is_strict_with_null_for_missing(tmp_path):
    path = tmp_path / "r.json"
    write_json({"error": np.float32(np.nan), "worst": math.inf, "rungs": np.array([1.0, -np.inf]),
                "steps": np.int64(3), "ok": np.bool_(True), "where": tmp_path, 1: (0.5, None)},
               path)
    assert _strict_load(path) == {"error": None, "worst": None, "rungs": [1.0, None],
                                  "steps": 3, "ok": True, "where": str(tmp_path),
                                  "1": [0.5, None]}


def test_write_csv_marks_what_did_not_happen_with_nan(tmp_path):
    path = tmp_path / "t.csv"
    write_csv([{"name": "a", "t": np.float32(np.inf), "u": 1.5, "n": 2},
               {"name": "b", "t": float("nan"), "u": -math.inf, "n": 3}], path)
    rows = list(csv.DictReader(path.open()))
    assert rows == [{"name": "a", "t": "nan", "u": "1.5", "n": "2"},
                    {"name": "b", "t": "nan", "u": "nan", "n": "3"}]


def test_netcdf_config_is_strict_json(tmp_path):
    path = tmp_path / "d.nc"
    ds = cf_attributes(xr.Dataset({"status": ("run", np.array([0, 1]))}))
    write_netcdf(ds, path, config={"rtol": float("nan"), "sizes": (1, 2)})
    with xr.open_dataset(path) as back:
        assert json.loads(back.attrs["config"]) == {"rtol": None, "sizes": [1, 2]}
        assert back.status.attrs["flag_meanings"] == "ok max_steps nonfinite failed"
        assert "version_ssm_jax" in back.attrs


# ---------------------------------------------------------------- CF attributes


def test_cf_attributes_from_the_table_keep_what_is_there():
    ds = xr.Dataset({"status": ("run", np.array([0.0, np.nan])),
                     "learning_time": ("cls", np.ones(2), {"level": 0.5}),
                     "unknown": ("cls", np.zeros(2))},
                    coords={"cls": [0, 1], "time": [0.0, 1.0]})
    out = cf_attributes(ds, {"time": "steps"})
    assert out.status.attrs["flag_values"].dtype == np.float64
    assert list(out.status.attrs["flag_values"]) == [0, 1, 2, 3]
    assert out.learning_time.attrs["level"] == 0.5
    assert out.learning_time.attrs["long_name"] == VARIABLES["learning_time"][0]
    assert out.time.attrs["units"] == "steps" and "units" not in out.cls.attrs
    assert out.unknown.attrs == {} and ds.status.attrs == {}  # the input is left alone
    assert cf_attributes(out).identical(out)


def test_trajectory_dataset_describes_every_variable():
    spec = StepImbalance(2, 2.0, 2)
    model = UFM(spec.counts, 4, init_scale=0.1, key=jax.random.key(0))
    traj = gradient_flow(model, Objective(spec.labels, losses.square), 5.0, num_saves=5)
    ds = trajectory_dataset(traj)
    assert "objective" in ds and "loss" not in ds  # `loss` names a loss function elsewhere
    for name in ds.variables:
        assert "long_name" in ds[name].attrs, name
    assert ds.time.attrs["units"] == "1" and ds.compile_seconds.attrs["units"] == "s"
    assert trajectory_dataset(traj, time_units="steps").learning_time.attrs["units"] == "steps"


def test_digits_datasets_describe_every_variable():
    ds = digits.run_reweighting(digits.ReweightingConfig(networks=("mlp",), num_seeds=1,
                                                         powers=(0.0,), steps=10,
                                                         record_every=5))
    for name in ds.variables:
        assert "long_name" in ds[name].attrs, name
    assert ds.step.attrs["units"] == "steps"
    ds = digits.run_importance(digits.ImportanceConfig(
        log2_weights=(0,), l2=(0.0,), batch_norm=(False,), dropout=(0.0,), num_seeds=1,
        epochs=1, train_per_class=10, batch_size=10))
    for name in ds.variables:
        assert "long_name" in ds[name].attrs, name


def test_importance_runs_stopped_short_are_nan_not_inf(tmp_path):
    config = dataclasses.replace(importance.QUICK, models=("linear",), losses=("logistic",),
                                 log2_weights=(0,), l2s=(0.0,), saves_per_decade=1,
                                 grid_resolution=5, num_probe=10, max_steps=8)
    ds = importance.run_importance(config)
    assert (ds.status == 1).all()  # max_steps: the run ends long before t = 1e12
    for name in ds.data_vars:
        if ds[name].dtype.kind == "f":
            assert not np.isinf(ds[name]).any(), name
    assert np.isnan(ds.direction_cosine.isel(time=-1)).all()
    for name in ds.variables:
        assert "long_name" in ds[name].attrs, name
    rows = importance.fraction_table(ds)
    assert np.isnan(rows[0]["t=1e+09"])
    write_csv(rows, tmp_path / "f.csv")
    assert list(csv.DictReader((tmp_path / "f.csv").open()))[0]["t=1e+09"] == "nan"


# ---------------------------------------------------------------- output folders


def test_output_folder_accepts_a_new_folder_and_makes_nothing(tmp_path):
    assert _validate.output_folder("store", tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", ["file", "under_file", "empty", "result_is_folder"])
def test_output_folder_refusals_name_parameter_value_and_what_is_allowed(tmp_path, case):
    (tmp_path / "f.txt").write_text("x")
    (tmp_path / "runs" / "r.nc").mkdir(parents=True)
    path, files, reason = {
        "file": (tmp_path / "f.txt", (), "it is a file"),
        "under_file": (tmp_path / "f.txt" / "x", (), f"'{tmp_path / 'f.txt'}' is a file"),
        "empty": ("", (), "expected the path of a folder"),
        "result_is_folder": (tmp_path / "runs", ("r.nc",), "is a folder"),
    }[case]
    with pytest.raises(ValueError) as info:
        _validate.output_folder("store", path, files)
    message = str(info.value)
    assert message.startswith(f"`store` = '{path}' is not allowed:"), message
    assert reason in message and "expected" in message


def test_output_folder_refuses_a_read_only_parent(tmp_path, read_only):
    folder = tmp_path / "ro"
    folder.mkdir()
    read_only(folder)
    with pytest.raises(ValueError, match=f"its parent '{folder}' is not writable"):
        _validate.output_folder("store", folder / "new" / "deeper")


def test_output_folder_expands_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _validate.output_folder("--out", "~/results") == tmp_path / "results"


# ---------------------------------------------------------------- messages and tables


@pytest.fixture
def recorded(monkeypatch):
    """Every console of the commands, recording at 80 columns as in a non-terminal."""
    console = Console(width=80, record=True)
    for module in (_common, demo_cli):
        monkeypatch.setattr(module, "console", console)
    monkeypatch.setattr(_common, "error_console", console)
    return console


def test_print_error_prints_brackets_as_text(recorded):
    _common.print_error("Cannot run runs[red]/x.toml:", "Give exactly one of the sections "
                        "[flow] and [train].")
    text = " ".join(recorded.export_text().split())
    assert text == "Cannot run runs[red]/x.toml: Give exactly one of the sections [flow] and " \
                   "[train]."


def test_written_paths_print_whole_on_one_line(recorded, tmp_path):
    _common.report_written(tmp_path / "o[bold]x", {"a.nc": "data"})
    assert f"wrote {tmp_path / 'o[bold]x' / 'a.nc'}: data" in recorded.export_text()


def _headers_whole(text, headers):
    assert "…" not in text
    for header in headers:
        assert any(header in line for line in text.splitlines()), (header, text)


def test_demo_table_keeps_headers_whole_at_80_columns(recorded):
    row = dict(model="UFM", loss="cross_entropy", power=0.5, measured_majority=12345.6,
               measured_minority=123456.7, measured_ratio=10.0, predicted_majority=12345.6,
               predicted_minority=123456.7, predicted_ratio=10.0)
    demo_cli._show_table([row, dict(row, predicted_ratio=float("nan"))])
    text = recorded.export_text()
    _headers_whole(text, ["model", "loss", "gamma", "t_maj", "t_min", "ratio", "t_maj*",
                          "t_min*", "ratio*"])
    assert "123456.7" in text


@pytest.mark.parametrize("row", [
    {"network": "mlp", "gamma": 0.5, "t_maj": 123.0, "t_min": 456.0, "ratio": 3.71,
     "SSM": 3.16, "UFM": 3.16, "maj@20": 0.912, "min@20": 0.123, "maj_end": 0.991,
     "min_end": float("nan")},
    {"BN": "off", "L2": 0.001, "dropout": 0.5, "log2 w": -8, "test@1": 0.5, "test_end": 0.5,
     "probe@1": 0.25, "probe_end": 0.25, "train_acc": 1.0},
    {"model": "deep_linear", "loss": "polynomial", "log2_weight": -8.0, "t=1e+01": 0.25,
     "t=1e+03": 0.25, "t=1e+06": 0.25, "t=1e+09": float("nan")},
])
def test_result_tables_keep_headers_whole_at_80_columns(recorded, row):
    _common.show_rows([row, row], "A title long enough to need folding at eighty columns, "
                                  "which it does rather than being cut")
    text = recorded.export_text()
    _headers_whole(text, list(row))
    assert "nan" not in text  # NaN shows as "-"
