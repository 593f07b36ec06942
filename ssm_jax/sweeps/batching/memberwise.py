"""Batchings that run each member as a whole, over the batch by one JAX transformation
(`lax.map` or `vmap`), in one compiled call per batch shape: `run_members`, the engine of a
sweep's chunks and of every other batch of runs in the package (the importance experiment's
flows, the digits networks' training)."""

import abc
from collections.abc import Callable
import itertools

import equinox as eqx
import jax.numpy as jnp

from ..._timing import timed_call
from ...dynamics.erk import unrolled
from ...dynamics.flow import Flow
from ._base import AbstractBatching, ChunkOutput


class AbstractMemberwise(AbstractBatching):
    """A batching that runs every member's `dynamics.run` under one transformation, `over`;
    it runs any dynamics, with its explicit Runge-Kutta stages unrolled if `unroll`.
    """

    unroll: eqx.AbstractVar[bool]

    def __check_init__(self):
        if not isinstance(self.unroll, bool):
            raise ValueError(f"`unroll` = {self.unroll!r} is not allowed: expected True (an "
                             "explicit Runge-Kutta solver steps with its stages unrolled) or "
                             "False (diffrax's own step).")

    @abc.abstractmethod
    def over(self, member: Callable, batch, listener):
        """`member` applied to every member of `batch`, inside the compiled call.

        **Arguments:**

        - `member`: one member's arrays -> its outputs (arrays).
        - `batch`: every member's arrays, stacked along a leading member axis.
        - `listener`: an int32 scalar naming a progress callback, for `member_done`; -1 for
          none.

        **Returns:** the outputs, stacked.
        """

    def check(self, dynamics) -> None:
        return None  # any dynamics runs as a whole, member by member

    def prepare(self, dynamics):
        if self.unroll and isinstance(dynamics, Flow):
            return eqx.tree_at(lambda f: f.solver, dynamics, unrolled(dynamics.solver))
        return dynamics

    def run(self, batch, static, dynamics, metrics, device, progress) -> ChunkOutput:
        listener, done = next(_listener_ids), itertools.count(1)
        if progress is not None:
            _LISTENERS[listener] = lambda: progress(next(done))
        try:
            (recorded, stats), compile_s, run_s = timed_call(
                run_members, _sweep_member, (static, dynamics, metrics), batch, self,
                jnp.asarray(listener))
        finally:
            _LISTENERS.pop(listener, None)
        if progress is not None:
            progress(len(stats["num_steps"]))
        return ChunkOutput(recorded, stats, compile_s, run_s)


def _sweep_member(shared, args):
    """One member of a sweep's chunk: its `dynamics.run`."""
    (model_static, objective_static), dynamics, metrics = shared
    params, objective, hyper, key = args
    recorded, _, stats = dynamics.run(params, model_static,
                                      eqx.combine(objective, objective_static), key, metrics,
                                      hyperparameters=hyper)
    return recorded, stats


_LISTENERS: dict[int, Callable[[], None]] = {}
"""Progress callbacks of the chunks running, by the number each was given."""
_listener_ids = itertools.count()


def member_done(listener, _) -> None:
    """Called from inside a compiled batch as a member ends (the second argument, one of the
    member's outputs, makes the call wait for the member's run).

    **Arguments:**

    - `listener`: the batch's callback number.
    - `_`: an output of the member.

    **Returns:** nothing.
    """
    callback = _LISTENERS.get(int(listener))
    if callback is not None:
        callback()


@eqx.filter_jit
@eqx.debug.assert_max_traces(max_traces=None)  # counts compilations; tests read the count
def run_members(member: Callable, shared, batch, batching: AbstractMemberwise, listener=-1):
    """`member(shared, one)` for every member `one` of `batch`, under `batching`'s
    transformation, compiled once per shape of the batch (everything a run varies is an array
    of `batch`).

    **Arguments:**

    - `member`: (shared, one member's arrays) -> its outputs, arrays; a function defined once
      (a new function is a new compilation).
    - `shared`: what every member reads, the same for all (a pytree: its arrays are arguments,
      anything else is static).
    - `batch`: every member's arrays, stacked along a leading member axis.
    - `batching`: `Map()` or `Vmap()` (any `AbstractMemberwise`).
    - `listener`: a progress callback's number (`member_done`; an int32 array, so that
      chunks with other callbacks share the compilation), or -1 for none.

    **Returns:** the members' outputs, stacked along a leading member axis.
    """
    return batching.over(lambda one: member(shared, one), batch, listener)
