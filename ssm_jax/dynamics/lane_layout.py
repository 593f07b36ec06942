"""How refill lanes hold their members' states and evaluate their vector fields: the
strategy that decides how many kernels XLA makes of one lane-step, not what it computes."""

import abc

import equinox as eqx
import jax

from .lane import MemberSolve
from .raveled import raveled


class AbstractLaneLayout(eqx.Module):
    """How the lanes of a refill run hold and step their members (`dynamics.refill_loop`).

    A layout builds the `MemberSolve` that each lane steps: the state it carries and how its
    vector field is evaluated. Whatever the layout, each member's numbers are those of its own
    `Flow.run` (up to round-off in the order of sums), with the same steps.
    """

    @abc.abstractmethod
    def member_solve(self, flow, params, static, objective, metrics) -> MemberSolve:
        """The members' integrator, as `MemberSolve(flow, static, objective, metrics)`, with
        this layout's state and vector field.

        **Arguments:** as `refill.refill_start` (`params` and the objective's array leaves
        stacked along the members).

        **Returns:** a `MemberSolve`.
        """


def check_layout(layout) -> None:
    """A `ValueError` unless `layout` is a lane layout (a module, not a name)."""
    if not isinstance(layout, AbstractLaneLayout):
        raise ValueError(f"`layout` = {layout!r} is not allowed: expected a lane layout, "
                         "ssm_jax.dynamics.Flat() or Leaves().")


class Leaves(AbstractLaneLayout):
    """Each leaf of a member's state its own array (lanes stacked along a leading axis), the
    field's products as the gradient writes them: `Flow.run`'s state, vmapped over lanes."""

    def member_solve(self, flow, params, static, objective, metrics):
        return MemberSolve(flow, static, objective, metrics)


class Flat(AbstractLaneLayout):
    """Each member's state raveled into one vector (`raveled.Raveled`), the lanes stacked
    into one (L, n) array, so that a stage's sum, the error norm and the selects of a step
    are one fused loop each over all lanes, whatever the model's number of leaves; and the
    field's small products take their operands in the order of XLA's fast batched kernels
    (`canonical_dots`). Both apply to small states and products only (`SMALL_STATE`,
    `SMALL`: 4096 numbers), where a kernel's fixed cost outweighs its arithmetic; a large
    state keeps its leaves (W1's UFM). Measured in `benchmarks/README.md`."""

    def member_solve(self, flow, params, static, objective, metrics):
        _, objective_static = eqx.partition(objective, eqx.is_array)

        def state(params, arrays):
            member = eqx.combine(arrays, objective_static)
            return flow.coordinates.state(flow.coordinates.of(params, static, member), params)

        one = jax.tree_util.tree_map(lambda x: x[0], (params, eqx.filter(objective,
                                                                          eqx.is_array)))
        coordinates = raveled(flow.coordinates, jax.eval_shape(state, *one))
        flow = eqx.tree_at(lambda f: f.coordinates, flow, coordinates)
        return MemberSolve(flow, static, objective, metrics, ordered_dots=True)
