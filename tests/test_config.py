import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import ssm_jax as sj
from ssm_jax.cli import app
from ssm_jax.sweeps import config

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.toml"))
TINY = """
[problem]
model = "ufm"
num_classes = 4
minority_size = 2
dim = 4
init_scale = 1e-2

[grid]
ratio = [1, 4]
power = [0.0, 1.0]
seed = { range = 2 }

[flow]
t1 = 300.0
num_saves = 20
"""


def _write(tmp_path, text, name="sweep.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_example_configs_run_at_a_tiny_size(path, tmp_path):
    """Each shipped config, shrunk (first values of each axis, short run), runs and plots."""
    import tomllib

    raw = tomllib.loads(path.read_text())
    raw["problem"].update(num_classes=4, minority_size=2, dim=4)
    for key, spec in raw["grid"].items():
        values = config._axis(key, spec)
        raw["grid"][key] = [v.item() for v in values[:: max(1, len(values) // 2)][:2]]
    if "flow" in raw:
        raw["flow"].update(t1=200.0, num_saves=10)
    else:
        raw["train"].update(steps=20, record_every=10, batch_size=4)
    cfg = config.parse(raw)
    ds = sj.sweep(cfg.make_problem, cfg.grid, dynamics=cfg.dynamics, metadata=raw, **cfg.options)
    assert np.all(ds.status.values == 0)
    assert set(cfg.grid.names) <= set(ds.dims)
    # The closed form figure F3 draws; the cross-entropy loss has none.
    closed_form = raw["problem"].get("loss", "square") != "cross_entropy"
    assert np.all(np.isfinite(ds.predicted_ratio.values) == closed_form)


def test_cli_sweep_resume_and_plot(tmp_path):
    cfg = _write(tmp_path, TINY)
    out = tmp_path / "runs" / "tiny"
    runner = CliRunner()
    result = runner.invoke(app, ["sweep", str(cfg), "--out", str(out), "--max-batch", "3"])
    assert result.exit_code == 0, result.output
    assert "8 members" in result.output and str(out) in result.output.replace("\n", "")
    ds = sj.open_sweep(out)
    assert ds.sizes["chunk"] == 3
    direct = sj.gradient_flow(*sj.sweeps.problems.imbalance_problem(
        num_classes=4, minority_size=2, dim=4, init_scale=1e-2, ratio=4, power=1.0, seed=1),
        t1=300.0, num_saves=20)
    np.testing.assert_allclose(ds.loss.sel(ratio=4, power=1.0, seed=1), direct.metrics["loss"],
                               rtol=1e-10)
    predicted = sj.sweeps.problems.predicted_ratio(num_classes=4, minority_size=2, dim=4,
                                                   init_scale=1e-2, ratio=4, power=1.0)
    assert float(ds.predicted_ratio.sel(ratio=4, power=1.0, seed=1)) == predicted
    again = runner.invoke(app, ["sweep", str(cfg), "--out", str(out)])
    assert again.exit_code != 0 and "resume" in again.output
    resumed = runner.invoke(app, ["sweep", str(cfg), "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    plotted = runner.invoke(app, ["plot", str(out)])
    assert plotted.exit_code == 0, plotted.output
    assert (out / "F3_learning_time_ratio.png").stat().st_size > 10_000


@pytest.mark.parametrize("edit, key", [
    (("[grid]", "[grid]\nbogus = [1]"), "grid.bogus"),
    (("[flow]", "[flow]\nspeed = 3"), "flow.speed"),
    (("dim = 4", "dim = \"four\""), "problem.dim"),
    (("ratio = [1, 4]", "ratio = []"), "grid.ratio"),
    (("ratio = [1, 4]", "ratio = [-1, 4]"), "ratio"),
    (("[flow]", "[flows]"), "flows"),
    (("t1 = 300.0", "t1 = -1.0"), "t1"),
    (("model = \"ufm\"", "model = \"cnn\""), "model"),
    (("num_saves = 20", "num_saves = 20\nsolver = \"RK4\""), "flow.solver"),
])
def test_config_errors_name_the_key_and_write_nothing(tmp_path, edit, key):
    cfg = _write(tmp_path, TINY.replace(*edit))
    out = tmp_path / "never"
    result = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert key in result.output
    assert not out.exists()


def test_sweep_over_dim_pads_the_width():
    raw = {"problem": {"model": "ssm", "num_classes": 4, "minority_size": 2, "init_scale": 0.05},
           "grid": {"dim": [4, 7], "power": [0.0, 1.0]}, "flow": {"t1": 100.0, "num_saves": 8}}
    cfg = config.parse(raw)
    ds = sj.sweep(cfg.make_problem, cfg.grid, dynamics=cfg.dynamics)
    direct = sj.gradient_flow(*sj.sweeps.problems.imbalance_problem(
        model="ssm", num_classes=4, minority_size=2, init_scale=0.05, dim=4, power=1.0),
        t1=100.0, num_saves=8)
    np.testing.assert_allclose(ds.mode_strength.sel(dim=4, power=1.0),
                               direct.metrics["mode_strength"], rtol=1e-9)


def test_compilation_cache_is_written(tmp_path):
    """The CLI keeps compiled programs on disk (a fresh process, as a user would run it)."""
    cache = tmp_path / "cache"
    cfg = _write(tmp_path, TINY)
    env = dict(os.environ, SSM_JAX_CACHE_DIR=str(cache))
    command = [sys.executable, "-m", "ssm_jax", "sweep", str(cfg), "--out"]
    first = subprocess.run(command + [str(tmp_path / "a")], env=env, capture_output=True,
                           text=True, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    assert len(list(cache.iterdir())) > 0
