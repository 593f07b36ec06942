"""Discrete optimization with optax: full-batch GD or minibatch SGD, momentum, Adam, ...

The whole run is one compiled `lax.scan`, recording the same metrics as `gradient_flow`.
Plain GD with step eta is the Euler discretization of the flow with dt = eta.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .. import _validate
from .._timing import timed_call
from ..objective import Objective
from .flow import objective_metrics
from .trajectory import Trajectory, status_code


def _minibatch(objective, key, batch_size):
    """The objective on a random batch of `batch_size` examples (drawn without replacement),
    as zero weight on the others and n/B on the batch: an unbiased estimate of the full loss."""
    n = objective.labels.shape[0]
    chosen = jax.random.permutation(key, n)[:batch_size]
    scale = jnp.zeros(n, objective.example_weights.dtype).at[chosen].set(n / batch_size)
    return eqx.tree_at(lambda o: o.example_weights, objective, objective.example_weights * scale)


def optimize(params, static, objective, key, optimizer, num_records, record_every, batch_size,
             save_params, metrics):
    """One training run, traceable: the body that `train` compiles and sweeps batch.
    Returns (recorded metrics[, parameter history]), final parameters, status."""
    model_of = lambda p: eqx.combine(p, static)  # noqa: E731

    def step(carry, key):
        params, opt_state = carry
        batch = objective if batch_size is None else _minibatch(objective, key, batch_size)
        grads = jax.grad(lambda p: batch(model_of(p)))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    def record(params):
        recorded = metrics(model_of(params), objective)
        return (recorded, params) if save_params else recorded

    def chunk(carry, key):
        carry, _ = jax.lax.scan(step, carry, jax.random.split(key, record_every))
        return carry, record(carry[0])

    carry = (params, optimizer.init(params))
    (final, _), recorded = jax.lax.scan(chunk, carry, jax.random.split(key, num_records))
    first = record(params)
    recorded = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), first,
                                      recorded)
    return recorded, final, status_code(False, False, final)


# Counts compilations (tests read the count with `eqx.debug.get_num_traces`).
_run = eqx.filter_jit(eqx.debug.assert_max_traces(optimize, max_traces=None))


def train(model, objective, optimizer: optax.GradientTransformation, steps: int, *,
          record_every: int = 1, batch_size: int | None = None, key=None,
          save_params: bool = False, metrics=objective_metrics,
          precision: str = "highest") -> Trajectory:
    """Runs `steps` optimizer steps on `objective` from `model`.

    **Arguments:**

    - `model`, `objective`: as for `gradient_flow`.
    - `optimizer`: any optax gradient transformation, e.g. `optax.sgd(0.5)`. Reuse the same
      object across calls: a new one is a new function to compile.
    - `steps`: the number of steps; `record_every` must divide it. Metrics are recorded at
      steps 0, record_every, 2 record_every, ..., steps.
    - `batch_size`: None for full-batch steps; otherwise each step uses a fresh random batch
      of that many examples (an `Objective` only), drawn with `key`.
    - `save_params`: also keep the model at every recorded step.
    - `metrics`: what to record, as for `gradient_flow`.
    - `precision`: matmul precision while compiling, as for `gradient_flow`.

    **Returns:** a `Trajectory` whose times are step counts.
    """
    steps, record_every = _validate.schedule(steps, record_every)
    if batch_size is not None:
        if not isinstance(objective, Objective):
            raise ValueError("`batch_size` needs an `Objective` (per-example weights); "
                             f"got {type(objective).__name__}.")
        n = objective.labels.shape[0]
        batch_size = _validate.integer("batch_size", batch_size, minimum=1)
        if batch_size > n:
            raise ValueError(f"`batch_size` = {batch_size} is not allowed: at most n = {n}.")
        if key is None:
            raise ValueError("`key` = None is not allowed with `batch_size`: minibatches are "
                             "drawn with an explicit key.")
    key = jax.random.key(0) if key is None else key
    params, static = eqx.partition(model, eqx.is_inexact_array)
    with jax.default_matmul_precision(precision):
        (recorded, final, status), compile_s, run_s = timed_call(
            _run, params, static, objective, key, optimizer, steps // record_every,
            record_every, batch_size, save_params, metrics)
    values, history = recorded if save_params else (recorded, None)
    stats = {"num_steps": jnp.asarray(steps), "num_vector_field_evals": jnp.asarray(steps),
             "status": status, "compile_seconds": compile_s, "run_seconds": run_s}
    ts = jnp.arange(0, steps + 1, record_every, dtype=jnp.result_type(float))
    return Trajectory(ts=ts, metrics=values, final=eqx.combine(final, static), stats=stats,
                      params=None if history is None else eqx.combine(history, static))
