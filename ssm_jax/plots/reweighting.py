"""Figures F1 and F2: the demo's re-weighting dynamics, SSM mode strengths against their closed
form and per-group accuracy and loss of the UFM, from `experiments.demo.run_demo`'s dataset.

Both use a log time axis by default: after learning, the modes and accuracies rest for most
of the run (60% of the demo's horizon), which a linear axis spends on a plateau.
"""

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .style import MAJORITY, MINORITY, imbalance_text, name_setting, setting

LOSS_FLOOR = 1e-8
"""F2's loss panels end at this fraction of the largest starting loss: float32 round-off
(1e-15 of it) says nothing about the dynamics."""


def _time_axis(ax, t, log_time: bool) -> np.ndarray:
    """Sets the x axis to time; on a log axis only the saves after t = 0 are drawn (returned
    as a mask over `t`)."""
    shown = t > 0 if log_time else np.ones(t.shape, dtype=bool)
    if log_time:
        ax.set_xscale("log")
    ax.set_xlim(t[shown][0], t[shown][-1])
    ax.set_xlabel("time t" + (" (log)" if log_time else ""))
    return shown


def _init_text(ds: xr.Dataset, runs: xr.Dataset) -> str:
    """The initial scale as the dataset records it, and for the SSM the effective initial
    strengths a0 (the closed form's value at t = 0)."""
    parts = []
    scale = setting(ds, "init_scale")
    if scale is not None:
        parts.append(f"init scale {float(scale):g}")
    if "analytic_mode_strength" in runs and float(runs.time.values[0]) == 0.0:
        a0 = runs.analytic_mode_strength.isel(time=0).values
        a0 = a0[np.isfinite(a0)]
        if a0.size:
            parts.append(f"a0 = {a0.min():.1e} .. {a0.max():.1e}")
    return ", ".join(parts)


def mode_strengths_figure(ds: xr.Dataset, powers=(0.0, 1.0), log_time: bool = True):
    """Figure F1: SSM mode strengths a_i(t), ERM vs re-weighting, closed form dashed, with the
    setting (k, R, n_min, initial strengths) as its title.

    Mode i is class i's (as the demo records them), colored by its group.

    **Arguments:**

    - `ds`: a dataset from `run_demo`, with its SSM runs.
    - `powers`: the re-weighting powers gamma to show, one panel each.
    - `log_time`: a log time axis (from the first save after 0); else linear.

    **Returns:** the matplotlib figure.
    """
    ssm = ds.sel(model="SSM", loss="square")
    # At most about 10 inches wide: a notebook's width, where wider figures shrink.
    fig, axes = plt.subplots(1, len(powers), figsize=(min(4.6 * len(powers), 10.5), 3.8),
                             sharey=True,
                             layout="constrained", squeeze=False)
    for ax, power in zip(axes[0], powers, strict=True):
        run = ssm.sel(power=power)
        t = run.time.values
        shown = _time_axis(ax, t, log_time)
        a = run.mode_strength.values[shown]
        exact = run.analytic_mode_strength.values[shown]
        for i, is_majority in enumerate(run.majority.values):
            ax.plot(t[shown], a[:, i], color=MAJORITY if is_majority else MINORITY, lw=1.4,
                    alpha=0.8)
            ax.plot(t[shown], exact[:, i], color="k", lw=0.8, ls="--")
        ax.set_title(f"gamma = {power:g}" + (" (ERM)" if power == 0 else ""), fontsize=9)
    first = axes[0, 0]
    first.set_ylabel("mode strength a_i(t)")
    first.plot([], [], color=MAJORITY, label="majority modes")
    first.plot([], [], color=MINORITY, label="minority modes")
    first.plot([], [], color="k", ls="--", lw=0.8, label="closed form")
    first.legend(loc="upper left", fontsize=8)
    name_setting(fig, "SSM, target re-weighting", imbalance_text(ds["count"].values),
                 _init_text(ds, ssm))
    return fig


def _loss_label(model: str) -> str:
    """What `class_loss` holds (`Objective.metrics`, `TargetFit.metrics`): the class mean of
    the per-example loss without the class weights."""
    if model == "SSM":
        return "class mean of 1/2 |z - y|^2,\ny the re-weighted target"
    return "class mean of the loss per\nexample, unweighted"


def class_dynamics_figure(ds: xr.Dataset, model: str = "UFM", log_time: bool = True):
    """Figure F2: per-group accuracy and loss vs time for `model`, one column per loss,
    solid majority, dashed minority, one color per gamma, with the setting as its title.

    The recorded loss is the class mean of the per-example loss without the class weights
    (the label says so); its panels end at `LOSS_FLOOR` times the largest starting loss.

    **Arguments:**

    - `ds`: a dataset from `run_demo`.
    - `model`: which model's runs to show ("SSM" or "UFM").
    - `log_time`: a log time axis (from the first save after 0); else linear.

    **Returns:** the matplotlib figure.
    """
    runs = ds.sel(model=model)
    # Losses the model was run with (the SSM fits its target in square loss only).
    loss_names = [str(n) for n in runs.loss.values if runs.status.sel(loss=n).notnull().any()]
    powers = sorted(runs.power.values.tolist())
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(powers)))
    fig, axes = plt.subplots(2, len(loss_names), figsize=(4.6 * len(loss_names), 6.6),
                             squeeze=False, sharex="col", layout="constrained")
    majority = runs.majority.values
    for col, loss_name in enumerate(loss_names):
        start = 0.0
        for color, power in zip(colors, powers, strict=True):
            run = runs.sel(loss=loss_name, power=power)
            t = run.time.values
            shown = _time_axis(axes[1, col], t, log_time)
            for row, name in enumerate(("class_accuracy", "class_loss")):
                values = run[name].values[shown]
                axes[row, col].plot(t[shown], values[:, majority].mean(1), color=color,
                                    lw=1.5, label=f"gamma = {power:g}")
                axes[row, col].plot(t[shown], values[:, ~majority].mean(1), color=color,
                                    lw=1.5, ls="--")
            start = max(start, float(np.nanmax(run.class_loss.values[0])))
        drawn = np.concatenate([line.get_ydata() for line in axes[1, col].get_lines()])
        low = np.min(drawn[drawn > 0], initial=start)
        axes[1, col].set_yscale("log")
        axes[1, col].set_ylim(bottom=max(LOSS_FLOOR * start, 0.5 * low))
        axes[0, col].set_title(f"{model}, {loss_name.replace('_', ' ')} loss", fontsize=9)
        axes[0, col].set_ylabel("accuracy (train)")
        axes[0, col].set_ylim(-0.02, 1.02)
        axes[1, col].set_ylabel(_loss_label(model), fontsize=8)
    axes[0, 0].plot([], [], color="gray", label="majority")
    axes[0, 0].plot([], [], color="gray", ls="--", label="minority")
    axes[0, 0].legend(fontsize=8, loc="lower right")
    reweighting = "target re-weighting" if model == "SSM" else "loss re-weighting"
    name_setting(fig, f"{model}, {reweighting} with omega_c ~ n_c^-gamma",
                 imbalance_text(ds["count"].values), _init_text(ds, runs))
    return fig
