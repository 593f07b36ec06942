"""The early-stopping map: the experiment's quick setting, its closed form, F8 and the command.

Oracle: from the class-aligned start the square-loss UFM's classes follow
`analytic.ufm_class_output` exactly (piecewise across a switch), so the measured window of the
balanced learned fraction equals the closed form's up to the save-time resolution.
"""

import dataclasses

import equinox as eqx
import matplotlib
import numpy as np
import pytest
import typer
from typer.testing import CliRunner
import xarray as xr

from ssm_jax import plots
from ssm_jax.cli.experiments import schedules as schedules_command
from ssm_jax.experiments import schedules as study
from ssm_jax.sweeps.batching import memberwise as execute

matplotlib.use("Agg")

SMALL = dataclasses.replace(study.QUICK, ratios=(4.0, 16.0), models=("ufm_square", "ssm"),
                            aligned=True)


@pytest.fixture(scope="module")
def aligned():
    before = eqx.debug.get_num_traces(execute.run_members)
    ds = study.run_schedules(SMALL)
    # One compilation per model: every method and ratio of a model shares it.
    return ds, eqx.debug.get_num_traces(execute.run_members) - before


def test_dataset_variables_and_one_compilation_per_model(aligned):
    ds, traces = aligned
    assert traces == len(SMALL.models)
    assert ds.balanced_accuracy.dims == ("model", "ratio", "weighting", "time")
    assert ds.window_start.dims == ("model", "ratio", "weighting", "source")
    for name in ("accuracy_gap", "balanced_learned", "predicted_learned", "best_gain"):
        assert name in ds and "long_name" in ds[name].attrs
    assert list(ds.weighting.values) == list(SMALL.methods("ufm_square"))
    # The SSM has no deferred method: NaN there; every run that happened is ok.
    assert ds.num_steps.sel(model="ssm", weighting="deferred 1").isnull().all()
    assert (ds.status.sel({"model": "ufm_square"}) == 0).all()


def test_square_ufm_window_matches_closed_form(aligned):
    ds, _ = aligned
    step = (SMALL.log10_t1 - SMALL.log10_t0) / (SMALL.save_times.size - 2)
    w = ds.sel(model="ufm_square").drop_sel(weighting="ERM")
    measured, closed = w.sel(source="learned"), w.sel(source="closed_form")
    for name in ("window_start", "window_end"):
        m, c = measured[name].values, closed[name].values
        assert np.array_equal(np.isnan(m), np.isnan(c))
        assert np.isfinite(c).sum() >= 4  # re-weighting and deferral do beat ERM somewhere
        assert np.nanmax(np.abs(np.log10(m) - np.log10(c))) <= step + 1e-9


def test_table_rows(aligned):
    ds, _ = aligned
    rows = study.table(ds, "learned")
    assert {r["method"] for r in rows} == {"reweight 1", "reweight 1/2", "deferred 1"}
    assert len(rows) == 3 * 2 + 2 * 2  # ufm: 3 methods x 2 R; ssm: 2 methods x 2 R
    with pytest.raises(ValueError, match="source"):
        study.table(ds, "closed_form")


def test_f8_draws_a_band_per_window(aligned):
    ds, _ = aligned
    fig = plots.schedules_figure(ds, source="learned")
    # ERM never beats itself: every finite window is another method's.
    measured = np.isfinite(ds.window_start.sel(source="learned")).sum()
    closed = np.isfinite(ds.window_start.sel(source="closed_form")).sum()
    bars = sum(len(ax.patches) for ax in fig.axes)
    assert bars == int(measured + closed)
    assert "F8" in fig._suptitle.get_text()
    # The caption says why the measured and closed-form windows differ.
    assert fig._supxlabel.get_text().replace("\n", " ").startswith(
        "Filled: measured fraction of classes learned")
    fig.canvas.draw()
    assert fig._supxlabel.get_window_extent().x0 >= 0  # whole, not clipped
    # The coordinate is `weighting`: `method` would clash with `Dataset.sel(method=...)`.
    assert "method" not in ds.coords and "ERM" in ds.weighting.values
    matplotlib.pyplot.close(fig)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="models"):
        study.SchedulesConfig(models=("mlp",))
    with pytest.raises(ValueError, match="dim"):
        study.SchedulesConfig(dim=2)


def test_command_writes_its_files(tmp_path):
    app = typer.Typer()
    app.command("schedules")(schedules_command)
    app.command("other")(lambda: None)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["schedules", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("F8_schedules.png", "schedules_windows.csv", "schedules.nc"):
        assert (out / name).stat().st_size > 0
    with xr.open_dataset(out / "schedules.nc") as ds:
        assert set(ds.model.values) == set(study.MODELS)
        assert ds.balanced_accuracy.attrs["long_name"]
