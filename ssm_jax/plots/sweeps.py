"""Figure F3: the learning-time ratio t_min / t_maj over a sweep's (R, gamma), with the closed
form the sweep recorded."""

import json

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr


def learning_time_ratio_figure(ds: xr.Dataset):
    """Figure F3: t_min / t_maj against the imbalance ratio R, one line per gamma (mean over
    seeds, band: min to max), with the closed form dashed where the sweep recorded one. One
    panel per value of any other axis (at most four).

    **Arguments:**

    - `ds`: a sweep over `ratio` and `power` with class groups "majority" and "minority",
      and the closed form `predicted_ratio` over its axes (configured sweeps record it;
      elsewhere pass `sweep(predict=...)`); NaN where there is none (cross-entropy).

    **Returns:** the matplotlib figure.
    """
    for needed in ("ratio", "power"):
        if needed not in ds.dims:
            raise ValueError(f"F3 needs a sweep over `{needed}`; this one has axes "
                             f"{', '.join(d for d in ds.learning_time.dims if d != 'cls')}.")
    if "cls" not in ds.coords or not {"majority", "minority"} <= set(ds.cls.values.tolist()):
        raise ValueError("F3 needs class_groups with 'majority' and 'minority'.")
    if "predicted_ratio" not in ds:
        raise ValueError("F3 needs the closed form `predicted_ratio` in the dataset: sweeps "
                         "from a configuration record it; otherwise pass `predict` to sweep.")
    measured = ds.learning_time.sel(cls="minority") / ds.learning_time.sel(cls="majority")
    predicted = ds.predicted_ratio
    if "seed" in measured.dims:
        spread = (measured.min("seed"), measured.max("seed"))
        measured = measured.mean("seed")
        predicted = predicted.mean("seed")
    else:
        spread = (measured, measured)
    others = [d for d in measured.dims if d not in ("ratio", "power")]
    panels = [{}] if not others else [{others[0]: v} for v in measured[others[0]].values[:4]]
    metadata = json.loads(ds.attrs.get("config", "{}")).get("metadata") or {}
    model = metadata.get("problem", {}).get("model", "model").upper()
    powers = measured.power.values
    colors = plt.cm.viridis(np.linspace(0.0, 0.9, len(powers)))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.8), squeeze=False,
                             layout="constrained")
    drew_closed_form = False
    for ax, where in zip(axes[0], panels, strict=True):
        m, p = measured.sel(where), predicted.sel(where)
        low, high = (s.sel(where) for s in spread)
        rest = [d for d in m.dims if d not in ("ratio", "power")]
        for color, power in zip(colors, powers, strict=True):
            ax.plot(m.ratio, m.sel(power=power).mean(rest), "o-", color=color, ms=3, lw=1.2,
                    label=f"gamma = {power:g}")
            ax.fill_between(m.ratio, low.sel(power=power).min(rest),
                            high.sel(power=power).max(rest), color=color, alpha=0.15, lw=0)
            curve = p.sel(power=power).mean(rest)
            if np.isfinite(curve.values).any():
                ax.plot(p.ratio, curve, "--", color=color, lw=0.9)
                drew_closed_form = True
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.axhline(1.0, color="gray", lw=0.6)
        ax.set_xlabel("imbalance ratio R")
        title = ", ".join(f"{k} = {v:g}" for k, v in where.items())
        ax.set_title(f"{model} {title}".strip())
    axes[0, 0].set_ylabel("t_min / t_maj")
    if drew_closed_form:
        axes[0, 0].plot([], [], "k--", lw=0.9, label="closed form")
    axes[0, 0].legend(fontsize=7, loc="best")
    return fig
