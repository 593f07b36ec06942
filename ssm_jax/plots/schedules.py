"""Figure F8, the early-stopping map: the time window in which each method beats ERM, over the
imbalance ratio, one row per model, the closed-form window beside the measured one."""

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .style import name_setting

CAPTIONS = {
    "accuracy": (
        "Filled: measured, balanced accuracy. Hatched: the closed form, which predicts when "
        "classes are learned (progress 1/2) from the typical random start, not accuracy. The "
        "measured windows open earlier because a class is classified correctly as soon as its "
        "output rises above the other classes' small outputs, well before it is half learned. "
        "No bar: never beats ERM there (no hatched bar at all: no closed form, cross-entropy)."),
    "learned": (
        "Filled: measured fraction of classes learned (progress 1/2). Hatched: its closed form "
        "from the typical random start (exact from the class-aligned start); the measured run "
        "starts from one random draw, whose effective initial outputs differ from the typical "
        "ones, so its windows can shift by a save or two. No bar: never beats ERM there (no "
        "hatched bar at all: no closed form, cross-entropy)."),
}
"""What F8's caption says, per measured reading: why the measured and closed-form windows
differ."""


def schedules_figure(ds: xr.Dataset, source: str = "accuracy"):
    """F8: per model (row) and ratio R (x), one bar per method from the start to the end of
    its window on a log time axis; a hatched bar beside it for the closed form where one
    exists, and a caption saying why the two differ. A method with no bar never beats ERM there.

    **Arguments:**

    - `ds`: a dataset from `experiments.schedules.run_schedules`.
    - `source`: the measured reading, "accuracy" (balanced accuracy) or "learned" (balanced
      fraction of classes with progress >= 1/2).

    **Returns:** the matplotlib figure.
    """
    if source not in ("accuracy", "learned"):
        raise ValueError(f"`source` = {source!r} is not allowed: expected 'accuracy' or "
                         "'learned'.")
    methods = [m for m in ds.weighting.values if m != "ERM"]
    ratios = ds.ratio.values
    colors = plt.cm.tab10(np.arange(len(methods)) % 10)
    models = ds.model.values
    fig, axes = plt.subplots(len(models), 1, figsize=(7.5, 2.1 * len(models) + 1.2),
                             sharex=True, sharey=True, squeeze=False, layout="constrained")
    slot = 0.8 / len(methods)
    for ax, model in zip(axes[:, 0], models, strict=True):
        for j, method in enumerate(methods):
            for reading, hatched in ((source, False), ("closed_form", True)):
                w = ds.sel(model=model, weighting=method, source=reading)
                start, end = w.window_start.values, w.window_end.values
                shown = np.isfinite(start) & np.isfinite(end)
                x = np.arange(ratios.size) - 0.4 + (j + 0.5) * slot + (0.22 * slot if hatched
                                                                         else -0.22 * slot)
                ax.bar(x[shown], (end - start)[shown], bottom=start[shown], width=0.4 * slot,
                       color="none" if hatched else colors[j], edgecolor=colors[j],
                       hatch="////" if hatched else None, linewidth=0.8)
        ax.set_yscale("log")
        ax.set_ylabel("time t")
        ax.set_title(str(model).replace("_", " "), fontsize=9, loc="left")
        ax.grid(axis="y", alpha=0.3)
    axes[-1, 0].set_xticks(np.arange(ratios.size), [f"{r:g}" for r in ratios])
    axes[-1, 0].set_xlabel("imbalance ratio R")
    reading = "balanced accuracy" if source == "accuracy" else "balanced learned fraction"
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors]
    handles += [plt.Rectangle((0, 0), 1, 1, color="0.5"),
                plt.Rectangle((0, 0), 1, 1, facecolor="none", edgecolor="k", hatch="////")]
    fig.legend(handles, methods + ["measured", "closed form\n(classes learned)"],
               loc="outside right center", fontsize=7, frameon=False)
    name_setting(fig, f"F8: when each method beats ERM ({reading})", ds.attrs.get("setting", ""))
    fig.supxlabel(textwrap.fill(CAPTIONS[source], 120), fontsize=7, color="0.25")
    return fig
