"""Importance weighting on separable data (Byrd & Lipton 2019; Soudry et al. 2018).

A weight q = 2^k on the positive class (1 on the negative) moves the decision boundary early
in training; on separable data with the logistic loss and no regularization its effect fades
at a 1/log t pace, because the direction converges to the max-margin SVM, which ignores the
weights. L2 regularization (lambda > 0) or a polynomially tailed loss keep it.

Every model acts on the inputs augmented with a constant feature, [x, 1]: a linear model on
them is a linear model with a bias, and every model stays homogeneous in its parameters, so the
limit of a linear predictor is the max-margin direction of the augmented data.

For each model, one compiled call integrates the gradient flow of every weight, lambda, loss
and seed at once: `eqx.filter_vmap` over the initial parameters, the objectives (which differ
in inputs, example weights, lambda and loss, all array leaves: `LogisticOrPolynomial` picks the
loss by a 0/1 leaf) and the metrics (which hold each seed's probe set and SVM direction).

Long horizons (to t = 1e12, saves log-spaced) by adaptive steps, no change of variables; see
docs/importance.md for the measured step counts:

- lambda = 0: the gradient decays like 1/t, so the controller's steps grow like t and the
  step count like log t (100 to 700 steps to 1e12 for the linear models).
- lambda > 0: the flow comes to rest at a finite minimizer, where an explicit solver is
  held to steps of order 1/|Hessian| by stability and would need ~1e11 steps to reach 1e12.
  Linear and deep linear models therefore use the L-stable implicit Kvaerno5, and every run
  stops once at rest (|grad| <= rest_tol * lambda, which bounds the distance to the minimizer
  by rest_tol for a lambda-strongly convex objective); later saves repeat the state at rest.
- The ReLU MLP's vector field jumps where a pre-activation crosses zero at a data point; the
  error estimate there limits steps in proportion to the tolerance, and an implicit solver's
  Newton iteration fails there. It uses Tsit5 at rtol = 1e-4, and with lambda > 0 it stops at
  a looser rest (rest_tol = 1e-2): an explicit solver at rest hovers at its stability limit
  with |grad| ~ 1e-3..1e-2 lambda, so some MLP runs with lambda > 0 end with status
  "max_steps" (reported, their later saves left as the solver's inf).

`gradient_flow` has no stopping event and checks its arguments concretely, so the batched
solve is this module's `_flow`, the same diffrax call as `ssm_jax.flow._solve` plus the event.
"""

from collections.abc import Callable
import dataclasses
from pathlib import Path
import time
from typing import Annotated

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import typer
import xarray as xr

from .._timing import timed_call
from ..analytic.separable import max_margin
from ..data.separable import (
    augment_bias,
    gaussian_blobs,
    grid_axes,
    importance_weights,
    probe_grid,
)
from ..dynamics.flow import vector_field
from ..dynamics.trajectory import status_code
from ..losses import AbstractMarginLoss, PolynomialTail
from ..metrics.separable import SeparableMetrics
from ..models.deep_linear import DeepLinear
from ..models.linear import Linear
from ..models.two_layer_relu import TwoLayerReLU
from ..objective import Objective

TABLE_TIMES = (1e1, 1e3, 1e6, 1e9)
"""The times at which the table reports the fraction of the probe set predicted positive."""

LOSSES = ("logistic", "polynomial")
MODELS = ("linear", "deep_linear", "mlp")
"""Loss and model names a config may use."""

RECORDED = ("direction_cosine", "direction_angle", "normalized_margin", "norm",
            "probe_positive", "class_loss", "class_accuracy", "loss")


class LogisticOrPolynomial(AbstractMarginLoss):
    """The logistic loss (`polynomial` = 0) or the polynomially tailed loss with exponent
    `alpha` (`polynomial` = 1), chosen by an array leaf so that both share one compilation."""

    polynomial: jax.Array
    alpha: jax.Array

    def __init__(self, polynomial, alpha=1.0):
        self.polynomial = jnp.asarray(polynomial, dtype=jnp.result_type(float))
        self.alpha = jnp.asarray(alpha, dtype=jnp.result_type(float))

    def of_margin(self, m):
        return jnp.where(self.polynomial > 0, PolynomialTail(self.alpha).of_margin(m),
                         jnp.logaddexp(0.0, -m))


@dataclasses.dataclass(frozen=True)
class ImportanceConfig:
    log2_weights: tuple[float, ...] = tuple(range(-8, 9, 2))
    l2s: tuple[float, ...] = (0.0, 1e-4, 1e-2)
    models: tuple[str, ...] = MODELS
    losses: tuple[str, ...] = LOSSES
    alpha: float = 1.0
    seeds: tuple[int, ...] = (0, 1, 2)
    num_positive: int = 20
    num_negative: int = 20
    separation: float = 3.0
    rotation: float = 0.5
    spread: float = 1.0
    gap: float = 0.5
    num_probe: int = 500
    depth: int = 2
    width: int = 8
    mlp_width: int = 16
    init_scale: float = 0.3
    log10_t0: float = -2.0
    log10_t1: float = 12.0
    saves_per_decade: int = 4
    max_steps: int = 4_000
    snapshot_times: tuple[float, ...] = (1e-1, 1e1, 1e3, 1e6, 1e12)
    grid_extent: float = 4.5
    grid_resolution: int = 41

    def __post_init__(self):
        if len(self.log2_weights) < 1 or len(self.seeds) < 1 or len(self.l2s) < 1:
            raise ValueError("`log2_weights`, `seeds` and `l2s` need at least one value each.")
        for field, names, allowed in (("models", self.models, MODELS),
                                      ("losses", self.losses, LOSSES)):
            for name in names:
                if name not in allowed:
                    raise ValueError(f"`{field}` entry {name!r} is not allowed: expected one "
                                     f"of {', '.join(allowed)}.")
        if any(lam < 0 for lam in self.l2s):
            raise ValueError(f"`l2s` = {self.l2s} is not allowed: expected values >= 0.")

    @property
    def save_times(self) -> np.ndarray:
        """0, then log-spaced times from 10^log10_t0 to 10^log10_t1."""
        decades = self.log10_t1 - self.log10_t0
        num = int(round(decades * self.saves_per_decade)) + 1
        return np.concatenate([[0.0], np.logspace(self.log10_t0, self.log10_t1, num)])


QUICK = ImportanceConfig(models=("linear", "mlp"), l2s=(0.0, 1e-2), seeds=(0,),
                         num_positive=10, num_negative=10,
                         num_probe=200, saves_per_decade=2, grid_resolution=31,
                         max_steps=1500)
"""A small setting for a fast check: the 9 weights, both losses, lambda in {0, 1e-2}, one
seed, the linear model and the MLP (the deep linear model's implicit solve compiles slowly)."""

# (solver, rtol, atol, rest_tol) per model: see the module's docstring.
SOLVERS = {"linear": (diffrax.Kvaerno5(), 1e-6, 1e-9, 1e-8),
           "deep_linear": (diffrax.Kvaerno5(), 1e-6, 1e-9, 1e-8),
           "mlp": (diffrax.Tsit5(), 1e-4, 1e-7, 1e-2)}


def _model(name: str, config: ImportanceConfig, key):
    p = 3  # (x1, x2, 1)
    if name == "linear":
        # From zero, the usual start for logistic regression: seeds then vary only the data.
        return Linear(p)
    if name == "deep_linear":
        return DeepLinear(1, config.width, config.depth, in_features=p,
                          init_scale=config.init_scale, key=key)
    return TwoLayerReLU(p, config.mlp_width, init_scale=config.init_scale, key=key,
                        hidden_bias=False)


def problem_data(config: ImportanceConfig, seed: int):
    """The training set, the held-out probe set and the augmented SVM of one seed."""
    train_key, probe_key = jax.random.split(jax.random.key(seed))
    blobs = dict(separation=config.separation, rotation=config.rotation, spread=config.spread,
                 gap=config.gap)
    X, y = gaussian_blobs(train_key, config.num_positive, config.num_negative, **blobs)
    probe, _ = gaussian_blobs(probe_key, config.num_probe, config.num_probe, **blobs)
    svm = max_margin(augment_bias(X), y)
    return X, y, probe, svm


def _norm(tree):
    return jnp.sqrt(sum(jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(tree)))


@eqx.filter_jit
@eqx.debug.assert_max_traces(max_traces=None)  # counts compilations; tests read the count
def _flow(params, static, objectives, metrics, ts, solver, controller, max_steps, rest_tol):
    """The batched long-horizon flow: params, objectives and metrics carry a leading batch
    axis. Returns (recorded metrics, parameter history, final parameters, stats)."""

    def one(params, objective, metric):
        model_of = lambda p: eqx.combine(p, static)  # noqa: E731
        record = lambda t, p, obj: (metric(model_of(p), obj), p)  # noqa: E731
        field = vector_field(model_of(params), objective)

        def at_rest(t, y, args, **kwargs):
            return (args.l2 > 0) & (_norm(field(t, y, args)) <= rest_tol * args.l2)

        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(field), solver, t0=ts[0], t1=ts[-1], dt0=None, y0=params,
            args=objective, stepsize_controller=controller, max_steps=max_steps, throw=False,
            saveat=diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=ts, fn=record),
                                        diffrax.SubSaveAt(t1=True)]),
            event=diffrax.Event(at_rest),
        )
        (recorded, history), final = sol.ys
        t_end = sol.ts[1]
        final = jax.tree.map(lambda x: x[-1], final)
        # Saves after the run came to rest repeat its state at rest.
        after = ts > t_end[-1]
        at_end = record(t_end[-1], final, objective)
        fill = lambda saved, last: jnp.where(  # noqa: E731
            jnp.reshape(after, after.shape + (1,) * (saved.ndim - 1)), last[None], saved)
        rested = sol.result == diffrax.RESULTS.event_occurred
        recorded, history = jax.tree.map(
            lambda saved, last: jnp.where(rested, fill(saved, last), saved),
            (recorded, history), at_end)
        stats = {
            "num_steps": sol.stats["num_steps"],
            "stop_time": t_end[-1],
            "status": status_code(
                sol.result == diffrax.RESULTS.max_steps_reached,
                (sol.result != diffrax.RESULTS.successful) & ~rested
                & (sol.result != diffrax.RESULTS.max_steps_reached), final),
        }
        return recorded, history, stats

    return eqx.filter_vmap(one)(params, objectives, metrics)


def _stack(trees):
    return jax.tree.map(lambda *x: jnp.stack(x), *trees)


def _run_model(config: ImportanceConfig, model_name: str, data, ts):
    """All losses x weights x lambdas x seeds of one model in one compiled call."""
    params, objectives, metrics = [], [], []
    static = None
    for loss_name in config.losses:
        loss = LogisticOrPolynomial(loss_name == "polynomial", config.alpha)
        for k in config.log2_weights:
            for lam in config.l2s:
                for seed in config.seeds:
                    X, y, probe, svm = data[seed]
                    model = _model(model_name, config, jax.random.key(1000 + seed))
                    p, static = eqx.partition(model, eqx.is_inexact_array)
                    params.append(p)
                    q = importance_weights(y, 2.0**k)
                    objectives.append(Objective(y, loss, example_weights=q,
                                                inputs=augment_bias(X), l2=lam))
                    metrics.append(SeparableMetrics(augment_bias(probe), svm.direction))
    solver, rtol, atol, rest_tol = SOLVERS[model_name]
    controller = diffrax.PIDController(rtol=rtol, atol=atol)
    (recorded, history, stats), compile_s, run_s = timed_call(
        _flow, _stack(params), static, _stack(objectives), _stack(metrics), jnp.asarray(ts),
        solver, controller, config.max_steps, rest_tol)
    shape = (len(config.losses), len(config.log2_weights), len(config.l2s), len(config.seeds))
    reshape = lambda x: np.asarray(x).reshape(shape + np.shape(x)[1:])  # noqa: E731
    recorded = {("objective" if name == "loss" else name): reshape(recorded[name])
                for name in RECORDED}
    stats = {name: reshape(value) for name, value in stats.items()}
    history = eqx.combine(jax.tree.map(reshape, history), static)
    return recorded, stats, history, (compile_s, run_s)


def _grid_snapshots(config, history, ts):
    """f on the 2-D grid at the snapshot times for seed 0:
    (loss, weight, lambda, snapshot, gy, gx)."""
    grid = augment_bias(probe_grid(config.grid_extent, config.grid_resolution))
    index = np.asarray([int(np.argmin(np.abs(ts - t))) for t in config.snapshot_times])
    r = config.grid_resolution

    def outputs(model):
        return jnp.reshape(model(grid), (r, r))

    snaps = jax.tree.map(lambda x: jnp.asarray(x[:, :, :, 0][:, :, :, index]), history)
    return np.asarray(jax.vmap(jax.vmap(jax.vmap(jax.vmap(outputs))))(snaps),
                      dtype=np.float32)


def run_importance(config: ImportanceConfig = ImportanceConfig(),
                   on_model: Callable[[str, float, float], None] | None = None) -> xr.Dataset:
    """Runs every model of `config` over all losses, weights, lambdas and seeds.

    **Returns:** a dataset over (model, loss, log2_weight, l2, seed, time, cls) with the
    recorded metrics (`direction_angle`, `direction_cosine`, `direction_error` = 1 - cos,
    `normalized_margin`, `norm`, `probe_positive`, `class_loss`, `class_accuracy`, and the
    objective's value `objective`), per run the solver's `num_steps`, `status` (0 ok, 1
    max_steps, 2 nonfinite, 3 failed) and `stop_time` (the time it came to rest, or t1),
    `compile_seconds` and `run_seconds` per model (one compiled call), the decision values
    `grid_outputs` on a 2-D grid at the `snapshot` times for seed 0, and seed 0's training
    data and augmented SVM direction (`svm_direction` over `feature` = x1, x2, bias).
    """
    ts = config.save_times
    data = {seed: problem_data(config, seed) for seed in config.seeds}
    dims = ("loss", "log2_weight", "l2", "seed")
    by_model = []
    for model_name in config.models:
        recorded, stats, history, (compile_s, run_s) = _run_model(config, model_name, data, ts)
        variables = {name: (dims + ("time",) + (("cls",) if value.ndim == 6 else ()), value)
                     for name, value in recorded.items()}
        variables.update({name: (dims, value) for name, value in stats.items()})
        variables["grid_outputs"] = (("loss", "log2_weight", "l2", "snapshot", "gy", "gx"),
                                     _grid_snapshots(config, history, ts))
        variables["compile_seconds"] = ((), compile_s)
        variables["run_seconds"] = ((), run_s)
        by_model.append(xr.Dataset(variables))
        if on_model is not None:
            on_model(model_name, compile_s, run_s)
    ds = xr.concat(by_model, dim="model")
    X, y, _, svm = data[config.seeds[0]]
    gx, gy = grid_axes(config.grid_extent, config.grid_resolution)
    ds = ds.assign(direction_error=1.0 - ds.direction_cosine,
                   inputs=(("example", "input"), np.asarray(X)),
                   labels=(("example",), np.asarray(y)),
                   svm_direction=(("feature",), svm.direction))
    ds = ds.assign_coords(model=list(config.models), loss=list(config.losses),
                          log2_weight=np.asarray(config.log2_weights, dtype=float),
                          l2=np.asarray(config.l2s, dtype=float), seed=list(config.seeds),
                          time=ts, cls=["negative", "positive"],
                          snapshot=np.asarray(config.snapshot_times, dtype=float), gx=gx, gy=gy,
                          feature=["x1", "x2", "bias"])
    return ds


def fraction_table(ds: xr.Dataset, times=TABLE_TIMES, l2: float = 0.0) -> list[dict]:
    """The fraction of the probe set predicted positive at `times`, per model, loss and
    weight, averaged over seeds, at L2 strength `l2`."""
    index = [int(np.argmin(np.abs(ds.time.values - t))) for t in times]
    rows = []
    for model in ds.model.values:
        for loss in ds.loss.values:
            for k in ds.log2_weight.values:
                run = ds.sel(model=model, loss=loss, log2_weight=k, l2=l2)
                values = run.probe_positive.mean("seed").values[index]
                row = {"model": str(model), "loss": str(loss), "l2": float(l2),
                       "log2_weight": float(k)}
                row.update({f"t={t:.0e}": float(v) for t, v in zip(times, values, strict=True)})
                rows.append(row)
    return rows


# --- figures -------------------------------------------------------------------------------

def boundaries_figure(ds: xr.Dataset, l2: float = 0.0, loss: str = "logistic",
                      log2_weights=None, models=("linear", "mlp")):
    """Figure F4: decision boundaries f = 0 of seed 0 at the snapshot times, one color per
    weight (the SVM's boundary dashed), and the fraction of the probe set predicted positive
    against time, one row per model."""
    import matplotlib.pyplot as plt

    models = [m for m in models if m in ds.model.values]
    weights = ds.log2_weight.values if log2_weights is None else np.asarray(log2_weights)
    colors = plt.cm.coolwarm(np.linspace(0.0, 1.0, len(weights)))
    snaps = ds.snapshot.values
    fig, axes = plt.subplots(len(models), len(snaps) + 1, squeeze=False, layout="constrained",
                             figsize=(2.7 * (len(snaps) + 1) + 1.0, 2.7 * len(models)))
    X, y = ds.inputs.values, ds.labels.values
    w_svm = ds.svm_direction.values
    xs = np.array([ds.gx.values[0], ds.gx.values[-1]])
    for row, model in enumerate(models):
        run = ds.sel(model=model, loss=loss, l2=l2)
        for col, t in enumerate(snaps):
            ax = axes[row, col]
            ax.scatter(*X[y > 0].T, s=8, color="tab:red")
            ax.scatter(*X[y < 0].T, s=8, color="tab:blue")
            ax.plot(xs, -(w_svm[0] * xs + w_svm[2]) / w_svm[1], "k--", lw=1)
            for color, k in zip(colors, weights, strict=True):
                values = run.grid_outputs.sel(log2_weight=k, snapshot=t).values
                if values.min() < 0 < values.max():
                    ax.contour(ds.gx.values, ds.gy.values, values, levels=[0.0],
                               colors=[color], linewidths=1.2)
            ax.set(xlim=xs, ylim=(ds.gy.values[0], ds.gy.values[-1]), xticks=[], yticks=[],
                   title=f"{model}, t = {t:.0e}")
        ax = axes[row, -1]
        t = ds.time.values[1:]
        for color, k in zip(colors, weights, strict=True):
            frac = run.probe_positive.sel(log2_weight=k).mean("seed").values[1:]
            ax.semilogx(t, frac, color=color, label=f"{k:+g}")
        ax.set(ylim=(0, 1), xlabel="time t", ylabel="fraction predicted positive",
               title=f"{loss}, lambda = {l2:g}")
    axes[0, -1].legend(title="log2 weight", fontsize=6, title_fontsize=7, ncol=2)
    return fig


def direction_error_figure(ds: xr.Dataset, loss: str = "logistic",
                           models=("linear", "deep_linear")):
    """Figure F5: the angle to the max-margin direction against time, log-log, one color per
    weight and one line style per lambda, with a 1/log t reference."""
    import matplotlib.pyplot as plt

    models = [m for m in models if m in ds.model.values]
    weights = ds.log2_weight.values
    colors = plt.cm.coolwarm(np.linspace(0.0, 1.0, len(weights)))
    styles = ["-", "--", ":", "-."]
    fig, axes = plt.subplots(1, len(models), squeeze=False, layout="constrained",
                             figsize=(4.8 * len(models), 3.8), sharey=True)
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
        ax.set(xlabel="time t", title=f"{model}, {loss} loss")
        ax.legend(fontsize=7, loc="lower left")
    axes[0, 0].set_ylabel("angle to the SVM direction (rad)")
    return fig


# --- command -------------------------------------------------------------------------------

def command(
    out: Annotated[Path, typer.Option(help="Folder for the results.")] = Path("ssm-jax-out"),
    quick: Annotated[bool, typer.Option(help="Fewer lambdas, one seed, smaller data.")] = False,
):
    """Importance weights 2^-8..2^8 on separable 2-D data: linear, deep linear and MLP,
    logistic and polynomial loss, lambda in {0, 1e-4, 1e-2}; the weights' effect fades
    unless the model is regularized or the loss has a polynomial tail."""
    import matplotlib

    matplotlib.use("Agg")
    from rich.console import Console
    from rich.table import Table

    from ..plots import save
    from ..results import write_csv, write_netcdf

    # Direction errors reach 1e-4 by t = 1e12, near float32's resolution of a cosine.
    jax.config.update("jax_enable_x64", True)
    console = Console()
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} exists and is not a folder.", param_hint="--out")
    out.mkdir(parents=True, exist_ok=True)
    config = QUICK if quick else ImportanceConfig()
    start = time.perf_counter()
    with console.status("gradient flows") as status:
        ds = run_importance(config, on_model=lambda name, compile_s, run_s: status.update(
            f"done: {name} (compile {compile_s:.1f} s, run {run_s:.1f} s)"))
    for l2 in sorted({0.0, max(config.l2s)}):
        rows = fraction_table(ds, l2=l2)
        table = Table(title=f"Fraction of the probe set predicted positive, lambda = {l2:g} "
                            f"(mean over {len(config.seeds)} seed(s))",
                      caption="-: the run stopped (max_steps) before this time")
        for name in rows[0]:
            if name != "l2":
                table.add_column(name, justify="left" if name in ("model", "loss") else "right")
        for r in rows:
            table.add_row(r["model"], r["loss"], f"{r['log2_weight']:+g}",
                          *[f"{v:.3f}" if np.isfinite(v) else "-"
                            for v in (r[f"t={t:.0e}"] for t in TABLE_TIMES)])
        console.print(table)
    runs = int(ds.num_steps.size)
    console.print(f"{runs} gradient flows to t = {ds.time.values[-1]:.0e} in "
                  f"{time.perf_counter() - start:.1f} s; steps per run: median "
                  f"{int(np.median(ds.num_steps)):d}, max {int(ds.num_steps.max()):d}; "
                  f"{int((ds.status != 0).sum())} runs not ok (status max_steps: MLP with "
                  "lambda > 0 that did not come to rest).")
    save(boundaries_figure(ds), out / "F4_importance_boundaries.png", dpi=100)
    save(direction_error_figure(ds), out / "F5_direction_error.png", dpi=100)
    table_rows = [r for l2 in config.l2s for r in fraction_table(ds, l2=l2)]
    write_csv(table_rows, out / "importance_fractions.csv")
    write_netcdf(ds, out / "importance.nc", config=dataclasses.asdict(config))
    for name, what in {
        "F4_importance_boundaries.png": "figure F4: decision boundaries over time per weight, "
                                        "fraction predicted positive vs t",
        "F5_direction_error.png": "figure F5: angle to the SVM direction vs t, with and "
                                  "without L2",
        "importance_fractions.csv": "fraction predicted positive at t = 1e1, 1e3, 1e6, 1e9, "
                                    "every lambda",
        "importance.nc": "all recorded metrics, solver steps and boundary snapshots (netCDF)",
    }.items():
        console.print(f"wrote {out / name}: {what}")
