"""The demo: ERM vs re-weighting under a 10:1 step imbalance, for the SSM (target
re-weighting) and the UFM (loss re-weighting, square and cross-entropy loss), with the
closed-form predictions beside the measured learning times.

Every run starts from the same small random initialization; the closed forms use its
effective initial strength (`analytic.effective_init_strength`), so predicted and measured
learning times can be compared class by class.
"""

from collections.abc import Callable
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import _validate, analytic
from ..data.imbalance import StepImbalance, class_weights, label_matrix
from ..dynamics.flow import gradient_flow
from ..models import SSM, UFM
from ..objective import Objective, TargetFit
from ..results import cf_attributes, trajectory_dataset
from ..sweeps.registry import loss_named, model_named

RUNS = (("SSM", "square"), ("UFM", "square"), ("UFM", "cross_entropy"))
"""(model, loss) pairs, as `registry` names them (the model in capitals): the SSM fits the
re-weighted label matrix, the UFM weights its loss."""


SAVE_DECADES = 3.0
"""The saves after t = 0 span t1 / 10^SAVE_DECADES to t1."""


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """The demo's setting: a `StepImbalance` (num_classes, ratio, minority_size,
    majority_fraction), the weight powers gamma, the models' width `dim` and initial scale,
    the flow's final time and number of saves (`save_times`: t = 0, then log-spaced, as the
    figures draw time), and the seed of the Gaussian starts; each checked when the config is
    made."""

    num_classes: int = 10
    ratio: float = 10.0
    minority_size: int = 10
    majority_fraction: float = 0.5
    powers: tuple[float, ...] = (0.0, 0.5, 1.0)
    dim: int = 32
    init_scale: float = 1e-3
    t1: float = 4000.0
    num_saves: int = 200
    seed: int = 0

    def __post_init__(self):
        self.imbalance  # noqa: B018  (StepImbalance checks the counts' settings)
        _validate.axis("powers", self.powers)
        _validate.number("powers", self.powers)
        _validate.integer("dim", self.dim, minimum=1)
        _validate.number("init_scale", self.init_scale, low=0.0, low_open=True)
        _validate.number("t1", self.t1, low=0.0, low_open=True)
        _validate.integer("num_saves", self.num_saves, minimum=2)
        _validate.integer("seed", self.seed, minimum=0)

    @property
    def imbalance(self) -> StepImbalance:
        """The class counts as a `StepImbalance`."""
        return StepImbalance(self.num_classes, self.ratio, self.minority_size,
                             self.majority_fraction)

    @property
    def save_times(self) -> np.ndarray:
        """t = 0, then `num_saves - 1` times log-spaced over the last `SAVE_DECADES` decades
        before t1: F1 and F2 draw time on a log axis, where evenly spaced saves would leave
        the first decades (the start of learning) with a point or two."""
        count = self.num_saves - 1
        powers = np.linspace(-SAVE_DECADES, 0.0, count) if count > 1 else np.zeros(1)
        return np.concatenate([[0.0], self.t1 * 10.0 ** powers])

    @property
    def num_runs(self) -> int:
        """How many gradient flows the demo integrates: every (model, loss) of `RUNS` at every
        power."""
        return len(RUNS) * len(self.powers)


def _problem(config: DemoConfig, model_name: str, loss_name: str, power: float):
    counts = config.imbalance.counts
    weights = class_weights(counts, power)
    key = jax.random.key(config.seed)
    loss = loss_named(loss_name)
    if model_named(model_name.lower()).fits_target:
        target = label_matrix(counts, weights)
        model = SSM(target.shape, config.dim, init_scale=config.init_scale, key=key)
        # One mode per class: the singular vectors of Y Omega^(1/2) are those of Y, with
        # s_c = sqrt(omega_c n_c); at gamma = 1 all s_c are equal and an SVD's basis is arbitrary.
        U, _, V = analytic.class_modes(counts)
        s = jnp.sqrt(weights * counts)
        objective = TargetFit(target, modes=(U, s, V))
        a0 = analytic.effective_init_strength(model.W, model.H, U, V)
        predicted = analytic.half_learning_time(s, a0, int(counts.sum()))
        curves = lambda ts: analytic.mode_strength(ts[:, None], s, a0, int(counts.sum()))  # noqa: E731
        return model, objective, predicted, curves
    model = UFM(counts, config.dim, init_scale=config.init_scale, key=key)
    objective = Objective(config.imbalance.labels, loss, class_weights=weights)
    if loss.square_targets(counts.size) is None:  # no closed form for cross-entropy
        return model, objective, jnp.full(counts.size, jnp.nan), None
    z0 = analytic.effective_init_output(model.W, model.H, counts)
    predicted = analytic.ufm_half_learning_time(counts, weights, z0)
    return model, objective, predicted, None


def run_demo(config: DemoConfig = DemoConfig(),
             on_run: Callable[[str], None] | None = None) -> xr.Dataset:
    """Runs every (model, loss) of `RUNS` for every power.

    **Arguments:**

    - `config`: the demo's settings.
    - `on_run`: called with a run's name ("SSM square gamma=1", say) after each run.

    **Returns:** a dataset over (model, loss, power, time, cls, mode), so that
    `ds.sel(model="UFM", loss="square", power=1.0)` is one run, with the recorded metrics,
    measured and predicted learning times, solver statistics and, for the SSM, the
    closed-form mode strengths `analytic_mode_strength` (mode i is class i). The SSM fits a
    target and has no cross-entropy run: its entries are NaN. The setting (`config` but the
    powers) is in the attributes; every variable has CF-style attributes.
    """
    runs = []
    for model_name, loss_name in RUNS:
        for power in config.powers:
            model, objective, predicted, curves = _problem(config, model_name, loss_name,
                                                           power)
            traj = gradient_flow(model, objective, ts=config.save_times)
            ds = trajectory_dataset(traj)
            ds["predicted_learning_time"] = ("cls", np.asarray(predicted))
            if curves is not None:
                ds["analytic_mode_strength"] = (("time", "mode"), np.asarray(curves(traj.ts)))
            runs.append(ds.expand_dims(run=1).assign_coords(
                model=("run", [model_name]), loss=("run", [loss_name]),
                power=("run", [float(power)])))
            if on_run is not None:
                on_run(f"{model_name} {loss_name} gamma={power:g}")
    spec = config.imbalance
    ds = xr.concat(runs, dim="run", data_vars="all", coords="different",
                   compat="equals", join="outer")
    # One axis per setting; the (model, loss) pairs RUNS leaves out stay NaN.
    ds = ds.set_index(run=["model", "loss", "power"]).unstack("run").reindex(
        model=list(dict.fromkeys(m for m, _ in RUNS)),
        loss=list(dict.fromkeys(loss for _, loss in RUNS)), power=list(config.powers))
    ds = ds.transpose("model", "loss", "power", ...)
    # Majority classes by position, so that R = 1 still has two (equal) groups.
    ds = ds.assign_coords(cls=np.arange(spec.num_classes), mode=np.arange(ds.sizes["mode"]),
                          count=("cls", spec.counts),
                          majority=("cls", np.arange(spec.num_classes) < spec.num_majority))
    setting = {k: v for k, v in dataclasses.asdict(config).items() if k != "powers"}
    return cf_attributes(ds.assign_attrs(setting))


def learning_time_table(ds: xr.Dataset) -> list[dict]:
    """Mean majority and minority learning times per run, measured and predicted, in the
    order of `RUNS` and the powers.

    **Arguments:**

    - `ds`: a dataset from `run_demo`.

    **Returns:** one dict per run: "model", "loss", "power", and for "measured" and
    "predicted" the "..._majority" and "..._minority" times and their "..._ratio" (NaN where
    there is no closed form).
    """
    rows = []
    majority = ds["majority"].values
    for model, loss in RUNS:
        for power in ds.power.values:
            run = ds.sel(model=model, loss=loss, power=power)
            row = {"model": model, "loss": loss, "power": float(power)}
            for source, name in (("measured", "learning_time"),
                                 ("predicted", "predicted_learning_time")):
                times = run[name].values
                t_maj, t_min = np.mean(times[majority]), np.mean(times[~majority])
                row[f"{source}_majority"] = float(t_maj)
                row[f"{source}_minority"] = float(t_min)
                row[f"{source}_ratio"] = float(t_min / t_maj)
            rows.append(row)
    return rows
