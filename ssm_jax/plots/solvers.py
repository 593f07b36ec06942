"""Figure F7: the work-precision of ODE solvers, from `ssm_jax.bench.solvers`'s
records."""

import matplotlib.pyplot as plt


def work_precision_figure(records: list[dict], dtype: str = "float64"):
    """Figure F7: error against vector-field evaluations (top) and run seconds (bottom), one
    panel per problem and one line per solver (implicit solvers dashed). Runs that did not
    finish, or whose error exceeds 1 (no digit right), are left out.

    **Arguments:**

    - `records`: as `ssm_jax.bench.solvers` returns them.
    - `dtype`: which precision's runs to show ("float64" or "float32").

    **Returns:** the matplotlib figure.
    """
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
