"""The `ssm-jax` command."""

import dataclasses
from pathlib import Path
import time
from typing import Annotated

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
import typer

app = typer.Typer(
    help="Exact training dynamics under class imbalance and loss re-weighting.",
    no_args_is_help=True, add_completion=False,
)
console = Console()


def _register_experiments() -> None:
    """`ssm-jax run NAME`: the named experiments, each defined with its command in its own
    file under ssm_jax/experiments; and `ssm-jax bench solvers|gd` (ssm_jax/bench)."""
    from ..experiments import digits, importance

    run_app = typer.Typer(help="Run a named experiment.", no_args_is_help=True)
    run_app.command("importance")(importance.command)
    run_app.command("digits")(digits.command)
    app.add_typer(run_app, name="run")

    from . import bench

    bench_app = typer.Typer(help="Benchmark solvers on problems with known solutions.",
                            no_args_is_help=True)
    bench_app.command("solvers")(bench.solvers)
    bench_app.command("gd")(bench.gd)
    app.add_typer(bench_app, name="bench")


def _prepare_out(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} exists and is not a folder.", param_hint="--out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _show_table(rows: list[dict]) -> None:
    table = Table(title="Half-learning times, majority vs minority classes",
                  caption="*: closed form from the run's effective initial strength "
                          "(none for cross-entropy)")
    for name in ("model", "loss", "gamma", "t_maj", "t_min", "ratio", "t_maj*", "t_min*",
                 "ratio*"):
        table.add_column(name, justify="left" if name in ("model", "loss") else "right")
    fmt = lambda x: "-" if x != x else f"{x:.1f}"  # noqa: E731  (NaN: no closed form)
    ratio = lambda x: "-" if x != x else f"{x:.2f}"  # noqa: E731
    for r in rows:
        loss = {"cross_entropy": "CE"}.get(r["loss"], r["loss"])
        table.add_row(r["model"], loss, f"{r['power']:g}",
                      fmt(r["measured_majority"]), fmt(r["measured_minority"]),
                      ratio(r["measured_ratio"]), fmt(r["predicted_majority"]),
                      fmt(r["predicted_minority"]), ratio(r["predicted_ratio"]))
    console.print(table)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the results.")] = Path("ssm-jax-out"),
    quick: Annotated[bool, typer.Option(help="A small problem (k = 4) for a fast check.")] = False,
):
    """ERM vs re-weighting at 10:1 imbalance: SSM and UFM (square and cross-entropy) for
    gamma in {0, 0.5, 1}, with closed-form learning times beside the measured ones."""
    import matplotlib

    matplotlib.use("Agg")
    from .. import plots as plot
    from ..experiments.demo import RUNS, DemoConfig, learning_time_table, run_demo
    from ..results import write_csv, write_netcdf

    out = _prepare_out(out)
    config = DemoConfig()
    if quick:
        config = dataclasses.replace(config, num_classes=4, minority_size=4, dim=8, t1=800.0,
                                     num_saves=160)
    start = time.perf_counter()
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
               "{task.total} runs"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("gradient flows", total=len(RUNS) * len(config.powers))
        ds = run_demo(config, on_run=lambda name: progress.update(
            task, advance=1, description=f"done: {name}"))
    rows = learning_time_table(ds)
    _show_table(rows)
    compile_s = float(ds.compile_seconds.sum())
    run_s = float(ds.run_seconds.sum())
    console.print(f"{ds.sizes['run']} gradient flows: compile {compile_s:.1f} s, "
                  f"run {run_s:.2f} s, all in {time.perf_counter() - start:.1f} s.")

    written = {
        "F1_mode_strengths.png": "figure F1: SSM mode strengths, ERM vs gamma = 1, closed form",
        "F2_class_dynamics.png": "figure F2: UFM per-group accuracy and loss vs time",
        "trajectories.nc": "all recorded metrics and learning times (netCDF, xarray)",
        "learning_times.csv": "the table above",
    }
    plot.save(plot.mode_strengths_figure(ds), out / "F1_mode_strengths.png")
    plot.save(plot.class_dynamics_figure(ds), out / "F2_class_dynamics.png")
    write_netcdf(ds, out / "trajectories.nc", config=dataclasses.asdict(config))
    write_csv(rows, out / "learning_times.csv")
    for name, what in written.items():
        console.print(f"wrote {out / name}: {what}")


def _enable_compilation_cache() -> None:
    """Keeps compiled programs on disk, so that running the same sweep again (or resuming it)
    does not compile again. SSM_JAX_CACHE_DIR overrides the folder."""
    import os

    import jax

    folder = os.environ.get("SSM_JAX_CACHE_DIR",
                            os.path.join(os.path.expanduser("~"), ".cache", "ssm_jax", "xla"))
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@app.command()
def sweep(
    config: Annotated[Path, typer.Argument(help="A sweep configuration (TOML).")],
    out: Annotated[Path, typer.Option(help="The sweep's store folder.")],
    resume: Annotated[bool, typer.Option(help="Finish a stopped sweep in --out.")] = False,
    max_batch: Annotated[int | None, typer.Option(help="At most this many members per "
                                                  "compiled call.")] = None,
):
    """Run a grid of gradient flows (or training runs) from a configuration file, writing
    each finished chunk to --out; see configs/ for examples."""
    from rich.progress import MofNCompleteColumn, TimeRemainingColumn

    from ..sweeps import config as config_module
    from ..sweeps.run import sweep as run_sweep

    try:
        cfg = config_module.load(config)
    except config_module.ConfigError as error:
        console.print(f"[red]Config error in {config}:[/red] {error}")
        raise typer.Exit(2) from None
    if max_batch is not None and max_batch < 1:
        raise typer.BadParameter(f"{max_batch} is not allowed: at least 1.",
                                 param_hint="--max-batch")
    _enable_compilation_cache()
    options = dict(cfg.options)
    options["max_batch"] = max_batch or options["max_batch"]
    start = time.perf_counter()
    columns = [TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn()]
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("sweep", total=cfg.grid.size, rate="")

        def report(done, total):
            elapsed = time.perf_counter() - start
            progress.update(task, completed=done, rate=f"{done / elapsed:.1f} traj/s")

        try:
            ds = run_sweep(cfg.make_problem, cfg.grid, dynamics=cfg.dynamics, store=out,
                           resume=resume, progress=report, metadata=cfg.raw, **options)
        except ValueError as error:
            console.print(f"[red]Cannot run {config}:[/red] {error}")
            raise typer.Exit(2) from None
    if ds is None:
        console.print(f"This process's chunks are written to {out}; the others are running.")
        return
    from ..dynamics.trajectory import STATUS

    counts = {word: int((ds.status.values == code).sum()) for code, word in enumerate(STATUS)}
    console.print(f"{cfg.grid.size} members in {time.perf_counter() - start:.1f} s "
                  f"(compile {ds.attrs['compile_seconds']:.1f} s, run "
                  f"{ds.attrs['run_seconds']:.1f} s, lockstep waste "
                  f"{100 * ds.attrs['waste']:.0f}%); status: "
                  + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    console.print(f"wrote {out}: the sweep's store; `ssm-jax plot {out}` draws figure F3")


@app.command()
def plot(
    store: Annotated[Path, typer.Argument(help="A finished sweep's store folder.")],
    out: Annotated[Path | None, typer.Option(help="The figure's file (PNG).")] = None,
):
    """Figure F3: the learning-time ratio t_min/t_maj over (R, gamma), with the closed form."""
    import matplotlib

    matplotlib.use("Agg")
    from .. import plots
    from ..sweeps.run import open_sweep

    try:
        ds = open_sweep(store)
    except ValueError as error:
        console.print(f"[red]Cannot plot {store}:[/red] {error}")
        raise typer.Exit(2) from None
    out = store / "F3_learning_time_ratio.png" if out is None else out
    try:
        fig = plots.learning_time_ratio_figure(ds)
    except ValueError as error:
        console.print(f"[red]Cannot draw F3 from {store}:[/red] {error}")
        raise typer.Exit(2) from None
    plots.save(fig, out)
    console.print(f"wrote {out}: figure F3, t_min/t_maj over (R, gamma) with the closed form")


@app.command()
def version():
    """Print the versions of ssm_jax and its core libraries."""
    from ..results import provenance

    for name, value in provenance().items():
        console.print(f"{name}: {value}")


_register_experiments()

if __name__ == "__main__":
    app()
