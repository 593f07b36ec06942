"""Batchings that run each member's `dynamics.run` as a whole, over the chunk by one JAX
transformation (`lax.map` or `vmap`): one compiled call per chunk shape, `_run_chunk`."""

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

    @abc.abstractmethod
    def over(self, member: Callable, batch, listener):
        """`member` applied to every member of `batch`, inside the compiled call.

        **Arguments:**

        - `member`: one member's (parameters, objective arrays, hyperparameters, key) ->
          (recorded, stats).
        - `batch`: those four, stacked along a leading member axis.
        - `listener`: an int32 scalar naming the chunk's progress callback, for
          `member_done`; -1 for none.

        **Returns:** (recorded, stats), stacked.
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
                _run_chunk, batch, static, dynamics, metrics, self, jnp.asarray(listener))
        finally:
            _LISTENERS.pop(listener, None)
        if progress is not None:
            progress(len(stats["num_steps"]))
        return ChunkOutput(recorded, stats, compile_s, run_s)


_LISTENERS: dict[int, Callable[[], None]] = {}
"""Progress callbacks of the chunks running, by the number each was given."""
_listener_ids = itertools.count()


def member_done(listener, _) -> None:
    """Called from inside a compiled chunk as a member ends (its step count, the second
    argument, makes the call wait for the member's run).

    **Arguments:**

    - `listener`: the chunk's callback number.
    - `_`: the member's step count.

    **Returns:** nothing.
    """
    callback = _LISTENERS.get(int(listener))
    if callback is not None:
        callback()


@eqx.filter_jit
@eqx.debug.assert_max_traces(max_traces=None)  # counts compilations; tests read the count
def _run_chunk(batch, static, dynamics, metrics, batching: AbstractMemberwise, listener):
    model_static, objective_static = static

    def member(args):
        params, objective, hyper, key = args
        recorded, _, stats = dynamics.run(params, model_static,
                                          eqx.combine(objective, objective_static), key,
                                          metrics, hyperparameters=hyper)
        return recorded, stats

    return batching.over(member, batch, listener)
