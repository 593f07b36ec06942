"""Gradient flow of many members without lockstep: L lanes each step their own member, and a
lane whose member ends writes its results and takes the next member of a queue of M.

Each lane steps its member as `diffeqsolve`'s loop steps (solver, controller, clip to t1,
saves by interpolation, step counts; `lane`), so each member's numbers are those of
`Flow.run`; the loop over lanes is `refill_loop`, and what it mirrors of diffrax's own loop,
with the diffrax versions that mirror is tested against, is `diffrax_loop`. This module is the
entry: checks, compiled calls, and a run in one call or in segments (start, advance, finish).
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import _validate
from ..objective import AbstractObjective
from . import diffrax_loop, refill_loop
from .lane_layout import AbstractLaneLayout, Flat, check_layout
from .refill_loop import RefillOutput as RefillOutput, RefillState as RefillState

DEFAULT_LAYOUT = Flat()
"""The lanes' layout unless one is given: one (L, n) state, products ordered for fast kernels."""


def _check(flow, params, objective, num_lanes, layout) -> int:
    diffrax_loop.check_diffrax()
    check_layout(layout)
    if flow.event is not None:
        raise ValueError(f"`flow.event` = {type(flow.event).__name__} is not allowed in a refill "
                         "run, which has no events: run flows with an event with a batching "
                         "other than refill lanes, such as \"map\".")
    if not isinstance(objective, AbstractObjective):
        raise ValueError(f"`objective` = {objective!r} is not allowed: expected an "
                         "AbstractObjective whose array leaves stack the members.")
    leaves = jax.tree_util.tree_leaves((params, eqx.filter(objective, eqx.is_array)))
    sizes = {leaf.shape[0] if leaf.ndim else 0 for leaf in leaves}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"`params` and `objective` have leading sizes {sorted(sizes)}: "
                         "expected all array leaves stacked along one axis of M >= 1 members.")
    return _validate.integer("num_lanes", num_lanes, minimum=1)


def _run(flow, params, static, objective, metrics, num_lanes, layout):
    state = refill_loop.start(flow, params, static, objective, metrics, num_lanes, layout)
    until_done = jnp.iinfo(state.iterations.dtype).max - 1
    return refill_loop.finish(refill_loop.advance(state, until_done))


_compiled_start = eqx.filter_jit(refill_loop.start)
_compiled_advance = eqx.filter_jit(refill_loop.advance)
_compiled_finish = eqx.filter_jit(refill_loop.finish)
# One compilation per (M, L) and shapes; tests count them with `eqx.debug.get_num_traces`.
compiled_run = eqx.filter_jit(eqx.debug.assert_max_traces(_run, max_traces=None))


def refill_start(flow, params, static, objective, metrics, *, num_lanes: int,
                 layout: AbstractLaneLayout = DEFAULT_LAYOUT) -> RefillState:
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
    - `layout`: how the lanes hold and step their members (`lane_layout`): `Flat()` (one
      (L, n) state, the field's products ordered for fast kernels) or `Leaves()`.

    **Returns:** a `RefillState`, for `refill_advance` and `refill_finish`.
    """
    num_lanes = _check(flow, params, objective, num_lanes, layout)
    return _compiled_start(flow, params, static, objective, metrics, num_lanes, layout)


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
    num_members = refill_loop.queue_size(state.params)
    if int(state.members_done) != num_members:
        raise ValueError(f"`state` has {int(state.members_done)} of {num_members} members "
                         "done: expected all; advance it further (`refill_advance`).")
    return _compiled_finish(state)


def refill_run(flow, params, static, objective, metrics, *, num_lanes: int,
               layout: AbstractLaneLayout = DEFAULT_LAYOUT) -> RefillOutput:
    """Runs `flow` for M members in `num_lanes` lanes that each step on their own: per
    member, what `jax.vmap(lambda p, o: flow.run(p, static, o, None, metrics))` gives. One
    compiled call (start, advance until all end, finish), shared by members that differ only
    in values; run it under `jax.default_matmul_precision(flow.precision)`, as `Flow.run`.

    **Arguments:** as `refill_start`.

    **Returns:** a `RefillOutput`: (recorded, final, stats) as the vmapped `Flow.run`, and the
    lane efficiency.
    """
    num_lanes = _check(flow, params, objective, num_lanes, layout)
    return compiled_run(flow, params, static, objective, metrics, num_lanes, layout)
