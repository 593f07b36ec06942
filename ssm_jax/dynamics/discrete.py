"""Discrete optimization with optax: full-batch GD or minibatch SGD, momentum, Adam, ...

The whole run is one compiled `lax.scan` (`scan_records`, shared by every trainer of the
package), recording the same metrics as the flow. Plain GD with step eta is the Euler
discretization of the flow with dt = eta. Time is the step count: the step from step k to
k + 1 descends `objective.at(k)`, and the metrics at step k are those of `objective.at(k)`.
"""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .. import _validate
from .base import AbstractDynamics, check_precision, objective_metrics, prepend
from .trajectory import Trajectory, status_code


def scan_records(step, record, state, key, num_records: int, record_every: int):
    """`num_records * record_every` steps as one compiled scan, recording along the way.

    **Arguments:**

    - `step`: (state, key, k) -> state, one optimizer step from step count k to k + 1 (k an
      integer array, so that an objective on a schedule can be taken at its time).
    - `record`: (state, k) -> pytree of arrays, what is recorded at step count k.
    - `state`: the initial state.
    - `key`: split into one key per step.
    - `num_records`, `record_every`: records after every `record_every` steps.

    **Returns:** (final state, records at steps 0, record_every, ..., with a leading axis of
    `num_records + 1`).
    """

    def chunk(state, inputs):
        key, start = inputs
        steps = (jax.random.split(key, record_every), start + jnp.arange(record_every))
        state = jax.lax.scan(lambda s, x: (step(s, *x), None), state, steps)[0]
        return state, record(state, start + record_every)

    starts = record_every * jnp.arange(num_records)
    final, recorded = jax.lax.scan(chunk, state, (jax.random.split(key, num_records), starts))
    return final, prepend(record(state, jnp.asarray(0)), recorded)


class Train(AbstractDynamics):
    """Discrete optimizer steps on the objective from the model.

    **Arguments:**

    - `optimizer`: an optax gradient transformation, e.g. `optax.sgd(0.5)`; or a function of
      hyperparameters that returns one, e.g. `optax.inject_hyperparams(optax.sgd)`, given per
      run (`run(..., hyperparameters={"learning_rate": lr})`, lr > 0), so that a sweep over
      the learning rate compiles once. Reuse the same object: a new one is a new compilation.
    - `steps`: the number of steps; `record_every` must divide it. Metrics are recorded at
      steps 0, record_every, 2 record_every, ..., steps.
    - `batch_size`: None for full-batch steps; otherwise each step descends
      `objective.minibatch(key, batch_size)`, an unbiased estimate on a fresh random batch
      (drawn without replacement; an `Objective`, 1 <= batch_size <= n).
    - `precision`: matmul precision while compiling ("highest" keeps TF32 out on GPUs).
    """

    working_copies = 6  # parameters, gradient, optimizer state, update, records

    optimizer: optax.GradientTransformation | Callable[..., optax.GradientTransformation]
    steps: int = eqx.field(static=True)
    record_every: int = eqx.field(static=True)
    batch_size: int | None = eqx.field(static=True)
    precision: str = eqx.field(static=True)

    def __init__(self, optimizer, steps: int, *, record_every: int = 1,
                 batch_size: int | None = None, precision: str = "highest"):
        if not (isinstance(optimizer, optax.GradientTransformation) or callable(optimizer)):
            raise ValueError(f"`optimizer` = {optimizer!r} is not allowed: expected an optax "
                             "gradient transformation such as optax.sgd(0.1), or a function "
                             "of hyperparameters returning one.")
        self.optimizer = optimizer
        self.steps, self.record_every = _validate.schedule(steps, record_every)
        if batch_size is not None:
            batch_size = _validate.integer("batch_size", batch_size, minimum=1)
        self.batch_size = batch_size
        self.precision = check_precision(precision)

    def record_times(self):
        return jnp.arange(0, self.steps + 1, self.record_every, dtype=jnp.result_type(float))

    def check(self, objective, hyperparameters=None) -> None:
        if hyperparameters is not None:
            self._check_hyperparameters(hyperparameters)
        if self.batch_size is None:
            return
        if not hasattr(objective, "minibatch"):
            raise ValueError(f"`batch_size` needs an objective with per-example weights (an "
                             f"`Objective`); got {type(objective).__name__}.")
        n = objective.labels.shape[0]
        if self.batch_size > n:
            raise ValueError(f"`batch_size` = {self.batch_size} is not allowed: expected "
                             f"1 <= batch_size <= n = {n}, the number of examples.")

    def _check_hyperparameters(self, hyperparameters: dict) -> None:
        if isinstance(self.optimizer, optax.GradientTransformation):
            if hyperparameters:
                raise ValueError(f"`hyperparameters` = {hyperparameters!r} is not allowed with "
                                 "a fixed optimizer: they would be ignored. Give `optimizer` as "
                                 "a function of them, e.g. optax.inject_hyperparams(optax.sgd).")
            return
        if "learning_rate" in hyperparameters:  # a negative rate would ascend, silently
            _validate.number("learning_rate", hyperparameters["learning_rate"], low=0.0,
                             low_open=True)
        if "momentum" in hyperparameters and hyperparameters["momentum"] is not None:
            _validate.number("momentum", hyperparameters["momentum"], low=0.0, high=1.0,
                             high_open=True)
        try:  # builds the transformation only: nothing is computed
            built = self.optimizer(**hyperparameters)
        except TypeError as error:
            raise ValueError(f"`hyperparameters` = {hyperparameters!r} do not fit `optimizer` "
                             f"= {self.optimizer!r}: {error}. Pass them per run, e.g. "
                             "hyperparameters={'learning_rate': 0.1}.") from error
        if not isinstance(built, optax.GradientTransformation):
            raise ValueError(f"`optimizer` = {self.optimizer!r} is not allowed: called with the "
                             f"hyperparameters it returned {built!r}, not an optax gradient "
                             "transformation.")

    def describe(self) -> dict[str, Any]:
        name = getattr(self.optimizer, "__qualname__", type(self.optimizer).__name__)
        return {"kind": "train", "steps": self.steps, "record_every": self.record_every,
                "batch_size": self.batch_size, "optimizer": name}

    def run(self, params, static, objective, key, metrics, save_params=False,
            hyperparameters=None):
        optimizer = self.optimizer
        if not isinstance(optimizer, optax.GradientTransformation):
            optimizer = optimizer(**(hyperparameters or {}))
        model_of = lambda p: eqx.combine(p, static)  # noqa: E731
        key = jax.random.key(0) if key is None else key

        def step(state, key, k):
            params, opt_state = state
            current = objective.at(k)
            batch = current if self.batch_size is None else current.minibatch(
                key, self.batch_size)
            grads = jax.grad(lambda p: batch(model_of(p)))(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state

        def record(state, k):
            recorded = metrics(model_of(state[0]), objective.at(k))
            return (recorded, state[0]) if save_params else recorded

        (final, _), recorded = scan_records(step, record, (params, optimizer.init(params)),
                                            key, self.steps // self.record_every,
                                            self.record_every)
        stats = {"num_steps": jnp.asarray(self.steps),
                 "num_vector_field_evals": jnp.asarray(self.steps),
                 "status": status_code(False, False, final)}
        return recorded, final, stats


def train(model, objective, optimizer: optax.GradientTransformation, steps: int, *,
          record_every: int = 1, batch_size: int | None = None, key=None,
          save_params: bool = False, metrics=objective_metrics,
          precision: str = "highest", hyperparameters: dict | None = None) -> Trajectory:
    """Runs `steps` optimizer steps on `objective` from `model`:
    `Train(optimizer, steps, ...)(model, objective, key=key)`.

    **Arguments:**

    - `model`, `objective`: as for `gradient_flow`.
    - `optimizer`, `steps`, `record_every`, `batch_size`, `precision`: as for `Train`.
    - `key`: draws the minibatches; required with `batch_size`.
    - `save_params`: also keep the model at every recorded step.
    - `metrics`: what to record, as for `gradient_flow`.
    - `hyperparameters`: the optimizer's settings where `optimizer` is a function of them,
      e.g. {"learning_rate": 0.1} with `optax.inject_hyperparams(optax.sgd)`.

    **Returns:** a `Trajectory` whose times are step counts.
    """
    dynamics = Train(optimizer, steps, record_every=record_every, batch_size=batch_size,
                     precision=precision)
    if batch_size is not None and key is None:
        raise ValueError("`key` = None is not allowed with `batch_size`: minibatches are "
                         "drawn with an explicit key.")
    return dynamics(model, objective, key=key, metrics=metrics, save_params=save_params,
                    hyperparameters=hyperparameters)
