"""`ssm-jax run importance` and `ssm-jax run digits`: the named experiments of
ssm_jax/experiments, each run, tabled, drawn and written to a folder."""

import dataclasses
from pathlib import Path
import time
from typing import Annotated

from rich.table import Table
import typer

from ._common import console, prepare_out, show_rows


def importance(
    out: Annotated[Path, typer.Option(help="Folder for the results.")] = Path("ssm-jax-out"),
    quick: Annotated[bool, typer.Option(help="Fewer lambdas, one seed, smaller data.")] = False,
):
    """Importance weights 2^-8..2^8 on separable 2-D data: linear, deep linear and MLP,
    logistic and polynomial loss, lambda in {0, 1e-4, 1e-2}; the weights' effect fades
    unless the model is regularized or the loss has a polynomial tail."""
    import jax
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    from .. import plots
    from ..experiments import importance as study
    from ..results import write_csv, write_netcdf

    # Direction errors reach 1e-4 by t = 1e12, near float32's resolution of a cosine.
    jax.config.update("jax_enable_x64", True)
    out = prepare_out(out)
    config = study.QUICK if quick else study.ImportanceConfig()
    start = time.perf_counter()
    with console.status("gradient flows") as status:
        ds = study.run_importance(
            config, on_model=lambda name, compile_s, run_s: status.update(
                f"done: {name} (compile {compile_s:.1f} s, run {run_s:.1f} s)"))
    for l2 in sorted({0.0, max(config.l2s)}):
        rows = study.fraction_table(ds, l2=l2)
        table = Table(title=f"Fraction of the probe set predicted positive, lambda = {l2:g} "
                            f"(mean over {len(config.seeds)} seed(s))",
                      caption="-: the run stopped (max_steps) before this time")
        for name in rows[0]:
            if name != "l2":
                table.add_column(name, justify="left" if name in ("model", "loss") else "right")
        for r in rows:
            table.add_row(r["model"], r["loss"], f"{r['log2_weight']:+g}",
                          *[f"{v:.3f}" if np.isfinite(v) else "-"
                            for v in (r[f"t={t:.0e}"] for t in study.TABLE_TIMES)])
        console.print(table)
    runs = int(ds.num_steps.size)
    console.print(f"{runs} gradient flows to t = {ds.time.values[-1]:.0e} in "
                  f"{time.perf_counter() - start:.1f} s; steps per run: median "
                  f"{int(np.median(ds.num_steps)):d}, max {int(ds.num_steps.max()):d}; "
                  f"{int((ds.status != 0).sum())} runs not ok (status max_steps: MLP with "
                  "lambda > 0 that did not come to rest).")
    plots.save(plots.boundaries_figure(ds), out / "F4_importance_boundaries.png", dpi=100)
    plots.save(plots.direction_error_figure(ds), out / "F5_direction_error.png", dpi=100)
    table_rows = [r for l2 in config.l2s for r in study.fraction_table(ds, l2=l2)]
    write_csv(table_rows, out / "importance_fractions.csv")
    write_netcdf(ds, out / "importance.nc", config=dataclasses.asdict(config))
    for name, what in {
        "F4_importance_boundaries.png": "figure F4: decision boundaries over time per weight, "
                                        "fraction predicted positive vs t",
        "F5_direction_error.png": "figure F5: angle to the SVM direction vs t, with and "
                                  "without L2",
        "importance_fractions.csv": "fraction predicted positive at t = 1e1, 1e3, 1e6, 1e9, "
                                    "every lambda",
        "importance.nc": "all recorded metrics, solver steps and boundary snapshots (netCDF)",
    }.items():
        console.print(f"wrote {out / name}: {what}")


def digits(
    experiment: Annotated[str, typer.Option(help="Which experiment: 'reweighting' (A: ERM vs "
                                            "class weights on the 10:1 digits) or "
                                            "'importance' (B: importance weights on a pair).")
                          ] = "reweighting",
    out: Annotated[Path, typer.Option(help="Folder for the results.")] = Path("ssm-jax-out"),
    quick: Annotated[bool, typer.Option(help="Fewer seeds, weights and steps: a check in about "
                                        "a minute on a laptop CPU.")] = False,
):
    """Real networks on scikit-learn's digits: re-weighting (figure F6, left) or importance
    weighting (figure F6, right)."""
    import matplotlib

    matplotlib.use("Agg")
    from .. import plots
    from ..experiments import digits as study
    from ..results import write_csv, write_netcdf

    if experiment not in study.EXPERIMENTS:
        raise typer.BadParameter(f"{experiment!r} is not an experiment: expected one of "
                                 f"{', '.join(map(repr, study.EXPERIMENTS))}.",
                                 param_hint="--experiment")
    out = prepare_out(out)
    start = time.perf_counter()
    if experiment == "reweighting":
        config = study.QUICK_REWEIGHTING if quick else study.ReweightingConfig()
        with console.status("training the networks (one compiled call per network)"):
            ds = study.run_reweighting(config)
        rows = study.reweighting_table(ds)
        show_rows(rows, "Digits at 10:1: learning steps (measured) and t_min/t_maj (SSM, UFM)")
        figure, fig_name = plots.reweighting_figure(ds), "F6_reweighting.png"
        what = "figure F6 (left): majority vs minority test accuracy vs step"
    else:
        config = study.QUICK_IMPORTANCE if quick else study.ImportanceConfig()
        with console.status("training the networks (one compiled call per batch-norm "
                            "setting)"):
            ds = study.run_importance(config)
        rows = study.importance_table(ds)
        show_rows(rows, f"Digits {ds.attrs['other_digit']} vs {ds.attrs['weighted_digit']}: "
                  f"fraction predicted as {ds.attrs['weighted_digit']}")
        figure, fig_name = plots.importance_figure(ds), "F6_importance.png"
        what = "figure F6 (right): fraction predicted as the weighted digit vs epoch"
    console.print(f"{experiment}: compile {float(ds.compile_seconds.sum()):.1f} s, run "
                  f"{float(ds.run_seconds.sum()):.1f} s, all in "
                  f"{time.perf_counter() - start:.1f} s.")
    plots.save(figure, out / fig_name, dpi=90)
    write_netcdf(ds, out / f"digits_{experiment}.nc", config=dataclasses.asdict(config))
    write_csv(rows, out / f"digits_{experiment}.csv")
    for name, text in ((fig_name, what),
                       (f"digits_{experiment}.nc", "all recorded metrics (netCDF, xarray)"),
                       (f"digits_{experiment}.csv", "the table above")):
        console.print(f"wrote {out / name}: {text}")
