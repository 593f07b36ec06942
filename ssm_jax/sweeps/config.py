"""Sweep configuration files (TOML) for `ssm-jax sweep`: parsed and fully checked before any
compute, with errors that name the offending key.

    [problem]   fixed arguments of `problems.imbalance_problem` (model and loss names as
                `registry` reads them)
    [grid]      axes: a list of numbers, {start, stop, num[, log]} or {range = N}
    [flow]      t1, num_saves, solver, rtol, atol, dt0, max_steps, coordinates   (or [train]);
                dt0 is the step of a fixed-step solver ("Euler", which requires it), the
                first step of an adaptive one
    [train]     optimizer ("sgd", "momentum", "adam"), learning_rate, momentum, steps,
                record_every, batch_size
    [sweep]     class_groups ("step" or "none"), order_by ("predicted_steps" or "none"),
                max_batch, batching ("auto", "refill", "vmap", "map"), seed

A configured sweep's problem (`ConfiguredProblem`) also records, per member, the closed-form
`predicted_ratio` (t_minority / t_majority of `problems.predicted_ratio`, NaN for the
cross-entropy), which figure F3 draws, and orders a flow's members by `predicted_steps`.

Every number is checked in the precision the sweep runs in, float32 by default (`ssm-jax
sweep` never enables float64): one that would become inf or 0 there, seeds beyond a key's 32
bits, a ratio whose examples overflow int32 and class weights that leave float32's range are
refused with the key that set them.
"""

import dataclasses
from pathlib import Path
import tomllib

import diffrax
import equinox as eqx
import numpy as np
import optax

from ..data.imbalance import StepImbalance
from ..dynamics import Flow, Train
from .batching import batching_named
from .config_values import ConfigError, at_least, axis, fits, in_range, section
from .grid import Grid
from .problem import AbstractProblem
from .problems import DEFAULTS, ImbalanceProblem, check_precision
from .registry import MODELS, model_named

__all__ = ["ConfigError", "ConfiguredProblem", "SweepConfig", "load", "parse"]

_PROBLEM = {name: type(default) for name, default in DEFAULTS.items() if name != "width"}
_FLOW = {"t1": float, "num_saves": int, "solver": str, "rtol": float, "atol": float,
         "dt0": float, "max_steps": int, "coordinates": str}
_TRAIN = {"optimizer": str, "learning_rate": float, "momentum": float, "steps": int,
          "record_every": int, "batch_size": int}
_SWEEP = {"class_groups": str, "order_by": str, "max_batch": int, "batching": str, "seed": int}
_SOLVERS = ("Euler", "Heun", "Midpoint", "Ralston", "Bosh3", "Tsit5", "Dopri5", "Dopri8")
# Float settings for which 0 means something else than a tiny value (or nothing at all).
_NONZERO = {"t1", "rtol", "atol", "dt0", "learning_rate", "init_scale"}
# Settings whose values change a member's shapes, which one batch cannot hold.
_NOT_AXES = {"num_classes": "the number of classes sets the shapes of every array",
             "depth": "the number of layers sets the model's structure"}


class ConfiguredProblem(AbstractProblem):
    """`imbalance_problem` with the config's fixed settings; grid points fill in the rest.
    For training it also returns the optimizer's hyperparameters, so they can be swept.

    **Arguments:**

    - `fixed`: the fixed settings of `imbalance_problem`, as sorted (name, value) pairs.
    - `hyper`: the optimizer's default hyperparameters, as sorted (name, value) pairs.
    - `ordered`: whether a flow's members run in increasing `predicted_steps` (`cost`).

    Called with a grid point's settings, it returns (model, objective), or (model,
    objective, hyperparameters) for training. Its checks, sizes, cost and predictions are
    those of the `ImbalanceProblem`, the hyperparameters aside.
    """

    fixed: tuple
    hyper: tuple = ()
    ordered: bool = True

    @property
    def problem(self) -> ImbalanceProblem:
        """The step-imbalance problem with the fixed settings."""
        return ImbalanceProblem(**dict(self.fixed))

    def _settings(self, settings):
        return {k: v for k, v in settings.items() if k not in dict(self.hyper)}

    def __call__(self, *, pad_to: int | None = None, **point):
        hyper = dict(self.hyper)
        for name in list(point):
            if name in hyper:
                hyper[name] = point.pop(name)
        model, objective = self.problem(pad_to=pad_to, **point)
        return (model, objective, hyper) if hyper else (model, objective)

    def check_settings(self, settings):
        self.problem.check_settings(self._settings(settings))

    def num_examples(self, settings):
        return self.problem.num_examples(self._settings(settings))

    def cost(self, settings, dynamics):
        return self.problem.cost(self._settings(settings), dynamics) if self.ordered else None

    def predict(self, settings):
        return self.problem.predict(self._settings(settings))


def _momentum_sgd(learning_rate, momentum):
    return optax.sgd(learning_rate, momentum=momentum)


_OPTIMIZER_FACTORIES = {
    "sgd": optax.inject_hyperparams(optax.sgd),
    "momentum": optax.inject_hyperparams(_momentum_sgd),
    "adam": optax.inject_hyperparams(optax.adam),
}


@dataclasses.dataclass
class SweepConfig:
    """A checked sweep configuration, ready for `sweep(make_problem, grid, dynamics=dynamics,
    metadata=raw, **options)`.

    **Arguments:**

    - `make_problem`: a `ConfiguredProblem` (its `cost` orders the members, its `predict`
      gives the closed forms recorded).
    - `grid`: the `Grid` of the [grid] section.
    - `dynamics`: the `Flow` or `Train` of the [flow] or [train] section.
    - `options`: the keywords of `sweep` the configuration sets: `max_batch`, `seed`,
      `batching` (an `AbstractBatching`, or None for the sweep's default), and
      `class_groups` (each member's own step groups) where it asks for them.
    - `raw`: the configuration as read, kept with the sweep.
    """

    make_problem: ConfiguredProblem
    grid: Grid
    dynamics: Flow | Train
    options: dict
    raw: dict


def load(path, *, dtype: str = "float32") -> SweepConfig:
    """Reads and checks a sweep configuration file.

    **Arguments:**

    - `path`: a TOML file.
    - `dtype`: the precision the sweep will run in, which its numbers are checked in.

    **Returns:** a `SweepConfig`. Raises `ConfigError` naming the key at fault.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ConfigError(f"`config` = '{path}' cannot be read ({reason}): expected a TOML "
                          "file.") from error
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"`config` = '{path}' is not valid TOML: {error}.") from error
    return parse(raw, dtype=dtype)


def parse(raw: dict, *, dtype: str = "float32") -> SweepConfig:
    """Checks a sweep configuration given as a dict (a parsed TOML file).

    **Arguments:**

    - `raw`: the sections problem, grid, flow or train, and sweep (see this module).
    - `dtype`: the precision the sweep will run in (`ssm-jax sweep`: float32), which every
      number is checked in.

    **Returns:** a `SweepConfig`. Raises `ConfigError` naming the key at fault.
    """
    config = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    unknown = set(config) - {"problem", "grid", "flow", "train", "sweep"}
    if unknown:
        raise ConfigError(f"Unknown section `{sorted(unknown)[0]}`: expected problem, grid, "
                          "flow or train, and sweep.")
    if ("flow" in config) == ("train" in config):
        raise ConfigError("Give exactly one of the sections [flow] and [train].")
    training = "train" in config
    problem = section(config, "problem", _PROBLEM)
    flow = section(config, "flow", _FLOW)
    train = section(config, "train", _TRAIN)
    options = section(config, "sweep", _SWEEP)
    for name, table, schema in (("problem", problem, _PROBLEM), ("flow", flow, _FLOW),
                                ("train", train, _TRAIN), ("sweep", options, _SWEEP)):
        for key, value in table.items():
            if schema[key] in (int, float):
                fits(f"{name}.{key}", value, dtype, zero_allowed=key not in _NONZERO,
                     kind=schema[key])
    axes = _grid_axes(config.get("grid", {}), problem, train, training)
    for key, values in axes.items():
        fits(f"grid.{key}", values, dtype, zero_allowed=key not in _NONZERO,
             kind=int if np.issubdtype(np.asarray(values).dtype, np.integer) else float)
    fixed = _fixed_settings(problem, axes)
    _check_problem_precision(fixed, axes, dtype)
    if training:
        dynamics, hyper = _train(train, axes)
    else:
        dynamics, hyper = _flow(flow), {}
    sweep_options, ordered = _sweep_options(options, fixed, dynamics)
    make_problem = ConfiguredProblem(tuple(sorted(fixed.items())), tuple(sorted(hyper.items())),
                                     ordered)
    return SweepConfig(make_problem, Grid(**axes), dynamics, sweep_options, raw)


def _grid_axes(grid_table, problem: dict, train: dict, training: bool) -> dict:
    """The [grid] section's axes, each a setting that may vary and is not also fixed."""
    if not isinstance(grid_table, dict) or not grid_table:
        raise ConfigError("`grid` needs at least one axis, e.g. power = [0.0, 0.5, 1.0].")
    sweepable = {k for k, kind in _PROBLEM.items() if kind in (int, float)} - set(_NOT_AXES)
    sweepable |= {"learning_rate", "momentum"} if training else set()
    axes = {}
    for key, spec in grid_table.items():
        if key in _NOT_AXES:
            raise ConfigError(f"`grid.{key}` cannot be a grid axis: {_NOT_AXES[key]}, and the "
                              f"members of a sweep share one batch. Run one sweep per {key}.")
        if key not in sweepable:
            raise ConfigError(f"`grid.{key}` cannot be a grid axis: expected one of "
                              f"{', '.join(sorted(sweepable))}.")
        for name, table in (("problem", problem), ("train", train)):
            if key in table:
                raise ConfigError(f"`grid.{key}` and `{name}.{key}` = {table[key]!r} are "
                                  "both given: expected one, an axis or a fixed setting.")
        axes[key] = axis(f"grid.{key}", spec, whole=_PROBLEM.get(key) is int)
    return axes


def _check_problem_precision(fixed: dict, axes: dict, dtype) -> None:
    """The problem's settings checked together in the run's precision
    (`problems.check_precision`), over every combination of the axes that set the counts
    and the weights, each named as the file gives it."""
    joint = [name for name in ("ratio", "majority_fraction", "power") if name in axes]
    values = {**fixed, **{k: v for k, v in axes.items() if k not in joint}}
    mesh = np.meshgrid(*(np.asarray(axes[name], dtype=float) for name in joint), indexing="ij")
    values.update({name: grid.ravel() for name, grid in zip(joint, mesh, strict=True)})
    names = {name: f"grid.{name}" if name in axes else f"problem.{name}" for name in DEFAULTS}
    try:
        check_precision(values, dtype=dtype, names=names)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _fixed_settings(problem: dict, axes: dict) -> dict:
    """The [problem] section as fixed settings of `imbalance_problem`, checked against the
    model it names and the axes."""
    model = problem.get("model", DEFAULTS["model"])
    try:
        kind = model_named(model, "problem.model")
    except ValueError as error:
        raise ConfigError(str(error)) from error
    if "depth" in problem and not kind.layered:
        raise ConfigError(f"`problem.depth` = {problem['depth']!r} is not allowed with "
                          f"`problem.model` = {model!r}: only "
                          f"{' or '.join(repr(n) for n, k in MODELS.items() if k.layered)} "
                          "has layers.")
    if "dim" in axes and kind.layered:
        raise ConfigError(f"`grid.dim` cannot be a grid axis with `problem.model` = "
                          f"{model!r}: its layers of other widths cannot share one batch. "
                          "Run one sweep per dim.")
    fixed = dict(problem)
    if "dim" in axes:
        # Sweeps over the width pad every member with zero dimensions to the largest.
        fixed["width"] = int(np.max(axes["dim"]))
    return fixed


def _train(train: dict, axes: dict) -> tuple[Train, dict]:
    """The [train] section: the `Train` dynamics and the optimizer's hyperparameters."""
    name = train.pop("optimizer", "sgd")
    if name not in _OPTIMIZER_FACTORIES:
        raise ConfigError(f"`train.optimizer` = {name!r} is not allowed: expected one of "
                          f"{', '.join(_OPTIMIZER_FACTORIES)}.")
    hyper = {"learning_rate": train.pop("learning_rate", 0.1)}
    if name == "momentum":
        hyper["momentum"] = train.pop("momentum", 0.9)
    elif "momentum" in train or "momentum" in axes:
        raise ConfigError("`momentum` needs `train.optimizer` = \"momentum\".")
    for key, upper in (("learning_rate", None), ("momentum", 1.0)):
        if key in hyper:
            in_range(f"train.{key}", hyper[key], upper)
        if key in axes:
            in_range(f"grid.{key}", axes[key], upper)
    if "steps" not in train:
        raise ConfigError("`train.steps` is required.")
    return _build(Train, optimizer=_OPTIMIZER_FACTORIES[name], **train), hyper


def _flow(flow: dict) -> Flow:
    """The [flow] section: the `Flow` dynamics (`coordinates` passed as written)."""
    if "t1" not in flow:
        raise ConfigError("`flow.t1` is required.")
    solver = flow.pop("solver", "Tsit5")
    if solver not in _SOLVERS:
        raise ConfigError(f"`flow.solver` = {solver!r} is not allowed: expected one of "
                          f"{', '.join(_SOLVERS)}.")
    method = getattr(diffrax, solver)()
    if "dt0" not in flow and not isinstance(method, diffrax.AbstractAdaptiveSolver):
        raise ConfigError(f"`flow.dt0` is required with `flow.solver` = \"{solver}\", a "
                          "fixed-step solver: give its step size, e.g. dt0 = 0.01 (> 0), or "
                          "choose an adaptive solver such as \"Tsit5\".")
    return _build(Flow, solver=method, **flow)


def _sweep_options(options: dict, fixed: dict, dynamics) -> tuple[dict, bool]:
    """The [sweep] section as keywords of `sweep`, and whether members run in order of cost."""
    for key, minimum in (("max_batch", 1), ("seed", 0)):
        if key in options:
            at_least(f"sweep.{key}", options[key], minimum)
    try:
        batching = batching_named(options.get("batching", "auto"))
    except ValueError as error:
        raise ConfigError(str(error).replace("`batching`", "`sweep.batching`", 1)) from error
    sweep_options = {"max_batch": options.get("max_batch"), "seed": options.get("seed", 0),
                     "batching": batching}
    groups = options.get("class_groups", "step")
    if groups not in ("step", "none"):
        raise ConfigError(f"`sweep.class_groups` = {groups!r} is not allowed: expected "
                          "\"step\" or \"none\".")
    if groups == "step":
        sweep_options["class_groups"] = _StepGroups(tuple(sorted(fixed.items())))
    order = options.get("order_by", "predicted_steps" if isinstance(dynamics, Flow) else "none")
    if order not in ("predicted_steps", "none"):
        raise ConfigError(f"`sweep.order_by` = {order!r} is not allowed: expected "
                          "\"predicted_steps\" or \"none\".")
    return sweep_options, order == "predicted_steps"


class _StepGroups(eqx.Module):
    """Point settings -> the step imbalance's groups of that member: its own majority and
    minority classes (a grid over `majority_fraction` moves the boundary)."""

    fixed: tuple

    def __call__(self, **point) -> dict[str, list[int]]:
        settings = {name: DEFAULTS[name] for name in ("num_classes", "ratio", "minority_size",
                                                      "majority_fraction")}
        settings.update({k: v for k, v in {**dict(self.fixed), **point}.items()
                         if k in settings})
        k = int(settings["num_classes"])
        num_majority = StepImbalance(k, settings["ratio"], int(settings["minority_size"]),
                                     settings["majority_fraction"]).num_majority
        return {"majority": list(range(num_majority)), "minority": list(range(num_majority, k))}


def _build(cls, **kwargs):
    """`cls(**kwargs)`, its errors naming the keys as the file writes them (`flow.rtol`)."""
    name, schema = ("flow", _FLOW) if cls is Flow else ("train", _TRAIN)
    try:
        return cls(**kwargs)
    except ValueError as error:
        message = str(error)
        for key in schema:
            message = message.replace(f"`{key}`", f"`{name}.{key}`")
        raise ConfigError(message) from error
