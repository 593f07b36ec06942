"""Importance weighting on separable data (Byrd & Lipton 2019; Soudry et al. 2018).

A weight q = 2^k on the positive class (1 on the negative) moves the decision boundary early
in training; on separable data with the logistic loss and no regularization its effect fades
at a 1/log t pace, because the direction converges to the max-margin SVM, which ignores the
weights. L2 regularization (lambda > 0) or a polynomially tailed loss keep it.

Every model acts on the inputs augmented with a constant feature, [x, 1]: a linear model on
them is a linear model with a bias, and every model stays homogeneous in its parameters, so the
limit of a linear predictor is the max-margin direction of the augmented data.

For each model, one compiled call integrates the gradient flow of every weight, lambda, loss
and seed at once, through the sweeps' batching (`run_members` under `Vmap()`) over the
initial parameters, the objectives (which differ in inputs, example weights, lambda and loss,
all array leaves: `LogisticOrPolynomial` picks the loss by a 0/1 leaf) and the metrics (which
hold each seed's probe set and SVM direction).

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
  Newton iteration fails there. It uses Tsit5 at rtol = 1e-4. With lambda > 0 its rest points
  sit on ReLU kinks, where |grad L| stays of order lambda on every side, so `SteadyState`
  never fires there; it stops with `SampledSteadyState` (0 within 1e-2 lambda of the hull of
  gradients sampled across the kinks). Runs still moving at max_steps end with status
  "max_steps" (reported, their later saves NaN: they did not happen). docs/importance.md
  has the measurements.

Each model's batch runs `Flow.run` (the package's one integrator) in lockstep (`Vmap()`, the
sweeps' batching), with a rest event.
"""

from collections.abc import Callable
import dataclasses

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import _validate
from .._timing import timed_call
from ..analytic.separable import max_margin
from ..data.separable import (
    augment_bias,
    gaussian_blobs,
    grid_axes,
    importance_weights,
    probe_grid,
)
from ..dynamics.events import SampledSteadyState, SteadyState
from ..dynamics.flow import Flow
from ..losses import AbstractMarginLoss, PolynomialTail
from ..metrics.separable import SeparableMetrics
from ..models.deep_linear import DeepLinear
from ..models.linear import Linear
from ..models.two_layer_relu import TwoLayerReLU
from ..objective import Objective
from ..results import cf_attributes
from ..sweeps.batching import Vmap
from ..sweeps.batching.memberwise import run_members

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
    """The importance experiment's setting.

    - `log2_weights`, `l2s`, `models`, `losses`, `alpha`, `seeds`: the grid of runs (weight
      2^k on the positive class, L2 strengths, "linear" / "deep_linear" / "mlp", "logistic" /
      "polynomial" with tail exponent `alpha`, data seeds).
    - `num_positive`, `num_negative`, `separation`, `rotation`, `spread`, `gap`: the blobs
      (`data.gaussian_blobs`); `num_probe` held-out points per class.
    - `depth`, `width`, `mlp_width`, `init_scale`: the deep linear model and the ReLU MLP.
    - `log10_t0`, `log10_t1`, `saves_per_decade`, `max_steps`: the log-spaced horizon.
    - `snapshot_times`, `grid_extent`, `grid_resolution`: the decision-boundary snapshots.

    Each setting is checked when the config is made.
    """

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
        _validate.axis("models", self.models, MODELS)
        _validate.axis("losses", self.losses, LOSSES)
        for name in ("log2_weights", "l2s", "seeds", "snapshot_times"):
            _validate.axis(name, getattr(self, name))
        _validate.number("log2_weights", self.log2_weights)
        _validate.number("l2s", self.l2s, low=0.0)
        _validate.number("alpha", self.alpha, low=0.0, low_open=True)
        for name in ("num_positive", "num_negative", "num_probe", "depth", "width",
                     "mlp_width", "saves_per_decade", "max_steps"):
            _validate.integer(name, getattr(self, name), minimum=1)
        _validate.integer("grid_resolution", self.grid_resolution, minimum=2)
        for name in ("spread", "init_scale", "grid_extent"):
            _validate.number(name, getattr(self, name), low=0.0, low_open=True)
        for name in ("separation", "gap"):
            _validate.number(name, getattr(self, name), low=0.0)
        _validate.number("rotation", self.rotation)
        _validate.number("log10_t1", self.log10_t1, low=self.log10_t0, low_open=True)
        _validate.number("snapshot_times", self.snapshot_times, low=0.0, low_open=True,
                         high=10.0**self.log10_t1)

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

# (solver, rtol, atol, rest event, rest_tol) per model: see the module's docstring. The event
# is a class, built per run, so that no array is made at import (before x64 is switched on).
SOLVERS = {"linear": (diffrax.Kvaerno5(), 1e-6, 1e-9, SteadyState, 1e-8),
           "deep_linear": (diffrax.Kvaerno5(), 1e-6, 1e-9, SteadyState, 1e-8),
           "mlp": (diffrax.Tsit5(), 1e-4, 1e-7, SampledSteadyState, 1e-2)}


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
    """The training set, the held-out probe set and the augmented SVM of one seed.

    **Arguments:**

    - `config`: the blobs' sizes and shape.
    - `seed`: the data's seed.

    **Returns:** `(X, y, probe, svm)`: inputs (n, 2), labels +-1 (n,), probe inputs
    (2 num_probe, 2) and the `MaxMargin` of the inputs augmented with a constant feature.
    """
    train_key, probe_key = jax.random.split(jax.random.key(seed))
    blobs = dict(separation=config.separation, rotation=config.rotation, spread=config.spread,
                 gap=config.gap)
    X, y = gaussian_blobs(train_key, config.num_positive, config.num_negative, **blobs)
    probe, _ = gaussian_blobs(probe_key, config.num_probe, config.num_probe, **blobs)
    svm = max_margin(augment_bias(X), y)
    return X, y, probe, svm


def _member(shared, arrays):
    """One run of the batch: its long-horizon flow with the parameters' history."""
    dynamics, (model_static, objective_static, metric_static) = shared
    params, objective, metric = arrays
    return dynamics.run(params, model_static, eqx.combine(objective, objective_static), None,
                        eqx.combine(metric, metric_static), save_params=True)


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
    solver, rtol, atol, rest, rest_tol = SOLVERS[model_name]
    dynamics = Flow(ts=ts, solver=solver,
                    stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
                    max_steps=config.max_steps, event=rest(rest_tol))
    # The batch's arrays (parameters, weights, probes) stacked; the rest shared.
    (objectives, objective_static), (metrics, metric_static) = (
        eqx.partition(_stack(trees), eqx.is_array) for trees in (objectives, metrics))
    shared = (dynamics, (static, objective_static, metric_static))
    with jax.default_matmul_precision(dynamics.precision):
        ((recorded, history), _, stats), compile_s, run_s = timed_call(
            run_members, _member, shared, (_stack(params), objectives, metrics), Vmap())
    shape = (len(config.losses), len(config.log2_weights), len(config.l2s), len(config.seeds))
    reshape = lambda x: np.asarray(x).reshape(shape + np.shape(x)[1:])  # noqa: E731
    recorded = {("objective" if name == "loss" else name): reshape(recorded[name])
                for name in RECORDED}
    stats = {name: reshape(stats[name]) for name in ("num_steps", "stop_time", "status")}
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

    **Arguments:**

    - `config`: the experiment's settings.
    - `on_model`: called as `on_model(name, compile_seconds, run_seconds)` after each model.

    **Returns:** a dataset over (model, loss, log2_weight, l2, seed, time, cls) with the
    recorded metrics (`direction_angle`, `direction_cosine`, `direction_error` = 1 - cos,
    `normalized_margin`, `norm`, `probe_positive`, `class_loss`, `class_accuracy`, and the
    objective's value `objective`), per run the solver's `num_steps`, `status` (0 ok, 1
    max_steps, 2 nonfinite, 3 failed) and `stop_time` (the time it came to rest, or t1),
    `compile_seconds` and `run_seconds` per model (one compiled call), the decision values
    `grid_outputs` on a 2-D grid at the `snapshot` times for seed 0, and seed 0's training
    data and augmented SVM direction (`svm_direction` over `feature` = x1, x2, bias).
    Saves after a run stopped short (status max_steps) are NaN; every variable has CF-style
    attributes.
    """
    ts = config.save_times
    data = {seed: problem_data(config, seed) for seed in config.seeds}
    dims = ("loss", "log2_weight", "l2", "seed")
    by_model = []
    for model_name in config.models:
        recorded, stats, history, (compile_s, run_s) = _run_model(config, model_name, data, ts)
        # The solver leaves the saves after a run stopped short (max_steps) as inf: they did
        # not happen, so NaN.
        variables = {name: (dims + ("time",) + (("cls",) if value.ndim == 6 else ()),
                            np.where(np.isinf(value), np.nan, value))
                     for name, value in recorded.items()}
        variables.update({name: (dims, value) for name, value in stats.items()})
        snapshots = _grid_snapshots(config, history, ts)
        variables["grid_outputs"] = (("loss", "log2_weight", "l2", "snapshot", "gy", "gx"),
                                     np.where(np.isinf(snapshots), np.nan, snapshots))
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
    return cf_attributes(ds)


def fraction_table(ds: xr.Dataset, times=TABLE_TIMES, l2: float = 0.0) -> list[dict]:
    """The fraction of the probe set predicted positive at `times`, per model, loss and
    weight, averaged over seeds, at L2 strength `l2`.

    **Arguments:**

    - `ds`: a dataset from `run_importance`.
    - `times`: the times to report; each reads the nearest save.
    - `l2`: the L2 strength lambda, one of `ds`'s.

    **Returns:** one dict per (model, loss, weight): "model", "loss", "l2", "log2_weight" and
    one "t=..." entry per time (NaN where the run stopped before it).
    """
    index = [int(np.argmin(np.abs(ds.time.values - t))) for t in times]
    rows = []
    for model in ds.model.values:
        for loss in ds.loss.values:
            for k in ds.log2_weight.values:
                run = ds.sel(model=model, loss=loss, log2_weight=k, l2=l2)
                values = run.probe_positive.mean("seed", skipna=False).values[index]
                row = {"model": str(model), "loss": str(loss), "l2": float(l2),
                       "log2_weight": float(k)}
                row.update({f"t={t:.0e}": float(v) for t, v in zip(times, values, strict=True)})
                rows.append(row)
    return rows
