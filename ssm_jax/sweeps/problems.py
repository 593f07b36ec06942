"""Ready-made problems for sweeps and the command line: a step imbalance with a chosen model,
loss and weighting, every setting a keyword so that any of them can be a grid axis.

`imbalance_problem` is an `ImbalanceProblem`: called with settings it builds one member, and
it answers a sweep's questions on a design's arrays (checks, sizes, a cost key, the
closed-form `predicted_ratio`). The names of its models and losses are read in `registry`.
"""

from collections.abc import Mapping
import inspect

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate, analytic
from ..data.imbalance import (
    StepImbalance,
    check_power,
    check_step_sizes,
    class_weights,
    step_counts,
)
from ..dynamics import Flow
from .plan import padded_size
from .problem import AbstractProblem
from .registry import loss_named, model_named
from .vectorized import check_ranges

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


def _build(*, model: str = "ufm", loss: str = "square", num_classes: int = 10,
           ratio: float = 10.0, minority_size: int = 10, majority_fraction: float = 0.5,
           power: float = 0.0, dim: int = 32, depth: int = 2, init_scale: float = 1e-3,
           seed: int = 0, l2: float = 0.0, width: int | None = None,
           pad_to: int | None = None):
    """One member of `imbalance_problem` (see `ImbalanceProblem`)."""
    kind, loss_fn = model_named(model), loss_named(loss)
    if kind.fits_target and loss_fn.square_targets(2) is None:
        raise ValueError(f"`loss` = {loss!r} is not allowed with `model` = {model!r}: the SSM "
                         "fits its target in square loss; expected 'square' or "
                         "'square_centered'.")
    k = _static("num_classes", num_classes, 2)
    minority_size = _static("minority_size", minority_size, 1)
    dim, depth = _static("dim", dim, 1), _static("depth", depth, 1)
    if _validate.is_concrete((ratio, majority_fraction, power, init_scale, seed, l2)):
        counts = StepImbalance(k, ratio, minority_size, majority_fraction).counts
        size = int(counts.sum())
        if pad_to is not None and not kind.class_level:
            size = padded_size([size], _static("pad_to", pad_to, 1))
        seed = int(_validate.seed("seed", seed))
    else:
        counts = step_counts(k, ratio, minority_size, majority_fraction)
        if pad_to is None and not kind.class_level:
            raise ValueError(f"`pad_to` = None is not allowed with traced settings and `model` "
                             f"= {model!r}: the number of examples depends on the ratio, so "
                             "give a bound on it (an int >= every member's n).")
        size = k if kind.class_level else _static("pad_to", pad_to, 1)
    net, objective = kind.build(counts=counts, weights=class_weights(counts, power), size=size,
                                loss=loss_fn, dim=dim, depth=depth, init_scale=init_scale,
                                key=jax.random.key(seed), l2=l2)
    if width is not None and not kind.layered:
        width = _static("width", width, 1)
        if width < dim:
            raise ValueError(f"`width` = {width} is not allowed: at least `dim` = {dim}.")
        net = _with_width(net, width - dim)
    return net, objective


DEFAULTS: dict = {name: p.default for name, p in inspect.signature(_build).parameters.items()
                  if name != "pad_to"}
"""The settings of `imbalance_problem` and their defaults."""


def _per_member(function, settings: Mapping[str, np.ndarray], fixed: dict, names) -> np.ndarray:
    """`function(**member)` for every member of a design at once, over the settings among
    `names` (defaults filled in): one `vmap` over the numeric settings for each combination
    of the static ones (`STATIC`: shapes and kinds, Python values inside `function`).

    **Arguments:**

    - `function`: settings -> a number, traceable in the settings not in `STATIC`.
    - `settings`: {setting name: one value per member}, a design's arrays.
    - `fixed`: the settings every member shares.
    - `names`: the settings `function` takes.

    **Returns:** one float per member (float64).
    """
    size = max((np.size(v) for v in settings.values()), default=1)
    column = lambda name: np.broadcast_to(  # noqa: E731
        np.asarray(settings[name]) if name in settings
        else np.asarray(fixed.get(name, DEFAULTS[name])), (size,))
    static = [name for name in names if name in STATIC]
    numeric = [name for name in names if name not in STATIC]
    keys = [tuple(column(name)[i].item() for name in static) for i in range(size)] if (
        any(name in settings for name in static)) else [
        tuple(column(name)[0].item() for name in static)] * size
    out = np.empty(size)
    for key in dict.fromkeys(keys):
        rows = np.flatnonzero([k == key for k in keys])
        values = {name: jnp.asarray(column(name)[rows], jnp.result_type(float))
                  for name in numeric}
        one = lambda v, key=key: function(**dict(zip(static, key, strict=True)), **v)  # noqa: E731
        out[rows] = np.asarray(jax.vmap(one)(values), dtype=float)
    return out


class ImbalanceProblem(AbstractProblem):
    """A step-imbalance problem, with some settings fixed.

    Traceable in every numeric setting (ratio, majority fraction, power, init scale, seed,
    l2), so that a sweep builds all its members under one `vmap`; the settings in `STATIC`
    stay Python values. Concrete settings are checked when a member is built; traced ones
    beforehand, on the design's arrays (`check_settings`).

    Called with settings as keywords (the fixed ones and a member's own together), it
    returns (model, objective):

    - `model`: "ufm" (loss re-weighting), "ssm" (target re-weighting of the k x n label
      matrix), "ssm_class" (the class-level k x k target, cheapest), or "deep_ufm"
      (`DeepLinear` of `depth` layers on free features, loss re-weighting); see `registry`.
    - `loss`: for "ufm"/"deep_ufm": "square", "square_centered" or "cross_entropy"; the SSM
      fits its target in square loss ("square_centered" centers the target; "cross_entropy"
      is refused).
    - `num_classes`, `ratio`, `minority_size`, `majority_fraction`: the `StepImbalance`.
    - `power`: gamma of the class weights omega_c ~ n_c^-gamma.
    - `dim`, `depth`, `init_scale`, `seed`: the model's width, layers ("deep_ufm"), initial
      scale sigma and key.
    - `l2`: the L2 strength lambda.
    - `width`: pad UFM/SSM feature dimensions with zeros up to `width` (for sweeps over dim).
    - `pad_to`: build the problem with this many examples, those beyond n padding (zero
      weight, no class, zero features; see `padding`); needed where the ratio or the majority
      fraction is traced, since n depends on them. Ignored by "ssm_class", whose k columns do
      not depend on n.

    **Arguments:**

    - `fixed`: the settings every member shares, as keywords (checked by name).
    """

    fixed: tuple[tuple[str, object], ...]

    def __init__(self, **fixed):
        for name in fixed:
            if name not in DEFAULTS:
                raise ValueError(f"`{name}` = {fixed[name]!r} is not allowed: expected settings "
                                 f"of imbalance_problem, {', '.join(DEFAULTS)}.")
        self.fixed = tuple(sorted(fixed.items()))

    def __call__(self, *, pad_to: int | None = None, **settings):
        return _build(**dict(self.fixed), **settings, pad_to=pad_to)

    def check_settings(self, settings):
        check_settings(settings, **dict(self.fixed))

    def num_examples(self, settings):
        return num_examples(**dict(self.fixed) | dict(settings))

    def cost(self, settings, dynamics):
        if not isinstance(dynamics, Flow):
            return None
        t1 = float(dynamics.ts[-1])
        names = ("num_classes", "ratio", "minority_size", "majority_fraction", "power")
        return _per_member(lambda **m: _steps_key(t1=t1, **m), settings, dict(self.fixed),
                           names)

    def predict(self, settings):
        names = ("model", "loss", "num_classes", "ratio", "minority_size",
                 "majority_fraction", "power", "dim", "init_scale")
        return {"predicted_ratio": _per_member(_closed_form_ratio, settings, dict(self.fixed),
                                               names)}


imbalance_problem = ImbalanceProblem()
"""The step-imbalance problem with nothing fixed: `imbalance_problem(**settings)` builds one
member (see `ImbalanceProblem`)."""


def _closed_form_ratio(*, model, loss, num_classes, ratio, minority_size, majority_fraction,
                       power, dim, init_scale):
    # The closed forms hold for the square loss; the cross-entropy has none.
    if loss_named(loss).square_targets(int(num_classes)) is None:
        return jnp.nan
    counts = _counts(num_classes, ratio, minority_size, majority_fraction)
    return model_named(model).predicted_ratio(counts, power,
                                              expected_init_strength(init_scale, dim))


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
    return np.full_like(n, int(num_classes)) if model_named(model).class_level else n


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
    check_precision({**fixed, **settings})
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


def check_precision(settings: Mapping, *, dtype=None, names: Mapping[str, str] | None = None
                    ) -> None:
    """Checks settings of `imbalance_problem` in the precision the run computes in, before
    anything is built: every number within its range (`_validate.representable`; init_scale
    not rounding to 0), seeds that fit a key, a number of examples that fits the run's
    integers (`check_step_sizes`) and class weights n_c^-power within its floating range
    (`check_power`).

    **Arguments:**

    - `settings`: {setting name: a value, or one value per member}; those of the step
      imbalance and the power are taken together, member by member (arrays of one shape).
    - `dtype`: the run's floating dtype; None for JAX's current default (`_validate.run_dtype`).
    - `names`: {setting: the name the user typed (e.g. "grid.power")}; default the settings'.

    **Returns:** nothing. Raises `ValueError` naming the setting, its value and what is
    allowed.
    """
    names = {name: (names or {}).get(name, name) for name in DEFAULTS}
    values = {name: settings.get(name, DEFAULTS[name]) for name in DEFAULTS}
    for name in ("ratio", "majority_fraction", "power", "l2", "init_scale"):
        _validate.representable(names[name], values[name], dtype,
                                zero_allowed=name != "init_scale")
    _validate.seed(names["seed"], values["seed"])
    k, n_min = int(values["num_classes"]), int(values["minority_size"])
    ratio, fraction, power = np.broadcast_arrays(
        *(np.asarray(values[name], dtype=float)
          for name in ("ratio", "majority_fraction", "power")))
    check_step_sizes(k, ratio, n_min, fraction, dtype=dtype, names=names)
    counts = step_counts(k, ratio, n_min, fraction, xp=np)
    check_power(power, counts, dtype=dtype, name=names["power"])


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
    return float(_closed_form_ratio(model=model, loss="square", num_classes=num_classes,
                                    ratio=ratio, minority_size=minority_size,
                                    majority_fraction=majority_fraction, power=power, dim=dim,
                                    init_scale=init_scale))


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
    return float(_steps_key(t1=t1, num_classes=num_classes, ratio=ratio,
                            minority_size=minority_size, majority_fraction=majority_fraction,
                            power=power))


def _steps_key(*, t1, num_classes, ratio, minority_size, majority_fraction, power):
    """`predicted_steps`, traceable in the ratio, the majority fraction and the power."""
    counts = _counts(num_classes, ratio, minority_size, majority_fraction)
    return t1 * jnp.max(analytic.ufm_growth_rates(counts, class_weights(counts, power)))


def _counts(num_classes, ratio, minority_size, majority_fraction):
    """The step imbalance's counts: checked integers (`StepImbalance`) for concrete settings,
    floats (`step_counts`) for traced ones."""
    if _validate.is_concrete((ratio, majority_fraction)):
        return StepImbalance(int(num_classes), ratio, int(minority_size),
                             majority_fraction).counts
    return step_counts(int(num_classes), ratio, int(minority_size), majority_fraction)
