import numpy as np
from typer.testing import CliRunner
import xarray as xr

from ssm_jax.cli import app


def test_demo_quick_writes_figures_table_and_dataset(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Half-learning times" in result.output
    for name in ("F1_mode_strengths.png", "F2_class_dynamics.png", "trajectories.nc",
                 "learning_times.csv"):
        assert (out / name).stat().st_size > 0
        assert str(out / name) in result.output.replace("\n", "")
    ds = xr.open_dataset(out / "trajectories.nc")
    assert set(ds.model.values) == {"SSM", "UFM"}
    assert np.all(ds.status.values == 0)
    # Square-loss learning times agree with the closed form from the effective start.
    square = ds.isel(run=np.flatnonzero(ds.loss.values == "square"))
    rel = np.abs(square.learning_time / square.predicted_learning_time - 1)
    assert float(rel.max()) < 0.1
    assert "version_jax" in ds.attrs and "config" in ds.attrs


def test_demo_refuses_a_file_as_out(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(target)])
    assert result.exit_code != 0
    assert "--out" in result.output
    assert target.read_text() == "keep me"
