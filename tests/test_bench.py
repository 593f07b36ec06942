"""The solver benchmarks: references against independent oracles, and the harness's counts,
orders and compile-once promise."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize
from typer.testing import CliRunner

from ssm_jax.bench import bench_problem, convergence_order, gd_vs_flow, work_precision
from ssm_jax.bench.solvers import SOLVERS, count_evals
from ssm_jax.cli import app
from ssm_jax.dynamics import base, flow


@pytest.fixture(scope="module")
def ssm():
    return bench_problem("ssm_closed_form")


@pytest.fixture(scope="module")
def stiff():
    return bench_problem("separable_logistic_l2")


def test_stiff_reference_rests_at_the_convex_optimum(stiff):
    """At t = 1e8 the tight implicit reference sits at the weighted L2 logistic optimum, found
    independently by scipy's BFGS on the same objective written in numpy."""
    X, y = np.asarray(stiff.objective.inputs), np.asarray(stiff.objective.labels)
    q, lam = np.asarray(stiff.objective.example_weights), float(stiff.objective.l2)

    def loss(w):
        m = y * (X @ w)
        return np.sum(q * np.logaddexp(0.0, -m)) / y.size + lam * w @ w / 2

    def grad(w):
        m = y * (X @ w)
        return -(X.T @ (q * y / (1.0 + np.exp(m)))) / y.size + lam * w

    w_star = minimize(loss, np.zeros(X.shape[1]), jac=grad, method="BFGS", tol=1e-14).x
    np.testing.assert_allclose(stiff.reference[-1], w_star, rtol=1e-6, atol=1e-8)
    # the l2 penalty the objective uses is lambda/2 |w|^2 (checked, not assumed)
    w = jnp.asarray(w_star)
    model = eqx.tree_at(lambda m: m.weight, stiff.model, w)
    np.testing.assert_allclose(float(stiff.objective(model)), loss(w_star), rtol=1e-12)


@pytest.mark.parametrize("name", ["ssm_closed_form", "deep_linear_L4"])
def test_flow_meets_the_exact_solution(name):
    """A tight Tsit5 run agrees with the closed form / mode ODE, and the reference starts at
    the initial model's observable."""
    problem = bench_problem(name)
    [record] = work_precision(problem, "Tsit5", [1e-10])
    assert record["status"] == "ok" and record["error"] < 1e-7
    start = problem.observe(problem.model, problem.objective)
    np.testing.assert_allclose(problem.reference[0], start, atol=1e-12)


def test_errors_fall_with_tolerance_and_compile_once(ssm):
    before = eqx.debug.get_num_traces(base.compiled_run)
    records = work_precision(ssm, "Dopri5", [1e-3, 1e-5, 1e-7], min_seconds=0.0)
    assert eqx.debug.get_num_traces(base.compiled_run) - before == 1  # one compilation per solver
    errors = [r["error"] for r in records]
    assert errors[0] > 10 * errors[1] > 100 * errors[2]
    steps = [r["steps"] for r in records]
    assert steps == sorted(steps)


def test_euler_is_first_order(ssm):
    records = work_precision(ssm, "Euler", [256, 1024], min_seconds=0.0)
    assert [r["steps"] for r in records] == [256, 1024]
    assert [r["vector_field_evals"] for r in records] == [256, 1024]
    assert 3.5 < records[0]["error"] / records[1]["error"] < 4.5


def test_counted_evals_match_the_tableau(ssm):
    """The host-callback count (used for implicit solvers) equals the tableau count where
    both exist, so the two kinds of solver are counted alike."""
    solver = SOLVERS["Bosh3"][0]
    controller = flow.default_controller(jnp.asarray(1e-5), jnp.asarray(1e-8))
    counted = count_evals(ssm, solver, controller, None, 4096, jnp.float64)
    [record] = work_precision(ssm, "Bosh3", [1e-5], min_seconds=0.0)
    assert counted == record["vector_field_evals"]


def test_implicit_solver_wins_on_the_stiff_problem(stiff):
    """Near the regularized optimum an explicit solver is held to its stability limit: it runs
    out of steps on the way to t = 1e8, where Kvaerno5 arrives in a few hundred."""
    [explicit] = work_precision(stiff, "Tsit5", [1e-3], max_steps=4096, min_seconds=0.0)
    [implicit] = work_precision(stiff, "Kvaerno5", [1e-5], max_steps=4096, min_seconds=0.0)
    assert explicit["status"] == "max_steps" and np.isnan(explicit["error"])  # no error: NaN
    assert implicit["status"] == "ok" and implicit["error"] < 1e-4
    assert implicit["vector_field_evals"] > implicit["steps"]  # Newton iterations counted


def test_float32_meets_round_off_at_tight_tolerances():
    """As measured in benchmarks/README.md: at a loose rtol (1e-3) float32 takes float64's
    steps; at 1e-6 its error estimate meets round-off and the controller takes many more."""
    problem = bench_problem("ufm_ce_R10")
    runs = {d: work_precision(problem, "Dopri8", [1e-3, 1e-6], dtype=d, min_seconds=0.0)
            for d in ("float32", "float64")}
    loose, tight = zip(runs["float32"], runs["float64"], strict=True)
    assert abs(loose[0]["steps"] - loose[1]["steps"]) <= 0.25 * loose[1]["steps"]
    assert tight[0]["steps"] > 5 * tight[1]["steps"]
    assert tight[0]["error"] > 3 * tight[1]["error"]


def test_gd_converges_to_the_flow_at_first_order(ssm):
    seen = []
    records = gd_vs_flow(ssm, (4, 16), progress=seen.append)
    assert seen == records  # one report per rung, as it ends
    assert 0.9 < convergence_order(records) < 1.1
    with pytest.raises(ValueError, match="evenly spaced"):
        gd_vs_flow(bench_problem("separable_logistic"), (2,))
    with pytest.raises(ValueError, match=r"`steps_per_save` = 0 is not allowed: expected an "
                                         r"integer >= 1"):
        gd_vs_flow(ssm, (4, 0))



def test_bad_names_are_refused(ssm):
    with pytest.raises(ValueError, match="`solver` = 'RK4'"):
        work_precision(ssm, "RK4", [1e-3])
    with pytest.raises(ValueError, match="`dtype` = 'float16'"):
        work_precision(ssm, "Tsit5", [1e-3], dtype="float16")
    with pytest.raises(ValueError, match="ladder"):
        work_precision(ssm, "Tsit5", [-1e-3])
    with pytest.raises(ValueError, match="ladder"):
        work_precision(ssm, "Euler", [0])
    with pytest.raises(ValueError, match="`problem` = 'cifar'"):
        bench_problem("cifar")


def _strict_json(path):
    """The file's JSON, refusing NaN and Infinity (not JSON)."""
    def refuse(constant):
        raise AssertionError(f"{path.name} holds {constant}")
    return json.loads(path.read_text(), parse_constant=refuse)


def test_cli_bench_solvers(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(app, ["bench", "solvers", "--out", str(tmp_path / "x"),
                              "--solver", "RK4"])
    assert bad.exit_code != 0 and "RK4" in bad.output and not (tmp_path / "x").exists()
    result = runner.invoke(app, ["bench", "solvers", "--out", str(tmp_path), "--quick",
                                 "--problem", "ssm_closed_form", "--solver", "Tsit5"])
    assert result.exit_code == 0, result.output
    for name in ("work_precision.csv", "work_precision.json", "F7_work_precision.png"):
        assert (tmp_path / name).stat().st_size > 0
    records = _strict_json(tmp_path / "work_precision.json")
    assert [r["rtol"] for r in records] == [1e-3, 1e-5, 1e-7]
    assert [r["fixed_steps"] for r in records] == [0, 0, 0]
    assert jax.config.jax_enable_x64


def test_cli_bench_solvers_reports_failed_runs(tmp_path, monkeypatch):
    """A rung that did not finish gets a line as it ends, null in the JSON (never NaN or
    Infinity), NaN in the CSV, and a mark in the figure."""
    import ssm_jax.bench.solvers as bench_solvers

    def fake(problems, solvers, dtypes, *, progress, **options):
        records = []
        for rtol, status in ((1e-3, "ok"), (1e-5, "max_steps")):
            records.append({"problem": problems[0].name, "solver": "Tsit5", "kind": "explicit",
                            "dtype": "float64", "rtol": rtol, "fixed_steps": 0,
                            "error": 1e-4 if status == "ok" else float("nan"), "steps": 10,
                            "rejected_steps": 0, "vector_field_evals": 60,
                            "compile_seconds": 1.0, "run_seconds": 1e-3, "status": status})
            progress(records[-1])
        return records

    monkeypatch.setattr(bench_solvers, "run_benchmark", fake)
    out = tmp_path / "[red]bench"  # rich markup in a path is printed, not read
    result = CliRunner().invoke(app, ["bench", "solvers", "--out", str(out), "--quick",
                                      "--problem", "ssm_closed_form", "--solver", "Tsit5"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "ssm_closed_form: Tsit5 (float64), rtol 1e-05: max_steps after 10 steps" in text
    assert "[red]bench" in result.output
    records = _strict_json(out / "work_precision.json")
    assert [r["error"] for r in records] == [1e-4, None]
    assert ",nan," in (out / "work_precision.csv").read_text()


def test_cli_bench_gd(tmp_path, monkeypatch):
    """One line per rung, a table, the figure, and strict JSON; the default folder is
    ssm-jax-out/bench."""
    import ssm_jax.cli.bench as bench_cli

    monkeypatch.setattr(bench_cli, "GD_PROBLEMS", ("ssm_closed_form",))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["bench", "gd", "--quick"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "ssm-jax-out" / "bench"
    lines = [line for line in result.output.splitlines() if "GD eta =" in line]
    assert len(lines) == 3 and all(line.endswith("(ok)") for line in lines)
    for name in ("gd_vs_flow.csv", "gd_vs_flow.json", "gd_vs_flow.png"):
        assert (out / name).stat().st_size > 0
    records = _strict_json(out / "gd_vs_flow.json")
    assert [r["method"] for r in records] == ["GD"] * 3
    assert 0.9 < records[0]["fitted_order"] < 1.1
