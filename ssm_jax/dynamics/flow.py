"""Gradient flow d(theta)/dt = -grad L(theta), integrated with diffrax.

Only metrics are recorded at the save times (`SaveAt(fn=...)`), plus the final model; the
parameter history is kept only on request. The objective travels as the solver's `args`, so
runs that differ in weights, targets, L2 or initial parameters share one compilation.
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx

from .. import _validate
from .._timing import timed_call
from .trajectory import Trajectory, status_code


def vector_field(model, objective):
    """The flow's vector field f(t, params, objective) = -grad L, for the parameters of
    `model` (its floating-point arrays); the rest of the model is held fixed."""
    _, static = eqx.partition(model, eqx.is_inexact_array)

    def field(t, params, objective):
        grad = jax.grad(lambda p: objective(eqx.combine(p, static)))(params)
        return jax.tree_util.tree_map(jnp.negative, grad)

    return field


def vector_field_evals(solver, num_steps):
    """Vector-field evaluations of an explicit Runge-Kutta solve, from its tableau:
    (stages - FSAL) per attempted step and one to start an FSAL method (diffrax's automatic
    first step costs none more; a test counts the calls). NaN for solvers without an
    explicit tableau."""
    if isinstance(solver, diffrax.Euler):
        per_step, start = 1, 0
    elif isinstance(solver, diffrax.AbstractERK):
        tableau = solver.tableau
        per_step = len(tableau.c) + 1 - int(tableau.fsal)
        start = int(tableau.fsal)
    else:
        return jnp.asarray(jnp.nan)
    return num_steps * per_step + start


def integrate(params, static, objective, ts, dt0, solver, controller, max_steps, save_params,
              metrics):
    """One flow, traceable: the body that `gradient_flow` compiles and sweeps batch.
    Returns (recorded metrics[, parameter history]), final parameters, statistics."""
    model_of = lambda p: eqx.combine(p, static)  # noqa: E731
    record = lambda t, p, obj: metrics(model_of(p), obj)  # noqa: E731
    if save_params:
        record = lambda t, p, obj: (metrics(model_of(p), obj), p)  # noqa: E731
    saveat = diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=ts, fn=record),
                                  diffrax.SubSaveAt(t1=True)])
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field(model_of(params), objective)), solver,
        t0=ts[0], t1=ts[-1], dt0=dt0, y0=params, args=objective, saveat=saveat,
        stepsize_controller=controller, max_steps=max_steps, throw=False,
    )
    recorded, final = sol.ys
    final = jax.tree_util.tree_map(lambda x: x[-1], final)
    num_steps = sol.stats["num_steps"]
    stats = {
        "num_steps": num_steps,
        "num_accepted_steps": sol.stats["num_accepted_steps"],
        "num_rejected_steps": sol.stats["num_rejected_steps"],
        "num_vector_field_evals": vector_field_evals(solver, num_steps),
        "status": status_code(
            sol.result == diffrax.RESULTS.max_steps_reached,
            (sol.result != diffrax.RESULTS.successful)
            & (sol.result != diffrax.RESULTS.max_steps_reached),
            final,
        ),
    }
    return recorded, final, stats


# Counts compilations (tests read the count with `eqx.debug.get_num_traces`).
_solve = eqx.filter_jit(eqx.debug.assert_max_traces(integrate, max_traces=None))


def default_controller(rtol, atol) -> diffrax.PIDController:
    """A PID controller whose error norm is the max over components: unlike an RMS norm it
    is unchanged by zero padding, so a padded problem in a sweep takes the very same steps."""
    return diffrax.PIDController(rtol=rtol, atol=atol, norm=optx.max_norm)


def objective_metrics(model, objective) -> dict:
    """The default metrics: `objective.metrics(model)`."""
    return objective.metrics(model)


def save_times(t1, num_saves: int, t0=0.0):
    """`num_saves` evenly spaced times from t0 to t1 (an array, so t1 may vary in a sweep)."""
    num_saves = _validate.integer("num_saves", num_saves, minimum=2)
    t0 = jnp.asarray(t0, dtype=jnp.result_type(float))
    return t0 + (jnp.asarray(t1, t0.dtype) - t0) * jnp.linspace(0.0, 1.0, num_saves)


def gradient_flow(model, objective, t1=None, *, num_saves: int = 100, ts=None,
                  solver=None, stepsize_controller=None, rtol=1e-6, atol=1e-9, dt0=None,
                  max_steps: int = 100_000, save_params: bool = False,
                  metrics=objective_metrics, precision: str = "highest") -> Trajectory:
    """Integrates the gradient flow of `objective` from `model`.

    **Arguments:**

    - `model`: the initial model (an Equinox module); its floating-point arrays are the state.
    - `objective`: an `Objective` or `TargetFit`.
    - `t1`: the final time (> 0). Saves are `num_saves` evenly spaced times on [0, t1],
      unless `ts` gives the save times (increasing; the flow runs from ts[0] to ts[-1]).
    - `solver`: a diffrax solver; default `diffrax.Tsit5()`.
    - `stepsize_controller`: default `PIDController(rtol, atol)` with a max error norm
      (`default_controller`) for adaptive solvers, and `ConstantStepSize()` (with `dt0`
      required) otherwise.
    - `dt0`: the first step; None lets an adaptive controller choose it.
    - `max_steps`: a run that needs more ends with status "max_steps" instead of raising.
    - `save_params`: also keep the model at every save time (`Trajectory.params`).
    - `metrics`: what to record, a function (model, objective) -> dict of arrays; default
      `objective.metrics`. Define it once and reuse it: a new function is a new compilation.
    - `precision`: matmul precision while compiling ("highest" keeps float32 matmuls in full
      float32 on GPUs and TPUs, never TF32/bf16; "default" lets the backend choose).

    **Returns:** a `Trajectory`.
    """
    if ts is None:
        if t1 is None:
            raise ValueError("Give the final time `t1` (> 0) or the save times `ts`.")
        _validate.number("t1", t1, low=0.0, low_open=True)
        ts = save_times(t1, num_saves)
    else:
        ts = jnp.asarray(ts, dtype=jnp.result_type(float))
        if ts.ndim != 1 or ts.size < 2 or not bool(jnp.all(jnp.diff(ts) > 0)):
            raise ValueError("`ts` must be a 1-D array of at least 2 increasing save times.")
    max_steps = _validate.integer("max_steps", max_steps, minimum=1)
    solver = diffrax.Tsit5() if solver is None else solver
    if stepsize_controller is None:
        if isinstance(solver, diffrax.AbstractAdaptiveSolver):
            stepsize_controller = default_controller(rtol, atol)
        else:
            stepsize_controller = diffrax.ConstantStepSize()
    if dt0 is None and not isinstance(stepsize_controller, diffrax.PIDController):
        raise ValueError(f"`dt0` = None is not allowed with {type(stepsize_controller).__name__}:"
                         " give the step size.")
    if dt0 is not None:
        _validate.number("dt0", dt0, low=0.0, low_open=True)
        dt0 = jnp.asarray(dt0, dtype=ts.dtype)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    with jax.default_matmul_precision(precision):
        (recorded, final, stats), compile_s, run_s = timed_call(
            _solve, params, static, objective, ts, dt0, solver, stepsize_controller,
            max_steps, save_params, metrics)
    stats = dict(stats, compile_seconds=compile_s, run_seconds=run_s)
    values, history = recorded if save_params else (recorded, None)
    if history is not None:
        history = eqx.combine(history, static)
    return Trajectory(ts=ts, metrics=values, final=eqx.combine(final, static), stats=stats,
                      params=history)

