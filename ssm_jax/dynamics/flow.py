"""Gradient flow d(theta)/dt = -grad L(theta), integrated with diffrax.

`Flow` is the package's one integrator: `gradient_flow`, sweeps, the importance experiment
and the solver benchmarks all run its `run`, and the closed-form references integrate their
scalar mode equations with its `integrate`, the only call of `diffrax.diffeqsolve` here.
Only metrics are recorded at the save times (`SaveAt(fn=...)`), plus the final model; the
parameter history is kept only on request. The objective travels as the solver's `args`, and
save times and tolerances are array leaves, so runs that differ in weights, targets, L2,
initial parameters, final time or tolerance share one compilation.

An objective that changes with time (class weights on a schedule) is descended as
`objective.at(t)`, and the step-size controller steps exactly onto its `jump_times()`.
"""

from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float
import numpy as np
import optimistix as optx

from .. import _validate
from . import class_affine, erk
from .base import AbstractDynamics, check_precision, last, objective_metrics
from .coordinates import AbstractCoordinates, Parameters, vector_field
from .events import AbstractEvent
from .trajectory import Trajectory, status_code


def coordinates_named(name: str) -> AbstractCoordinates:
    """The coordinates a flow integrates, from their plain name (as `Flow(coordinates=...)`
    and TOML configurations give it, and as `Flow.describe()` reports it).

    **Arguments:**

    - `name`: "parameters" (`Parameters`) or "class_affine" (`ClassAffine`).

    **Returns:** an instance of the named coordinates; a `ValueError` naming `coordinates`
    for any other name.
    """
    kinds = (Parameters, class_affine.ClassAffine)
    for kind in kinds:
        if name == kind.name:
            return kind()
    names = ", ".join(repr(kind.name) for kind in kinds)
    raise ValueError(f"`coordinates` = {name!r} is not allowed: expected one of {names}, or "
                     "an AbstractCoordinates instance such as ssm_jax.ClassAffine().")


def _check_coordinates(coordinates) -> AbstractCoordinates:
    if isinstance(coordinates, AbstractCoordinates):
        return coordinates
    if isinstance(coordinates, type) and issubclass(coordinates, AbstractCoordinates):
        raise ValueError(f"`coordinates` = {coordinates.__name__} is not allowed: pass an "
                         f"instance, e.g. {coordinates.__name__}().")
    return coordinates_named(coordinates)


def vector_field_evals(solver, num_steps):
    """Vector-field evaluations of an explicit Runge-Kutta solve, from its tableau:
    (stages - FSAL) per attempted step and one to start an FSAL method (diffrax's automatic
    first step costs none more; a test counts the calls); an `erk.Unrolled` solver counts as
    the one it wraps. NaN for solvers without an explicit tableau."""
    solver = erk.stepped(solver)
    if isinstance(solver, diffrax.Euler):
        per_step, start = 1, 0
    elif isinstance(solver, diffrax.AbstractERK):
        tableau = solver.tableau
        per_step = len(tableau.c) + 1 - int(tableau.fsal)
        start = int(tableau.fsal)
    else:
        return jnp.asarray(jnp.nan)
    return num_steps * per_step + start


STEP_COUNTS = ("num_steps", "num_accepted_steps", "num_rejected_steps")
"""The step counts diffrax's loop keeps, and a flow's statistics report."""


def run_stats(solver, counts: dict, stop_time, result, final, stopped=False) -> dict:
    """A flow's statistics from how diffrax's loop ended: its `STEP_COUNTS`, vector-field
    evaluations, stop time and status (`trajectory.STATUS`; a stop by an event is ok). Shared
    by `Flow.run` and the refill lanes, so both report alike."""
    reached_max = result == diffrax.RESULTS.max_steps_reached
    failed = (result != diffrax.RESULTS.successful) & ~stopped & ~reached_max
    return dict(counts, num_vector_field_evals=vector_field_evals(solver, counts["num_steps"]),
                stop_time=stop_time, status=status_code(reached_max, failed, final))


def default_controller(rtol, atol) -> diffrax.PIDController:
    """A PID controller whose error norm is the max over components: unlike an RMS norm it
    is unchanged by zero padding, so a padded problem in a sweep takes the very same steps.
    The tolerances are arrays, so runs at other tolerances share one compilation."""
    return diffrax.PIDController(rtol=_floating(rtol), atol=_floating(atol), norm=optx.max_norm)


def clip_at_jumps(controller, jump_ts):
    """`controller` made to step onto the times `jump_ts` (to just before and just after each,
    restarting the solver there), where the vector field jumps: wrapped in a
    `diffrax.ClipStepSizeController`, or, if it is one already, with the times added to its
    own. A constant step size is returned as it is: its steps fall where `dt0` puts them.

    **Arguments:**

    - `controller`: a diffrax step-size controller.
    - `jump_ts`: the jump times, (j,), an array leaf.

    **Returns:** the controller to integrate with.
    """
    if not isinstance(controller, diffrax.AbstractAdaptiveStepSizeController):
        return controller
    jump_ts = _floating(jump_ts)
    if isinstance(controller, diffrax.ClipStepSizeController):
        own = controller.jump_ts
        merged = jump_ts if own is None else jnp.concatenate([own, jump_ts.astype(own.dtype)])
        # diffrax sorts the jump times when the solve starts (`wrap`).
        return eqx.tree_at(lambda c: c.jump_ts, controller, merged,
                           is_leaf=lambda x: x is None)
    return diffrax.ClipStepSizeController(controller, jump_ts=jump_ts)


def _floating(x):
    """`x` as an array, keeping a floating dtype it already has (a float32 benchmark)."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def save_times(t1, num_saves: int, t0=0.0):
    """`num_saves` evenly spaced times from t0 to t1 (an array, so t1 may vary in a sweep)."""
    num_saves = _validate.integer("num_saves", num_saves, minimum=2)
    t0 = jnp.asarray(t0, dtype=jnp.result_type(float))
    return t0 + (jnp.asarray(t1, t0.dtype) - t0) * jnp.linspace(0.0, 1.0, num_saves)


def _solver_name(solver) -> str:
    """The method's name: "Tsit5" for `Tsit5()` and for `erk.Unrolled(Tsit5())`."""
    return type(erk.stepped(solver)).__name__


def _check_solver(solver):
    if isinstance(solver, type) and issubclass(solver, diffrax.AbstractSolver):
        raise ValueError(f"`solver` = {solver.__name__} is not allowed: pass an instance, "
                         f"e.g. diffrax.{solver.__name__}().")
    if not isinstance(solver, diffrax.AbstractSolver):
        raise ValueError(f"`solver` = {solver!r} is not allowed: expected a diffrax solver "
                         "instance such as diffrax.Tsit5() or diffrax.Kvaerno5().")
    return solver


def _check_controller(controller, solver):
    if isinstance(controller, type) and issubclass(controller,
                                                   diffrax.AbstractStepSizeController):
        raise ValueError(f"`stepsize_controller` = {controller.__name__} is not allowed: pass an "
                         f"instance, e.g. diffrax.{controller.__name__}(...), or None for the "
                         "default.")
    if not isinstance(controller, diffrax.AbstractStepSizeController):
        raise ValueError(f"`stepsize_controller` = {controller!r} is not allowed: expected a "
                         "diffrax step-size controller instance, or None for the default.")
    if isinstance(controller, diffrax.AbstractAdaptiveStepSizeController) and not isinstance(
            solver, diffrax.AbstractAdaptiveSolver):
        raise ValueError(f"`stepsize_controller` = {type(controller).__name__} is not allowed "
                         f"with `solver` = {_solver_name(solver)}, which gives no error "
                         "estimate: use diffrax.ConstantStepSize() with a step `dt0`, or an "
                         "adaptive solver such as diffrax.Tsit5().")
    return controller


def _check_save_times(t1, num_saves, ts):
    if ts is None:
        if t1 is None:
            raise ValueError("Give the final time `t1` (> 0) or the save times `ts`.")
        _validate.number("t1", t1, low=0.0, low_open=True)
        return save_times(t1, num_saves)
    if t1 is not None:
        raise ValueError(f"`t1` = {t1!r} and `ts` are both given: give one, the final time or "
                         "the save times (the flow runs from ts[0] to ts[-1]).")
    ts = _floating(ts)
    allowed = "expected a 1-D array of at least 2 increasing finite save times"
    if ts.ndim != 1 or ts.size < 2:
        raise ValueError(f"`ts` has shape {ts.shape}: {allowed}.")
    if _validate.is_concrete(ts) and not bool(jnp.all(jnp.isfinite(ts))
                                              & jnp.all(jnp.diff(ts) > 0)):
        shown = np.array2string(np.asarray(ts), threshold=8)
        raise ValueError(f"`ts` = {shown} is not allowed: {allowed}.")
    return ts


class Flow(AbstractDynamics):
    """Gradient flow of the objective, integrated with diffrax from the model.

    **Arguments:**

    - `t1`: the final time (> 0). Saves are `num_saves` evenly spaced times on [0, t1],
      unless `ts` gives the save times (increasing; the flow runs from ts[0] to ts[-1]).
    - `solver`: a diffrax solver instance; default `diffrax.Tsit5()`. Wrapped as
      `erk.Unrolled(diffrax.Tsit5())` (see `erk.unrolled`), an explicit Runge-Kutta solver
      steps with its stages unrolled, as the refill lanes step it: the same numbers up to
      round-off, in fewer, fused operations (1.3x faster per member-step in refill lanes on
      W2; about the same one member at a time), ~1 s longer to compile. Sweeps, which
      compile once for many members, step so.
    - `stepsize_controller`: default `default_controller(rtol, atol)` (a PID controller with
      a max error norm) for adaptive solvers, and `ConstantStepSize()` (with `dt0`
      required) otherwise. An adaptive controller steps exactly onto the objective's
      `jump_times()` (e.g. a weight switch); with a constant step a switch at t_s acts from
      the first step that starts at or after t_s, as in discrete training.
    - `rtol`, `atol`: the default controller's tolerances (> 0).
    - `dt0`: the first step; None lets an adaptive controller choose it.
    - `max_steps`: a run that needs more ends with status "max_steps" instead of raising.
    - `event`: an `AbstractEvent` (e.g. `SteadyState`) that ends the run early; later saves
      repeat the state where it stopped, and stats["stop_time"] says when.
    - `precision`: matmul precision while compiling ("highest" keeps TF32 out on GPUs).
    - `coordinates`: what is integrated, an `AbstractCoordinates` instance, or its name
      (`coordinates_named`). `Parameters()` ("parameters", the default): the model's
      parameters. `ClassAffine()` ("class_affine"): for a UFM under the square loss with one
      weight per class, the classifier and one affine map per class that carries all of its
      features (`dynamics.class_affine`): the same flow exactly, at a step cost that does not
      grow with the number of examples. The solver's error is then controlled on that state,
      so the numbers agree with the parameters' to the tolerance, not to round-off.
    """

    working_copies = 16  # up to 7 stages, error, candidate, dense output, saves

    ts: Float[Array, " T"]
    solver: diffrax.AbstractSolver
    stepsize_controller: diffrax.AbstractStepSizeController
    dt0: Float[Array, ""] | None
    event: AbstractEvent | None
    max_steps: int = eqx.field(static=True)
    precision: str = eqx.field(static=True)
    coordinates: AbstractCoordinates  # settings only: no array leaves

    def __init__(self, t1=None, *, num_saves: int = 100, ts=None, solver=None,
                 stepsize_controller=None, rtol=1e-6, atol=1e-9, dt0=None,
                 max_steps: int = 100_000, event: AbstractEvent | None = None,
                 precision: str = "highest",
                 coordinates: AbstractCoordinates | str = "parameters"):
        self.ts = _check_save_times(t1, num_saves, ts)
        self.solver = _check_solver(diffrax.Tsit5() if solver is None else solver)
        # Checked even where unused (a fixed step), so that a wrong tolerance never passes.
        _validate.number("rtol", rtol, low=0.0, low_open=True)
        _validate.number("atol", atol, low=0.0, low_open=True)
        if stepsize_controller is None:
            if isinstance(self.solver, diffrax.AbstractAdaptiveSolver):
                stepsize_controller = default_controller(rtol, atol)
            else:
                stepsize_controller = diffrax.ConstantStepSize()
        self.stepsize_controller = _check_controller(stepsize_controller, self.solver)
        if dt0 is None and isinstance(stepsize_controller, diffrax.ConstantStepSize):
            raise ValueError(f"`dt0` = None is not allowed with {_solver_name(self.solver)} "
                             "and a constant step size: give the step size `dt0` (> 0), or "
                             "an adaptive solver such as diffrax.Tsit5().")
        if dt0 is not None:
            _validate.number("dt0", dt0, low=0.0, low_open=True)
            dt0 = jnp.asarray(dt0, dtype=self.ts.dtype)
        self.dt0 = dt0
        if event is not None and not isinstance(event, AbstractEvent):
            raise ValueError(f"`event` = {event!r} is not allowed: expected an AbstractEvent "
                             "such as ssm_jax.dynamics.SteadyState(tol).")
        self.event = event
        self.max_steps = _validate.integer("max_steps", max_steps, minimum=1)
        self.precision = check_precision(precision)
        self.coordinates = _check_coordinates(coordinates)

    def record_times(self):
        return self.ts

    def check(self, objective, hyperparameters=None) -> None:
        # Any objective with a gradient that the coordinates describe; the flow has no
        # per-run settings to take.
        self.coordinates.check(objective)
        if hyperparameters:
            raise ValueError(f"`hyperparameters` = {hyperparameters!r} is not allowed: gradient "
                             "flow takes none (its times and tolerances are set in `Flow`).")

    def describe(self) -> dict[str, Any]:
        controller = self.stepsize_controller
        tolerance = lambda name: (float(getattr(controller, name))  # noqa: E731
                                  if hasattr(controller, name) else None)
        return {"kind": "flow", "t1": float(self.ts[-1]), "num_saves": int(self.ts.size),
                "solver": _solver_name(self.solver),
                "unrolled": isinstance(self.solver, erk.Unrolled), "rtol": tolerance("rtol"),
                "atol": tolerance("atol"), "max_steps": self.max_steps,
                "event": None if self.event is None else type(self.event).__name__,
                "coordinates": self.coordinates.name}

    def integrate(self, field, y0, args, record, jump_ts=None,
                  condition=None) -> diffrax.Solution:
        """Integrates dy/dt = field(t, y, args) from y0 over the save times: the package's one
        call of `diffrax.diffeqsolve`, traceable, never raising (the result says how it ended).

        **Arguments:**

        - `field`: the vector field (t, y, args) -> dy/dt; `run` passes -grad L.
        - `y0`: the initial state, any pytree of arrays.
        - `args`: passed to `field`, `record` and the event.
        - `record`: (t, y, args) -> what to save at each save time.
        - `jump_ts`: times where `field` jumps, (j,), stepped onto exactly (`clip_at_jumps`);
          None or (0,) for none.
        - `condition`: (t, y, args) -> whether the event ends the run; default the flow's
          event on (`field`, t, y, args).

        **Returns:** the diffrax `Solution`: `ys` = (records at the save times, the state at
        the end); `ts[1]` = the time it ended (t1, or where the event stopped it).
        """
        if condition is None and self.event is not None:
            condition = lambda t, y, args: self.event(field, t, y, args)  # noqa: E731
        event = None if condition is None else diffrax.Event(
            lambda t, y, args, **_: condition(t, y, args))
        controller = self.stepsize_controller
        if jump_ts is not None and jnp.shape(jump_ts)[-1]:
            controller = clip_at_jumps(controller, jump_ts)
        return diffrax.diffeqsolve(
            diffrax.ODETerm(field), self.solver, t0=self.ts[0], t1=self.ts[-1], dt0=self.dt0,
            y0=y0, args=args, stepsize_controller=controller,
            max_steps=self.max_steps, throw=False, event=event,
            saveat=diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=self.ts, fn=record),
                                        diffrax.SubSaveAt(t1=True)]),
        )

    def run(self, params, static, objective, key, metrics, save_params=False,
            hyperparameters=None):
        # The state is the coordinates' (the parameters, or a reduction); the solver's args
        # carry the member's frame beside the objective, and metrics and parameters are read
        # back from the state through it.
        coordinates = self.coordinates
        frame = coordinates.of(params, static, objective)

        def record(t, y, args):
            frame, objective = args
            recorded = metrics(coordinates.model(frame, y, static), objective.at(t))
            return (recorded, coordinates.params(frame, y, static)) if save_params else recorded

        condition = None if self.event is None else (
            lambda t, y, a: self.event(vector_field(eqx.combine(params, static), a[1]), t,
                                       coordinates.params(a[0], y, static), a[1]))
        sol = self.integrate(lambda t, y, a: coordinates.field(a[0], t, y, a[1], static),
                             coordinates.state(frame, params), (frame, objective), record,
                             jump_ts=objective.jump_times(), condition=condition)
        recorded, final = sol.ys
        final = coordinates.params(frame, last(final), static)
        stop_time = sol.ts[1][-1]
        stopped = sol.result == diffrax.RESULTS.event_occurred
        if self.event is not None:
            # diffrax leaves saves after an event unwritten: they repeat the state at rest.
            after = self.ts > stop_time
            at_stop = metrics(eqx.combine(final, static), objective.at(stop_time))
            if save_params:
                at_stop = (at_stop, final)
            recorded = jax.tree_util.tree_map(
                lambda saved, end: jnp.where(
                    stopped & jnp.reshape(after, after.shape + (1,) * (saved.ndim - 1)),
                    end[None], saved), recorded, at_stop)
        counts = {name: sol.stats[name] for name in STEP_COUNTS}
        return recorded, final, run_stats(self.solver, counts, stop_time, sol.result, final,
                                          stopped)


def gradient_flow(model, objective, t1=None, *, num_saves: int = 100, ts=None,
                  solver=None, stepsize_controller=None, rtol=1e-6, atol=1e-9, dt0=None,
                  max_steps: int = 100_000, event: AbstractEvent | None = None,
                  save_params: bool = False, metrics=objective_metrics,
                  precision: str = "highest") -> Trajectory:
    """Integrates the gradient flow of `objective` from `model`: `Flow(...)(model, objective)`.

    **Arguments:**

    - `model`: the initial model (an Equinox module); its floating-point arrays are the state.
    - `objective`: an `Objective` or `TargetFit` (any `AbstractObjective`).
    - `t1`, `num_saves`, `ts`, `solver`, `stepsize_controller`, `rtol`, `atol`, `dt0`,
      `max_steps`, `event`, `precision`: as for `Flow`.
    - `save_params`: also keep the model at every save time (`Trajectory.params`).
    - `metrics`: what to record, a function (model, objective) -> dict of arrays; default
      `objective.metrics`. Define it once and reuse it: a new function is a new compilation.

    **Returns:** a `Trajectory`.
    """
    flow = Flow(t1, num_saves=num_saves, ts=ts, solver=solver,
                stepsize_controller=stepsize_controller, rtol=rtol, atol=atol, dt0=dt0,
                max_steps=max_steps, event=event, precision=precision)
    return flow(model, objective, metrics=metrics, save_params=save_params)
