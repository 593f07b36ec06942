"""Ready-made problems for sweeps and the command line: a step imbalance with a chosen model,
loss and weighting, every setting a keyword so that any of them can be a grid axis."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate, analytic, losses
from ..data.imbalance import StepImbalance, class_label_matrix, class_weights, label_matrix
from ..models import SSM, UFM, DeepLinear
from ..objective import Objective, TargetFit

MODELS = ("ufm", "ssm", "ssm_class", "deep_ufm")
LOSSES = ("square", "square_centered", "cross_entropy")

SETTINGS: dict[str, tuple[str, str | None]] = {
    "ratio": ("imbalance ratio R = n_maj / n_min", "1"),
    "num_classes": ("number of classes k", "1"),
    "minority_size": ("examples per minority class n_min", "1"),
    "majority_fraction": ("fraction rho of majority classes", "1"),
    "dim": ("width d of the model", "1"),
    "depth": ("number of layers N of the deep linear model", "1"),
    "init_scale": ("initial scale sigma of the parameters", "1"),
    "learning_rate": ("learning rate eta of the optimizer", "1"),
    "momentum": ("momentum of the optimizer", "1"),
}
"""name -> (`long_name`, `units`) of the settings a configured sweep varies, beyond those
`results.VARIABLES` describes (power, seed, l2): the CF-style description of a grid axis."""


def _with_width(model, extra: int):
    """Zero feature dimensions appended to a UFM or SSM: they get zero gradient and stay
    zero, so the padded model runs exactly like the original, and sweeps over `dim` stack."""
    W = jnp.pad(model.W, ((0, 0), (0, extra)))
    H = jnp.pad(model.H, ((0, extra), (0, 0)))
    return eqx.tree_at(lambda m: (m.W, m.H), model, (W, H))


def imbalance_problem(*, model: str = "ufm", loss: str = "square", num_classes: int = 10,
                      ratio: float = 10.0, minority_size: int = 10,
                      majority_fraction: float = 0.5, power: float = 0.0, dim: int = 32,
                      depth: int = 2, init_scale: float = 1e-3, seed: int = 0, l2: float = 0.0,
                      width: int | None = None):
    """A step-imbalance problem.

    **Arguments:**

    - `model`: "ufm" (loss re-weighting), "ssm" (target re-weighting of the k x n label
      matrix), "ssm_class" (the class-level k x k target, cheapest), or "deep_ufm"
      (`DeepLinear` of `depth` layers on free features, loss re-weighting).
    - `loss`: for "ufm"/"deep_ufm": "square", "square_centered" or "cross_entropy"; the SSM
      fits its target in square loss ("square_centered" centers the target; "cross_entropy"
      is refused).
    - `num_classes`, `ratio`, `minority_size`, `majority_fraction`: the `StepImbalance`.
    - `power`: gamma of the class weights omega_c ~ n_c^-gamma.
    - `dim`, `init_scale`, `seed`: the model's width, initial scale sigma and key.
    - `l2`: the L2 strength lambda.
    - `width`: pad UFM/SSM feature dimensions with zeros up to `width` (for sweeps over dim).

    **Returns:** (model, objective).
    """
    _validate.choice("model", model, MODELS)
    _validate.choice("loss", loss, LOSSES)
    if model.startswith("ssm") and loss == "cross_entropy":
        raise ValueError(f"`loss` = {loss!r} is not allowed with `model` = {model!r}: the SSM "
                         "fits its target in square loss; expected 'square' or "
                         "'square_centered'.")
    spec = StepImbalance(int(num_classes), ratio, int(minority_size), majority_fraction)
    counts = spec.counts
    weights = class_weights(counts, power)
    key = jax.random.key(int(seed))
    dim = int(dim)
    if model in ("ssm", "ssm_class"):
        center = loss == "square_centered"
        n = int(counts.sum())
        if model == "ssm":
            target = label_matrix(counts, weights, center=center)
            objective = TargetFit(target, l2=l2)
        else:
            target = class_label_matrix(counts, weights, center=center)
            objective = TargetFit(target, labels=np.arange(counts.size), num_examples=n, l2=l2)
        net = SSM(target.shape, dim, init_scale=init_scale, key=key)
    elif model == "ufm":
        net = UFM(counts, dim, init_scale=init_scale, key=key)
        objective = Objective(spec.labels, getattr(losses, loss), class_weights=weights, l2=l2)
    else:
        net = DeepLinear(counts.size, dim, int(depth), num_examples=int(counts.sum()),
                         init_scale=init_scale, key=key)
        objective = Objective(spec.labels, getattr(losses, loss), class_weights=weights, l2=l2)
    if width is not None and model != "deep_ufm":
        if width < dim:
            raise ValueError(f"`width` = {width} is not allowed: at least `dim` = {dim}.")
        net = _with_width(net, int(width) - dim)
    return net, objective


def expected_init_strength(init_scale: float, dim: int) -> float:
    """E|(w0 + h0)/2|^2 = d sigma^2 / 2: the typical effective initial strength of a mode from
    a Gaussian start (`analytic.effective_init_strength`).

    **Arguments:**

    - `init_scale`: the initial scale sigma.
    - `dim`: the model's width d.

    **Returns:** the strength, a float.
    """
    return dim * init_scale**2 / 2.0


def predicted_ratio(*, model: str = "ufm", num_classes: int = 10, ratio: float = 10.0,
                    minority_size: int = 10, majority_fraction: float = 0.5, power: float = 0.0,
                    dim: int = 32, init_scale: float = 1e-3, **_):
    """The closed-form t_minority / t_majority for the typical start of `imbalance_problem`
    (square loss): the SSM's reading for "ssm"/"ssm_class", the UFM's for "ufm". NaN for
    "deep_ufm": the UFM's closed form holds for two factors only, and none is derived here
    for loss re-weighting at depth N.

    **Arguments:** the settings of `imbalance_problem` that enter the closed form; the others
    are accepted and ignored, so a grid point's settings can be passed whole.

    **Returns:** the ratio, a float.
    """
    if model == "deep_ufm":
        return float("nan")
    counts = StepImbalance(int(num_classes), ratio, int(minority_size), majority_fraction).counts
    a0 = expected_init_strength(init_scale, dim)
    if model.startswith("ssm"):
        return float(analytic.learning_time_ratio(counts, power, a0, reading="target"))
    z0 = a0 / np.sqrt(counts)  # the UFM's correct-class output on each class mode
    return float(analytic.learning_time_ratio(counts, power, z0, reading="loss"))


def predicted_steps(*, t1: float, num_classes: int = 10, ratio: float = 10.0,
                    minority_size: int = 10, majority_fraction: float = 0.5,
                    power: float = 0.0, **_) -> float:
    """A key for ordering sweep members by cost: t1 times the fastest class rate. Near the fit
    an explicit solver's steps are bounded by the stiffest direction, whose rate grows with
    max_c omega_c sqrt(n_c) / n.

    **Arguments:**

    - `t1`: the flow's final time.
    - the step imbalance and `power` of `imbalance_problem`; other settings are ignored.

    **Returns:** the key, a float.
    """
    counts = StepImbalance(int(num_classes), ratio, int(minority_size), majority_fraction).counts
    return float(t1 * jnp.max(analytic.ufm_growth_rates(counts, class_weights(counts, power))))
