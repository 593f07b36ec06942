"""Sweep configuration files (TOML) for `ssm-jax sweep`: parsed and fully checked before any
compute, with errors that name the offending key.

    [problem]   fixed arguments of `problems.imbalance_problem`
    [grid]      axes: a list of numbers, {start, stop, num[, log]} or {range = N}
    [flow]      t1, num_saves, solver, rtol, atol, max_steps, coordinates   (or [train])
    [train]     optimizer ("sgd", "momentum", "adam"), learning_rate, momentum, steps,
                record_every, batch_size
    [sweep]     class_groups ("step" or "none"), order_by ("predicted_steps" or "none"),
                max_batch, batching, seed

A configured sweep also records, per member, the closed-form `predicted_ratio`
(t_minority / t_majority of `problems.predicted_ratio`), which figure F3 draws.
"""

import dataclasses
import inspect
from pathlib import Path
import tomllib

import diffrax
import numpy as np
import optax

from ..data.imbalance import StepImbalance
from ..dynamics import Flow, Train
from .grid import Grid
from .problems import (
    check_settings,
    imbalance_problem,
    num_examples,
    predicted_ratio,
    predicted_steps,
)

_PROBLEM = {name: type(p.default) for name, p in
            inspect.signature(imbalance_problem).parameters.items()
            if name not in ("width", "pad_to")}
_FLOW = {"t1": float, "num_saves": int, "solver": str, "rtol": float, "atol": float,
         "max_steps": int, "coordinates": str}
_TRAIN = {"optimizer": str, "learning_rate": float, "momentum": float, "steps": int,
          "record_every": int, "batch_size": int}
_SWEEP = {"class_groups": str, "order_by": str, "max_batch": int, "batching": str, "seed": int}
_SOLVERS = ("Euler", "Heun", "Midpoint", "Ralston", "Bosh3", "Tsit5", "Dopri5", "Dopri8")
_OPTIMIZERS = ("sgd", "momentum", "adam")
_BATCHING = ("auto", "refill", "vmap", "map")
# Settings whose values change a member's shapes, which one batch cannot hold.
_NOT_AXES = {"num_classes": "the number of classes sets the shapes of every array",
             "depth": "the number of layers sets the model's structure"}


class ConfigError(ValueError):
    """A configuration file that cannot run as written."""


def _typed(key: str, value, kind):
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float
          else isinstance(value, kind) and not (kind is int and isinstance(value, bool)))
    if not ok:
        raise ConfigError(f"`{key}` = {value!r} is not allowed: expected "
                          f"{ {float: 'a number', int: 'an integer', str: 'a string'}[kind] }.")
    return float(value) if kind is float else value


def _section(config: dict, name: str, schema: dict) -> dict:
    table = config.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"`{name}` must be a table ([{name}]).")
    for key, value in table.items():
        if key not in schema:
            raise ConfigError(f"Unknown key `{name}.{key}`: expected one of "
                              f"{', '.join(sorted(schema))}.")
        table[key] = _typed(f"{name}.{key}", value, schema[key])
    return table


def _at_least(key: str, value: int, minimum: int) -> int:
    if value < minimum:
        raise ConfigError(f"`{key}` = {value!r} is not allowed: expected an integer >= "
                          f"{minimum}.")
    return value


def _axis(key: str, spec, whole: bool = False) -> np.ndarray:
    """A grid axis from its specification, checked: at least one value, finite, distinct,
    whole numbers for an integer setting (`whole`)."""
    if isinstance(spec, list):
        values = [_typed(key, v, float) for v in spec]
        if all(isinstance(v, int) for v in spec):
            values = [int(v) for v in spec]
    elif isinstance(spec, dict) and set(spec) == {"range"}:
        values = list(range(_at_least(f"{key}.range", _typed(f"{key}.range", spec["range"], int),
                                      1)))
    elif isinstance(spec, dict) and {"start", "stop", "num"} <= set(spec) <= {
            "start", "stop", "num", "log"}:
        start, stop = (_typed(f"{key}.{k}", spec[k], float) for k in ("start", "stop"))
        num = _at_least(f"{key}.num", _typed(f"{key}.num", spec["num"], int), 1)
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"`{key}.log` = {log!r} is not allowed: expected true or false.")
        for name, value in (("start", start), ("stop", stop)):
            if not np.isfinite(value) or (log and value <= 0):
                raise ConfigError(f"`{key}.{name}` = {value!r} is not allowed: expected a "
                                  f"{'positive' if log else 'finite'} number"
                                  f"{' (the axis is log-spaced)' if log else ''}.")
        values = (np.geomspace(start, stop, num) if log else np.linspace(start, stop, num))
    else:
        raise ConfigError(f"`{key}` = {spec!r} is not allowed: expected a list of numbers, "
                          "{start, stop, num[, log]} or {range = N}.")
    values = np.asarray(values)
    if values.size == 0:
        raise ConfigError(f"`{key}` = [] is not allowed: a grid axis needs at least one value.")
    if not np.all(np.isfinite(values)):
        raise ConfigError(f"`{key}` = {values.tolist()} is not allowed: expected finite "
                          "numbers.")
    if whole:
        if not np.all(values == np.round(values)):
            raise ConfigError(f"`{key}` = {values.tolist()} is not allowed: expected whole "
                              "numbers (an integer setting).")
        values = values.astype(int)
    if np.unique(values).size != values.size:
        raise ConfigError(f"`{key}` = {values.tolist()} is not allowed: a value repeats; "
                          "expected distinct values, one per grid point.")
    return values


def _in_range(key: str, values, upper: float | None = None):
    """Learning rates (> 0) and momenta (in [0, 1)), fixed or along an axis."""
    values = np.atleast_1d(np.asarray(values, dtype=float))
    too_low = (values < 0) if upper is not None else (values <= 0)
    bad = values[too_low | ~np.isfinite(values) | (values >= (upper or np.inf))]
    if bad.size:
        allowed = f"in [0, {upper:g})" if upper is not None else "> 0 (finite)"
        raise ConfigError(f"`{key}` = {bad[0]:g} is not allowed: expected a number "
                          f"{allowed}.")


@dataclasses.dataclass(frozen=True)
class ConfiguredProblem:
    """`imbalance_problem` with the config's fixed settings; grid points fill in the rest.
    For training it also returns the optimizer's hyperparameters, so they can be swept.

    **Arguments:**

    - `fixed`: the fixed settings of `imbalance_problem`, as sorted (name, value) pairs.
    - `hyper`: the optimizer's default hyperparameters, as sorted (name, value) pairs.

    Called with a grid point's settings, it returns (model, objective), or (model,
    objective, hyperparameters) for training.
    """

    fixed: tuple
    hyper: tuple = ()

    def __call__(self, *, pad_to: int | None = None, **point):
        hyper = dict(self.hyper)
        for name in list(point):
            if name in hyper:
                hyper[name] = point.pop(name)
        model, objective = imbalance_problem(**dict(self.fixed), **point, pad_to=pad_to)
        return (model, objective, hyper) if hyper else (model, objective)

    def check_settings(self, settings) -> None:
        """Checks a vectorized design's arrays (`problems.check_settings`), the optimizer's
        hyperparameters apart."""
        problem = {k: v for k, v in settings.items() if k not in dict(self.hyper)}
        check_settings(problem, **dict(self.fixed))

    def num_examples(self, settings):
        """Each member's number of examples, from the design's arrays (`problems.num_examples`).
        """
        return num_examples(**dict(self.fixed) | dict(settings))


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

    - `make_problem`: a `ConfiguredProblem`.
    - `grid`: the `Grid` of the [grid] section.
    - `dynamics`: the `Flow` or `Train` of the [flow] or [train] section.
    - `options`: the keywords of `sweep` the configuration sets: `max_batch`, `seed`,
      `batching`, `predict`, and `class_groups` (each member's own step groups) and
      `order_by` where it asks for them.
    - `raw`: the configuration as read, kept with the sweep.
    """

    make_problem: ConfiguredProblem
    grid: Grid
    dynamics: Flow | Train
    options: dict
    raw: dict


def load(path) -> SweepConfig:
    """Reads and checks a sweep configuration file.

    **Arguments:**

    - `path`: a TOML file.

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
    return parse(raw)


def parse(raw: dict) -> SweepConfig:
    """Checks a sweep configuration given as a dict (a parsed TOML file).

    **Arguments:**

    - `raw`: the sections problem, grid, flow or train, and sweep (see this module).

    **Returns:** a `SweepConfig`. Raises `ConfigError` naming the key at fault.
    """
    config = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    unknown = set(config) - {"problem", "grid", "flow", "train", "sweep"}
    if unknown:
        raise ConfigError(f"Unknown section `{sorted(unknown)[0]}`: expected problem, grid, "
                          "flow or train, and sweep.")
    if ("flow" in config) == ("train" in config):
        raise ConfigError("Give exactly one of the sections [flow] and [train].")
    problem = _section(config, "problem", _PROBLEM)
    flow = _section(config, "flow", _FLOW)
    train = _section(config, "train", _TRAIN)
    options = _section(config, "sweep", _SWEEP)

    grid_table = config.get("grid", {})
    if not isinstance(grid_table, dict) or not grid_table:
        raise ConfigError("`grid` needs at least one axis, e.g. power = [0.0, 0.5, 1.0].")
    sweepable = {k for k, kind in _PROBLEM.items() if kind in (int, float)} - set(_NOT_AXES)
    sweepable |= {"learning_rate", "momentum"} if "train" in config else set()
    axes = {}
    for key, spec in grid_table.items():
        if key in _NOT_AXES:
            raise ConfigError(f"`grid.{key}` cannot be a grid axis: {_NOT_AXES[key]}, and the "
                              f"members of a sweep share one batch. Run one sweep per {key}.")
        if key not in sweepable:
            raise ConfigError(f"`grid.{key}` cannot be a grid axis: expected one of "
                              f"{', '.join(sorted(sweepable))}.")
        for section, table in (("problem", problem), ("train", train)):
            if key in table:
                raise ConfigError(f"`grid.{key}` and `{section}.{key}` = {table[key]!r} are "
                                  "both given: expected one, an axis or a fixed setting.")
        axes[key] = _axis(f"grid.{key}", spec, whole=_PROBLEM.get(key) is int)
    grid = Grid(**axes)
    model = problem.get("model", _default("model"))
    if "depth" in problem and model != "deep_ufm":
        raise ConfigError(f"`problem.depth` = {problem['depth']!r} is not allowed with "
                          f"`problem.model` = {model!r}: only \"deep_ufm\" has layers.")
    if "dim" in axes and model == "deep_ufm":
        raise ConfigError("`grid.dim` cannot be a grid axis with `problem.model` = "
                          "\"deep_ufm\": its layers of other widths cannot share one batch. "
                          "Run one sweep per dim.")

    fixed = dict(problem)
    if "dim" in axes:
        # Sweeps over the width pad every member with zero dimensions to the largest.
        fixed["width"] = int(np.max(axes["dim"]))
    if "train" in config:
        name = train.pop("optimizer", "sgd")
        if name not in _OPTIMIZERS:
            raise ConfigError(f"`train.optimizer` = {name!r} is not allowed: expected one of "
                              f"{', '.join(_OPTIMIZERS)}.")
        hyper = {"learning_rate": train.pop("learning_rate", 0.1)}
        if name == "momentum":
            hyper["momentum"] = train.pop("momentum", 0.9)
        elif "momentum" in train or "momentum" in axes:
            raise ConfigError("`momentum` needs `train.optimizer` = \"momentum\".")
        for key, upper in (("learning_rate", None), ("momentum", 1.0)):
            if key in hyper:
                _in_range(f"train.{key}", hyper[key], upper)
            if key in axes:
                _in_range(f"grid.{key}", axes[key], upper)
        if "steps" not in train:
            raise ConfigError("`train.steps` is required.")
        dynamics = _build(Train, optimizer=_OPTIMIZER_FACTORIES[name], **train)
        make_problem = ConfiguredProblem(tuple(sorted(fixed.items())),
                                         tuple(sorted(hyper.items())))
    else:
        if "t1" not in flow:
            raise ConfigError("`flow.t1` is required.")
        solver = flow.pop("solver", "Tsit5")
        if solver not in _SOLVERS:
            raise ConfigError(f"`flow.solver` = {solver!r} is not allowed: expected one of "
                              f"{', '.join(_SOLVERS)}.")
        dynamics = _build(Flow, solver=getattr(diffrax, solver)(), **flow)
        make_problem = ConfiguredProblem(tuple(sorted(fixed.items())))

    for key, minimum in (("max_batch", 1), ("seed", 0)):
        if key in options:
            _at_least(f"sweep.{key}", options[key], minimum)
    batching = options.get("batching", "auto")
    if batching not in _BATCHING:
        raise ConfigError(f"`sweep.batching` = {batching!r} is not allowed: expected one of "
                          f"{', '.join(_BATCHING)}.")
    sweep_options = {"max_batch": options.get("max_batch"), "seed": options.get("seed", 0),
                     "batching": batching,
                     "predict": _ClosedForms(tuple(sorted(fixed.items())))}
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
    if order == "predicted_steps" and isinstance(dynamics, Flow):
        sweep_options["order_by"] = _StepKey(tuple(sorted(fixed.items())), float(dynamics.ts[-1]))
    return SweepConfig(make_problem, grid, dynamics, sweep_options, raw)


@dataclasses.dataclass(frozen=True)
class _StepGroups:
    """Point settings -> the step imbalance's groups of that member: its own majority and
    minority classes (a grid over `majority_fraction` moves the boundary)."""

    fixed: tuple

    def __call__(self, **point) -> dict[str, list[int]]:
        settings = {name: _default(name) for name in ("num_classes", "ratio", "minority_size",
                                                      "majority_fraction")}
        settings.update({k: v for k, v in {**dict(self.fixed), **point}.items()
                         if k in settings})
        k = int(settings["num_classes"])
        num_majority = StepImbalance(k, settings["ratio"], int(settings["minority_size"]),
                                     settings["majority_fraction"]).num_majority
        return {"majority": list(range(num_majority)), "minority": list(range(num_majority, k))}


@dataclasses.dataclass(frozen=True)
class _StepKey:
    fixed: tuple
    t1: float

    def __call__(self, **point):
        return predicted_steps(t1=self.t1, **{**dict(self.fixed), **point})


@dataclasses.dataclass(frozen=True)
class _ClosedForms:
    """Point settings -> the closed forms a configured sweep records: `predicted_ratio`, NaN
    for the cross-entropy loss, which has none."""

    fixed: tuple

    def __call__(self, **point) -> dict[str, float]:
        settings = {**dict(self.fixed), **point}
        if settings.get("loss", _default("loss")) == "cross_entropy":
            return {"predicted_ratio": float("nan")}
        return {"predicted_ratio": predicted_ratio(**settings)}


def _default(name: str):
    return inspect.signature(imbalance_problem).parameters[name].default


def _build(cls, **kwargs):
    try:
        return cls(**kwargs)
    except ValueError as error:
        section = "flow" if cls is Flow else "train"
        raise ConfigError(f"[{section}] {error}") from error
