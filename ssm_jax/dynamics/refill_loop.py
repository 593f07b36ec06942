"""The loop of a refill run: L lanes each step their own member (`lane.MemberSolve`), and a
lane whose member ends writes its results and takes the next member of a queue of M.

One iteration refills empty lanes, steps every lane (vmapped), writes the saves that fall
inside each lane's step, and scatters the results of lanes that end: O(L) work.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ..objective import AbstractObjective
from .flow import STEP_COUNTS, Flow, run_stats
from .lane import LaneState, MemberSolve, row
from .lane_layout import AbstractLaneLayout


class RefillOutput(NamedTuple):
    """The results of a refill run, member by member in the order given: `recorded`
    (M, T, ...; inf where never reached), `final` (M, ...) and `stats` ((M,) each) as the
    vmapped `Flow.run` gives them, and `lane_efficiency`, member-steps / (lanes x
    iterations): the share of lane-steps that moved a member."""

    recorded: Any
    final: Any
    stats: dict
    lane_efficiency: Float[Array, ""]


class RefillState(eqx.Module):
    """A refill run part way: the queue, the lanes, the outputs written so far and the
    counters. `members_done` (a scalar array) is all a host needs to read for progress."""

    flow: Flow
    params: Any  # the queue's initial parameters, (M, ...)
    static: Any
    objective: AbstractObjective  # the queue's objectives, array leaves (M, ...)
    metrics: Callable
    layout: AbstractLaneLayout
    lanes: LaneState
    recorded: Any
    final: Any
    ends: dict  # per member (M,): step counts, stop time and diffrax result
    next_member: Int[Array, ""]
    members_done: Int[Array, ""]
    iterations: Int[Array, ""]
    member_steps: Int[Array, ""]


def _scatter(buffers, rows, values):
    """`buffers[rows] = values` leaf by leaf; rows out of range (M) are dropped."""
    return jax.tree_util.tree_map(lambda b, v: b.at[rows].set(v, mode="drop"), buffers, values)


def queue_size(tree) -> int:
    """M, the members stacked along the leading axis of `tree`'s leaves."""
    return jax.tree_util.tree_leaves(tree)[0].shape[0]


def _member_solve(state: RefillState) -> MemberSolve:
    return state.layout.member_solve(state.flow, state.params, state.static, state.objective,
                                     state.metrics)


def _start_lanes(member: MemberSolve, state: RefillState, members, valid):
    """Lanes started on queue positions `members`; `member` = M where not `valid`."""
    num_members = queue_size(state.params)
    take = jnp.minimum(members, num_members - 1)
    lanes = jax.vmap(member.start)(take, row(state.params, take),
                                   row(eqx.filter(state.objective, eqx.is_array), take))
    return eqx.tree_at(lambda s: s.member, lanes, jnp.where(valid, members, num_members))


def _refill(state: RefillState, member: MemberSolve):
    """Empty lanes start the next members of the queue, in order, a few at a time."""
    num_members = queue_size(state.params)
    num_lanes = state.lanes.member.shape[0]
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


def _iterate(state: RefillState, member: MemberSolve) -> RefillState:
    """One iteration: empty lanes start members, every lane steps and saves, and a lane whose
    member ends writes its results."""
    lanes, next_member = _refill(state, member)
    num_members = queue_size(state.params)
    ts = state.flow.ts
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
    going = (lanes.tprev < ts[-1]) & (lanes.result == diffrax.RESULTS.successful)
    ended = active & (~going | (lanes.num_steps >= state.flow.max_steps))

    def write(carry):
        lanes, final, ends = carry
        rows = jnp.where(ended, lanes.member, num_members)
        result = jax.vmap(diffrax.RESULTS.where, (0, None, 0))(
            going, diffrax.RESULTS.max_steps_reached, lanes.result)
        ends = _scatter(ends, rows, {name: getattr(lanes, name) for name in STEP_COUNTS}
                        | {"stop_time": lanes.tprev, "result": result})
        lanes = eqx.tree_at(lambda s: s.member, lanes,
                            jnp.where(ended, num_members, lanes.member))
        return lanes, _scatter(final, rows, jax.vmap(member.params)(lanes)), ends

    lanes, final, ends = jax.lax.cond(jnp.any(ended), write, lambda c: c,
                                      (lanes, state.final, state.ends))

    def count(x, total):
        return total + jnp.sum(x, dtype=total.dtype)

    return eqx.tree_at(
        lambda s: (s.lanes, s.recorded, s.final, s.ends, s.next_member, s.members_done,
                   s.iterations, s.member_steps), state,
        (lanes, recorded, final, ends, next_member, count(ended, state.members_done),
         state.iterations + 1, count(active, state.member_steps)))


def start(flow, params, static, objective, metrics, num_lanes: int,
          layout: AbstractLaneLayout) -> RefillState:
    """A refill run before its first iteration: empty lanes, outputs of inf, counters at 0
    (arguments as `refill.refill_start`)."""
    num_members = queue_size(params)
    zero = jnp.zeros((), int)
    state = RefillState(flow, params, static, objective, metrics, layout, None, None, None,
                        None, zero, zero, zero, zero)
    member = _member_solve(state)
    # Empty lanes (member M): the first iteration starts the first members.
    empty = jnp.full((num_lanes,), num_members)
    shapes = eqx.filter_eval_shape(_start_lanes, member, state, empty, empty < 0)
    lanes = jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
    lanes = eqx.tree_at(lambda s: s.member, lanes, empty)
    one = row(lanes, 0)
    record = jax.eval_shape(lambda: member.saved(flow.ts[0], one.tprev, one.tnext,
                                                 member.step(one, True)[1][3], one.args))

    def full(x, *shape):
        return jnp.full((num_members, *shape, *x.shape), jnp.inf, x.dtype)

    ends = {name: jnp.zeros((num_members,), int) for name in STEP_COUNTS}
    ends["stop_time"] = full(one.tprev)
    ends["result"] = jax.tree_util.tree_map(
        lambda x: jnp.broadcast_to(x, (num_members,)), one.result)
    recorded = jax.tree_util.tree_map(lambda x: full(x, flow.ts.size), record)
    final = jax.tree_util.tree_map(full, jax.eval_shape(member.params, one))
    return eqx.tree_at(lambda s: (s.lanes, s.recorded, s.final, s.ends), state,
                       (lanes, recorded, final, ends), is_leaf=lambda x: x is None)


def advance(state: RefillState, num_iterations) -> RefillState:
    """`state` after up to `num_iterations` more iterations, or fewer where every member has
    ended: one `lax.while_loop`, whatever `num_iterations` (an array)."""
    member = _member_solve(state)
    num_members = queue_size(state.params)
    stop = state.iterations + num_iterations
    dynamic, static = eqx.partition(state, eqx.is_array)

    def cond(dynamic):
        return (dynamic.members_done < num_members) & (dynamic.iterations < stop)

    def body(dynamic):
        return eqx.filter(_iterate(eqx.combine(dynamic, static), member), eqx.is_array)

    return eqx.combine(jax.lax.while_loop(cond, body, dynamic), static)


def finish(state: RefillState) -> RefillOutput:
    """The outputs of a refill run whose members have all ended: each member's statistics
    as `Flow.run` reports them, and the lane efficiency."""
    ends = state.ends
    stats = jax.vmap(lambda counts, stop, result, final: run_stats(
        state.flow.solver, counts, stop, result, final))(
        {name: ends[name] for name in STEP_COUNTS}, ends["stop_time"], ends["result"],
        state.final)
    lane_steps = state.lanes.member.shape[0] * state.iterations
    return RefillOutput(state.recorded, state.final, stats,
                        state.member_steps / jnp.maximum(lane_steps, 1))
