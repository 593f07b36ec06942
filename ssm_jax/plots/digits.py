"""Figure F6: real networks on real images (scikit-learn's digits, MNIST, CIFAR-10),
re-weighting (left) and importance weighting (right), from `experiments.digits`'s
datasets."""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .style import MAJORITY, MINORITY, imbalance_text, name_setting, setting, weight_colors


def _training_text(ds: xr.Dataset) -> str:
    """The optimizer's settings where `ds` records its configuration."""
    names = (("learning_rate", "learning rate"), ("momentum", "momentum"),
             ("batch_size", "batch size"))
    return ", ".join(f"{label} {setting(ds, name)}" for name, label in names
                     if setting(ds, name) is not None)


def gap_text(ds: xr.Dataset) -> str:
    """The gap between the networks and the models that F6's ratio panel shows: at the
    smallest gamma (ERM), each network's measured t_minority / t_majority (mean over seeds)
    as a multiple of the first reading's closed form.

    **Arguments:**

    - `ds`: a dataset from `experiments.digits.run_reweighting`.

    **Returns:** a phrase in lines, e.g. "at gamma = 0, measured / target (SSM) prediction:\n
    MLP 6.2x, CNN 2.1x".
    """
    power = ds.power.values.min()
    reading = ds.reading.values[0]
    predicted = float(ds.predicted_ratio.sel(power=power, reading=reading))
    parts = []
    for name in ds.network.values:
        with warnings.catch_warnings():  # no seed learned: NaN, said as such
            warnings.simplefilter("ignore", RuntimeWarning)
            measured = float(np.nanmean(ds.learning_step_ratio.sel(network=name, power=power)))
        parts.append(f"{str(name).upper()} {measured / predicted:.1f}x")
    return (f"networks vs models at gamma = {power:g}:\nmeasured / {reading} prediction\n"
            + ", ".join(parts))


def reweighting_figure(ds: xr.Dataset, networks=None):
    """Figure F6, left: majority vs minority test accuracy vs step (mean over seeds, band:
    min to max), one row per network and one column per gamma, and the measured vs predicted
    ratio of learning steps of every network, titled with how far the networks are from the
    models (`gap_text`); the setting as its title.

    **Arguments:**

    - `ds`: a dataset from `experiments.digits.run_reweighting`.
    - `networks`: whose accuracy curves to show ("mlp", "cnn"), one row each; default every
      network in `ds`. The ratio panel shows every network.

    **Returns:** the matplotlib figure.
    """
    names = [str(n) for n in (ds.network.values if networks is None else networks)]
    powers = ds.power.values
    fig = plt.figure(figsize=(3.3 * (len(powers) + 1), 2.6 * len(names) + 0.5),
                     layout="constrained")
    grid = fig.add_gridspec(len(names), len(powers) + 1)
    majority = ds.majority.values
    steps = ds.step.values
    for row, name in enumerate(names):
        net = ds.sel(network=name)
        for col, power in enumerate(powers):
            ax = fig.add_subplot(grid[row, col])
            acc = net.test_accuracy.sel(power=power).values
            for mask, color, label in ((majority, MAJORITY, "majority"),
                                       (~majority, MINORITY, "minority")):
                group = acc[..., mask].mean(-1)
                ax.plot(steps, group.mean(0), color=color, label=label)
                ax.fill_between(steps, group.min(0), group.max(0), color=color, alpha=0.2,
                                lw=0)
            ax.set_title(f"{name.upper()}, gamma = {power:g}" + (" (ERM)" if power == 0
                                                                  else ""), fontsize=9)
            ax.set_ylim(0, 1)
            if col == 0:
                ax.set_ylabel("test accuracy")
            if row == len(names) - 1:
                ax.set_xlabel("step")
            if row == col == 0:
                ax.legend(fontsize=8, loc="lower right")
    ax = fig.add_subplot(grid[:, -1])
    for j, name in enumerate(ds.network.values):
        ratio = ds.learning_step_ratio.sel(network=name).values
        with warnings.catch_warnings():  # a gamma at which no seed learns has no ratio: NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, spread = np.nanmean(ratio, -1), np.nanstd(ratio, -1)
        ax.errorbar(powers + 0.03 * j, mean, yerr=spread, fmt="o",
                    label=f"{str(name).upper()} (measured)")
    for reading, style in zip(ds.reading.values, ("--", ":"), strict=True):
        ax.plot(powers, ds.predicted_ratio.sel(reading=reading), "k" + style, label=reading)
    ax.axhline(1.0, color="gray", lw=0.5)
    ax.set_yscale("log")
    ax.set_xlabel("gamma")
    ax.set_ylabel("t_minority / t_majority")
    ax.legend(fontsize=7)
    ax.set_title(gap_text(ds), fontsize=8)
    strength = setting(ds, "init_strength")
    name_setting(fig, f"{ds.attrs.get('dataset', 'digits')}, class weights omega_c ~ "
                 "n_c^-gamma",
                 imbalance_text(ds["count"].values) + f" train images, {ds.seed.size} seeds",
                 _training_text(ds),
                 None if strength is None else f"prediction at init strength {strength:g}")
    return fig


def importance_figure(ds: xr.Dataset):
    """Figure F6, right: the fraction of images predicted as the weighted digit vs epoch,
    one row per regularizer switched on alone, one color per weight; left column the test
    images of both digits, right column the eight out-of-distribution digits; the setting
    (the network where `ds` records it) as its title.

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
    fig, axes = plt.subplots(len(rows), 2, figsize=(7.6, 2.1 * len(rows) + 0.4), sharex=True,
                             sharey=True, squeeze=False, layout="constrained")
    colors = weight_colors(ds.weight.size)
    epochs = ds.epoch.values
    for r, (title, where) in enumerate(rows):
        sel = ds.sel(**where)
        for color, w in zip(colors, ds.weight.values, strict=True):
            one = sel.sel(weight=w)
            test = one.test_predicted_up.mean(("seed", "cls")).values
            probe = one.probe_predicted_up.mean(("seed", "probe_class")).values
            axes[r, 0].plot(epochs + 1, test, color=color, label=f"w = 2^{np.log2(w):+.0f}")
            axes[r, 1].plot(epochs + 1, probe, color=color)
        axes[r, 0].set_ylabel(f"{title}\nfraction", fontsize=8)
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
    up, other = ds.attrs["weighted_name"], ds.attrs["other_name"]
    axes[0, 0].set_title(f"test {other} and {up} images predicted as {up}", fontsize=9)
    axes[0, 1].set_title(f"other classes (out of distribution) predicted as {up}", fontsize=9)
    axes[-1, 0].set_xlabel("epoch + 1")
    axes[-1, 1].set_xlabel("epoch + 1")
    axes[0, 0].legend(fontsize=6, ncol=2, loc="lower right")
    network = setting(ds, "network")
    per_class = setting(ds, "train_per_class")
    name_setting(fig, f"{'network' if network is None else str(network).upper()}, "
                 f"{ds.attrs.get('dataset', 'digits')} {other} vs {up}, importance weight w "
                 f"on the {up} images",
                 None if per_class is None else f"{per_class} train images per class",
                 f"{ds.seed.size} seed{'s' if ds.seed.size > 1 else ''}, "
                 f"{ds.attrs['steps_per_epoch']} steps per epoch", _training_text(ds))
    return fig
