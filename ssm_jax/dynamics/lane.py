"""One member of a refill run in its lane: `diffeqsolve`'s loop state and loop body for that
member alone, built from `Flow.integrate`'s pieces (terms, controller, solver, saves), so that
its numbers are those of `Flow.run`.
"""

from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from . import diffrax_loop, erk
from .canonical_dots import canonical_dots
from .flow import Flow, clip_at_jumps

_FORWARDS = 1  # the direction of time `diffeqsolve` normalises to; a flow runs forwards


def row(tree, i):
    """Row `i` of every leaf of `tree` (one member of a stack, or a gather of several)."""
    return jax.tree_util.tree_map(lambda x: x[i], tree)


class LaneState(eqx.Module):
    """One member's integrator state in a lane, as `diffeqsolve`'s loop carries it (a leading
    axis L stacks the lanes); `member` = M: none."""

    member: Int[Array, " L"]
    args: Any  # the member's frame (its coordinates' data) and objective arrays
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


class MemberSolve(eqx.Module):
    """`Flow.integrate`'s pieces for one member of a stack: terms, controller, start, step and
    saves. The objective's non-array part and the model's are shared by the whole stack."""

    flow: Flow
    static: Any
    objective_static: Any
    metrics: Callable
    t1_floor: Float[Array, ""]  # 100 ULP below t1: a step that would end above ends at t1
    clip: bool = eqx.field(static=True)  # whether the objective has jump times to step onto
    ordered_dots: bool = eqx.field(static=True)  # the field's products as `canonical_dots`

    def __init__(self, flow, static, objective, metrics, ordered_dots=False):
        self.flow = flow
        self.ordered_dots = ordered_dots
        self.static = static
        self.metrics = metrics
        self.t1_floor = diffrax_loop.clip_floor(flow.ts[-1])
        arrays, self.objective_static = eqx.partition(objective, eqx.is_array)
        jump_times = jax.eval_shape(
            lambda a: eqx.combine(a, self.objective_static).jump_times(), row(arrays, 0))
        self.clip = jump_times.shape[-1] > 0

    @property
    def solver(self) -> diffrax.AbstractSolver:
        """The flow's solver, stepping with its stages unrolled where it can (`erk`): the
        same whether the flow's solver is `Unrolled` already or not."""
        return erk.unrolled(self.flow.solver)

    def args(self, lane_args):
        """What `Flow.run` passes its solver, (frame, objective), from a lane's arrays."""
        frame, arrays = lane_args
        return frame, eqx.combine(arrays, self.objective_static)

    def terms(self):
        """The flow's vector field in its coordinates, as `diffeqsolve` hands it over."""
        coordinates, static = self.flow.coordinates, self.static

        def field(t, y, args):
            return coordinates.field(args[0], t, y, args[1], static)

        return diffrax_loop.ForwardTerm(diffrax.ODETerm(
            canonical_dots(field) if self.ordered_dots else field))

    def controller(self, objective):
        """The flow's step-size controller, stepping onto the objective's jump times."""
        controller = self.flow.stepsize_controller
        if self.clip:
            controller = clip_at_jumps(controller, objective.jump_times())
        return controller.wrap(_FORWARDS)

    def start(self, member, params, arrays) -> LaneState:
        """A lane's state at the start of `member`, as `diffeqsolve` initialises it."""
        flow, solver, terms = self.flow, self.solver, self.terms()
        objective = eqx.combine(arrays, self.objective_static)
        frame = flow.coordinates.of(params, self.static, objective)
        t0, t1 = flow.ts[0], flow.ts[-1]
        with jax.numpy_dtype_promotion("standard"):
            y0 = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.result_type(x, t0.dtype)),
                                        flow.coordinates.state(frame, params))
        args = (frame, objective)
        tnext, controller_state = self.controller(objective).init(
            terms, t0, t1, y0, flow.dt0, args, solver.func, solver.error_order(terms))
        tnext = jnp.minimum(tnext, t1)
        zero = jnp.zeros((), int)
        return LaneState(
            member=member,
            args=(frame, arrays),
            y=y0,
            tprev=t0,
            tnext=tnext,
            made_jump=jnp.zeros((), bool),
            solver_state=solver.init(terms, t0, tnext, y0, args),
            controller_state=controller_state,
            result=diffrax_loop.successful(),
            num_steps=zero,
            num_accepted_steps=zero,
            num_rejected_steps=zero,
            save_index=zero)

    def step(self, lane: LaneState, active):
        """One pass of `diffeqsolve`'s loop body for one lane (unchanged where not `active`),
        and what the saves inside the step need: accepted, its ends and dense output."""
        solver, t1 = self.solver, self.flow.ts[-1]
        args, terms = self.args(lane.args), self.terms()
        controller = self.controller(args[1])
        # Only a clipping controller makes jumps; otherwise `made_jump` is static False, as in
        # diffrax, so that an FSAL solver never re-evaluates its first stage.
        jumps = isinstance(controller, diffrax.ClipStepSizeController)
        y, y_error, dense_info, solver_state, solver_result = solver.step(
            terms, lane.tprev, lane.tnext, lane.y, args, lane.solver_state,
            lane.made_jump if jumps else False)
        y_error = jax.tree_util.tree_map(lambda e: jnp.where(jnp.isnan(e), jnp.inf, e), y_error)
        keep_step, tprev, tnext, made_jump, controller_state, controller_result = (
            controller.adapt_step_size(lane.tprev, lane.tnext, lane.y, y, args, y_error,
                                       solver.error_order(terms), lane.controller_state))
        tprev = jnp.minimum(tprev, t1)
        tnext = diffrax_loop.clip_to_end(tprev, tnext, t1, self.t1_floor, keep_step)

        def keep(new, old):
            return jnp.where(keep_step, new, old)

        new = LaneState(
            member=lane.member,
            args=lane.args,
            y=jax.tree_util.tree_map(keep, y, lane.y),
            tprev=tprev,
            tnext=tnext,
            made_jump=keep(made_jump, lane.made_jump),
            solver_state=jax.tree_util.tree_map(keep, solver_state, lane.solver_state),
            controller_state=controller_state,
            result=diffrax_loop.merge_results(keep_step, lane.result, solver_result,
                                              controller_result),
            num_steps=lane.num_steps + 1,
            num_accepted_steps=lane.num_accepted_steps + jnp.where(keep_step, 1, 0),
            num_rejected_steps=lane.num_rejected_steps + jnp.where(keep_step, 0, 1),
            save_index=lane.save_index)
        new = jax.tree_util.tree_map(lambda a, b: jnp.where(active, a, b), new, lane)
        return new, (active & keep_step, lane.tprev, lane.tnext, dense_info)

    def params(self, lane: LaneState):
        """The model's parameters at the lane's state."""
        return self.flow.coordinates.params(lane.args[0], lane.y, self.static)

    def saved(self, t, tprev, tnext, dense_info, lane_args):
        """The records at `t` inside the step (tprev, tnext], from its dense output."""

        def records(t, tprev, tnext, dense_info, lane_args):
            y = self.solver.interpolation_cls(t0=tprev, t1=tnext, **dense_info).evaluate(t)
            frame, objective = self.args(lane_args)
            return self.metrics(self.flow.coordinates.model(frame, y, self.static),
                                objective.at(t))

        return (canonical_dots(records) if self.ordered_dots else records)(
            t, tprev, tnext, dense_info, lane_args)
