"""`ssm-jax demo`: ERM vs re-weighting at 10:1 imbalance, with its table of learning times."""

import dataclasses
import time
from typing import Annotated

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
import typer

from ._common import console, prepare_out, report_written, table

WRITTEN = {
    "F1_mode_strengths.png": "figure F1: SSM mode strengths, ERM vs gamma = 1, closed form",
    "F2_class_dynamics.png": "figure F2: UFM per-group accuracy and loss vs time",
    "trajectories.nc": "all recorded metrics and learning times (netCDF, xarray)",
    "learning_times.csv": "the table above",
}
"""The files the demo writes, and what each holds."""


def _show_table(rows: list[dict]) -> None:
    shown = table("Half-learning times, majority vs minority classes",
                  ("model", "loss", "gamma", "t_maj", "t_min", "ratio", "t_maj*", "t_min*",
                   "ratio*"), left=("model", "loss"),
                  caption="*: closed form from the run's effective initial strength "
                          "(none for cross-entropy)")
    fmt = lambda x: "-" if x != x else f"{x:.1f}"  # noqa: E731  (NaN: no closed form)
    ratio = lambda x: "-" if x != x else f"{x:.2f}"  # noqa: E731
    for r in rows:
        loss = {"cross_entropy": "CE"}.get(r["loss"], r["loss"])
        shown.add_row(r["model"], loss, f"{r['power']:g}",
                      fmt(r["measured_majority"]), fmt(r["measured_minority"]),
                      ratio(r["measured_ratio"]), fmt(r["predicted_majority"]),
                      fmt(r["predicted_minority"]), ratio(r["predicted_ratio"]))
    console.print(shown)


def demo(
    out: Annotated[str, typer.Option(help="Folder for the results.", metavar="FOLDER")
                   ] = "ssm-jax-out/demo",
    quick: Annotated[bool, typer.Option(help="A small problem (k = 4) for a fast check.")] = False,
):
    """ERM vs re-weighting at 10:1 imbalance, closed forms beside the measured times.

    SSM and UFM (square and cross-entropy loss) for gamma in {0, 0.5, 1}; writes figures F1
    and F2, the table of half-learning times and every run's metrics to --out.
    """
    out = prepare_out(out, WRITTEN)
    import matplotlib

    matplotlib.use("Agg")
    from .. import plots
    from ..experiments.demo import DemoConfig, learning_time_table, run_demo
    from ..results import write_csv, write_netcdf

    config = DemoConfig()
    if quick:
        config = dataclasses.replace(config, num_classes=4, minority_size=4, dim=8, t1=800.0,
                                     num_saves=160)
    start = time.perf_counter()
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
               "{task.total} runs"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("gradient flows", total=config.num_runs)
        ds = run_demo(config, on_run=lambda name: progress.update(
            task, advance=1, description=f"done: {name}"))
    rows = learning_time_table(ds)
    _show_table(rows)
    compile_s = float(ds.compile_seconds.sum())
    run_s = float(ds.run_seconds.sum())
    console.print(f"{len(rows)} gradient flows: compile {compile_s:.1f} s, "
                  f"run {run_s:.2f} s, all in {time.perf_counter() - start:.1f} s.")
    plots.save(plots.mode_strengths_figure(ds), out / "F1_mode_strengths.png")
    plots.save(plots.class_dynamics_figure(ds), out / "F2_class_dynamics.png")
    write_netcdf(ds, out / "trajectories.nc", config=dataclasses.asdict(config))
    write_csv(rows, out / "learning_times.csv")
    report_written(out, WRITTEN)
