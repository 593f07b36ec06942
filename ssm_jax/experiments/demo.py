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

from .. import analytic, losses
from ..data.imbalance import StepImbalance, class_weights, label_matrix
from ..dynamics.flow import gradient_flow
from ..models import SSM, UFM
from ..objective import Objective, TargetFit
from ..results import trajectory_dataset

RUNS = (("SSM", "square"), ("UFM", "square"), ("UFM", "cross_entropy"))
"""(model, loss) pairs: the SSM fits the re-weighted label matrix, the UFM weights its loss."""


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """The demo's setting: a `StepImbalance` (num_classes, ratio, minority_size,
    majority_fraction), the weight powers gamma, the models' width `dim` and initial scale,
    the flow's final time and number of saves, and the seed of the Gaussian starts."""

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

    @property
    def imbalance(self) -> StepImbalance:
        return StepImbalance(self.num_classes, self.ratio, self.minority_size,
                             self.majority_fraction)


def _problem(config: DemoConfig, model_name: str, loss_name: str, power: float):
    counts = config.imbalance.counts
    weights = class_weights(counts, power)
    key = jax.random.key(config.seed)
    if model_name == "SSM":
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
    objective = Objective(config.imbalance.labels, getattr(losses, loss_name),
                          class_weights=weights)
    if loss_name != "square":  # no closed form for cross-entropy
        return model, objective, jnp.full(counts.size, jnp.nan), None
    z0 = analytic.effective_init_output(model.W, model.H, counts)
    predicted = analytic.ufm_half_learning_time(counts, weights, z0)
    return model, objective, predicted, None


def run_demo(config: DemoConfig = DemoConfig(),
             on_run: Callable[[str], None] | None = None) -> xr.Dataset:
    """Runs every (model, loss) of `RUNS` for every power and stacks them along `run`.

    **Arguments:**

    - `config`: the demo's settings.
    - `on_run`: called with a run's name ("SSM square gamma=1", say) after each run.

    **Returns:** a dataset over (run, time, cls, mode) with the recorded metrics, measured and
    predicted learning times, solver statistics and, for the SSM, the closed-form mode
    strengths `analytic_mode_strength` (mode i is class i); `run` carries `model`, `loss` and
    `power`.
    """
    runs = []
    for model_name, loss_name in RUNS:
        for power in config.powers:
            model, objective, predicted, curves = _problem(config, model_name, loss_name,
                                                           power)
            traj = gradient_flow(model, objective, config.t1, num_saves=config.num_saves)
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
    # Majority classes by position, so that R = 1 still has two (equal) groups.
    return ds.assign_coords(cls=np.arange(spec.num_classes), count=("cls", spec.counts),
                            majority=("cls", np.arange(spec.num_classes) < spec.num_majority))


def learning_time_table(ds: xr.Dataset) -> list[dict]:
    """Mean majority and minority learning times per run, measured and predicted.

    **Arguments:**

    - `ds`: a dataset from `run_demo`.

    **Returns:** one dict per run: "model", "loss", "power", and for "measured" and
    "predicted" the "..._majority" and "..._minority" times and their "..._ratio" (NaN where
    there is no closed form).
    """
    rows = []
    majority = ds["majority"].values
    for i in range(ds.sizes["run"]):
        run = ds.isel(run=i)
        row = {"model": str(run.model.values), "loss": str(run.loss.values),
               "power": float(run.power.values)}
        for source, name in (("measured", "learning_time"),
                             ("predicted", "predicted_learning_time")):
            times = run[name].values
            t_maj, t_min = np.mean(times[majority]), np.mean(times[~majority])
            row[f"{source}_majority"] = t_maj
            row[f"{source}_minority"] = t_min
            row[f"{source}_ratio"] = t_min / t_maj
        rows.append(row)
    return rows
