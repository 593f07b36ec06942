"""Figures drawn from result datasets (SCIENCE figures F1 and F2 of the project's brief,
named here by what they show)."""

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

MAJORITY, MINORITY = "tab:blue", "tab:red"


def _select(ds: xr.Dataset, **where) -> xr.Dataset:
    mask = np.ones(ds.sizes["run"], dtype=bool)
    for name, value in where.items():
        mask &= ds[name].values == value
    return ds.isel(run=np.flatnonzero(mask))


def mode_strengths_figure(ds: xr.Dataset, powers=(0.0, 1.0)):
    """Figure F1: SSM mode strengths a_i(t), ERM vs re-weighting, closed form dashed.

    Mode i is class i's (as the demo records them), colored by its group."""
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
    solid majority, dashed minority, one color per gamma."""
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


def save(fig, path, dpi: int = 110) -> None:
    """Saves a figure compactly and closes it."""
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


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


def work_precision_figure(records: list[dict], dtype: str = "float64"):
    """Figure F7: error against vector-field evaluations (top) and run seconds (bottom), one
    panel per problem and one line per solver (implicit solvers dashed). Runs that did not
    finish, or whose error exceeds 1 (no digit right), are left out. Records as
    `ssm_jax.bench.work_precision` returns them."""
    records = [r for r in records if r["dtype"] == dtype and r["error"] <= 1.0]
    problems = list(dict.fromkeys(r["problem"] for r in records))
    solvers = list(dict.fromkeys(r["solver"] for r in records))
    colors = dict(zip(solvers, plt.get_cmap("tab10").colors, strict=False))
    fig, axes = plt.subplots(2, len(problems), figsize=(3.0 * len(problems), 5.4),
                             layout="constrained", squeeze=False)
    for col, problem in enumerate(problems):
        for solver in solvers:
            rows = [r for r in records if r["problem"] == problem and r["solver"] == solver]
            if not rows:
                continue
            style = dict(color=colors[solver], marker="o", ms=3, lw=1.2,
                         ls="--" if rows[0]["kind"] == "implicit" else "-")
            error = [max(r["error"], 1e-16) for r in rows]  # exact zero: the floor
            axes[0, col].loglog([r["vector_field_evals"] for r in rows], error, **style,
                                label=solver)
            axes[1, col].loglog([r["run_seconds"] for r in rows], error, **style)
        axes[0, col].set_title(problem, fontsize=9)
        axes[1, col].set_xlabel("run seconds")
        axes[0, col].set_xlabel("vector-field evaluations")
    axes[0, 0].set_ylabel("relative max error")
    axes[1, 0].set_ylabel("relative max error")
    handles = {}  # every solver once, whichever panel drew it
    for ax in axes[0]:
        handles.update(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
    fig.legend(handles.values(), handles.keys(), loc="outside right center", fontsize=8)
    return fig
