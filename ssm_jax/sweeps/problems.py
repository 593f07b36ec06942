"""Ready-made problems for sweeps and the command line: a step imbalance with a chosen model,
loss and weighting, every setting a keyword so that any of them can be a grid axis."""

from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate, analytic, losses
from ..data.imbalance import (
    StepImbalance,
    class_label_matrix,
    class_weights,
    label_matrix,
    padded_labels,
    step_counts,
)
from ..models import SSM, UFM, DeepLinear
from ..objective import Objective, TargetFit
from .plan import padded_size
from .vectorized import check_ranges

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


STATIC = ("model", "loss", "num_classes", "minority_size", "dim", "depth", "width")
"""Settings of `imbalance_problem` that fix array shapes or the kind of problem: Python values,
never traced, so never an axis of a vectorized sweep."""

RANGES: dict[str, dict] = {
    "ratio": {"low": 1.0},
    "majority_fraction": {"low": 0.0, "high": 1.0, "low_open": True, "high_open": True},
    "power": {},
    "init_scale": {"low": 0.0, "low_open": True},
    "l2": {"low": 0.0},
    "seed": {"integer": True},
}
"""The allowed values of the settings of `imbalance_problem` that may be traced (see
`vectorized.check_ranges`), as its constructors check them one by one."""


def _with_width(model, extra: int):
    """Zero feature dimensions appended to a UFM or SSM: they get zero gradient and stay
    zero, so the padded model runs exactly like the original, and sweeps over `dim` stack."""
    W = jnp.pad(model.W, ((0, 0), (0, extra)))
    H = jnp.pad(model.H, ((0, extra), (0, 0)))
    return eqx.tree_at(lambda m: (m.W, m.H), model, (W, H))


def _static(name: str, value, minimum: int) -> int:
    if not _validate.is_concrete(value):
        raise ValueError(f"`{name}` is traced: it fixes array shapes, so it must be a Python "
                         "int (a fixed setting, not an axis of a vectorized sweep).")
    return _validate.integer(name, int(value) if np.ndim(value) == 0 else value,
                             minimum=minimum)


def _placeholder_counts(num_classes: int, size: int) -> np.ndarray:
    """Counts of `size` examples in all: models and objectives take their shapes from them,
    while the real (possibly traced) counts enter as values."""
    return np.array([size - num_classes + 1] + [1] * (num_classes - 1))


def _label_modes(counts, weights, labels, center: bool):
    """The singular triplets of `label_matrix` from those of the k x k `class_label_matrix`
    B = U S W^T: V = Y^T diag(n_c^-1/2) W, row by row, zero on padding. Cheaper than an SVD of
    the k x n matrix, and a padded target gets the same modes as the unpadded one."""
    U, s, Wt = jnp.linalg.svd(class_label_matrix(counts, weights, center=center))
    per_class = Wt.T / jnp.sqrt(jnp.asarray(counts, s.dtype))[:, None]
    V = jnp.where((labels >= 0)[:, None], per_class[labels], 0.0)
    return U, s, V


def imbalance_problem(*, model: str = "ufm", loss: str = "square", num_classes: int = 10,
                      ratio: float = 10.0, minority_size: int = 10,
                      majority_fraction: float = 0.5, power: float = 0.0, dim: int = 32,
                      depth: int = 2, init_scale: float = 1e-3, seed: int = 0, l2: float = 0.0,
                      width: int | None = None, pad_to: int | None = None):
    """A step-imbalance problem.

    Traceable in every numeric setting (ratio, majority fraction, power, init scale, seed,
    l2), so that a sweep builds all its members under one `vmap`; the settings in `STATIC`
    stay Python values. Concrete settings are checked here; traced ones beforehand, on the
    design's arrays (`check_settings`).

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
    - `pad_to`: build the problem with this many examples, those beyond n padding (zero
      weight, no class, zero features; see `padding`); needed where the ratio or the majority
      fraction is traced, since n depends on them. Ignored by "ssm_class", whose k columns do
      not depend on n.

    **Returns:** (model, objective).
    """
    _validate.choice("model", model, MODELS)
    _validate.choice("loss", loss, LOSSES)
    if model.startswith("ssm") and loss == "cross_entropy":
        raise ValueError(f"`loss` = {loss!r} is not allowed with `model` = {model!r}: the SSM "
                         "fits its target in square loss; expected 'square' or "
                         "'square_centered'.")
    k = _static("num_classes", num_classes, 2)
    minority_size = _static("minority_size", minority_size, 1)
    dim, depth = _static("dim", dim, 1), _static("depth", depth, 1)
    if _validate.is_concrete((ratio, majority_fraction, power, init_scale, seed, l2)):
        counts = StepImbalance(k, ratio, minority_size, majority_fraction).counts
        size = n = int(counts.sum())
        if pad_to is not None and model != "ssm_class":
            size = padded_size([n], _static("pad_to", pad_to, 1))
        seed = int(seed)
    else:
        counts = step_counts(k, ratio, minority_size, majority_fraction)
        if pad_to is None and model != "ssm_class":
            raise ValueError(f"`pad_to` = None is not allowed with traced settings and `model` "
                             f"= {model!r}: the number of examples depends on the ratio, so "
                             "give a bound on it (an int >= every member's n).")
        size = k if model == "ssm_class" else _static("pad_to", pad_to, 1)
    weights = class_weights(counts, power)
    total = jnp.sum(jnp.asarray(counts, dtype=weights.dtype))
    key = jax.random.key(seed)
    valid = (jnp.arange(size) < total).astype(weights.dtype)  # 0 on padding
    if model in ("ssm", "ssm_class"):
        center = loss == "square_centered"
        if model == "ssm":
            labels = padded_labels(counts, size)
            target = label_matrix(counts, weights, center=center, size=size)
            modes = _label_modes(counts, weights, labels, center)
            objective = eqx.tree_at(lambda o: o.labels, TargetFit(
                target, num_examples=total, l2=l2, modes=modes), labels)
            net = SSM(target.shape, dim, init_scale=init_scale, key=key)
            net = eqx.tree_at(lambda m: m.H, net, net.H * valid)
        else:
            target = class_label_matrix(counts, weights, center=center)
            objective = TargetFit(target, labels=np.arange(k), num_examples=total, l2=l2)
            net = SSM(target.shape, dim, init_scale=init_scale, key=key)
    else:
        loss_fn = getattr(losses, loss)
        labels = padded_labels(counts, size, loss_fn.padding_label)
        placeholder = Objective(np.arange(size) % k, loss_fn, class_weights=weights, l2=l2,
                                num_classes=k)
        objective = eqx.tree_at(lambda o: (o.labels, o.example_weights, o.num_examples),
                                placeholder, (labels, valid, total))
        if model == "ufm":
            net = UFM(_placeholder_counts(k, size), dim, init_scale=init_scale, key=key)
            net = eqx.tree_at(lambda m: m.H, net, net.H * valid)
        else:
            net = DeepLinear(k, dim, depth, num_examples=size, init_scale=init_scale, key=key)
            net = eqx.tree_at(lambda m: m.features, net, net.features * valid)
    if width is not None and model != "deep_ufm":
        width = _static("width", width, 1)
        if width < dim:
            raise ValueError(f"`width` = {width} is not allowed: at least `dim` = {dim}.")
        net = _with_width(net, width - dim)
    return net, objective


def num_examples(*, model: str = "ufm", num_classes: int = 10, ratio=10.0,
                 minority_size: int = 10, majority_fraction=0.5, **_) -> np.ndarray:
    """The number of examples (rows of outputs) of `imbalance_problem`, for a design's arrays
    at once (NumPy, no tracing): the sizes that `pad_to` and the size buckets are taken from.

    **Arguments:** the settings of `imbalance_problem`; `ratio` and `majority_fraction` may be
    arrays (of one shape); the others are accepted and ignored.

    **Returns:** an integer array of the broadcast shape of the settings: n, or k for
    "ssm_class" (its k class columns).
    """
    counts = step_counts(int(num_classes), np.asarray(ratio, float), int(minority_size),
                         np.asarray(majority_fraction, float), xp=np)
    n = counts.sum(-1).astype(np.int64)
    return np.full_like(n, int(num_classes)) if model == "ssm_class" else n


def check_settings(settings: Mapping[str, np.ndarray], **fixed) -> None:
    """Checks a vectorized design's arrays for `imbalance_problem` before anything is traced:
    no setting in `STATIC` varies, each traced setting lies in its range (`RANGES`), and every
    majority fraction gives between 1 and k - 1 majority classes.

    **Arguments:**

    - `settings`: {setting name: one value per member}.
    - `fixed`: the settings every member shares.

    **Returns:** nothing. Raises `ValueError` naming the setting, the value and the member.
    """
    for name in settings:
        if name in STATIC:
            raise ValueError(f"`{name}` cannot vary in a vectorized sweep: it fixes array "
                             "shapes or the kind of problem; give it as a fixed setting.")
    check_ranges(settings, {name: r for name, r in RANGES.items() if name in settings})
    k = _static("num_classes", fixed.get("num_classes", 10), 2)
    fraction = np.atleast_1d(settings.get("majority_fraction",
                                          fixed.get("majority_fraction", 0.5)))
    num_majority = np.round(fraction * k).astype(int)
    bad = np.flatnonzero((num_majority < 1) | (num_majority > k - 1))
    if bad.size:
        i = bad[0]
        raise ValueError(f"`majority_fraction` = {fraction[i]} at point {i} gives "
                         f"{num_majority[i]} majority classes out of {k}: expected between 1 "
                         f"and {k - 1}.")


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
