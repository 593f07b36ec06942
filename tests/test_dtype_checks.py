"""Inputs that are fine in Python but not in the precision a run computes in: refused at the
boundary, naming the setting as the user typed it. Also: a run that did not end ok has no
learning times, and the command line's help shows flags as flags and lists the names its
options take."""

import diffrax
import jax
import numpy as np
import pytest
from sweep_problems import tiny_config
from typer.testing import CliRunner

import ssm_jax as sj
from ssm_jax import _validate
from ssm_jax.cli import app
from ssm_jax.sweeps import config
from ssm_jax.sweeps.problems import check_precision, imbalance_problem

TINY = tiny_config("ssm_class")


@pytest.mark.parametrize("edit, message", [
    (("t1 = 300.0", "t1 = 1e39"), "`flow.t1` = 1e+39 is not allowed: float32"),
    (("t1 = 300.0", "t1 = 1e-39"), "`flow.t1` = 1e-39 is not allowed: float32"),
    (("t1 = 300.0", "t1 = 300.0\nrtol = 1e-50"), "`flow.rtol` = 1e-50 is not allowed"),
    (("t1 = 300.0", "t1 = 300.0\natol = 1e-50"), "`flow.atol` = 1e-50 is not allowed"),
    (("t1 = 300.0", "t1 = 300.0\nsolver = \"Euler\"\ndt0 = 1e-46"), "`flow.dt0` = 1e-46"),
    (("init_scale = 1e-2", "init_scale = 1e39"), "`problem.init_scale` = 1e+39"),
    (("init_scale = 1e-2", "init_scale = 1e-45"), "`problem.init_scale` = 1e-45"),
    (("dim = 4", "dim = 4\nl2 = 1e39"), "`problem.l2` = 1e+39 is not allowed"),
    (("power = [0.0, 1.0]", "power = [0.0, 1e39]"), "`grid.power` = 1e+39 is not allowed"),
    (("power = [0.0, 1.0]", "power = [0.0, 1e4]"),
     "`grid.power` = 10000 is not allowed: with class counts from 2 to 2 (n = 8) the weights "
     "n_c^-power leave float32's range; expected |power| <= 123"),
    (("ratio = [1, 4]", "ratio = [1, 1e40]"), "`grid.ratio` = 1e+40 is not allowed: float32"),
    (("ratio = [1, 4]", "ratio = [1, 1e20]"), "`grid.ratio` = 1e+20 is not allowed: with 2 "
     "majority classes of round(ratio * 2) examples it gives n = 4e+20 examples, more than "
     "an int32 holds (2147483647); expected a ratio <= 5.36871e+08"),
    (("seed = { range = 2 }", "seed = [0, 1099511627776]"),
     "`grid.seed` = 1099511627776 is not allowed: expected integers in 0..4294967295"),
    (("seed = { range = 2 }", "seed = [-1, 0]"), "`grid.seed` = -1 is not allowed"),
    (("[flow]", "[sweep]\nseed = 4294967296\n[flow]"), "`sweep.seed` = 4294967296 is not"),
    (("num_saves = 20", "num_saves = 20\nmax_steps = 4294967296"),
     "`flow.max_steps` = 4294967296 is not allowed: expected an integer <= 2147483647"),
    (("t1 = 300.0", "t1 = 300.0\nsolver = \"Euler\""),
     "`flow.dt0` is required with `flow.solver` = \"Euler\", a fixed-step solver"),
])
def test_config_numbers_are_checked_in_float32(edit, message):
    import tomllib

    with pytest.raises(config.ConfigError) as caught:
        config.parse(tomllib.loads(TINY.replace(*edit)))
    assert message in str(caught.value)


def test_train_numbers_are_checked_in_float32():
    import tomllib

    text = TINY.replace("[flow]\nt1 = 300.0\nnum_saves = 20",
                        "[train]\nsteps = 4\nlearning_rate = 1e-50")
    with pytest.raises(config.ConfigError, match=r"`train.learning_rate` = 1e-50"):
        config.parse(tomllib.loads(text))


def test_euler_takes_flow_dt0():
    import tomllib

    cfg = config.parse(tomllib.loads(TINY.replace(
        "t1 = 300.0", "t1 = 300.0\nsolver = \"Euler\"\ndt0 = 0.5")))
    assert isinstance(cfg.dynamics.solver, diffrax.Euler)
    assert float(cfg.dynamics.dt0) == 0.5
    adaptive = config.parse(tomllib.loads(TINY.replace("t1 = 300.0", "t1 = 300.0\ndt0 = 0.5")))
    assert float(adaptive.dynamics.dt0) == 0.5  # the first step of an adaptive solver


def test_python_settings_are_checked_in_the_run_dtype():
    """Tests run in float64: float32 is asked for explicitly; float64's own limits apply."""
    with pytest.raises(ValueError, match=r"`rtol` = 1e-50 is not allowed: float32"):
        _validate.number("rtol", 1e-50, low=0.0, low_open=True, dtype="float32")
    assert _validate.number("l2", 1e-50, low=0.0, dtype="float32") == 1e-50  # 0 is allowed
    with pytest.raises(ValueError, match=r"`rtol` = 1e-320 is not allowed: float64"):
        sj.Flow(10.0, rtol=1e-320)
    with pytest.raises(ValueError, match=r"`power` = 10000 is not allowed: .* expected "
                                         r"\|power\| <= 15"):
        sj.class_weights(sj.StepImbalance(10, 10.0, 10).counts, 1e4)
    with pytest.raises(ValueError, match=r"`ratio` = 1e\+40 is not allowed: .* more than an "
                                         r"int64 holds"):
        sj.StepImbalance(4, 1e40, 10)
    with pytest.raises(ValueError, match=r"`ratio` = 1e\+10 is not allowed: .* int32"):
        check_precision({"ratio": np.array([2.0, 1e10])}, dtype="float32")
    with pytest.raises(ValueError, match=r"`power` = -30 is not allowed"):
        check_precision({"power": np.array([0.0, -30.0])}, dtype="float32")


@pytest.mark.parametrize("seed", [2**32, 2**40, -1, 1.5])
def test_seeds_beyond_the_key_are_refused(seed):
    with pytest.raises(ValueError, match=r"`seed` = .* is not allowed: expected integers in "
                                         r"0\.\.4294967295"):
        imbalance_problem(model="ssm_class", num_classes=3, minority_size=2, dim=2,
                          seed=seed)


def test_learning_times_are_nan_after_max_steps():
    spec = sj.StepImbalance(num_classes=4, ratio=4.0, minority_size=2)
    model = sj.UFM(spec.counts, 4, init_scale=1e-2, key=jax.random.key(0))
    objective = sj.Objective(labels=spec.labels, loss=sj.losses.square)
    done = sj.gradient_flow(model, objective, t1=400.0, num_saves=20)
    assert done.status == "ok" and np.all(np.isfinite(done.learning_times()))
    cut = sj.gradient_flow(model, objective, t1=400.0, num_saves=20, max_steps=3)
    assert cut.status == "max_steps"
    assert np.all(np.isnan(cut.learning_times()))
    times = sj.learning_time(done.ts, np.stack([done.metrics["class_progress"]] * 2, 1),
                             status=np.array([0, 1]))
    assert np.all(np.isfinite(times[0])) and np.all(np.isnan(times[1]))


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["run", "importance", "--help"],
                                  ["run", "digits", "--help"], ["bench", "solvers", "--help"],
                                  ["sweep", "--help"], ["demo", "--help"]])
def test_help_shows_flags_as_flags(args):
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    words = " ".join(result.output.split())
    if args == ["run", "--help"]:
        assert "importance, digits, mnist, schedules" in words
    if args[:2] == ["bench", "solvers"]:
        assert "ufm_square_R20_l2" in words and "Kvaerno5" in words
    if args[0] == "sweep":
        assert "deep_ufm" in words and "square_centered" in words


def test_help_lists_match_the_registries():
    from ssm_jax.bench.problems import PROBLEMS
    from ssm_jax.bench.solvers import SOLVERS
    from ssm_jax.cli import bench, experiments, main
    from ssm_jax.sweeps.registry import LOSSES, MODELS

    assert main.MODEL_NAMES == tuple(MODELS) and main.LOSS_NAMES == tuple(LOSSES)
    assert bench.PROBLEM_NAMES == tuple(PROBLEMS) and bench.SOLVER_NAMES == tuple(SOLVERS)
    assert all(hasattr(experiments, name) for name in main.EXPERIMENTS)
