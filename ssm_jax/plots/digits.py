"""Figure F6: real networks on scikit-learn's digits, re-weighting (left) and importance
weighting (right), from `experiments.digits`'s datasets."""

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .style import MAJORITY, MINORITY, weight_colors


def reweighting_figure(ds: xr.Dataset, network: str | None = None):
    """Figure F6, left: majority vs minority test accuracy vs step (mean over seeds, band:
    min to max) for each gamma, and the measured vs predicted ratio of learning steps.

    **Arguments:**

    - `ds`: a dataset from `experiments.digits.run_reweighting`.
    - `network`: whose accuracy curves to show ("mlp" or "cnn"); default the first. The
      ratio panel shows every network.

    **Returns:** the matplotlib figure.
    """
    net = ds.sel(network=network or str(ds.network.values[0]))
    powers = net.power.values
    fig, axes = plt.subplots(1, len(powers) + 1, figsize=(3.3 * (len(powers) + 1), 3.2),
                             layout="constrained")
    majority = net.majority.values
    steps = net.step.values
    for ax, power in zip(axes, powers, strict=False):
        acc = net.test_accuracy.sel(power=power).values
        for mask, color, label in ((majority, MAJORITY, "majority"),
                                   (~majority, MINORITY, "minority")):
            group = acc[..., mask].mean(-1)
            ax.plot(steps, group.mean(0), color=color, label=label)
            ax.fill_between(steps, group.min(0), group.max(0), color=color, alpha=0.2, lw=0)
        ax.set_title(f"{str(net.network.values).upper()}, gamma = {power:g}"
                     + (" (ERM)" if power == 0 else ""), fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=8, loc="lower right")
    ax = axes[-1]
    for j, name in enumerate(ds.network.values):
        ratio = ds.learning_step_ratio.sel(network=name).values
        ax.errorbar(powers + 0.03 * j, np.nanmean(ratio, -1), yerr=np.nanstd(ratio, -1),
                    fmt="o", label=f"{str(name).upper()} (measured)")
    for reading, style in zip(ds.reading.values, ("--", ":"), strict=True):
        ax.plot(powers, ds.predicted_ratio.sel(reading=reading), "k" + style, label=reading)
    ax.axhline(1.0, color="gray", lw=0.5)
    ax.set_yscale("log")
    ax.set_xlabel("gamma")
    ax.set_ylabel("t_minority / t_majority")
    ax.legend(fontsize=7)
    return fig


def importance_figure(ds: xr.Dataset):
    """Figure F6, right: the fraction of images predicted as the weighted digit vs epoch,
    one row per regularizer switched on alone, one color per weight; left column the test
    images of both digits, right column the eight out-of-distribution digits.

    **Arguments:**

    - `ds`: a dataset from `experiments.digits.run_importance`.

    **Returns:** the matplotlib figure.
    """
    base = dict(batch_norm=False, l2=0.0, dropout=0.0)
    rows = [("no regularization", base)]
    if ds.l2.size > 1:
        rows.append((f"L2 = {ds.l2.values.max():g}", {**base, "l2": ds.l2.values.max()}))
    if True in ds.batch_norm.values:
        rows.append(("batch norm", {**base, "batch_norm": True}))
    if ds.dropout.size > 1:
        rows.append((f"dropout {ds.dropout.values.max():g}",
                     {**base, "dropout": ds.dropout.values.max()}))
    fig, axes = plt.subplots(len(rows), 2, figsize=(7.6, 2.1 * len(rows)), sharex=True,
                             sharey=True, squeeze=False, layout="constrained")
    colors = weight_colors(ds.weight.size)
    epochs = ds.epoch.values
    for r, (title, where) in enumerate(rows):
        sel = ds.sel(**where)
        for color, w in zip(colors, ds.weight.values, strict=True):
            one = sel.sel(weight=w)
            test = one.test_predicted_up.mean(("seed", "cls")).values
            probe = one.probe_predicted_up.mean(("seed", "probe_digit")).values
            axes[r, 0].plot(epochs + 1, test, color=color, label=f"w = 2^{np.log2(w):+.0f}")
            axes[r, 1].plot(epochs + 1, probe, color=color)
        axes[r, 0].set_ylabel(f"{title}\nfraction", fontsize=8)
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
    digit = ds.attrs["weighted_digit"]
    axes[0, 0].set_title(f"test {ds.attrs['other_digit']}s and {digit}s predicted as {digit}",
                         fontsize=9)
    axes[0, 1].set_title(f"other digits (out of distribution) predicted as {digit}",
                         fontsize=9)
    axes[-1, 0].set_xlabel("epoch + 1")
    axes[-1, 1].set_xlabel("epoch + 1")
    axes[0, 0].legend(fontsize=6, ncol=2, loc="lower right")
    return fig
