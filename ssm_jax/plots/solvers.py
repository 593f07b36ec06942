"""The benchmarks' figures: F7, the work-precision of ODE solvers, from
`ssm_jax.bench.solvers`'s records, and the error of discrete GD against the flow as the step
size shrinks, from `ssm_jax.bench.discretization`'s records.

Runs that produced no error (status not "ok", or records read back from JSON with null) are
drawn, not dropped: a marker at the top edge of the panel and a note of how many.
"""

from matplotlib.lines import Line2D
import matplotlib.pyplot as plt
from matplotlib.ticker import (
    FixedFormatter,
    FixedLocator,
    LogFormatterSciNotation,
    LogLocator,
    NullFormatter,
    NullLocator,
)
import numpy as np

COLUMNS = 3
"""F7's problems per row of panels."""

FAILED, INACCURATE = "x", "^"
"""Markers at the top edge: a run that did not finish, and one with no digit right."""


def _error(record: dict) -> float:
    """A record's error, NaN where it has none (null in JSON, or not finite)."""
    error = record.get("error")
    return float("nan") if error is None or not np.isfinite(error) else float(error)


def _log_axes(ax) -> None:
    """Log-log axes with at most a few labelled decades, so that tick labels never meet."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis, count in ((ax.xaxis, 4), (ax.yaxis, 6)):
        axis.set_major_locator(LogLocator(numticks=count))
        axis.set_minor_formatter(NullFormatter())
    ax.tick_params(labelsize=8)


def _top_edge(ax, x, marker: str, color) -> None:
    """Marks runs at the top edge of `ax` (x in data, y in axes coordinates)."""
    if len(x):
        ax.plot(x, np.ones(len(x)), ls="", marker=marker, color=color, ms=5, mew=1.2,
                clip_on=False, transform=ax.get_xaxis_transform(), label="_top_edge")


def _note(ax, failed: int, inaccurate: int) -> None:
    """Says in the panel how many runs sit at its top edge."""
    parts = [f"{failed} did not finish ({FAILED})" if failed else "",
             f"{inaccurate} error > 1 ({INACCURATE})" if inaccurate else ""]
    text = ", ".join(p for p in parts if p)
    if text:
        ax.text(0.02, 0.02, text, transform=ax.transAxes, fontsize=7, color="0.3")


def _kind(records: list[dict], solver: str) -> str:
    """A solver's kind ("fixed", "explicit" or "implicit") as its records give it."""
    return next(r["kind"] for r in records if r["solver"] == solver)


def work_precision_figure(records: list[dict], dtype: str = "float64"):
    """Figure F7: error against vector-field evaluations (top) and run seconds (below it), one
    pair of panels per problem, `COLUMNS` problems a row, one line per solver (implicit
    solvers dashed). Runs that did not
    finish (status not "ok", error NaN) are marked x and runs with no digit right (error
    > 1) ^ at the top edge, at the work they spent, with a count in the panel.

    **Arguments:**

    - `records`: as `ssm_jax.bench.solvers` returns them (or read back from their JSON).
    - `dtype`: which precision's runs to show ("float64" or "float32").

    **Returns:** the matplotlib figure.
    """
    records = [r for r in records if r["dtype"] == dtype]
    problems = list(dict.fromkeys(r["problem"] for r in records))
    solvers = list(dict.fromkeys(r["solver"] for r in records))
    colors = dict(zip(solvers, plt.get_cmap("tab10").colors, strict=False))
    # Problems wrap after COLUMNS, each an (evaluations, seconds) pair of rows, so that the
    # figure stays about 1000 px wide at the benchmark's 80 dpi with text of 8 points or more.
    columns = min(COLUMNS, len(problems))
    bands = -(-len(problems) // columns)
    fig, grid = plt.subplots(2 * bands, columns, figsize=(3.7 * columns + 1.6, 5.4 * bands + 0.3),
                             layout="constrained", squeeze=False)
    for ax in grid.flat[2 * len(problems):]:
        ax.set_visible(False)
    for index, problem in enumerate(problems):
        band, col = divmod(index, columns)
        pair = grid[2 * band:2 * band + 2, col]
        counts = np.zeros(2, dtype=int)
        for solver in solvers:
            rows = [r for r in records if r["problem"] == problem and r["solver"] == solver]
            if not rows:
                continue
            error = np.array([_error(r) for r in rows])
            finished = np.array([r["status"] == "ok" for r in rows]) & np.isfinite(error)
            shown = finished & (error <= 1.0)
            counts += (~finished).sum(), (finished & ~shown).sum()
            style = dict(color=colors[solver], marker="o", ms=3, lw=1.2,
                         ls="--" if rows[0]["kind"] == "implicit" else "-")
            for ax, key in zip(pair, ("vector_field_evals", "run_seconds"), strict=True):
                x = np.array([r[key] for r in rows], dtype=float)
                ax.plot(x[shown], np.maximum(error[shown], 1e-16), **style,
                        label=solver)  # exact zero: the floor
                _top_edge(ax, x[~finished], FAILED, colors[solver])
                _top_edge(ax, x[finished & ~shown], INACCURATE, colors[solver])
        for ax, label in zip(pair, ("vector-field evaluations", "run seconds"), strict=True):
            _log_axes(ax)
            drawn = [e for line in ax.get_lines() if line.get_label() != "_top_edge"
                     for e in line.get_ydata()]
            ax.set_ylim(min(drawn, default=1e-3) / 3, 1.0)
            _note(ax, *counts)
            ax.set_xlabel(label, fontsize=9)
            ax.set_title(problem, fontsize=10)
            if col == 0:
                ax.set_ylabel("relative max error", fontsize=9)
    handles = [Line2D([], [], color=colors[s], marker="o", ms=3, label=s,
                      ls="--" if _kind(records, s) == "implicit" else "-") for s in solvers]
    handles += [Line2D([], [], color="0.4", marker=m, ls="", label=text)
                for m, text in ((FAILED, "did not finish"), (INACCURATE, "error > 1"))]
    fig.legend(handles=handles, loc="outside right center", fontsize=9)
    fig.suptitle(f"work-precision, {dtype}: error against work, one panel pair per problem",
                 fontsize=10)
    return fig


def discretization_figure(records: list[dict]):
    """GD (and SGD) against the flow: the error at the save times against the step size
    eta, log-log, one panel per problem and one line per method (with its fitted order), a
    first-order guide dashed; runs with no error (NaN) marked x at the top edge.

    **Arguments:**

    - `records`: as `ssm_jax.bench.gd_vs_flow` returns them, several problems and methods
      joined; a `fitted_order` entry is shown where present.

    **Returns:** the matplotlib figure.
    """
    problems = list(dict.fromkeys(r["problem"] for r in records))
    fig, axes = plt.subplots(1, len(problems), figsize=(4.2 * len(problems) + 0.2, 4.0),
                             layout="constrained", squeeze=False)
    for ax, problem in zip(axes[0], problems, strict=True):
        rows = [r for r in records if r["problem"] == problem]
        failed = 0
        for color, method in zip(plt.get_cmap("tab10").colors,
                                 dict.fromkeys(r["method"] for r in rows), strict=False):
            mine = [r for r in rows if r["method"] == method]
            eta = np.array([r["eta"] for r in mine])
            error = np.array([_error(r) for r in mine])
            ok = np.isfinite(error)
            order = mine[0].get("fitted_order")
            label = method if order is None or not np.isfinite(order) else \
                f"{method}, order {order:.2f}"
            ax.plot(eta[ok], error[ok], "o-", color=color, ms=4, lw=1.4, label=label)
            _top_edge(ax, eta[~ok], FAILED, color)
            failed += int((~ok).sum())
        gd = [(r["eta"], _error(r)) for r in rows if r["method"] == "GD"
              and np.isfinite(_error(r))]
        if gd:
            eta0, error0 = min(gd)  # anchored at the smallest step: the asymptotic regime
            eta = np.array([eta0, max(r["eta"] for r in rows)])
            ax.plot(eta, error0 * eta / eta0, "k--", lw=0.9, label="first order (eta)")
        _log_axes(ax)
        # The step sizes run are few and span a decade or two: label each of them, and the
        # error at 1, 2 and 5 per decade, instead of a lone power of ten.
        etas = sorted({r["eta"] for r in rows})
        ax.xaxis.set_major_locator(FixedLocator(etas))
        ax.xaxis.set_major_formatter(FixedFormatter([f"{e:.3g}" for e in etas]))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0), numticks=8))
        ax.yaxis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
        ax.tick_params(labelsize=8)
        _note(ax, failed, 0)
        ax.set_title(problem, fontsize=10)
        ax.set_xlabel("step size eta", fontsize=9)
        ax.legend(fontsize=8, loc="lower right")
    axes[0, 0].set_ylabel("relative max error vs the flow", fontsize=9)
    fig.suptitle("discrete GD and SGD against the gradient flow, as the step size shrinks",
                 fontsize=10)
    return fig
