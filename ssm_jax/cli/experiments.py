"""`ssm-jax run importance`, `ssm-jax run digits` and `ssm-jax run schedules`: the named
experiments of ssm_jax/experiments, each run, tabled, drawn and written to a folder."""

import dataclasses
import time
from typing import Annotated

import typer

from ._common import console, prepare_out, report_written, show_rows, table

IMPORTANCE_WRITTEN = {
    "F4_importance_boundaries.png": "figure F4: decision boundaries over time per weight, "
                                    "fraction predicted positive vs t",
    "F5_direction_error.png": "figure F5: angle to the SVM direction vs t, with and without L2",
    "importance_fractions.csv": "fraction predicted positive at t = 1e1, 1e3, 1e6, 1e9, "
                                "every lambda",
    "importance.nc": "all recorded metrics, solver steps and boundary snapshots (netCDF)",
}
"""The files `run importance` writes, and what each holds."""



def _run_by_model(run, config, label: str):
    """`run(config, on_model=...)` under a status line that names each model as it finishes,
    with its compile and run seconds. **Returns:** what `run` returns."""
    with console.status(label) as status:
        return run(config, on_model=lambda name, compile_s, run_s: status.update(
            f"done: {name} (compile {compile_s:.1f} s, run {run_s:.1f} s)"))

def _digits_written(experiment: str) -> dict[str, str]:
    figure = {"reweighting": ("F6_reweighting.png", "figure F6 (left): majority vs minority "
                              "test accuracy vs step"),
              "importance": ("F6_importance.png", "figure F6 (right): fraction predicted as "
                             "the weighted digit vs epoch")}[experiment]
    return {figure[0]: figure[1],
            f"digits_{experiment}.nc": "all recorded metrics (netCDF, xarray)",
            f"digits_{experiment}.csv": "the table above"}


def importance(
    out: Annotated[str, typer.Option(help="Folder for the results.", metavar="FOLDER")
                   ] = "ssm-jax-out/importance",
    quick: Annotated[bool, typer.Option(help="Fewer lambdas, one seed, smaller data.")] = False,
):
    """Importance weights on separable 2-D data: how their effect fades (figures F4, F5).

    Weights 2^-8..2^8 on linear, deep linear and MLP models, logistic and polynomial loss,
    lambda in {0, 1e-4, 1e-2}; the weights' effect fades unless the model is regularized or
    the loss has a polynomial tail.
    """
    out = prepare_out(out, IMPORTANCE_WRITTEN)
    import jax
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    from .. import plots
    from ..experiments import importance as study
    from ..results import write_csv, write_netcdf

    # Direction errors reach 1e-4 by t = 1e12, near float32's resolution of a cosine.
    jax.config.update("jax_enable_x64", True)
    config = study.QUICK if quick else study.ImportanceConfig()
    start = time.perf_counter()
    ds = _run_by_model(study.run_importance, config, "gradient flows")
    for l2 in sorted({0.0, max(config.l2s)}):
        rows = study.fraction_table(ds, l2=l2)
        names = [name for name in rows[0] if name != "l2"]
        shown = table(f"Fraction of the probe set predicted positive, lambda = {l2:g} "
                      f"(mean over {len(config.seeds)} seed(s))", names,
                      left=("model", "loss"),
                      caption="-: the run stopped (max_steps) before this time")
        for r in rows:
            shown.add_row(r["model"], r["loss"], f"{r['log2_weight']:+g}",
                          *[f"{v:.3f}" if np.isfinite(v) else "-"
                            for v in (r[f"t={t:.0e}"] for t in study.TABLE_TIMES)])
        console.print(shown)
    not_ok = int((ds.status != 0).sum())
    console.print(f"{ds.num_steps.size} gradient flows to t = {ds.time.values[-1]:.0e} in "
                  f"{time.perf_counter() - start:.1f} s; steps per run: median "
                  f"{int(np.median(ds.num_steps)):d}, max {int(ds.num_steps.max()):d}; "
                  f"{not_ok} runs not ok" + (" (status max_steps: runs that did not come to "
                                              "rest in max_steps)." if not_ok else "."))
    plots.save(plots.boundaries_figure(ds), out / "F4_importance_boundaries.png", dpi=100)
    plots.save(plots.direction_error_figure(ds), out / "F5_direction_error.png", dpi=100)
    table_rows = [r for l2 in config.l2s for r in study.fraction_table(ds, l2=l2)]
    write_csv(table_rows, out / "importance_fractions.csv")
    write_netcdf(ds, out / "importance.nc", config=dataclasses.asdict(config))
    report_written(out, IMPORTANCE_WRITTEN)


def digits(
    experiment: Annotated[str, typer.Option(help="Which experiment: 'reweighting' (A: ERM vs "
                                            "class weights on the 10:1 digits) or "
                                            "'importance' (B: importance weights on a pair).",
                                            metavar="NAME")] = "reweighting",
    out: Annotated[str, typer.Option(help="Folder for the results.", metavar="FOLDER")
                   ] = "ssm-jax-out/digits",
    quick: Annotated[bool, typer.Option(help="Fewer seeds, weights and steps: a check in about "
                                        "a minute on a laptop CPU.")] = False,
):
    """Real networks on scikit-learn's digits: re-weighting or importance weighting (F6).

    `--experiment reweighting` trains MLP and CNN on 10:1 step-imbalanced digits with class
    weights (figure F6, left); `--experiment importance` trains on a pair of digits with an
    importance weight on one (figure F6, right).
    """
    from ..experiments import digits as study

    if experiment not in study.EXPERIMENTS:
        raise typer.BadParameter(f"`--experiment` = {experiment!r} is not allowed: expected "
                                 f"one of {', '.join(map(repr, study.EXPERIMENTS))}.",
                                 param_hint="--experiment")
    written = _digits_written(experiment)
    out = prepare_out(out, written)
    import matplotlib

    matplotlib.use("Agg")
    from .. import plots
    from ..results import write_csv, write_netcdf

    start = time.perf_counter()
    if experiment == "reweighting":
        config = study.QUICK_REWEIGHTING if quick else study.ReweightingConfig()
        with console.status("training the networks (one compiled call per network)"):
            ds = study.run_reweighting(config)
        rows = study.reweighting_table(ds)
        show_rows(rows, "Digits at 10:1: learning steps (measured) and t_min/t_maj (SSM, UFM)")
        figure = plots.reweighting_figure(ds)
    else:
        config = study.QUICK_IMPORTANCE if quick else study.ImportanceConfig()
        with console.status("training the networks (one compiled call per batch-norm "
                            "setting)"):
            ds = study.run_importance(config)
        rows = study.importance_table(ds)
        show_rows(rows, f"Digits {ds.attrs['other_digit']} vs {ds.attrs['weighted_digit']}: "
                  f"fraction predicted as {ds.attrs['weighted_digit']}")
        figure = plots.importance_figure(ds)
    console.print(f"{experiment}: compile {float(ds.compile_seconds.sum()):.1f} s, run "
                  f"{float(ds.run_seconds.sum()):.1f} s, all in "
                  f"{time.perf_counter() - start:.1f} s.")
    figure_name, data_name, table_name = written
    plots.save(figure, out / figure_name, dpi=90)
    write_netcdf(ds, out / data_name, config=dataclasses.asdict(config))
    write_csv(rows, out / table_name)
    report_written(out, written)


SCHEDULES_WRITTEN = {
    "F8_schedules.png": "figure F8: the time window in which each method beats ERM, over R",
    "schedules_windows.csv": "the early-stopping table: window and best gain per method and R",
    "schedules.nc": "balanced accuracy, gap, learned fraction, closed form, windows (netCDF)",
}
"""The files `run schedules` writes, and what each holds."""


def schedules(
    out: Annotated[str, typer.Option(help="Folder for the results.", metavar="FOLDER")
                   ] = "ssm-jax-out/schedules",
    quick: Annotated[bool, typer.Option(help="Two ratios, one switch time, coarser saves.")
                     ] = False,
):
    """When to re-weight: the early-stopping map (figure F8).

    ERM, re-weighting, deferred re-weighting and the adjusted losses (logit adjustment, VS,
    LDAM) on the UFM (square loss, cross-entropy) and the SSM over imbalance ratios: the time
    window in which each beats ERM's balanced accuracy, beside the closed form's.
    """
    out = prepare_out(out, SCHEDULES_WRITTEN)
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    from .. import plots
    from ..experiments import schedules as study
    from ..results import write_csv, write_netcdf

    config = study.QUICK if quick else study.SchedulesConfig()
    start = time.perf_counter()
    ds = _run_by_model(study.run_schedules, config, "gradient flows (one sweep per model)")
    rows = study.table(ds)
    shown = table(f"Windows in which each method beats ERM's balanced accuracy by > "
                  f"{config.threshold:g}", ["model", "method", "R", "start", "end", "gain",
                                            "closed-form start", "closed-form end"],
                  left=("model", "method"), caption="-: never, or no closed form")
    for r in rows:
        shown.add_row(r["model"], r["method"], f"{r['ratio']:g}",
                      *[f"{r[name]:.3g}" if np.isfinite(r[name]) else "-"
                        for name in ("start", "end", "gain", "predicted_start",
                                     "predicted_end")])
    console.print(shown)
    console.print(f"{int(ds.num_steps.count())} gradient flows to t = {ds.time.values[-1]:.0e} "
                  f"in {time.perf_counter() - start:.1f} s.")
    plots.save(plots.schedules_figure(ds), out / "F8_schedules.png", dpi=90)
    write_csv(rows, out / "schedules_windows.csv")
    write_netcdf(ds, out / "schedules.nc", config=dataclasses.asdict(config))
    report_written(out, SCHEDULES_WRITTEN)
