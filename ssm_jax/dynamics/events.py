"""Events that end a gradient flow early, as array-leaf modules (a sweep over their
thresholds compiles once)."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from .. import _validate


class AbstractEvent(eqx.Module):
    """A condition that ends a flow. A new event provides `__call__(field, t, params,
    objective) -> bool`, where `field(t, params, objective)` is the flow's velocity -grad L."""

    @abc.abstractmethod
    def __call__(self, field, t, params, objective) -> Bool[Array, ""]:
        """True once the flow should stop."""


def _norm(tree):
    return jnp.sqrt(sum(jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(tree)))


class SteadyState(AbstractEvent):
    """The flow is at rest once |grad L| <= tol * lambda, lambda the objective's L2 strength.

    For a lambda-strongly convex objective (L2 on a convex loss) this bounds the distance to
    the minimizer by `tol`. Without L2 (lambda = 0) a separable problem has no finite rest,
    and the event never fires.

    **Arguments:**

    - `tol`: the bound on the distance to the minimizer (> 0).
    """

    tol: Float[Array, ""]

    def __init__(self, tol):
        _validate.number("tol", tol, low=0.0, low_open=True)
        self.tol = jnp.asarray(tol, dtype=jnp.result_type(float))

    def __call__(self, field, t, params, objective):
        l2 = objective.l2
        return (l2 > 0) & (_norm(field(t, params, objective)) <= self.tol * l2)
