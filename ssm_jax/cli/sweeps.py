"""`ssm-jax sweep` and `ssm-jax plot`: a grid of runs from a configuration file into a store,
and figure F3 from a finished store."""

from pathlib import Path
import time
from typing import Annotated

from rich.progress import BarColumn, Progress, TextColumn
import typer

from ._common import console


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


def plot(
    store: Annotated[Path, typer.Argument(help="A finished sweep's store folder.")],
    out: Annotated[Path | None, typer.Option(help="The figure's file (PNG).")] = None,
):
    """Figure F3: the learning-time ratio t_min/t_maj over (R, gamma), with the closed form
    the sweep recorded (`predicted_ratio`)."""
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
