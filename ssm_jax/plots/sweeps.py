"""Figure F3: the learning-time ratio t_min / t_maj over a sweep's (R, gamma), with the closed
form the sweep recorded."""

import json

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .style import name_setting


def f3_missing(ds: xr.Dataset) -> str | None:
    """What a sweep's dataset lacks for figure F3, or None where F3 can be drawn from it.

    **Arguments:**

    - `ds`: a sweep's dataset (`ssm_jax.sweep`, `ssm_jax.open_sweep`).

    **Returns:** a phrase that completes "F3 needs ...", or None.
    """
    axes = ", ".join(d for d in ds.dims if d not in ("time", "cls", "mode", "chunk"))
    for needed in ("ratio", "power"):
        if needed not in ds.dims:
            return f"a sweep over `{needed}` (this one has axes {axes})"
    if "cls" not in ds.coords or not {"majority", "minority"} <= set(ds.cls.values.tolist()):
        return "class groups 'majority' and 'minority' (class_groups)"
    if "predicted_ratio" not in ds:
        return ("the closed form `predicted_ratio` in the dataset: sweeps from a configuration "
                "record it; otherwise pass `predict` to sweep")
    measured = ds.learning_time.sel(cls="minority") / ds.learning_time.sel(cls="majority")
    if not np.isfinite(measured.values).any():
        return ("members that learn both groups: none reached half-way (progress 1/2) in both "
                "before the end of its run; run longer (t1, or more steps)")
    return None


def learning_time_ratio_figure(ds: xr.Dataset):
    """Figure F3: t_min / t_maj against the imbalance ratio R, one line per gamma (mean over
    seeds, band: min to max), with the closed form dashed where the sweep recorded one. One
    panel per value of any other axis (at most four).

    **Arguments:**

    - `ds`: a sweep over `ratio` and `power` with class groups "majority" and "minority",
      and the closed form `predicted_ratio` over its axes (configured sweeps record it;
      elsewhere pass `sweep(predict=...)`); NaN where there is none (cross-entropy).

    **Returns:** the matplotlib figure; a `ValueError` saying what `ds` lacks otherwise
    (`f3_missing`).
    """
    missing = f3_missing(ds)
    if missing is not None:
        raise ValueError(f"F3 needs {missing}.")
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
    config = json.loads(ds.attrs.get("config", "{}"))
    problem = (config.get("metadata") or {}).get("problem", {})
    model = problem.get("model", "model").upper()
    powers = measured.power.values
    colors = plt.cm.viridis(np.linspace(0.0, 0.9, len(powers)))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels) + 1.2, 3.9), squeeze=False,
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
        ax.set_title(f"{model} {title}".strip(), fontsize=9)
    axes[0, 0].set_ylabel("t_min / t_maj")
    if drew_closed_form:
        axes[0, 0].plot([], [], "k--", lw=0.9, label="closed form")
    # Beside the panels: the lines fan out over the whole panel, so any corner covers data.
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside right center", fontsize=7)
    name_setting(fig, *_settings(problem, config.get("dynamics") or {}, ds))
    return fig


def _settings(problem: dict, dynamics: dict, ds: xr.Dataset) -> list[str]:
    """The phrases that name F3's setting: the problem's fixed settings, the dynamics, and
    what the lines average."""
    fixed = ", ".join(f"{k} = {v}" for k, v in problem.items() if k != "model")
    if dynamics.get("kind") == "flow":
        run = f"gradient flow to t1 = {dynamics['t1']:g} ({dynamics.get('solver')})"
    elif dynamics.get("kind") == "train":
        run = f"{dynamics.get('optimizer')}, {dynamics['steps']} steps"
        run += "" if dynamics.get("batch_size") is None else f", batch {dynamics['batch_size']}"
    else:
        run = ""
    seeds = (f"mean over {ds.sizes['seed']} seeds (band: min to max)" if "seed" in ds.dims
             else "")
    return [fixed, run, seeds]
