"""Figures F1 and F2: the demo's re-weighting dynamics, SSM mode strengths against their closed
form and per-group accuracy and loss of the UFM, from `experiments.demo.run_demo`'s dataset."""

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .style import MAJORITY, MINORITY


def _select(ds: xr.Dataset, **where) -> xr.Dataset:
    """The runs whose coordinates along `run` equal every value in `where`."""
    mask = np.ones(ds.sizes["run"], dtype=bool)
    for name, value in where.items():
        mask &= ds[name].values == value
    return ds.isel(run=np.flatnonzero(mask))


def mode_strengths_figure(ds: xr.Dataset, powers=(0.0, 1.0)):
    """Figure F1: SSM mode strengths a_i(t), ERM vs re-weighting, closed form dashed.

    Mode i is class i's (as the demo records them), colored by its group.

    **Arguments:**

    - `ds`: a dataset from `run_demo`, with its SSM runs.
    - `powers`: the re-weighting powers gamma to show, one panel each.

    **Returns:** the matplotlib figure.
    """
    ssm = _select(ds, model="SSM")
    fig, axes = plt.subplots(1, len(powers), figsize=(4.6 * len(powers), 3.6), sharey=True,
                             layout="constrained")
    for ax, power in zip(np.atleast_1d(axes), powers, strict=True):
        run = _select(ssm, power=power).isel(run=0)
        t = run.time.values
        a = run.mode_strength.values
        exact = run.analytic_mode_strength.values
        for i, is_majority in enumerate(run.majority.values):
            ax.plot(t, a[:, i], color=MAJORITY if is_majority else MINORITY, lw=1.4, alpha=0.8)
            ax.plot(t, exact[:, i], color="k", lw=0.8, ls="--")
        ax.set_title(f"SSM, gamma = {power:g}" + (" (ERM)" if power == 0 else ""))
        ax.set_xlabel("time t")
    first = np.atleast_1d(axes)[0]
    first.set_ylabel("mode strength a_i(t)")
    first.plot([], [], color=MAJORITY, label="majority modes")
    first.plot([], [], color=MINORITY, label="minority modes")
    first.plot([], [], color="k", ls="--", lw=0.8, label="closed form")
    first.legend(loc="lower right", fontsize=8)
    return fig


def class_dynamics_figure(ds: xr.Dataset, model: str = "UFM"):
    """Figure F2: per-group accuracy and loss vs time for `model`, one column per loss,
    solid majority, dashed minority, one color per gamma.

    **Arguments:**

    - `ds`: a dataset from `run_demo`.
    - `model`: which model's runs to show ("SSM" or "UFM").

    **Returns:** the matplotlib figure.
    """
    runs = _select(ds, model=model)
    loss_names = list(dict.fromkeys(runs.loss.values.tolist()))
    powers = sorted(set(runs.power.values.tolist()))
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(powers)))
    fig, axes = plt.subplots(2, len(loss_names), figsize=(4.6 * len(loss_names), 6.4),
                             squeeze=False, sharex="col", layout="constrained")
    majority = runs.majority.values
    for col, loss_name in enumerate(loss_names):
        for color, power in zip(colors, powers, strict=True):
            run = _select(runs, loss=loss_name, power=power).isel(run=0)
            t = run.time.values
            for row, name in enumerate(("class_accuracy", "class_loss")):
                values = run[name].values
                axes[row, col].plot(t, values[:, majority].mean(1), color=color, lw=1.5,
                                    label=f"gamma = {power:g}")
                axes[row, col].plot(t, values[:, ~majority].mean(1), color=color, lw=1.5,
                                    ls="--")
        axes[0, col].set_title(f"{model}, {loss_name.replace('_', ' ')} loss")
        axes[0, col].set_ylabel("accuracy (train)")
        axes[1, col].set_ylabel("loss per example")
        axes[1, col].set_yscale("log")
        axes[1, col].set_xlabel("time t")
    axes[0, 0].plot([], [], color="gray", label="majority")
    axes[0, 0].plot([], [], color="gray", ls="--", label="minority")
    axes[0, 0].legend(fontsize=8, loc="lower right")
    return fig
