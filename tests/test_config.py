from pathlib import Path
import re

import numpy as np
import pytest
from sweep_problems import tiny_config
from typer.testing import CliRunner

import ssm_jax as sj
from ssm_jax.cli import app
from ssm_jax.sweeps import config, config_values

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.toml"))
TINY = tiny_config()


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
        values = config_values.axis(key, spec)
        raw["grid"][key] = [v.item() for v in values[:: max(1, len(values) // 2)][:2]]
    if "flow" in raw:
        raw["flow"].update(t1=200.0, num_saves=10)
    else:
        raw["train"].update(steps=20, record_every=10, batch_size=4)
    cfg = config.parse(raw)
    ds = sj.sweep(cfg.make_problem, cfg.grid, dynamics=cfg.dynamics, metadata=raw, **cfg.options)
    assert np.all(ds.status.values == 0)
    assert set(cfg.grid.names) <= set(ds.dims)
    # The closed form figure F3 draws; the cross-entropy loss and depth N > 2 have none.
    closed_form = (raw["problem"].get("loss", "square") != "cross_entropy"
                   and raw["problem"].get("model", "ufm") != "deep_ufm")
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
    # On the loss's own scale: it falls by 14 decades, and the sweep steps unrolled (the same
    # steps, its stage sums in another order), so its last values differ in their 9th digit.
    loss = direct.metrics["loss"]
    np.testing.assert_allclose(ds.loss.sel(ratio=4, power=1.0, seed=1), loss, rtol=1e-10,
                               atol=1e-14 * float(loss[0]))
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


TRAIN = TINY.replace("[flow]\nt1 = 300.0\nnum_saves = 20", """[train]
optimizer = "sgd"
steps = 20
record_every = 10
""").replace("power = [0.0, 1.0]", "learning_rate = [0.5, 1.0]")


def _words(text: str) -> str:
    """`text` with its line breaks and runs of spaces as single spaces (a console wraps)."""
    return " ".join(text.split())


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})


@pytest.mark.parametrize("text, edit, key", [
    (TINY, ("[grid]", "[grid]\nbogus = [1]"), "grid.bogus"),
    (TINY, ("[flow]", "[flow]\nspeed = 3"), "flow.speed"),
    (TINY, ("dim = 4", "dim = \"four\""), "problem.dim"),
    (TINY, ("ratio = [1, 4]", "ratio = []"), "grid.ratio"),
    (TINY, ("ratio = [1, 4]", "ratio = [-1, 4]"), "`ratio` = -1 is not allowed"),
    (TINY, ("[flow]", "[flows]"), "flows"),
    (TINY, ("t1 = 300.0", "t1 = -1.0"), "t1"),
    (TINY, ("model = \"ufm\"", "model = \"cnn\""), "model"),
    (TINY, ("num_saves = 20", "num_saves = 20\nsolver = \"RK4\""), "flow.solver"),
    # Messages with square brackets print whole.
    (TINY, ("[flow]", "#"), "Give exactly one of the sections [flow] and [train]."),
    (TINY, ("t1 = 300.0", "t1 = 300.0\nrtol = -1e-3"),
     "`flow.rtol` = -0.001 is not allowed: expected finite values in (0.0, inf]"),
    (TINY, ("t1 = 300.0", "t1 = 300.0\natol = 0.0"), "`flow.atol` = 0.0 is not allowed"),
    (TINY, ("t1 = 300.0", "t1 = 300.0\nmax_steps = 0"), "`flow.max_steps` = 0"),
    (TINY, ("t1 = 300.0", "t1 = 300.0\ncoordinates = \"affine\""),
     "`flow.coordinates` = 'affine' is not allowed: expected one of 'parameters', "
     "'class_affine'"),
    (TINY.replace("t1 = 300.0", "t1 = 300.0\ncoordinates = \"class_affine\""),
     ("model = \"ufm\"", "model = \"ufm\"\nloss = \"cross_entropy\""),
     "exact for a UFM under an Objective with the square loss only"),
    # What a new user tries.
    (TINY, ("ratio = [1, 4]", "ratio = { start = 0.0, stop = 10.0, num = 3, log = true }"),
     "`grid.ratio.start` = 0.0 is not allowed: expected a positive number (the axis is "
     "log-spaced)"),
    (TINY, ("ratio = [1, 4]", "ratio = { start = 1.0, stop = 10.0, num = -2 }"),
     "`grid.ratio.num` = -2 is not allowed: expected an integer >= 1"),
    (TINY, ("ratio = [1, 4]", "ratio = { start = 1.0, stop = 10.0, num = 3, log = \"yes\" }"),
     "`grid.ratio.log` = 'yes' is not allowed: expected true or false"),
    (TINY, ("ratio = [1, 4]", "ratio = [1, 1]"), "`grid.ratio` = [1, 1] is not allowed: a "
     "value repeats"),
    (TINY, ("ratio = [1, 4]", "ratio = { start = 1.0, stop = nan, num = 3 }"),
     "`grid.ratio.stop` = nan is not allowed: expected a finite number"),
    (TINY, ("seed = { range = 2 }", "seed = { range = 0 }"), "`grid.seed.range` = 0"),
    (TINY, ("seed = { range = 2 }", "seed = [0.2, 0.7]"), "`grid.seed` = [0.2, 0.7] is not "
     "allowed: expected whole numbers"),
    (TINY, ("seed = { range = 2 }", "num_classes = [3, 4]"), "`grid.num_classes` cannot be a "
     "grid axis"),
    (TINY, ("dim = 4", "dim = 4\ndepth = 3"), "`problem.depth` = 3 is not allowed with "
     "`problem.model` = 'ufm'"),
    (TINY, ("model = \"ufm\"", "model = \"ssm\"\nloss = \"cross_entropy\""),
     "`loss` = 'cross_entropy' is not allowed with `model` = 'ssm'"),
    (TINY, ("minority_size = 2", "minority_size = 0"), "`minority_size` = 0 is not allowed"),
    (TINY, ("init_scale = 1e-2", "init_scale = 1e-2\nmajority_fraction = 1.0"),
     "`majority_fraction` = 1.0 is not allowed"),
    (TINY, ("[flow]", "[sweep]\nmax_batch = 0\n[flow]"), "`sweep.max_batch` = 0 is not "
     "allowed: expected an integer >= 1"),
    (TINY, ("[flow]", "[sweep]\nbatching = \"pmap\"\n[flow]"), "`sweep.batching` = 'pmap'"),
    (TRAIN, ("steps = 20", "steps = 20\nbatch_size = 0"), "`train.batch_size` = 0 is not "
     "allowed: expected an integer >= 1"),
    (TRAIN, ("steps = 20", "steps = 20\nbatch_size = 9"), "`batch_size` = 9 is not "
     "allowed: expected 1 <= batch_size <= n = 8"),  # the members with ratio 1
    (TRAIN, ("steps = 20", "steps = 20\nlearning_rate = -0.1"), "`grid.learning_rate` and "
     "`train.learning_rate` = -0.1 are both given"),
    (TRAIN.replace("learning_rate = [0.5, 1.0]", "power = [0.0]"),
     ("steps = 20", "steps = 20\nlearning_rate = 0.0"),
     "`train.learning_rate` = 0 is not allowed: expected a number > 0"),
    (TRAIN, ("learning_rate = [0.5, 1.0]", "learning_rate = [0.5, -1.0]"),
     "`grid.learning_rate` = -1 is not allowed: expected a number > 0"),
    (TRAIN, ("optimizer = \"sgd\"", "optimizer = \"momentum\"\nmomentum = 1.5"),
     "`train.momentum` = 1.5 is not allowed: expected a number in [0, 1)"),
])
def test_config_errors_name_the_key_and_write_nothing(tmp_path, text, edit, key):
    cfg = _write(tmp_path, text.replace(*edit))
    out = tmp_path / "never"
    result = _invoke("sweep", cfg, "--out", out)
    assert result.exit_code == 2, result.output
    assert _words(key) in _words(result.output), result.output
    assert not out.exists()


def test_unreadable_configs_are_named(tmp_path):
    bad = _write(tmp_path, "[grid\nratio = 1")
    for path, reason in ((tmp_path / "missing.toml", "cannot be read (No such file"),
                         (tmp_path, "cannot be read (Is a directory)"),
                         (bad, "is not valid TOML: Expected ']'")):
        result = _invoke("sweep", path, "--out", tmp_path / "never")
        assert result.exit_code == 2
        assert f"`config` = '{path}' {reason}" in _words(result.output), result.output
    assert not (tmp_path / "never").exists()


def test_output_paths_are_refused_before_compute(tmp_path, read_only):
    cfg = _write(tmp_path, TINY)
    file = _write(tmp_path, "keep me", "file.txt")
    for out, parts in ((file, ["--out", str(file), "is a file", "expected a folder"]),
                       (file / "sub", ["is a file"]),
                       ("", ["`--out` = ''", "expected the path of a folder"])):
        result = _invoke("sweep", cfg, "--out", out)
        assert result.exit_code == 2, result.output
        assert all(_words(part) in _words(result.output) for part in parts), result.output
    assert file.read_text() == "keep me"
    result = _invoke("sweep", cfg, "--out", tmp_path / "never", "--max-batch", "0")
    assert result.exit_code == 2
    assert "`--max-batch` = 0 is not allowed: expected an integer >= 1" in _words(result.output)
    stored = tmp_path / "stored"
    (stored / "done").mkdir(parents=True)
    (stored / "manifest.json").write_text("{}")
    locked = tmp_path / "read_only"
    locked.mkdir()
    read_only(stored, locked)
    for args in (["--out", locked], ["--out", locked / "new"],
                 ["--out", stored, "--resume"]):
        result = _invoke("sweep", cfg, *args)
        assert result.exit_code == 2, result.output
        assert "not writable" in result.output and str(args[1]) in _words(result.output)
    assert list(locked.iterdir()) == [] and not list((stored / "done").iterdir())


def test_plot_checks_its_file_before_drawing(tmp_path, read_only):
    # The store is not read when the file is refused: no "holds no sweep" here.
    result = _invoke("plot", tmp_path / "no_store", "--out", tmp_path / "f3.xyz")
    assert result.exit_code == 2
    assert all(part in _words(result.output) for part in ("--out", "f3.xyz", ".png", ".pdf"))
    result = _invoke("plot", tmp_path / "no_store", "--out", tmp_path)
    assert result.exit_code == 2 and "is not allowed" in result.output
    store = tmp_path / "store"
    store.mkdir()
    read_only(store)
    result = _invoke("plot", store)
    assert result.exit_code == 2 and "not writable" in result.output
    result = _invoke("plot", tmp_path / "no_store")
    assert result.exit_code == 2 and "holds no sweep" in _words(result.output)


def test_a_failed_sweep_resumes_and_reports_what_it_computed(tmp_path, monkeypatch):
    import importlib

    execute = importlib.import_module("ssm_jax.sweeps.batching.memberwise")
    monkeypatch.setenv("SSM_JAX_CACHE_DIR", str(tmp_path / "cache"))
    cfg = _write(tmp_path, TINY)
    out = tmp_path / "store"
    original, calls = execute.run_members, []

    def fails_second(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("device lost (simulated)")
        return original(*args)

    monkeypatch.setattr(execute, "run_members", fails_second)
    failed = _invoke("sweep", cfg, "--out", out, "--max-batch", "3")
    assert failed.exit_code == 1, failed.output
    assert "RuntimeError: device lost (simulated)" in _words(failed.output)
    assert f"1 finished chunks are kept in {out}: run the same command with --resume" in _words(
        failed.output)
    resumed = _invoke("sweep", cfg, "--out", out, "--max-batch", "3", "--resume")
    assert resumed.exit_code == 0, resumed.output
    summary = _words(resumed.output)
    # The chunk kept is the one run first: the last (2 members), the costliest first.
    match = re.search(r"8 members: 6 computed in ([\d.]+) s \(compile ([\d.]+) s, run "
                      r"([\d.]+) s\), 2 already stored; status: 8 ok", summary)
    assert match, summary
    wall, compile_s, run_s = map(float, match.groups())
    assert compile_s + run_s <= wall + 0.1  # this invocation's seconds, not the store's
    assert f"`ssm-jax plot {out}` draws figure F3" in summary


def test_plot_is_suggested_only_where_it_draws(tmp_path, monkeypatch):
    monkeypatch.setenv("SSM_JAX_CACHE_DIR", str(tmp_path / "cache"))
    cfg = _write(tmp_path, TRAIN)
    result = _invoke("sweep", cfg, "--out", tmp_path / "store")
    assert result.exit_code == 0, result.output
    words = _words(result.output)
    assert "ssm-jax plot" not in words
    assert "no figure for this sweep (F3 needs a sweep over `power`" in words
    assert "ssm_jax.open_sweep(" in words
    ds = sj.open_sweep(tmp_path / "store")
    assert ds.time.attrs["units"] == "steps" and ds.learning_rate.attrs["long_name"]


def test_step_groups_follow_each_members_majority_fraction():
    raw = {"problem": {"num_classes": 4, "minority_size": 2, "dim": 4, "init_scale": 1e-2},
           "grid": {"majority_fraction": [0.25, 0.75], "power": [0.0]},
           "flow": {"t1": 50.0, "num_saves": 5}}
    cfg = config.parse(raw)
    groups = cfg.options["class_groups"]
    assert groups(majority_fraction=0.25, power=0.0) == {"majority": [0],
                                                         "minority": [1, 2, 3]}
    ds = sj.sweep(cfg.make_problem, cfg.grid, dynamics=cfg.dynamics, **cfg.options)
    np.testing.assert_array_equal(ds.group_size.sel(power=0.0), [[1, 3], [3, 1]])
    direct = sj.gradient_flow(*sj.sweeps.problems.imbalance_problem(
        num_classes=4, minority_size=2, dim=4, init_scale=1e-2, majority_fraction=0.75),
        t1=50.0, num_saves=5)
    progress = np.asarray(direct.metrics["class_progress"])
    np.testing.assert_allclose(ds.class_progress.sel(majority_fraction=0.75, power=0.0),
                               np.stack([progress[:, :3].mean(1), progress[:, 3]], -1),
                               rtol=1e-10)


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

