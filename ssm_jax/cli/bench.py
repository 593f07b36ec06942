"""`ssm-jax bench solvers` and `ssm-jax bench gd`: the work-precision and GD-vs-flow
benchmarks from the command line. (No persistent compilation cache here: compile seconds are
part of what is measured.)"""

import json
from pathlib import Path
from typing import Annotated

from rich.table import Table
import typer

from ._common import console, prepare_out

QUICK_PROBLEMS = ("separable_logistic", "separable_logistic_l2")
QUICK_SOLVERS = ("Euler", "Tsit5", "Dopri8", "Kvaerno5")
TARGET = 1e-6


def _problems(names: list[str] | None, quick: bool):
    import jax

    jax.config.update("jax_enable_x64", True)  # references and float64 runs need it
    from ..bench.problems import PROBLEMS, bench_problem

    names = names or list(QUICK_PROBLEMS if quick else PROBLEMS)
    for name in names:
        if name not in PROBLEMS:
            raise typer.BadParameter(f"{name!r} is not a problem; choose from "
                                     f"{', '.join(PROBLEMS)}.", param_hint="--problem")
    return [bench_problem(name) for name in names]


def _summary(records: list[dict]) -> Table:
    from ..bench.solvers import cost_to_reach

    best = cost_to_reach(records, TARGET)
    table = Table(title=f"Cheapest run reaching relative error <= {TARGET:g}")
    for column in ("problem", "dtype", "solver", "evals", "steps", "run ms", "compile s"):
        table.add_column(column, justify="left" if column in ("problem", "dtype", "solver")
                         else "right")
    for (problem, dtype, solver), r in best.items():
        compile_s = sum(q["compile_seconds"] for q in records
                        if (q["problem"], q["dtype"], q["solver"]) == (problem, dtype, solver))
        table.add_row(problem, dtype, solver, str(r["vector_field_evals"]), str(r["steps"]),
                      f"{1e3 * r['run_seconds']:.1f}", f"{compile_s:.1f}")
    return table


def solvers(
    out: Annotated[Path, typer.Option(help="Folder for the results.")] = Path("ssm-jax-bench"),
    problem: Annotated[list[str] | None, typer.Option(help="Problems (repeat); all.")] = None,
    solver: Annotated[list[str] | None, typer.Option(help="Solvers (repeat); default all.")] = None,
    dtype: Annotated[list[str] | None, typer.Option(
        help="float64 and/or float32 (repeat); default float64.")] = None,
    precision: Annotated[str, typer.Option(
        help="Matmul precision: 'highest' (never TF32/bf16) or 'default' (backend's choice).")
    ] = "highest",
    quick: Annotated[bool, typer.Option(
        help="Two problems, four solvers, three rungs each: a check in about a minute.")] = False,
):
    """Work-precision of diffrax solvers on problems with known solutions (figure F7).

    Everything (no --problem/--solver) takes long on a CPU: the implicit solvers build a
    dense Jacobian each step, tens of minutes on the 200-300-dimensional SSM and UFM states.
    benchmarks/README.md gives the subsets it measured."""
    import matplotlib

    matplotlib.use("Agg")
    from .. import plots
    from ..bench.solvers import DTYPES, SOLVERS, run_benchmark
    from ..results import write_csv

    names = solver or list(QUICK_SOLVERS if quick else SOLVERS)
    dtypes = dtype or ["float64"]
    for value, allowed, hint in ((names, SOLVERS, "--solver"), (dtypes, DTYPES, "--dtype"),
                                 ([precision], ("highest", "default"), "--precision")):
        bad = [v for v in value if v not in allowed]
        if bad:
            raise typer.BadParameter(f"{bad[0]!r} is not allowed; choose from "
                                     f"{', '.join(allowed)}.", param_hint=hint)
    out = prepare_out(out)
    problems = _problems(problem, quick)
    with console.status("") as status:
        records = run_benchmark(problems, names, dtypes, quick=quick, precision=precision,
                                progress=lambda p, s, d: status.update(f"{p}: {s} ({d})"))
    console.print(_summary(records))
    write_csv(records, out / "work_precision.csv")
    (out / "work_precision.json").write_text(json.dumps(records, indent=1))
    plots.save(plots.work_precision_figure(records, dtypes[0]), out / "F7_work_precision.png",
              dpi=80)
    for name in ("work_precision.csv", "work_precision.json", "F7_work_precision.png"):
        console.print(f"wrote {out / name}")


def gd(
    out: Annotated[Path, typer.Option(help="Folder for the results.")] = Path("ssm-jax-bench"),
    quick: Annotated[bool, typer.Option(help="Three step sizes instead of six.")] = False,
):
    """Discrete GD and SGD against the gradient flow as the step size shrinks."""
    from ..bench.discretization import convergence_order, gd_vs_flow
    from ..results import write_csv

    out = prepare_out(out)
    steps_per_save = (2, 8, 32) if quick else (2, 4, 8, 16, 32, 64)
    table = Table(title="Distance from the flow (relative max error) against eta")
    for column in ("problem", "method", "eta", "error", "fitted order"):
        table.add_column(column, justify="left" if column in ("problem", "method") else "right")
    records = []
    for problem in _problems(["ssm_closed_form", "deep_linear_L4", "ufm_ce_R10"], False):
        settings = [None] + ([problem.objective.labels.shape[0] // 2]
                             if problem.name.startswith("ufm") else [])
        for batch_size in settings:
            rows = gd_vs_flow(problem, steps_per_save, batch_size=batch_size)
            order = convergence_order(rows)
            for i, r in enumerate(rows):
                table.add_row(r["problem"], r["method"], f"{r['eta']:.4g}", f"{r['error']:.2e}",
                              f"{order:.2f}" if i == 0 else "")
            records += [dict(r, fitted_order=order) for r in rows]
    console.print(table)
    write_csv(records, out / "gd_vs_flow.csv")
    console.print(f"wrote {out / 'gd_vs_flow.csv'}")
