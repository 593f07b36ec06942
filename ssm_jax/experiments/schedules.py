"""When to re-weight: the early-stopping map (figure F8).

For the UFM (square loss and cross-entropy) and the class-level SSM at a step imbalance, over
several imbalance ratios R, the balanced (per-class mean) training accuracy and the
majority-minority accuracy gap over log-spaced times, for:

- ERM, and re-weighting omega_c ~ n_c^-gamma at gamma = 1 and 1/2 (at 1/2 the UFM's class
  rates omega_c sqrt(n_c) / n are equal);
- deferred re-weighting (Cao et al. 2019): ERM switched to gamma = 1 at t_s = f t_maj, f in
  `switch_fractions`, t_maj the majority's closed-form ERM learning time (square-loss UFM);
- the adjusted losses where they apply (class losses: the cross-entropy UFM): logit
  adjustment (Menon et al. 2021), VS (Kini et al. 2021), LDAM (Cao et al. 2019).

A method *beats ERM* at t where its balanced accuracy exceeds ERM's by more than `threshold`;
its *window* is the first interval of saves where it does, and its *gain* the largest
excess over all saves. Each model runs as one `sweep` over (ratio, weighting), the
coordinate `weighting` naming the method (not `method`, which `Dataset.sel` takes as a
keyword): every weighting is a `SwitchedWeights` (ERM as ones to ones, re-weighting as w to
w), the cross-entropy losses one `AdjustedCrossEntropy`, so all methods of a model share one
compilation.

Closed forms: from a class-aligned start the square-loss UFM's class outputs follow
`analytic.ufm_class_output` exactly, piecewise across a switch (each class's output obeys an
autonomous ODE), and the SSM's modes `analytic.mode_strength`: so the time each class is
*learned* (progress 1/2) and the window of the balanced learned fraction are predicted. From
a small random start they are the typical start's prediction (its effective initial output);
for the cross-entropy there is none. The SSM fits a re-weighted target, fixed in time
(`TargetFit`): it has no deferred method here.
"""

import dataclasses

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float
import numpy as np
import xarray as xr

from .. import _validate, analytic
from ..data.imbalance import StepImbalance, class_label_matrix, class_weights
from ..dynamics.flow import Flow
from ..losses import LDAM, AbstractAdjustedCrossEntropy, LogitAdjusted, VSLoss
from ..losses._base import per_class
from ..models import SSM, UFM
from ..objective import Objective, TargetFit
from ..results import cf_attributes
from ..schedules import SwitchedWeights
from ..sweeps.grid import Grid
from ..sweeps.problems import expected_init_strength
from ..sweeps.registry import RUNS, run_named
from ..sweeps.run import sweep
from .windows import SOURCES, windows

MODELS = tuple(RUNS)


class AdjustedCrossEntropy(AbstractAdjustedCrossEntropy):
    """-log softmax(s (Delta z + iota - m_y e_y))_y: cross-entropy, logit adjustment, VS and
    LDAM in one structure, so that they share one compilation (as the `from_counts`
    constructors of `losses` set them: `of(loss)`)."""

    delta: Float[Array, " k"] = per_class()
    iota: Float[Array, " k"] = per_class()
    margins: Float[Array, " k"] = per_class()
    scale: Float[Array, ""]

    def __init__(self, delta, iota, margins, scale):
        self.delta, self.iota, self.margins = (jnp.asarray(x, dtype=jnp.result_type(float))
                                               for x in (delta, iota, margins))
        self.scale = jnp.asarray(scale, dtype=jnp.result_type(float))

    @classmethod
    def of(cls, loss, num_classes: int) -> "AdjustedCrossEntropy":
        """The same loss as `loss`: None (the cross-entropy), a `LogitAdjusted`, `VSLoss` or
        `LDAM`."""
        ones, zeros = jnp.ones(num_classes), jnp.zeros(num_classes)
        if isinstance(loss, LogitAdjusted):
            return cls(ones, loss.tau * jnp.log(loss.priors), zeros, 1.0)
        if isinstance(loss, VSLoss):
            return cls(loss.delta, loss.iota, zeros, 1.0)
        if isinstance(loss, LDAM):
            return cls(ones, zeros, loss.margins, loss.scale)
        return cls(ones, zeros, zeros, 1.0)

    def adjusted_logits(self, outputs, labels):
        onehot = jnp.where(labels[:, None] == jnp.arange(outputs.shape[-1]), 1.0, 0.0)
        return self.scale * (self.delta * outputs + self.iota - onehot * self.margins)


@dataclasses.dataclass(frozen=True)
class SchedulesConfig:
    """The early-stopping map's setting.

    - `models`: of "ufm_square", "ufm_ce", "ssm" (`registry.RUNS`).
    - `ratios`: imbalance ratios R; `num_classes`, `minority_size`, `majority_fraction`: the
      rest of the `StepImbalance`.
    - `switch_fractions`: deferred re-weighting switches at f t_maj.
    - `dim`, `init_scale`, `aligned`: the width, the random start's scale sigma, or (aligned)
      the class-aligned start with the random start's effective initial output.
    - `la_tau`, `vs_gamma`, `vs_tau`, `ldam_margin`, `ldam_scale`: the adjusted losses.
    - `log10_t0`, `log10_t1`, `saves_per_decade`: the log-spaced save times (0 first).
    - `threshold`: the excess of balanced accuracy over ERM's that counts as beating it.
    """

    models: tuple[str, ...] = MODELS
    ratios: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
    num_classes: int = 4
    minority_size: int = 10
    majority_fraction: float = 0.5
    switch_fractions: tuple[float, ...] = (0.5, 1.0, 2.0)
    dim: int = 16
    init_scale: float = 1e-3
    aligned: bool = False
    la_tau: float = 1.0
    vs_gamma: float = 0.2
    vs_tau: float = 1.0
    ldam_margin: float = 0.5
    ldam_scale: float = 1.0
    log10_t0: float = 0.0
    log10_t1: float = 4.0
    saves_per_decade: int = 10
    threshold: float = 0.02

    def __post_init__(self):
        _validate.axis("models", self.models, MODELS)
        for name in ("ratios", "switch_fractions"):
            _validate.axis(name, getattr(self, name))
        _validate.number("ratios", self.ratios, low=1.0)
        _validate.number("switch_fractions", self.switch_fractions, low=0.0, low_open=True)
        StepImbalance(self.num_classes, max(self.ratios), self.minority_size,
                      self.majority_fraction)
        _validate.integer("saves_per_decade", self.saves_per_decade, minimum=1)
        _validate.integer("dim", self.dim, minimum=self.num_classes)  # the aligned start
        for name in ("init_scale", "ldam_scale"):
            _validate.number(name, getattr(self, name), low=0.0, low_open=True)
        for name in ("vs_gamma", "ldam_margin"):
            _validate.number(name, getattr(self, name), low=0.0)
        _validate.number("threshold", self.threshold, low=0.0, high=1.0)
        _validate.number("log10_t1", self.log10_t1, low=self.log10_t0, low_open=True)

    @property
    def save_times(self) -> np.ndarray:
        """0, then log-spaced times from 10^log10_t0 to 10^log10_t1."""
        num = int(round((self.log10_t1 - self.log10_t0) * self.saves_per_decade)) + 1
        return np.concatenate([[0.0], np.logspace(self.log10_t0, self.log10_t1, num)])

    def methods(self, model: str) -> tuple[str, ...]:
        """The methods that apply to `model`, in the dataset's order."""
        kind, loss = run_named(model)
        names = ["ERM", "reweight 1", "reweight 1/2"]
        if not kind.fits_target:  # a target fixed in time has no switch
            names += [f"deferred {f:g}" for f in self.switch_fractions]
        if not _square(loss, self.num_classes):  # the adjusted cross-entropies
            names += ["logit adjusted", "VS", "LDAM"]
        return tuple(names)


def _square(loss, num_classes: int) -> bool:
    """Whether `loss` is the square loss, under which the closed forms hold."""
    return loss.square_targets(num_classes) is not None


QUICK = SchedulesConfig(ratios=(4.0, 16.0), switch_fractions=(1.0,), saves_per_decade=5)
"""A fast check: two ratios, one switch time, coarser saves."""


def _counts(config: SchedulesConfig, ratio) -> np.ndarray:
    return StepImbalance(config.num_classes, float(ratio), config.minority_size,
                         config.majority_fraction).counts


def init_output(config: SchedulesConfig, counts) -> np.ndarray:
    """z0 per class: the effective initial correct-class output of the UFM's typical random
    start, d sigma^2 / (2 sqrt(n_c)); the SSM's modes start at a0 = d sigma^2 / 2."""
    return expected_init_strength(config.init_scale, config.dim) / np.sqrt(counts)


def majority_time(config: SchedulesConfig, ratio) -> float:
    """t_maj: the majority's closed-form ERM learning time (square-loss UFM, typical start)."""
    counts = _counts(config, ratio)
    times = analytic.ufm_half_learning_time(counts, np.ones(counts.size),
                                            init_output(config, counts))
    return float(times[0])


def _weights(config, model, method, counts):
    """(before, after, switch time) of `method`."""
    ones = np.ones(counts.size)
    if method.startswith("reweight"):
        w = np.asarray(class_weights(counts, 1.0 if method == "reweight 1" else 0.5))
        return w, w, 0.0
    if method.startswith("deferred"):
        fraction = config.switch_fractions[config.methods(model).index(method) - 3]
        return ones, np.asarray(class_weights(counts, 1.0)), fraction * majority_time(
            config, counts[0] / counts[-1])
    return ones, ones, 0.0


def _loss(config, method, counts):
    k = counts.size
    adjusted = {"logit adjusted": lambda: LogitAdjusted.from_counts(counts, config.la_tau),
                "VS": lambda: VSLoss.from_counts(counts, gamma=config.vs_gamma, tau=config.vs_tau),
                "LDAM": lambda: LDAM.from_counts(counts, config.ldam_margin, config.ldam_scale)}
    return AdjustedCrossEntropy.of(adjusted[method]() if method in adjusted else None, k)


def make_problem(config: SchedulesConfig, model: str, *, ratio, weighting):
    """The (model, objective) of one sweep member: `weighting` indexes `config.methods(model)`.

    **Arguments:**

    - `config`: the setting; `model`: one of its models.
    - `ratio`: R; `weighting`: an index into `config.methods(model)`.

    **Returns:** (model, objective).
    """
    # Settings are numbers: weights and closed forms evaluate now, also under eval_shape.
    with jax.ensure_compile_time_eval():
        return _problem(config, model, float(ratio), config.methods(model)[int(weighting)])


def _problem(config, model, ratio, name):
    spec = StepImbalance(config.num_classes, ratio, config.minority_size,
                         config.majority_fraction)
    counts, n = spec.counts, int(spec.counts.sum())
    key = jax.random.key(0)  # every member starts from the same draw of its size
    kind, loss = run_named(model)
    if kind.fits_target:
        power = {"ERM": 0.0, "reweight 1": 1.0, "reweight 1/2": 0.5}[name]
        target = class_label_matrix(counts, class_weights(counts, power))
        a0 = expected_init_strength(config.init_scale, config.dim)
        net = (SSM.aligned(target, config.dim, a0) if config.aligned
               else SSM(target.shape, config.dim, init_scale=config.init_scale, key=key))
        return net, TargetFit(target, labels=np.arange(counts.size), num_examples=n)
    net = (UFM.aligned(counts, config.dim, init_output(config, counts)) if config.aligned
           else UFM(counts, config.dim, init_scale=config.init_scale, key=key))
    loss = loss if _square(loss, counts.size) else _loss(config, name, counts)
    return net, Objective(spec.labels, loss, class_weights=SwitchedWeights(
        *_weights(config, model, name, counts)))


def _predicted_learned(config, model, name, counts, ts) -> np.ndarray:
    """The closed form's balanced learned fraction at `ts`; NaN where none exists."""
    kind, loss = run_named(model)
    if not _square(loss, counts.size):
        return np.full(ts.shape, np.nan)
    z0 = init_output(config, counts)
    if kind.fits_target:
        power = {"ERM": 0.0, "reweight 1": 1.0, "reweight 1/2": 0.5}[name]
        a0 = expected_init_strength(config.init_scale, config.dim)
        times = np.asarray(analytic.learning_times(counts, power, a0, reading="target"))
    else:
        before, after, t_s = _weights(config, model, name, counts)
        times = np.asarray(analytic.ufm_half_learning_time(counts, before, z0))
        if t_s > 0:  # each class's output runs on from z_c(t_s) with the new rate
            z_s = np.asarray(analytic.ufm_class_output([t_s], counts, before, z0))[0]
            later = t_s + np.asarray(analytic.ufm_half_learning_time(counts, after, z_s))
            times = np.where(z_s >= 0.5, times, later)
    return np.mean(ts[:, None] >= times[None, :], axis=1)


def _metrics(model, objective):
    # The sweep checks members on the objective itself; the flow records on `at(t)`.
    return objective.at(0.0).metrics(model)


def _run_model(config: SchedulesConfig, model: str, on_model) -> xr.Dataset:
    methods = config.methods(model)
    ts = config.save_times
    grid = Grid(ratio=np.asarray(config.ratios, dtype=float), weighting=np.arange(len(methods)))
    result = sweep(lambda **point: make_problem(config, model, **point), grid,
                   dynamics=Flow(ts=ts), metrics=_metrics)
    majority = np.arange(config.num_classes) < round(config.majority_fraction * config.num_classes)
    accuracy = result.class_accuracy
    learned = (result.class_progress >= 0.5).where(result.class_progress.notnull())  # NaN: n/a
    predicted = np.asarray([[_predicted_learned(config, model, name, _counts(config, r), ts)
                             for name in methods] for r in config.ratios])
    compile_s, run_s = (float(result[f"chunk_{x}_seconds"].sum()) for x in ("compile", "run"))
    if on_model is not None:
        on_model(model, compile_s, run_s)
    ds = xr.Dataset({
        "balanced_accuracy": accuracy.mean("cls"),
        "accuracy_gap": (accuracy.isel(cls=np.flatnonzero(majority)).mean("cls")
                         - accuracy.isel(cls=np.flatnonzero(~majority)).mean("cls")),
        "balanced_learned": learned.mean("cls"),
        "predicted_learned": (("ratio", "weighting", "time"), predicted),
        "status": result.status, "num_steps": result.num_steps,
        "compile_seconds": ((), compile_s), "run_seconds": ((), run_s)})
    return ds.assign_coords(weighting=list(methods), time=ts)


ATTRIBUTES = {
    "balanced_accuracy": ("mean over classes of the training accuracy", "1"),
    "accuracy_gap": ("majority minus minority mean training accuracy", "1"),
    "balanced_learned": ("fraction of classes learned (class progress >= 1/2)", "1"),
    "predicted_learned": ("closed-form fraction of classes learned (NaN: no closed form)", "1"),
    "window_start": ("first save at which the method beats ERM by more than the threshold", "1"),
    "window_end": ("first save after window_start at which it no longer does", "1"),
    "best_gain": ("largest excess of the method's reading over ERM's", "1"),
    "ratio": ("imbalance ratio R = n_maj / n_min", "1"),
    "weighting": ("training method: ERM, re-weighting, deferred re-weighting or an adjusted "
                  "loss", None),
    "source": ("reading: measured accuracy, measured learned fraction, or closed form", None),
}


def run_schedules(config: SchedulesConfig = SchedulesConfig(), on_model=None) -> xr.Dataset:
    """Runs every model of `config` over its ratios and methods, one sweep per model.

    **Arguments:**

    - `config`: the setting.
    - `on_model`: called as `on_model(name, compile_seconds, run_seconds)` after each model.

    **Returns:** a dataset over (model, ratio, weighting, time) with `balanced_accuracy`,
    `accuracy_gap`, `balanced_learned`, `predicted_learned`, and per member `status` and
    `num_steps`; the `windows` over `source`; `compile_seconds` and `run_seconds` per model.
    A method that does not apply to a model is NaN there. CF-style attributes throughout.
    """
    parts = [_run_model(config, model, on_model) for model in config.models]
    ds = xr.concat(parts, dim="model", join="outer", fill_value=np.nan)
    methods = [m for model in config.models for m in config.methods(model)]
    ds = ds.assign_coords(model=list(config.models)).reindex(
        {"weighting": list(dict.fromkeys(methods))})
    ds = ds.merge(windows(ds, config.threshold))
    ds.attrs["threshold"] = config.threshold
    num_majority = round(config.majority_fraction * config.num_classes)
    ds.attrs["setting"] = (f"step imbalance k = {config.num_classes} ({num_majority} majority), "
                           f"n_min = {config.minority_size}; d = {config.dim}, "
                           + ("class-aligned start" if config.aligned
                              else f"random start sigma = {config.init_scale:g}")
                           + f"; beats ERM: by > {config.threshold:g}")
    ds = cf_attributes(ds)
    for name, (long_name, units) in ATTRIBUTES.items():
        ds[name].attrs = {"long_name": long_name} | ({} if units is None else {"units": units})
    for name in ("window_start", "window_end"):
        ds[name].attrs["units"] = ds.time.attrs.get("units", "1")
    return ds


def table(ds: xr.Dataset, source: str = "accuracy") -> list[dict]:
    """The early-stopping table: per model, method and ratio, the window in which the method
    beats ERM and its best gain, measured (`source`) and in closed form.

    **Arguments:**

    - `ds`: a dataset from `run_schedules`.
    - `source`: "accuracy" or "learned", the measured reading.

    **Returns:** one dict per (model, method, ratio) other than ERM and those that do not
    apply: "model", "method", "ratio", "start", "end", "gain", "predicted_start",
    "predicted_end" (NaN: never, or no closed form).
    """
    _validate.choice("source", source, SOURCES[:2])
    rows = []
    for model in ds.model.values:
        for method in ds.weighting.values:
            if method == "ERM" or ds.num_steps.sel({"model": model, "weighting": method}
                                                   ).isnull().all():
                continue
            for ratio in ds.ratio.values:
                w = ds.sel({"model": model, "weighting": method, "ratio": ratio})
                measured, closed = w.sel(source=source), w.sel(source="closed_form")
                rows.append({"model": str(model), "method": str(method), "ratio": float(ratio),
                             "start": float(measured.window_start),
                             "end": float(measured.window_end),
                             "gain": float(measured.best_gain),
                             "predicted_start": float(closed.window_start),
                             "predicted_end": float(closed.window_end)})
    return rows
