"""Figures F4 and F5: importance weighting on separable data, the decision boundaries over
time and the angle to the max-margin direction, from `experiments.importance.run_importance`'s
dataset."""

from matplotlib.lines import Line2D
import matplotlib.pyplot as plt
from matplotlib.ticker import LogLocator, MaxNLocator
import numpy as np
import xarray as xr

from .style import MAJORITY, MINORITY, name_setting, setting, weight_colors


def _weight_handles(colors, weights) -> list[Line2D]:
    """One legend entry per importance weight w = 2^k, in its colour."""
    return [Line2D([], [], color=c, lw=1.2, label=f"w = 2^{k:+g}")
            for c, k in zip(colors, weights, strict=True)]


def _loss_text(ds: xr.Dataset, loss: str) -> str:
    """The loss in words, with the tail exponent alpha of the polynomial loss where `ds`
    records it."""
    alpha = setting(ds, "alpha")
    if loss == "polynomial" and alpha is not None:
        return f"polynomial loss (alpha = {float(alpha):g})"
    return f"{loss} loss"


def _data_text(ds: xr.Dataset) -> str:
    """The training set: how many points per class, and over which seeds."""
    labels = ds.labels.values
    seeds = ds.seed.values
    return (f"{int((labels > 0).sum())} positive + {int((labels < 0).sum())} negative points, "
            f"seed{'s' if seeds.size > 1 else ''} {', '.join(map(str, seeds))}")


COLUMNS = 3
"""F4's panels per row: each model's snapshots and its fraction panel wrap after this many,
so that the figure fits a notebook's width (about 10 inches) with legible text."""


def boundaries_figure(ds: xr.Dataset, l2: float = 0.0, loss: str = "logistic",
                      log2_weights=None, models=("linear", "mlp")):
    """Figure F4: decision boundaries f = 0 of seed 0 at the snapshot times, one color per
    weight (the SVM's boundary dashed), and the fraction of the probe set predicted positive
    against time; each model's panels fill rows of `COLUMNS`, its name in every title; the
    setting as the figure's title.

    **Arguments:**

    - `ds`: a dataset from `run_importance`.
    - `l2`: the L2 strength lambda whose runs to show.
    - `loss`: "logistic" or "polynomial".
    - `log2_weights`: the weights to show (log2); default all of `ds`'s.
    - `models`: the models to show; those not in `ds` are left out.

    **Returns:** the matplotlib figure.
    """
    models = [m for m in models if m in ds.model.values]
    weights = ds.log2_weight.values if log2_weights is None else np.asarray(log2_weights)
    colors = weight_colors(len(weights))
    snaps = ds.snapshot.values
    columns = min(COLUMNS, len(snaps) + 1)
    per_model = -(-(len(snaps) + 1) // columns)
    fig, axes = plt.subplots(len(models) * per_model, columns, squeeze=False,
                             layout="constrained",
                             figsize=(2.7 * columns + 1.3, 2.5 * len(models) * per_model + 0.5))
    X, y = ds.inputs.values, ds.labels.values
    w_svm = ds.svm_direction.values
    xs = np.array([ds.gx.values[0], ds.gx.values[-1]])
    for m, model in enumerate(models):
        run = ds.sel(model=model, loss=loss, l2=l2)
        panels = axes[m * per_model:(m + 1) * per_model].ravel()
        for ax in panels[len(snaps) + 1:]:
            ax.set_visible(False)
        for ax, t in zip(panels, snaps, strict=False):
            ax.scatter(*X[y > 0].T, s=8, color=MINORITY)
            ax.scatter(*X[y < 0].T, s=8, color=MAJORITY)
            ax.plot(xs, -(w_svm[0] * xs + w_svm[2]) / w_svm[1], "k--", lw=1)
            for color, k in zip(colors, weights, strict=True):
                values = run.grid_outputs.sel(log2_weight=k, snapshot=t).values
                if values.min() < 0 < values.max():
                    ax.contour(ds.gx.values, ds.gy.values, values, levels=[0.0],
                               colors=[color], linewidths=1.2)
            ax.set(xlim=xs, ylim=(ds.gy.values[0], ds.gy.values[-1]), aspect="equal")
            ax.set_title(f"{model}, t = {t:.0e}", fontsize=9)
            ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(5, integer=True))
            ax.tick_params(labelsize=7)
            ax.set_xlabel("x1", fontsize=8, labelpad=1)
            ax.set_ylabel("x2", fontsize=8, labelpad=1)
        ax = panels[len(snaps)]
        t = ds.time.values[1:]
        for color, k in zip(colors, weights, strict=True):
            frac = run.probe_positive.sel(log2_weight=k).mean("seed").values[1:]
            ax.semilogx(t, frac, color=color)
        ax.set_ylim(0, 1)
        ax.set_ylabel("fraction predicted positive", fontsize=8)
        ax.set_xlabel("time t", fontsize=8)
        # A decade label every few decades: the axis spans up to 12 of them.
        ax.xaxis.set_major_locator(LogLocator(numticks=5))
        ax.set_title(f"{model}: held-out probe set", fontsize=9)
        ax.tick_params(labelsize=7)
    handles = _weight_handles(colors, weights) + [
        Line2D([], [], color="k", ls="--", lw=1, label="SVM boundary\n(max margin)"),
        Line2D([], [], color=MINORITY, marker="o", ls="", ms=3, label="positive"),
        Line2D([], [], color=MAJORITY, marker="o", ls="", ms=3, label="negative")]
    fig.legend(handles=handles, loc="outside right center", fontsize=7)
    name_setting(fig, "importance weight w on the positive class",
                 f"{_loss_text(ds, loss)}, lambda = {l2:g}", _data_text(ds),
                 "boundaries f = 0 of seed 0")
    return fig


def direction_error_figure(ds: xr.Dataset, loss: str = "logistic",
                           models=("linear", "deep_linear")):
    """Figure F5: the angle to the max-margin direction against time, log-log, one color per
    weight (legend at the right) and one line style per lambda, with a 1/log t reference;
    the setting as its title.

    **Arguments:**

    - `ds`: a dataset from `run_importance`.
    - `loss`: "logistic" or "polynomial".
    - `models`: the models to show, one panel each; those not in `ds` are left out.

    **Returns:** the matplotlib figure.
    """
    models = [m for m in models if m in ds.model.values]
    weights = ds.log2_weight.values
    colors = weight_colors(len(weights))
    styles = ["-", "--", ":", "-."]
    fig, axes = plt.subplots(1, len(models), squeeze=False, layout="constrained",
                             figsize=(4.8 * len(models) + 1.2, 4.0), sharey=True)
    t = ds.time.values[1:]
    for ax, model in zip(axes[0], models, strict=True):
        for style, lam in zip(styles, ds.l2.values, strict=False):
            for color, k in zip(colors, weights, strict=True):
                angle = ds.direction_angle.sel(model=model, loss=loss, l2=lam,
                                               log2_weight=k).mean("seed").values[1:]
                ax.loglog(t, angle, color=color, ls=style, lw=1.1)
            ax.plot([], [], color="gray", ls=style, label=f"lambda = {lam:g}")
        late = t > 10.0
        ax.loglog(t[late], 1.0 / np.log(t[late]), color="k", lw=0.8, alpha=0.6,
                  label="1 / log t")
        ax.set(xlabel="time t")
        ax.set_title(model, fontsize=9)
        ax.legend(fontsize=7, loc="lower left")
    axes[0, 0].set_ylabel("angle to the SVM direction (rad)")
    fig.legend(handles=_weight_handles(colors, weights), loc="outside right center",
               fontsize=7, title="weight", title_fontsize=7)
    name_setting(fig, "importance weight w on the positive class", _loss_text(ds, loss),
                 _data_text(ds) + (" (mean)" if ds.seed.size > 1 else ""))
    return fig
