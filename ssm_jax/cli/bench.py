"""`ssm-jax bench solvers` and `ssm-jax bench gd`: the work-precision and GD-vs-flow
benchmarks from the command line, each with a progress bar, a table, a figure, and its
records as CSV and strict JSON (null where a run produced no error). (No persistent
compilation cache here: compile seconds are part of what is measured.)"""

from pathlib import Path
from typing import Annotated

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text
import typer

from ._common import console, prepare_out, print_error, report_written, table

PROBLEM_NAMES = ("ssm_closed_form", "deep_linear_L4", "ufm_ce_R10", "separable_logistic",
                 "separable_logistic_l2", "ufm_square_R20_l2")
"""The names of `bench.problems.PROBLEMS`, for --help (which does not import them: a test
keeps the two equal)."""
SOLVER_NAMES = ("Euler", "Heun", "Midpoint", "Ralston", "Bosh3", "Tsit5", "Dopri5", "Dopri8",
                "Kvaerno3", "Kvaerno5")
"""The names of `bench.solvers.SOLVERS`, for --help."""
QUICK_PROBLEMS = ("separable_logistic", "separable_logistic_l2")
QUICK_SOLVERS = ("Euler", "Tsit5", "Dopri8", "Kvaerno5")
GD_PROBLEMS = ("ssm_closed_form", "deep_linear_L4", "ufm_ce_R10")
TARGET = 1e-6
OUT = Path("ssm-jax-out/bench")


def _problems(names: list[str] | None, quick: bool):
    import jax

    jax.config.update("jax_enable_x64", True)  # references and float64 runs need it
    from ..bench.problems import PROBLEMS, bench_problem

    names = names or list(QUICK_PROBLEMS if quick else PROBLEMS)
    for name in names:
        if name not in PROBLEMS:
            raise typer.BadParameter(f"`--problem` = {name!r} is not allowed: expected one of "
                                     f"{', '.join(PROBLEMS)}.", param_hint="--problem")
    with console.status("building the problems and their references"):
        try:
            return [bench_problem(name) for name in names]
        except (ValueError, RuntimeError) as error:
            print_error("Cannot build the benchmark problems:", error)
            raise typer.Exit(1) from None


def _progress(total: int) -> Progress:
    """A bar over the benchmark's runs, with the last one's description."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("runs"), TimeElapsedColumn()]
    progress = Progress(*columns, console=console, transient=True)
    progress.add_task("", total=total)
    return progress


def _summary(records: list[dict]):
    from ..bench.solvers import cost_to_reach

    best = cost_to_reach(records, TARGET)
    shown = table(f"Cheapest run reaching relative error <= {TARGET:g}",
                  ("problem", "dtype", "solver", "evals", "steps", "run ms", "compile s"),
                  left=("problem", "dtype", "solver"))
    for (problem, dtype, solver), r in best.items():
        compile_s = sum(q["compile_seconds"] for q in records
                        if (q["problem"], q["dtype"], q["solver"]) == (problem, dtype, solver))
        shown.add_row(problem, dtype, solver, str(r["vector_field_evals"]), str(r["steps"]),
                      f"{1e3 * r['run_seconds']:.1f}", f"{compile_s:.1f}")
    return shown


def _rung(record: dict) -> str:
    return (f"rtol {record['rtol']:g}" if record["kind"] != "fixed"
            else f"{record['fixed_steps']} steps")


def solvers(
    out: Annotated[str, typer.Option(help="Folder for the results.", metavar="FOLDER")
                   ] = str(OUT),
    problem: Annotated[list[str] | None, typer.Option(
        help=f"A problem (repeat for more): {', '.join(PROBLEM_NAMES)}; default all.",
        metavar="NAME")] = None,
    solver: Annotated[list[str] | None, typer.Option(
        help=f"A solver (repeat for more): {', '.join(SOLVER_NAMES)}; default all.",
        metavar="NAME")] = None,
    dtype: Annotated[list[str] | None, typer.Option(
        help="float64 and/or float32 (repeat); default float64.", metavar="DTYPE")] = None,
    precision: Annotated[str, typer.Option(
        help="Matmul precision: 'highest' (never TF32/bf16) or 'default' (backend's choice).",
        metavar="NAME")] = "highest",
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
    from ..bench.solvers import DTYPES, SOLVERS, benchmark_size, run_benchmark
    from ..results import write_csv, write_json

    names = solver or list(QUICK_SOLVERS if quick else SOLVERS)
    dtypes = dtype or ["float64"]
    for value, allowed, hint in ((names, SOLVERS, "--solver"), (dtypes, DTYPES, "--dtype"),
                                 ([precision], ("highest", "default"), "--precision")):
        bad = [v for v in value if v not in allowed]
        if bad:
            raise typer.BadParameter(f"`{hint}` = {bad[0]!r} is not allowed: expected one of "
                                     f"{', '.join(allowed)}.", param_hint=hint)
    written = {
        "work_precision.csv": "one row per solver, problem, dtype and rung",
        "work_precision.json": "the same records (JSON; null: no error, the run did not "
                               "finish)",
        "F7_work_precision.png": "figure F7: error vs work per problem and solver",
    }
    out = prepare_out(out, written)
    problems = _problems(problem, quick)

    with _progress(benchmark_size(len(problems), names, dtypes, quick=quick)) as progress:
        def report(r):
            rung = f"{r['problem']}: {r['solver']} ({r['dtype']}), {_rung(r)}"
            progress.update(progress.task_ids[0], advance=1, description=rung)
            if r["status"] != "ok":
                console.print(Text(f"{rung}: {r['status']} after {r['steps']} steps (error "
                                   "NaN)", style="yellow"))

        records = run_benchmark(problems, names, dtypes, quick=quick, precision=precision,
                                progress=report)
    console.print(_summary(records))
    write_csv(records, out / "work_precision.csv")
    write_json(records, out / "work_precision.json")
    plots.save(plots.work_precision_figure(records, dtypes[0]), out / "F7_work_precision.png",
               dpi=80)
    report_written(out, written)


def gd(
    out: Annotated[str, typer.Option(help="Folder for the results.", metavar="FOLDER")
                   ] = str(OUT),
    quick: Annotated[bool, typer.Option(help="Three step sizes instead of six.")] = False,
):
    """Discrete GD and SGD against the gradient flow as the step size shrinks: one line per
    run, a table with the fitted orders, and a figure of error vs eta."""
    import matplotlib

    matplotlib.use("Agg")
    from ..bench.discretization import convergence_order, gd_vs_flow
    from ..plots.solvers import discretization_figure
    from ..plots.style import save
    from ..results import write_csv, write_json

    written = {
        "gd_vs_flow.csv": "one row per problem, method and step size eta",
        "gd_vs_flow.json": "the same records (JSON; null: no error, the run did not finish)",
        "gd_vs_flow.png": "error vs eta per problem, with a first-order guide",
    }
    out = prepare_out(out, written)
    steps_per_save = (2, 8, 32) if quick else (2, 4, 8, 16, 32, 64)
    runs = [(problem, batch_size) for problem in _problems(list(GD_PROBLEMS), False)
            for batch_size in [None] + ([problem.objective.labels.shape[0] // 2]
                                        if problem.name.startswith("ufm") else [])]
    shown = table("Distance from the flow (relative max error) against eta",
                  ("problem", "method", "eta", "error", "status", "fitted order"),
                  left=("problem", "method", "status"))
    records = []
    with _progress(len(runs) * len(steps_per_save)) as progress:
        def report(r):
            line = (f"{r['problem']}: {r['method']} eta = {r['eta']:.4g}, error "
                    f"{r['error']:.2e} ({r['status']})")
            progress.update(progress.task_ids[0], advance=1, description=line)
            console.print(Text(line, style=None if r["status"] == "ok" else "yellow"))

        for problem, batch_size in runs:
            rows = gd_vs_flow(problem, steps_per_save, batch_size=batch_size, progress=report)
            order = convergence_order(rows)
            for i, r in enumerate(rows):
                shown.add_row(r["problem"], r["method"], f"{r['eta']:.4g}",
                              f"{r['error']:.2e}", r["status"],
                              f"{order:.2f}" if i == 0 else "")
            records += [dict(r, fitted_order=order) for r in rows]
    console.print(shown)
    write_csv(records, out / "gd_vs_flow.csv")
    write_json(records, out / "gd_vs_flow.json")
    save(discretization_figure(records), out / "gd_vs_flow.png", dpi=80)
    report_written(out, written)
