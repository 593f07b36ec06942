"""What every dynamics shares: the abstract interface, and the one compiled call that runs it.

A dynamics (gradient flow, discrete training) owns its settings, their defaults and checks,
its record times and a description of itself. Its `run` is the traceable body of one run:
a single call (`dynamics(model, objective)`), a sweep's chunk, an experiment's batch and a
benchmark's rung all compile that same body. Settings that runs may differ in (save times,
tolerances, switch times, ...) are array leaves, so one compilation serves them all.
"""

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .. import _validate
from .._timing import timed_call
from ..objective import AbstractObjective
from .trajectory import Trajectory

PRECISIONS = ("highest", "high", "default", "float32", "tensorfloat32", "bfloat16")
"""Matmul precisions `jax.default_matmul_precision` accepts."""


def objective_metrics(model, objective) -> dict:
    """The default metrics: `objective.metrics(model)`."""
    return objective.metrics(model)


def check_precision(precision: str) -> str:
    """Checks a matmul precision name against `PRECISIONS`."""
    return _validate.choice("precision", precision, PRECISIONS)


class AbstractDynamics(eqx.Module):
    """How a model moves under an objective.

    A new dynamics provides:

    - `precision`: the matmul precision it compiles with ("highest" keeps float32 matmuls in
      full float32 on GPUs and TPUs, never TF32; "default" lets the backend choose).
    - `record_times()`: the times (flow time, or step counts) at which metrics are recorded.
    - `run(...)`: one run, traceable (under `jit`, `vmap`, `lax.map`).
    - `check(objective, hyperparameters)`: checks against an objective and the per-run
      settings, before any compute.
    - `describe()`: its settings as plain JSON values (kept with sweep stores).
    - `working_copies`: how many copies of the parameters a run holds at once (a solver's
      stages, error estimate and candidate; an optimizer's state), for memory estimates.

    Calling a dynamics on a model runs it once, compiled and timed, and returns a `Trajectory`.
    """

    precision: eqx.AbstractVar[str]
    working_copies: eqx.AbstractClassVar[int]

    @abc.abstractmethod
    def record_times(self) -> Float[Array, " T"]:
        """The times at which metrics are recorded, (T,)."""

    @abc.abstractmethod
    def run(self, params, static, objective, key, metrics, save_params: bool = False,
            hyperparameters: dict | None = None):
        """One run from the model `eqx.combine(params, static)`, traceable.

        **Arguments:**

        - `params`, `static`: the model split by `eqx.partition(model, eqx.is_inexact_array)`;
          `params` is the state that moves.
        - `objective`: an `AbstractObjective`; at time t (flow time, or step count) the run
          descends and records `objective.at(t)`, and a flow steps onto its `jump_times()`.
        - `key`: a JAX key for whatever the run draws (minibatches, dropout), or None.
        - `metrics`: (model, objective) -> dict of arrays, recorded at `record_times()`.
        - `save_params`: also record the parameters at every record time.
        - `hyperparameters`: settings of the dynamics that a sweep varies per member (e.g. an
          optimizer's learning rate); None or {} for none.

        **Returns:** (recorded metrics, or (metrics, parameter history) with `save_params`;
        final parameters; statistics: a dict with at least "num_steps" and "status").
        """

    @abc.abstractmethod
    def check(self, objective, hyperparameters: dict | None = None) -> None:
        """Raises `ValueError` if this dynamics cannot run on `objective`.

        **Arguments:**

        - `objective`: an `AbstractObjective` (concrete or abstract).
        - `hyperparameters`: the per-run settings, as for `run` ({} for none), or None where
          they are not known yet (they are then not checked). Traced values pass.
        """

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """The settings as JSON values."""

    def __call__(self, model, objective, *, key=None, metrics=objective_metrics,
                 save_params: bool = False, hyperparameters: dict | None = None) -> Trajectory:
        """Runs this dynamics once from `model`.

        **Arguments:**

        - `model`: the initial model (an Equinox module); its floating-point arrays move.
        - `objective`: an `AbstractObjective`.
        - `key`: a JAX key, where the dynamics draws (minibatches, dropout).
        - `metrics`: (model, objective) -> dict of arrays; default `objective.metrics`.
          Define it once and reuse it: a new function is a new compilation.
        - `save_params`: also keep the model at every record time (`Trajectory.params`).
        - `hyperparameters`: per-run settings, as for `run` (e.g. {"learning_rate": 0.1} for
          a `Train` whose optimizer is a function of them).

        **Returns:** a `Trajectory`; its stats hold "compile_seconds" and "run_seconds" apart.

        Everything is checked before any compute: the settings, the objective, and that the
        model's outputs fit it (`objective.check_model`).
        """
        if not isinstance(objective, AbstractObjective):
            raise ValueError(f"`objective` = {objective!r} is not allowed: expected an "
                             "AbstractObjective such as ssm_jax.Objective or ssm_jax.TargetFit.")
        objective.check_model(model)
        hyperparameters = {} if hyperparameters is None else hyperparameters
        if not isinstance(hyperparameters, dict):
            raise ValueError(f"`hyperparameters` = {hyperparameters!r} is not allowed: expected "
                             "a dict of per-run settings, e.g. {'learning_rate': 0.1}.")
        self.check(objective, hyperparameters)
        # Arrays, so that runs differing only in these values share one compilation.
        hyperparameters = {name: None if value is None else jnp.asarray(value)
                           for name, value in hyperparameters.items()}
        params, static = eqx.partition(model, eqx.is_inexact_array)
        with jax.default_matmul_precision(self.precision):
            (recorded, final, stats), compile_s, run_s = timed_call(
                compiled_run, self, params, static, objective, key, metrics, save_params,
                hyperparameters)
        values, history = recorded if save_params else (recorded, None)
        stats = dict(stats, compile_seconds=compile_s, run_seconds=run_s)
        return Trajectory(ts=self.record_times(), metrics=values,
                          final=eqx.combine(final, static), stats=stats,
                          params=None if history is None else eqx.combine(history, static))


def _run(dynamics, params, static, objective, key, metrics, save_params, hyperparameters):
    return dynamics.run(params, static, objective, key, metrics, save_params, hyperparameters)


# The one compiled single run; tests count its compilations with `eqx.debug.get_num_traces`.
compiled_run = eqx.filter_jit(eqx.debug.assert_max_traces(_run, max_traces=None))


def last(tree):
    """The last entry along axis 0 of every leaf."""
    return jax.tree_util.tree_map(lambda x: x[-1], tree)


def prepend(first, rest):
    """`first` stacked in front of `rest` (leading axis) in every leaf."""
    return jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), first, rest)
