"""Figure F3: the learning-time ratio t_min / t_maj over a sweep's (R, gamma), with the closed
form."""

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr


def learning_time_ratio_figure(ds: xr.Dataset):
    """Figure F3: t_min / t_maj against the imbalance ratio R, one line per gamma (mean over
    seeds, band: min to max), with the closed form dashed where the sweep's problem has one
    (square loss; from the typical effective start). One panel per value of any other axis."""
    import json

    from ..sweeps.problems import predicted_ratio

    for needed in ("ratio", "power"):
        if needed not in ds.dims:
            raise ValueError(f"F3 needs a sweep over `{needed}`; this one has axes "
                             f"{', '.join(d for d in ds.learning_time.dims if d != 'cls')}.")
    if "cls" not in ds.coords or not {"majority", "minority"} <= set(ds.cls.values.tolist()):
        raise ValueError("F3 needs class_groups with 'majority' and 'minority'.")
    measured = ds.learning_time.sel(cls="minority") / ds.learning_time.sel(cls="majority")
    if "seed" in measured.dims:
        spread = (measured.min("seed"), measured.max("seed"))
        measured = measured.mean("seed")
    else:
        spread = (measured, measured)
    others = [d for d in measured.dims if d not in ("ratio", "power")]
    panels = [{}] if not others else [{others[0]: v} for v in measured[others[0]].values[:4]]
    metadata = json.loads(ds.attrs.get("config", "{}")).get("metadata") or {}
    problem = metadata.get("problem", {})
    closed_form = problem.get("loss", "square") != "cross_entropy" and bool(metadata)
    powers = measured.power.values
    colors = plt.cm.viridis(np.linspace(0.0, 0.9, len(powers)))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.8), squeeze=False,
                             layout="constrained")
    fine_r = np.geomspace(measured.ratio.values.min(), measured.ratio.values.max(), 60)
    for ax, where in zip(axes[0], panels, strict=True):
        m = measured.sel(where)
        low, high = (s.sel(where) for s in spread)
        for color, power in zip(colors, powers, strict=True):
            line = m.sel(power=power)
            rest = [d for d in line.dims if d != "ratio"]
            mean = line.mean(rest) if rest else line
            ax.plot(m.ratio, mean, "o-", color=color, ms=3, lw=1.2, label=f"gamma = {power:g}")
            ax.fill_between(m.ratio, low.sel(power=power).min(rest) if rest else low.sel(
                power=power), high.sel(power=power).max(rest) if rest else high.sel(
                power=power), color=color, alpha=0.15, lw=0)
            if closed_form:
                settings = {**problem, **{k: float(v) for k, v in where.items()}}
                settings.pop("ratio", None)
                settings.pop("power", None)
                curve = [predicted_ratio(**settings, ratio=r, power=float(power))
                         for r in fine_r]
                ax.plot(fine_r, curve, "--", color=color, lw=0.9)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.axhline(1.0, color="gray", lw=0.6)
        ax.set_xlabel("imbalance ratio R")
        title = ", ".join(f"{k} = {v:g}" for k, v in where.items())
        ax.set_title(f"{problem.get('model', 'model').upper()} {title}".strip())
    axes[0, 0].set_ylabel("t_min / t_maj")
    if closed_form:
        axes[0, 0].plot([], [], "k--", lw=0.9, label="closed form")
    axes[0, 0].legend(fontsize=7, loc="best")
    return fig
