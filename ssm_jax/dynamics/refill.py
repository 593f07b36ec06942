"""Gradient flow of many members without lockstep: L lanes each step their own member, and
a lane whose member ends writes its results and takes the next member of a queue of M.

One iteration refills empty lanes, steps every lane (vmapped) as `diffeqsolve`'s loop
steps (solver, controller, clip to t1, saves by interpolation, step counts), so each member's
numbers are those of `Flow.run`, and scatters the results of lanes that end: O(L) work.
"""

from collections.abc import Callable
import functools
from typing import Any, NamedTuple

import diffrax
from diffrax._term import WrapTerm
import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from .. import _validate
from ..objective import AbstractObjective
from . import erk
from .flow import COORDINATES, STEP_COUNTS, Flow, clip_at_jumps, run_stats

_SUCCESS = diffrax.RESULTS.successful
_MAX_STEPS = diffrax.RESULTS.max_steps_reached
_FORWARDS = 1  # the direction of time `diffeqsolve` normalises to; a flow runs forwards


class RefillOutput(NamedTuple):
    """The results of a refill run, member by member in the order given: `recorded`
    (M, T, ...; inf where never reached), `final` (M, ...) and `stats` ((M,) each) as the
    vmapped `Flow.run` gives them, and `lane_efficiency`, member-steps / (lanes x
    iterations): the share of lane-steps that moved a member."""

    recorded: Any
    final: Any
    stats: dict
    lane_efficiency: Float[Array, ""]


class _Lanes(eqx.Module):
    """One member's integrator state per lane (leading axis L); `member` = M: none."""

    member: Int[Array, " L"]
    args: Any  # the member's coordinates and objective arrays
    y: Any
    tprev: Float[Array, " L"]
    tnext: Float[Array, " L"]
    made_jump: Bool[Array, " L"]
    solver_state: Any
    controller_state: Any
    result: Any  # diffrax.RESULTS
    num_steps: Int[Array, " L"]
    num_accepted_steps: Int[Array, " L"]
    num_rejected_steps: Int[Array, " L"]
    save_index: Int[Array, " L"]


class RefillState(eqx.Module):
    """A refill run part way: the queue, the lanes, the outputs written so far and the
    counters. `members_done` (a scalar array) is all a host needs to read for progress."""

    flow: Flow
    params: Any  # the queue's initial parameters, (M, ...)
    static: Any
    objective: AbstractObjective  # the queue's objectives, array leaves (M, ...)
    metrics: Callable
    lanes: _Lanes
    recorded: Any
    final: Any
    ends: dict  # per member (M,): step counts, stop time and diffrax result
    next_member: Int[Array, ""]
    members_done: Int[Array, ""]
    iterations: Int[Array, ""]
    member_steps: Int[Array, ""]


def _row(tree, i):
    return jax.tree_util.tree_map(lambda x: x[i], tree)


def _scatter(buffers, rows, values):
    """`buffers[rows] = values` leaf by leaf; rows out of range (M) are dropped."""
    return jax.tree_util.tree_map(lambda b, v: b.at[rows].set(v, mode="drop"), buffers, values)


def _size(tree) -> int:  # M
    return jax.tree_util.tree_leaves(tree)[0].shape[0]


class _Member(eqx.Module):
    """`Flow.integrate`'s pieces for one member: terms, controller, start, step and saves."""

    flow: Flow
    static: Any
    objective_static: Any
    metrics: Callable
    t1_floor: Float[Array, ""]  # 100 ULP below t1: a step that would end above ends at t1
    clip: bool = eqx.field(static=True)  # whether the objective has jump times to step onto

    def __init__(self, flow, static, objective, metrics):
        self.flow, self.static, self.metrics = flow, static, metrics
        self.t1_floor = functools.reduce(lambda t, _: eqxi.prevbefore(t), range(100), flow.ts[-1])
        arrays, self.objective_static = eqx.partition(objective, eqx.is_array)
        self.clip = jax.eval_shape(lambda a: eqx.combine(a, self.objective_static).jump_times(),
                                   _row(arrays, 0)).shape[-1] > 0

    def args(self, lane_args):
        """What `Flow.run` passes its solver, (coordinates, objective), from a lane's arrays."""
        return lane_args[0], eqx.combine(lane_args[1], self.objective_static)

    def terms(self):
        def field(t, y, args):
            return args[0].field(t, y, args[1], self.static)
        # Wrapped as `diffeqsolve` wraps it: this also sets the first step (without `dt0`,
        # diffrax estimates one only for a bare ODETerm, and otherwise takes 0.01).
        return WrapTerm(diffrax.ODETerm(field), _FORWARDS)

    def controller(self, objective):
        controller = self.flow.stepsize_controller
        if self.clip:
            controller = clip_at_jumps(controller, objective.jump_times())
        return controller.wrap(_FORWARDS)

    def start(self, member, params, arrays):
        """A lane's state at the start of `member`, as `diffeqsolve` initialises it."""
        flow, solver, terms = self.flow, self.flow.solver, self.terms()
        objective = eqx.combine(arrays, self.objective_static)
        coordinates = COORDINATES[flow.coordinates].of(params, self.static, objective)
        t0, t1 = flow.ts[0], flow.ts[-1]
        with jax.numpy_dtype_promotion("standard"):
            y0 = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.result_type(x, t0.dtype)),
                                        coordinates.state(params))
        args = (coordinates, objective)
        tnext, controller_state = self.controller(objective).init(
            terms, t0, t1, y0, flow.dt0, args, solver.func, solver.error_order(terms))
        tnext = jnp.minimum(tnext, t1)
        zero = jnp.zeros((), int)
        return _Lanes(member, (coordinates, arrays), y0, t0, tnext, jnp.zeros((), bool),
                      solver.init(terms, t0, tnext, y0, args), controller_state,
                      jax.tree_util.tree_map(jnp.asarray, _SUCCESS), zero, zero, zero, zero)

    def step(self, lane: _Lanes, active):
        """One pass of `diffeqsolve`'s loop body for one lane (unchanged where not `active`),
        and what the saves inside the step need: accepted, its ends and dense output."""
        solver, t1 = self.flow.solver, self.flow.ts[-1]
        args, terms = self.args(lane.args), self.terms()
        controller = self.controller(args[1])
        # Only a clipping controller makes jumps; otherwise `made_jump` is static False, as in
        # diffrax, so that an FSAL solver never re-evaluates its first stage. The step is
        # diffrax's, with an explicit Runge-Kutta solver's stages unrolled (`erk.step`).
        jumps = isinstance(controller, diffrax.ClipStepSizeController)
        y, y_error, dense_info, solver_state, solver_result = erk.step(
            solver, terms, lane.tprev, lane.tnext, lane.y, args, lane.solver_state,
            lane.made_jump if jumps else False)
        y_error = jax.tree_util.tree_map(lambda e: jnp.where(jnp.isnan(e), jnp.inf, e), y_error)
        keep_step, tprev, tnext, made_jump, controller_state, controller_result = (
            controller.adapt_step_size(lane.tprev, lane.tnext, lane.y, y, args, y_error,
                                       solver.error_order(terms), lane.controller_state))
        tprev = jnp.minimum(tprev, t1)
        # diffrax's `_clip_to_end`.
        tnext = jnp.where(tnext > self.t1_floor,
                          jnp.where(keep_step, t1, tprev + 0.5 * (t1 - tprev)), tnext)
        keep = lambda a, b: jnp.where(keep_step, a, b)  # noqa: E731
        solver_result = diffrax.RESULTS.where(keep_step, solver_result, _SUCCESS)
        result = diffrax.RESULTS.where(lane.result == _SUCCESS, solver_result, lane.result)
        result = diffrax.RESULTS.where(result == _SUCCESS, controller_result, result)
        new = _Lanes(lane.member, lane.args, jax.tree_util.tree_map(keep, y, lane.y), tprev,
                     tnext, keep(made_jump, lane.made_jump),
                     jax.tree_util.tree_map(keep, solver_state, lane.solver_state),
                     controller_state, result, lane.num_steps + 1,
                     lane.num_accepted_steps + jnp.where(keep_step, 1, 0),
                     lane.num_rejected_steps + jnp.where(keep_step, 0, 1), lane.save_index)
        new = jax.tree_util.tree_map(lambda a, b: jnp.where(active, a, b), new, lane)
        return new, (active & keep_step, lane.tprev, lane.tnext, dense_info)

    def params(self, lane: _Lanes):  # the model's parameters at the lane's state
        return lane.args[0].params(lane.y, self.static)

    def saved(self, t, tprev, tnext, dense_info, args):
        """The records at `t` inside the step (tprev, tnext], from its dense output."""
        y = self.flow.solver.interpolation_cls(t0=tprev, t1=tnext, **dense_info).evaluate(t)
        coordinates, objective = self.args(args)
        return self.metrics(coordinates.model(y, self.static), objective.at(t))


def _start_lanes(member: _Member, state: RefillState, members, valid):
    """Lanes started on queue positions `members`; `member` = M where not `valid`."""
    num_members = _size(state.params)
    take = jnp.minimum(members, num_members - 1)
    lanes = jax.vmap(member.start)(take, _row(state.params, take),
                                   _row(eqx.filter(state.objective, eqx.is_array), take))
    return eqx.tree_at(lambda s: s.member, lanes, jnp.where(valid, members, num_members))


def _refill(state: RefillState, member: _Member):
    """Empty lanes start the next members of the queue, in order, a few at a time."""
    num_members, num_lanes = _size(state.params), state.lanes.member.shape[0]
    width = max(1, num_lanes // 8) if num_lanes > 8 else num_lanes

    def cond(carry):
        return jnp.any(carry[0].member >= num_members) & (carry[1] < num_members)

    def start(carry):
        lanes, next_member = carry
        slots = jnp.nonzero(lanes.member >= num_members, size=width, fill_value=num_lanes)[0]
        members = next_member + jnp.arange(width, dtype=next_member.dtype)
        valid = (slots < num_lanes) & (members < num_members)
        started = _start_lanes(member, state, members, valid)
        lanes = _scatter(lanes, jnp.where(valid, slots, num_lanes), started)
        return lanes, next_member + jnp.sum(valid, dtype=next_member.dtype)

    return jax.lax.while_loop(cond, start, (state.lanes, state.next_member))


def _iterate(state: RefillState, member: _Member) -> RefillState:
    """One iteration: empty lanes start members, every lane steps and saves, and a lane whose
    member ends writes its results."""
    lanes, next_member = _refill(state, member)
    num_members, ts = _size(state.params), state.flow.ts
    active = lanes.member < num_members
    lanes, (accepted, step_t0, step_t1, dense_info) = jax.vmap(member.step)(lanes, active)

    # Every save time in (tprev, tnext] of an accepted step, as `SubSaveAt(ts=...)` saves.
    def pending(index):
        return accepted & (index < ts.size) & (ts[jnp.minimum(index, ts.size - 1)] <= step_t1)

    def save(carry):
        index, recorded = carry
        rows = jnp.where(pending(index), lanes.member, num_members)
        values = jax.vmap(member.saved)(ts[jnp.minimum(index, ts.size - 1)], step_t0,
                                        step_t1, dense_info, lanes.args)
        recorded = jax.tree_util.tree_map(
            lambda b, v: b.at[rows, index].set(v, mode="drop"), recorded, values)
        return index + (rows < num_members), recorded

    save_index, recorded = jax.lax.while_loop(lambda c: jnp.any(pending(c[0])), save,
                                              (lanes.save_index, state.recorded))
    lanes = eqx.tree_at(lambda s: s.save_index, lanes, save_index)

    # A member ends where diffrax's loop stops: at t1, on a failure, or at max_steps.
    going = (lanes.tprev < ts[-1]) & (lanes.result == _SUCCESS)
    ended = active & (~going | (lanes.num_steps >= state.flow.max_steps))

    def write(carry):
        lanes, final, ends = carry
        rows = jnp.where(ended, lanes.member, num_members)
        result = jax.vmap(diffrax.RESULTS.where, (0, None, 0))(going, _MAX_STEPS, lanes.result)
        ends = _scatter(ends, rows, {name: getattr(lanes, name) for name in STEP_COUNTS}
                        | {"stop_time": lanes.tprev, "result": result})
        lanes = eqx.tree_at(lambda s: s.member, lanes,
                            jnp.where(ended, num_members, lanes.member))
        return lanes, _scatter(final, rows, jax.vmap(member.params)(lanes)), ends

    lanes, final, ends = jax.lax.cond(jnp.any(ended), write, lambda c: c,
                                      (lanes, state.final, state.ends))

    count = lambda x, total: total + jnp.sum(x, dtype=total.dtype)  # noqa: E731
    return eqx.tree_at(
        lambda s: (s.lanes, s.recorded, s.final, s.ends, s.next_member, s.members_done,
                   s.iterations, s.member_steps), state,
        (lanes, recorded, final, ends, next_member, count(ended, state.members_done),
         state.iterations + 1, count(active, state.member_steps)))


def _check(flow, params, objective, num_lanes) -> int:
    if flow.event is not None:
        raise ValueError(f"`flow.event` = {type(flow.event).__name__} is not allowed in a refill "
                         "run, which has no events: run flows with an event with batching \"map\".")
    if not isinstance(objective, AbstractObjective):
        raise ValueError(f"`objective` = {objective!r} is not allowed: expected an "
                         "AbstractObjective whose array leaves stack the members.")
    leaves = jax.tree_util.tree_leaves((params, eqx.filter(objective, eqx.is_array)))
    sizes = {leaf.shape[0] if leaf.ndim else 0 for leaf in leaves}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"`params` and `objective` have leading sizes {sorted(sizes)}: "
                         "expected all array leaves stacked along one axis of M >= 1 members.")
    return _validate.integer("num_lanes", num_lanes, minimum=1)


def _start(flow, params, static, objective, metrics, num_lanes: int) -> RefillState:
    member, num_members = _Member(flow, static, objective, metrics), _size(params)
    zero = jnp.zeros((), int)
    state = RefillState(flow, params, static, objective, metrics, None, None, None, None,
                        zero, zero, zero, zero)
    # Empty lanes (member M): the first iteration starts the first members.
    empty = jnp.full((num_lanes,), num_members)
    shapes = eqx.filter_eval_shape(_start_lanes, member, state, empty, empty < 0)
    lanes = jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
    lanes = eqx.tree_at(lambda s: s.member, lanes, empty)
    one = _row(lanes, 0)
    record = jax.eval_shape(lambda: member.saved(flow.ts[0], one.tprev, one.tnext,
                                                 member.step(one, True)[1][3], one.args))
    full = lambda x, *shape: jnp.full((num_members, *shape, *x.shape), jnp.inf, x.dtype)  # noqa: E731
    ends = {name: jnp.zeros((num_members,), int) for name in STEP_COUNTS} | {
        "stop_time": full(one.tprev), "result": jax.tree_util.tree_map(
            lambda x: jnp.broadcast_to(x, (num_members,)), one.result)}
    return eqx.tree_at(lambda s: (s.lanes, s.recorded, s.final, s.ends), state,
                       (lanes, jax.tree_util.tree_map(lambda x: full(x, flow.ts.size), record),
                        jax.tree_util.tree_map(full, jax.eval_shape(member.params, one)), ends),
                       is_leaf=lambda x: x is None)


def _advance(state: RefillState, num_iterations) -> RefillState:
    member, num_members = _Member(state.flow, state.static, state.objective,
                                  state.metrics), _size(state.params)
    stop = state.iterations + num_iterations
    dynamic, static = eqx.partition(state, eqx.is_array)

    def cond(dynamic):
        return (dynamic.members_done < num_members) & (dynamic.iterations < stop)

    def body(dynamic):
        return eqx.filter(_iterate(eqx.combine(dynamic, static), member), eqx.is_array)

    return eqx.combine(jax.lax.while_loop(cond, body, dynamic), static)


def _finish(state: RefillState) -> RefillOutput:
    ends = state.ends
    stats = jax.vmap(lambda counts, stop, result, final: run_stats(
        state.flow.solver, counts, stop, result, final))(
        {name: ends[name] for name in STEP_COUNTS}, ends["stop_time"], ends["result"],
        state.final)
    lane_steps = state.lanes.member.shape[0] * state.iterations
    return RefillOutput(state.recorded, state.final, stats,
                        state.member_steps / jnp.maximum(lane_steps, 1))


def _run(flow, params, static, objective, metrics, num_lanes):
    state = _start(flow, params, static, objective, metrics, num_lanes)
    return _finish(_advance(state, jnp.iinfo(state.iterations.dtype).max - 1))


_compiled_start = eqx.filter_jit(_start)
_compiled_advance = eqx.filter_jit(_advance)
_compiled_finish = eqx.filter_jit(_finish)
# One compilation per (M, L) and shapes; tests count them with `eqx.debug.get_num_traces`.
compiled_run = eqx.filter_jit(eqx.debug.assert_max_traces(_run, max_traces=None))


def refill_start(flow, params, static, objective, metrics, *, num_lanes: int) -> RefillState:
    """Starts a refill run: the first `num_lanes` members of the queue in the lanes.

    **Arguments:**

    - `flow`: the `Flow` (without an event) that every member runs.
    - `params`: the members' initial parameters, leaves stacked along a leading axis M, in
      the order the lanes take them (e.g. by predicted cost).
    - `static`: the model's non-array part, shared, from `eqx.partition(model,
      eqx.is_inexact_array)`.
    - `objective`: the members' objectives, array leaves stacked along the axis M.
    - `metrics`: (model, objective) -> dict of arrays, recorded at `flow.ts`.
    - `num_lanes`: L >= 1, the members that step at once.

    **Returns:** a `RefillState`, for `refill_advance` and `refill_finish`.
    """
    num_lanes = _check(flow, params, objective, num_lanes)
    return _compiled_start(flow, params, static, objective, metrics, num_lanes)


def refill_advance(state: RefillState, num_iterations: int) -> RefillState:
    """Advances a refill run by up to `num_iterations` iterations (fewer if all members end);
    one compilation serves every `num_iterations`.

    **Arguments:**

    - `state`: from `refill_start` or `refill_advance`.
    - `num_iterations`: the most iterations to run, >= 1.

    **Returns:** the new `RefillState`; `int(state.members_done)` is the progress in members.
    """
    num_iterations = _validate.integer("num_iterations", num_iterations, minimum=1)
    return _compiled_advance(state, jnp.asarray(num_iterations, state.iterations.dtype))


def refill_finish(state: RefillState) -> RefillOutput:
    """The outputs (a `RefillOutput`, as `refill_run`) of a refill run whose members have
    all ended: `state`, a `RefillState` with `members_done` = M."""
    if int(state.members_done) != _size(state.params):
        raise ValueError(f"`state` has {int(state.members_done)} of {_size(state.params)} "
                         "members done: expected all; advance it further (`refill_advance`).")
    return _compiled_finish(state)


def refill_run(flow, params, static, objective, metrics, *, num_lanes: int) -> RefillOutput:
    """Runs `flow` for M members in `num_lanes` lanes that each step on their own: per
    member, what `jax.vmap(lambda p, o: flow.run(p, static, o, None, metrics))` gives. One
    compiled call (start, advance until all end, finish), shared by members that differ only
    in values; run it under `jax.default_matmul_precision(flow.precision)`, as `Flow.run`.

    **Arguments:** as `refill_start`.

    **Returns:** a `RefillOutput`: (recorded, final, stats) as the vmapped `Flow.run`, and the
    lane efficiency.
    """
    num_lanes = _check(flow, params, objective, num_lanes)
    return compiled_run(flow, params, static, objective, metrics, num_lanes)
