import inspect
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner
import xarray as xr

import ssm_jax
from ssm_jax.cli import app
from ssm_jax.cli.demo import demo
from ssm_jax.cli.experiments import digits, importance

# Wide enough that an error panel does not break a path across lines.
WIDE = {"COLUMNS": "400"}


def test_demo_quick_writes_figures_table_and_dataset(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Half-learning times" in result.output
    assert "t_min*" in result.output and "…" not in result.output  # the table is not cut
    for name in ("F1_mode_strengths.png", "F2_class_dynamics.png", "trajectories.nc",
                 "learning_times.csv"):
        assert (out / name).stat().st_size > 0
        assert str(out / name) in result.output.replace("\n", "")
    with xr.open_dataset(out / "trajectories.nc") as ds:
        # One axis per setting, indexable as read from the file.
        assert ds.status.dims == ("model", "loss", "power")
        assert list(ds.model.values) == ["SSM", "UFM"]
        assert list(ds.loss.values) == ["square", "cross_entropy"]
        assert list(ds.power.values) == [0.0, 0.5, 1.0]
        run = ds.sel(model="UFM", loss="square", power=1.0)
        assert run.class_accuracy.dims == ("time", "cls")
        # The SSM has no cross-entropy run: NaN there, every other run ok.
        assert np.isnan(ds.status.sel(model="SSM", loss="cross_entropy")).all()
        assert (ds.status.sel(model="UFM") == 0).all()
        assert (ds.status.sel(model="SSM", loss="square") == 0).all()
        # Square-loss learning times agree with the closed form from the effective start.
        square = ds.sel(loss="square")
        rel = np.abs(square.learning_time / square.predicted_learning_time - 1)
        assert float(rel.max()) < 0.1
        # CF-style attributes on every variable and coordinate.
        for name in ds.variables:
            assert "long_name" in ds[name].attrs, name
        assert ds.time.attrs["units"] == "1" and ds.run_seconds.attrs["units"] == "s"
        assert ds.status.attrs["flag_meanings"] == "ok max_steps nonfinite failed"
        assert list(ds.status.attrs["flag_values"]) == [0, 1, 2, 3]
        assert "version_jax" in ds.attrs and "config" in ds.attrs
        assert ds.attrs["num_classes"] == 4 and ds.attrs["init_scale"] == 1e-3
    table = (out / "learning_times.csv").read_text().splitlines()
    # Nine runs; cross-entropy has no closed form: NaN, not inf or 0.
    assert len(table) == 1 + 9
    assert [row.endswith(",nan,nan,nan") for row in table[1:]] == [False] * 6 + [True] * 3


def _refused(args, *parts):
    result = CliRunner().invoke(app, args, env=WIDE)
    assert result.exit_code == 2, result.output
    for part in parts:
        assert part in result.output, (part, result.output)
    return result


def test_demo_refuses_a_file_as_out(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    _refused(["demo", "--quick", "--out", str(target)], "--out", str(target), "is a file",
             "expected a folder")
    assert target.read_text() == "keep me"


def test_out_under_a_file_is_refused_and_nothing_made(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    out = target / "sub"
    _refused(["run", "importance", "--out", str(out)], "--out", str(out), "is a file")
    _refused(["run", "digits", "--out", str(out)], "--out", str(out), "is a file")
    assert target.read_text() == "keep me"


def test_read_only_out_is_refused_before_any_work(tmp_path, read_only):
    folder = tmp_path / "read_only"
    folder.mkdir()
    read_only(folder)
    _refused(["demo", "--out", str(folder)], "--out", str(folder), "not writable")
    # A folder to be made inside it names the parent that cannot be written.
    _refused(["demo", "--out", str(folder / "new")], str(folder / "new"),
             f"its parent '{folder}' is not writable")
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc")
def test_out_that_cannot_be_made_is_refused():
    # /proc takes no new folders, even from root (for whom every folder looks writable).
    _refused(["demo", "--out", "/proc/ssm_jax_out/x"], "--out", "'/proc/ssm_jax_out/x' is "
             "not allowed")


def test_empty_out_and_result_file_taken_by_a_folder_are_refused(tmp_path):
    _refused(["demo", "--out", ""], "--out", "expected the path of a folder")
    (tmp_path / "trajectories.nc").mkdir()
    _refused(["demo", "--out", str(tmp_path)], "--out", "trajectories.nc", "is a folder")


def test_unknown_digits_experiment_is_refused_before_the_folder_is_made(tmp_path):
    out = tmp_path / "never"
    _refused(["run", "digits", "--experiment", "mnist", "--out", str(out)], "--experiment",
             "mnist", "'reweighting', 'importance'")
    assert not out.exists()


def test_unknown_command_names_it():
    result = CliRunner().invoke(app, ["run", "imagenet"])
    assert result.exit_code == 2 and "imagenet" in result.output


def test_each_command_has_its_own_default_folder():
    def default(command):
        return inspect.signature(command).parameters["out"].default

    assert default(demo) == "ssm-jax-out/demo"
    assert default(importance) == "ssm-jax-out/importance"
    assert default(digits) == "ssm-jax-out/digits"


def test_version_option_and_module_entry_point():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"ssm-jax {ssm_jax.__version__}"
    done = subprocess.run([sys.executable, "-m", "ssm_jax", "--version"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"ssm-jax {ssm_jax.__version__}"


def test_help_rewraps_docstrings():
    # A docstring's line breaks are not the terminal's: help text flows at any width.
    result = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "writes figures F1 and F2, the table of half-learning times" in result.output
